"""Moving data between the in-memory stores and PostgreSQL: the migration router that
dual-writes and shifts reads, the wiring that puts it in front of each store, start-up
reconciliation, backfill, rehydration and consistency checks."""
