"""Placeholder: the PostgreSQL test harness (a session fixture that starts a server) lands here."""
