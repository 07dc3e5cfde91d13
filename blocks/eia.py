"""Typed Prefect Blocks holding the pipeline's configuration and secrets.

Flows load these by name (block names are flow parameters with defaults) and hand plain values to
tasks, so tasks are testable without a Prefect server. `eia init` creates or updates them from the
EIA_* environment variables. The API key is a plain Prefect `Secret` block named `eia-api-key`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

API_KEY_BLOCK = "eia-api-key"
ENDPOINTS_BLOCK = "eia-endpoints"
DATABASE_BLOCK = "eia-database"
KAFKA_BLOCK = "eia-kafka"
COST_POLICY_BLOCK = "eia-cost-policy"


class EiaEndpoints(Block):
    """Where EIA lives, and how hard the client may push it."""

    _block_type_name: ClassVar[str] = "EIA Endpoints"
    _block_type_slug: ClassVar[str] = "eia-endpoints"
    _description: ClassVar[str] = "EIA API v2 and bulk download endpoints, client limits and circuit breaker."

    api_url: str = Field(default="https://api.eia.gov/v2", description="EIA API v2 base URL (EIA_API_URL).")
    bulk_url: str = Field(
        default="https://www.eia.gov/opendata/bulk",
        description="Bulk download base URL holding manifest.txt (EIA_BULK_URL).",
    )
    timeout_s: float = Field(default=30.0, gt=0, description="Per-request timeout in seconds.")
    requests_per_second: float = Field(
        default=2.0,
        gt=0,
        description="In-process request rate; across processes the `api_eia_rate` limit (2/s) holds EIA's "
        "guidance (< 9,000/h sustained, bursts < 5/s).",
    )
    burst: int = Field(
        default=2,
        ge=1,
        le=4,
        description="In-process requests allowed back-to-back before the rate applies (as `api_eia_rate`: 2).",
    )
    page_size: int = Field(default=5000, ge=1, le=5000, description="Rows per page (EIA caps JSON responses at 5,000).")
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0, description="Largest response body accepted.")
    breaker_fail_max: int = Field(default=5, ge=1, description="Consecutive failures that open the circuit breaker.")
    breaker_reset_timeout_s: float = Field(
        default=60.0, gt=0, description="Seconds the breaker stays open before a trial call."
    )
    max_rate_limit_waits: int = Field(
        default=5, ge=0, description="429 responses honoured (waiting Retry-After) per request."
    )
    retries: int = Field(
        default=4, ge=0, description="Prefect task retries for transient EIA errors (5xx, timeouts, bad JSON)."
    )
    retry_base_delay_s: float = Field(
        default=2.0, ge=0, description="First retry delay; doubles per retry, with 50% jitter."
    )


class EiaDatabase(Block):
    """The PostgreSQL/TimescaleDB target. An empty DSN means the embedded PostgreSQL."""

    _block_type_name: ClassVar[str] = "EIA Database"
    _block_type_slug: ClassVar[str] = "eia-database"
    _description: ClassVar[str] = "PostgreSQL/TimescaleDB DSN (secret), table, tenant and retention."

    dsn: SecretStr | None = Field(
        default=None, description="postgresql:// DSN (EIA_DATABASE_URL); empty = embedded PostgreSQL."
    )
    table: str = Field(default="eia_series_timeseries", description="The observation table.")
    tenant_id: str = Field(
        default="aurum-prod", min_length=1, max_length=64, description="Tenant stamped on every row."
    )
    retention_years: int = Field(default=0, ge=0, description="Drop/skip observations older than this (0 = keep all).")


class EiaKafka(Block):
    """Kafka and Schema Registry. An empty bootstrap means publishing is off."""

    _block_type_name: ClassVar[str] = "EIA Kafka"
    _block_type_slug: ClassVar[str] = "eia-kafka"
    _description: ClassVar[str] = "Kafka bootstrap servers, Schema Registry and topics for EIA observations."

    bootstrap_servers: str = Field(default="", description="host:port list (EIA_KAFKA_BOOTSTRAP); empty = Kafka off.")
    schema_registry_url: str = Field(default="", description="Schema Registry URL (EIA_SCHEMA_REGISTRY_URL).")
    series_topic: str = Field(default="aurum.ref.eia.series.v1", description="Topic for API series observations.")
    bulk_topic: str = Field(default="aurum.ref.eia.bulk.v1", description="Topic for bulk observations.")
    dlq_topic: str = Field(default="aurum.ref.eia.series.dlq.v1", description="Dead-letter topic for quarantined rows.")
    security_protocol: str = Field(
        default="", description="librdkafka security.protocol, e.g. SASL_SSL (empty = PLAINTEXT)."
    )
    sasl_mechanism: str = Field(default="", description="librdkafka sasl.mechanism, e.g. SCRAM-SHA-512.")
    sasl_username: str = Field(default="", description="SASL username.")
    sasl_password: SecretStr | None = Field(default=None, description="SASL password (secret).")
    ssl_ca_location: str = Field(default="", description="CA bundle path for TLS.")


class EiaCostPolicy(Block):
    """The runbook's cost controls: request quotas, the monthly budget and the alert thresholds.

    EIA's API is free; `cost_per_1000_requests` is an internal charge-back rate. Unless
    `eia_guidance_override` is set, the quotas actually enforced are capped by EIA's guidance
    (sustained below about 9,000 requests an hour; bursts below 5 a second are held by the
    `api_eia_rate` Prefect rate limit that `eia init` creates).
    """

    _block_type_name: ClassVar[str] = "EIA Cost Policy"
    _block_type_slug: ClassVar[str] = "eia-cost-policy"
    _description: ClassVar[str] = "EIA request quotas, monthly budget, charge-back rate and cost alert thresholds."

    daily_request_limit: int = Field(default=100_000, ge=1, description="Requests per UTC day, all workers together.")
    hourly_request_limit: int = Field(
        default=20_000, ge=1, description="Requests per UTC hour (capped at EIA's 9,000 unless overridden)."
    )
    monthly_budget_usd: Decimal = Field(
        default=Decimal("10000.00"), gt=0, max_digits=14, decimal_places=2, description="Monthly budget in USD."
    )
    cost_per_1000_requests: Decimal = Field(
        default=Decimal("0.005"),
        ge=0,
        max_digits=12,
        decimal_places=6,
        description="Internal charge-back per 1,000 requests.",
    )
    warning_percent: Decimal = Field(
        default=Decimal(70), gt=0, le=100, description="Warning at this percent of the budget or the daily quota."
    )
    critical_percent: Decimal = Field(
        default=Decimal(85), gt=0, le=100, description="Critical at this percent of the budget or the daily quota."
    )
    hourly_spike_percent: Decimal = Field(
        default=Decimal(150),
        gt=100,
        description="Spike when an hour exceeds this percent of the trailing 24-hour average.",
    )
    enable_dynamic_throttling: bool = Field(
        default=True,
        description="Past the warning threshold, spread the remaining daily quota over the rest of the day.",
    )
    eia_guidance_override: bool = Field(
        default=False, description="Enforce the configured quotas even above EIA's guidance (risks key suspension)."
    )

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> EiaCostPolicy:
        if self.critical_percent < self.warning_percent:
            raise ValueError("critical_percent must not be below warning_percent")
        return self
