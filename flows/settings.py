"""Turns Blocks into the plain settings tasks receive, failing fast with the setting's name.

Locally a missing block falls back to its defaults (embedded PostgreSQL, Kafka off) so a fresh
machine runs without set-up. In production (a deployment run, or `EIA_ENVIRONMENT=prod`: see
`in_production`) nothing falls back: a missing block is an error naming the block and `eia init`.
A block that exists but fails validation is an error everywhere, naming its fields (never their
values). A missing API key is an error that names `EIA_API_KEY`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.exceptions import ObjectNotFound
from pydantic import ValidationError

from blocks import COST_POLICY_BLOCK, EiaCostPolicy, EiaDatabase, EiaEndpoints, EiaKafka
from tasks.core.errors import EiaAuthError
from tasks.core.redact import quiet_tracebacks, register_secret
from tasks.eia.client import API_KEY_SETTING, ClientSettings
from tasks.publish.producer import KafkaSettings
from tasks.quota.budget import CostPolicy
from tasks.store.database import DatabaseConfigError, in_production, resolve_dsn
from tasks.store.tables import TIMESERIES

logger = logging.getLogger(__name__)


# Plain run settings handed to tasks: resolved from Blocks here, never loaded by tasks, so every task
# is testable with `task.fn(...)` and plain values, without a Prefect server.
@dataclass(frozen=True, slots=True)
class RetrySettings:
    retries: int = 4
    base_delay_s: float = 2.0
    jitter_factor: float = 0.5


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    fail_max: int = 5
    reset_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class RunSettings:
    dsn: str = field(repr=False)
    tenant_id: str
    retention_years: int
    client: ClientSettings
    kafka: KafkaSettings | None  # None: publishing is off
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    cost: CostPolicy = field(default_factory=CostPolicy)  # quotas, budget, alerts (block 'eia-cost-policy')


B = TypeVar("B", bound=Block)

# How `eia init` fills each block: the hint of the "missing block" error.
_CREATED_BY: dict[type[Block], str] = {
    EiaEndpoints: "`eia init` (EIA_API_URL and EIA_BULK_URL set its URLs)",
    EiaDatabase: "`eia init` with EIA_DATABASE_URL set",
    EiaKafka: (
        "`eia init` with EIA_KAFKA_BOOTSTRAP and EIA_SCHEMA_REGISTRY_URL set "
        "(without EIA_KAFKA_BOOTSTRAP it creates the block with Kafka off)"
    ),
    EiaCostPolicy: "`eia init` (it creates the runbook's cost policy)",
    Secret: f"`eia init` with {API_KEY_SETTING} set",
}
# Pydantic error types raised by validators written in code: their messages are free text and could
# quote the value, so only the field is named. Built-in types' messages never include the input.
_FREE_TEXT_ERRORS = frozenset({"value_error", "assertion_error"})


class SettingsError(ValueError):
    """A configuration value is wrong; the message names it."""


_CONFIGURATION_ERRORS = (SettingsError, DatabaseConfigError, EiaAuthError)


def quiet_configuration_tracebacks() -> None:
    """Keeps the tracebacks of configuration errors out of the logs: the message names the setting."""
    quiet_tracebacks(*_CONFIGURATION_ERRORS)


def _validation_error(exc: BaseException) -> ValidationError | None:
    """The pydantic ValidationError behind `exc` (Block.aload wraps it in a RuntimeError), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ValidationError):
            return seen
        seen = seen.__cause__
    return None


def _invalid_fields(error: ValidationError) -> str:
    """Each failing field and why, from pydantic's messages; never the input value."""
    parts: list[str] = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        where = ".".join(str(p) for p in item["loc"])
        why = "rejected by its validator" if item["type"] in _FREE_TEXT_ERRORS else item["msg"]
        parts.append(f"field {where!r} ({why})" if where else f"the block as a whole ({why})")
    return ", ".join(dict.fromkeys(parts))


async def load_block(cls: type[B], name: str, *, missing_ok: bool = False) -> B | None:
    """The named block; None when it does not exist and its defaults may stand in.

    Defaults may stand in on a local run, or with `missing_ok` (`eia init` and the commands that create
    the block). In production a missing block is a `SettingsError` naming the block and how to create
    it. A block that exists but fails validation is a `SettingsError` naming the failing fields,
    everywhere. Any other error (the Prefect API unreachable, ...) propagates.
    """
    try:
        return await cls.aload(name)  # type: ignore[return-value]
    except (ValueError, RuntimeError) as exc:
        invalid = _validation_error(exc)
        if invalid is not None:
            slug = cls.get_block_type_slug()
            quiet_configuration_tracebacks()
            raise SettingsError(
                f"block {name!r} ({cls.get_block_type_name()}) is invalid: {_invalid_fields(invalid)}; fix it in "
                f"the Prefect UI (Blocks), or delete it (`prefect block delete {slug}/{name}`) and rerun `eia init`"
            ) from None
        # Block.aload turns Prefect's ObjectNotFound into a ValueError: that, and only that, is "not found".
        if not (isinstance(exc, ValueError) and isinstance(exc.__cause__, ObjectNotFound)):
            raise
    if missing_ok or not in_production():
        return None
    how = _CREATED_BY.get(cls, "`eia init`")
    quiet_configuration_tracebacks()
    raise SettingsError(
        f"block {name!r} ({cls.get_block_type_name()}) does not exist, and production (a deployment run or "
        f"EIA_ENVIRONMENT=prod) uses no defaults: create it with {how}"
    )


