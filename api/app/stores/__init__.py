"""Store protocols and their backends: in-memory (durable), PostgreSQL, and the router."""
