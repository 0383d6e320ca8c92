"""The PostgreSQL backend: the asyncpg adapters, their named queries, the pool, and the
migration runner with the schema-version check."""
