"""End-to-end flow tests: the stand-in EIA, real PostgreSQL, real Prefect, real Soda, real Kafka."""
