"""Prefect Blocks: configuration and secrets only."""

from blocks.eia import (
    API_KEY_BLOCK,
    COST_POLICY_BLOCK,
    DATABASE_BLOCK,
    ENDPOINTS_BLOCK,
    KAFKA_BLOCK,
    EiaCostPolicy,
    EiaDatabase,
    EiaEndpoints,
    EiaKafka,
)

__all__ = [
    "API_KEY_BLOCK",
    "COST_POLICY_BLOCK",
    "DATABASE_BLOCK",
    "ENDPOINTS_BLOCK",
    "KAFKA_BLOCK",
    "EiaCostPolicy",
    "EiaDatabase",
    "EiaEndpoints",
    "EiaKafka",
]
