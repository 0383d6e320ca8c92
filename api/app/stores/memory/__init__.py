"""The in-memory backend: both stores in dicts, made durable by a journal and snapshots."""
