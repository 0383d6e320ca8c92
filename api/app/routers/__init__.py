"""HTTP routers. Each depends on the store protocols only, reached through deps.py."""
