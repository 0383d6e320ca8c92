"""PostgreSQL plumbing: the asyncpg pool, the migration runner and the named queries."""
