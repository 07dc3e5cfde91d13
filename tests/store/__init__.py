"""Store tests: migrations, schema, staging and merge against a real PostgreSQL."""