async def load_api_key(name: str) -> str:
    secret = await load_block(Secret, name, missing_ok=True)  # the error below names EIA_API_KEY
    value = secret.get() if secret is not None else None
    if not isinstance(value, str) or not value.strip():
        raise EiaAuthError(
            f"no EIA API key is configured: set {API_KEY_SETTING} (block name {name!r}) and run `eia init`"
        )
    register_secret(value.strip())
    return value.strip()


def kafka_settings(block: EiaKafka | None) -> KafkaSettings | None:
    if block is None or not block.bootstrap_servers.strip():
        return None
    if not block.schema_registry_url.strip():
        raise SettingsError(
            "Kafka is configured (EIA_KAFKA_BOOTSTRAP) but the Schema Registry URL is not: "
            "set EIA_SCHEMA_REGISTRY_URL (block 'eia-kafka' field 'schema_registry_url')"
        )
    security: dict[str, str] = {}
    if block.security_protocol:
        security["security.protocol"] = block.security_protocol
    if block.sasl_mechanism:
        security["sasl.mechanism"] = block.sasl_mechanism
    if block.sasl_username:
        security["sasl.username"] = block.sasl_username
    if block.sasl_password is not None:
        security["sasl.password"] = block.sasl_password.get_secret_value()
    if block.ssl_ca_location:
        security["ssl.ca.location"] = block.ssl_ca_location
    return KafkaSettings(
        bootstrap_servers=block.bootstrap_servers.strip(),
        schema_registry_url=block.schema_registry_url.strip(),
        series_topic=block.series_topic,
        bulk_topic=block.bulk_topic,
        dlq_topic=block.dlq_topic,
        security=security,
    )


def cost_policy(block: EiaCostPolicy | None) -> CostPolicy:
    """The cost-policy block as plain values; no block means the runbook's defaults."""
    if block is None:
        return CostPolicy()
    return CostPolicy(
        daily_request_limit=block.daily_request_limit,
        hourly_request_limit=block.hourly_request_limit,
        monthly_budget_usd=block.monthly_budget_usd,
        cost_per_1000_requests=block.cost_per_1000_requests,
        warning_percent=block.warning_percent,
        critical_percent=block.critical_percent,
        hourly_spike_percent=block.hourly_spike_percent,
        enable_dynamic_throttling=block.enable_dynamic_throttling,
        eia_guidance_override=block.eia_guidance_override,
    )


async def load_cost_policy(name: str = COST_POLICY_BLOCK) -> CostPolicy:
    return cost_policy(await load_block(EiaCostPolicy, name))


async def load_run_settings(
    *,
    api_key_block: str,
    endpoints_block: str,
    database_block: str,
    kafka_block: str,
    need_api_key: bool = True,
    cost_policy_block: str = COST_POLICY_BLOCK,
) -> RunSettings:
    """Every setting a flow run needs, from the blocks and `EIA_DATABASE_URL`; errors name the setting."""
    try:
        return await _load_run_settings(
            api_key_block, endpoints_block, database_block, kafka_block, need_api_key, cost_policy_block
        )
    except _CONFIGURATION_ERRORS:
        quiet_configuration_tracebacks()  # the flow fails with the message alone, as the CLI prints it
        raise


async def _load_run_settings(
    api_key_block: str,
    endpoints_block: str,
    database_block: str,
    kafka_block: str,
    need_api_key: bool,
    cost_policy_block: str,
) -> RunSettings:
    endpoints = await load_block(EiaEndpoints, endpoints_block) or EiaEndpoints()
    database = await load_block(EiaDatabase, database_block) or EiaDatabase()
    if database.table != TIMESERIES:
        raise SettingsError(
            f"block {database_block!r} field 'table' is {database.table!r}; only {TIMESERIES!r} is supported "
            "(the migrations create that table)"
        )
    api_key = await load_api_key(api_key_block) if need_api_key else ""
    dsn_value = database.dsn.get_secret_value() if database.dsn is not None else None
    return RunSettings(
        dsn=resolve_dsn(dsn_value),  # EIA_DATABASE_URL > the block's dsn > embedded (local runs only)
        tenant_id=database.tenant_id,
        retention_years=database.retention_years,
        client=ClientSettings(
            api_url=endpoints.api_url,
            api_key=api_key,
            timeout_s=endpoints.timeout_s,
            requests_per_second=endpoints.requests_per_second,
            burst=endpoints.burst,
            page_size=endpoints.page_size,
            max_body_bytes=endpoints.max_body_bytes,
            max_rate_limit_waits=endpoints.max_rate_limit_waits,
        ),
        kafka=kafka_settings(await load_block(EiaKafka, kafka_block)),
        retry=RetrySettings(retries=endpoints.retries, base_delay_s=endpoints.retry_base_delay_s),
        breaker=BreakerSettings(endpoints.breaker_fail_max, endpoints.breaker_reset_timeout_s),
        cost=await load_cost_policy(cost_policy_block),
    )


async def bulk_url(endpoints_block: str) -> str:
    return (await load_block(EiaEndpoints, endpoints_block) or EiaEndpoints()).bulk_url


def describe(settings: RunSettings) -> dict[str, Any]:
    return {"tenant": settings.tenant_id, "kafka": "on" if settings.kafka else "off"}
