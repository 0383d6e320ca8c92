"""Moving data between the in-memory stores and PostgreSQL: consistency checks, backfill,
rehydration, and the wiring that puts the migration router in front of each store."""
