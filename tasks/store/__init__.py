"""PostgreSQL/TimescaleDB: connections, migrations, models, staging, merge, quarantine."""
