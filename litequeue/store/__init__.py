"""Layer 1: the database: connections, dialects, faults, schema, doorbell, liveness."""
