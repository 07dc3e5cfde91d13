"""Operational state: circuit breaker storage, run log, redaction, metrics."""
