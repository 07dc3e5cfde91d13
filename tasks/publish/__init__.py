"""Kafka publishing: Avro schema, transactional outbox, and the idempotent producer."""
