"""`eia init`: one idempotent set-up. Migrations, block types and blocks, Prefect limits.

Rerunning changes nothing and never fails because something exists. Blocks are created or updated
only from the EIA_* environment variables that are set; fields not named by a variable keep
their stored values. A stored block that fails validation stops it, naming the field: it is never
overwritten with defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from pydantic import SecretStr

from blocks import (
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
from flows.settings import load_block
from tasks.bulk.fanout import DATASET_LIMIT, DATASET_SLOTS
from tasks.eia.limits import API_SLOTS, RATE_BURST, RATE_LIMIT, RATE_PER_SECOND, SLOT_LIMIT
from tasks.store.database import DATABASE_URL_ENV, connect, connection_error, describe_dsn, resolve_dsn
from tasks.store.migrations import MigrationReport, apply_migrations


@dataclass(slots=True)
class InitReport:
    database: str
    flavor: str
    migrations_applied: list[str]
    schema_version: int
    retention: str
    blocks: dict[str, str] = field(default_factory=dict)  # name -> created | updated | unchanged
    limits: dict[str, str] = field(default_factory=dict)


async def _save_if_changed(block: object, name: str, existed: bool, changed: bool) -> str:
    if existed and not changed:
        return "unchanged"
    await block.asave(name, overwrite=True)  # type: ignore[attr-defined]
    return "updated" if existed else "created"


async def ensure_blocks(env: Mapping[str, str]) -> dict[str, str]:
    for cls in (EiaEndpoints, EiaDatabase, EiaKafka, EiaCostPolicy):
        await cls.aregister_type_and_schema()  # type: ignore[misc]
    outcome: dict[str, str] = {}

    endpoints = await load_block(EiaEndpoints, ENDPOINTS_BLOCK, missing_ok=True)
    existed = endpoints is not None
    endpoints = endpoints or EiaEndpoints()
    changed = False
    for var, attr in (("EIA_API_URL", "api_url"), ("EIA_BULK_URL", "bulk_url")):
        if env.get(var) and getattr(endpoints, attr) != env[var]:
            setattr(endpoints, attr, env[var])
            changed = True
    outcome[ENDPOINTS_BLOCK] = await _save_if_changed(endpoints, ENDPOINTS_BLOCK, existed, changed)

    database = await load_block(EiaDatabase, DATABASE_BLOCK, missing_ok=True)
    existed, changed = database is not None, False
    database = database or EiaDatabase()
    dsn = env.get("EIA_DATABASE_URL")
    if dsn and (database.dsn is None or database.dsn.get_secret_value() != dsn):
        database.dsn = SecretStr(dsn)
        changed = True
    outcome[DATABASE_BLOCK] = await _save_if_changed(database, DATABASE_BLOCK, existed, changed)

    kafka = await load_block(EiaKafka, KAFKA_BLOCK, missing_ok=True)
    existed, changed = kafka is not None, False
    kafka = kafka or EiaKafka()
    for var, attr in (("EIA_KAFKA_BOOTSTRAP", "bootstrap_servers"), ("EIA_SCHEMA_REGISTRY_URL", "schema_registry_url")):
        if env.get(var) and getattr(kafka, attr) != env[var]:
            setattr(kafka, attr, env[var])
            changed = True
    outcome[KAFKA_BLOCK] = await _save_if_changed(kafka, KAFKA_BLOCK, existed, changed)

    # The runbook's cost policy: created with its defaults once, then changed only on purpose
    # (`eia budget set`, the Prefect UI), never by a rerun of `eia init`.
    policy = await load_block(EiaCostPolicy, COST_POLICY_BLOCK, missing_ok=True)
    outcome[COST_POLICY_BLOCK] = await _save_if_changed(
        policy or EiaCostPolicy(), COST_POLICY_BLOCK, policy is not None, False
    )

    key = env.get("EIA_API_KEY", "").strip()
    secret = await load_block(Secret, API_KEY_BLOCK, missing_ok=True)
    if key:
        same = secret is not None and secret.get() == key
        outcome[API_KEY_BLOCK] = await _save_if_changed(
            Secret(value=SecretStr(key)), API_KEY_BLOCK, secret is not None, not same
        )
    else:
        outcome[API_KEY_BLOCK] = "unchanged" if secret is not None else "missing (set EIA_API_KEY)"
    return outcome


async def ensure_limits(
    slots: int = API_SLOTS, rate: float = RATE_PER_SECOND, burst: int = RATE_BURST, datasets: int | None = None
) -> dict[str, str]:
    """Creates or updates `api_eia` (slots) and `api_eia_rate` (burst, decaying at `rate` per second).

    `eia_bulk_datasets` (bulk datasets loading at once, README "Scale out") is created with
    DATASET_SLOTS when missing and otherwise kept as the operator set it; `datasets` sets it.
    """
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(SLOT_LIMIT, slots)
        await client.upsert_global_concurrency_limit_by_name(RATE_LIMIT, burst, slot_decay_per_second=rate)
        if datasets is not None:
            await client.upsert_global_concurrency_limit_by_name(DATASET_LIMIT, datasets)
        else:
            try:
                datasets = (await client.read_global_concurrency_limit_by_name(DATASET_LIMIT)).limit
            except ObjectNotFound:
                datasets = DATASET_SLOTS
                await client.upsert_global_concurrency_limit_by_name(DATASET_LIMIT, datasets)
    return {
        SLOT_LIMIT: f"{slots} slots",
        RATE_LIMIT: f"{rate:g} requests/s, burst {burst}",
        DATASET_LIMIT: f"{datasets} datasets at once",
    }


def check_database(dsn: str) -> None:
    """Fails with one line naming the setting when the database cannot be reached as configured."""
    with connect(dsn):
        pass


def _migrate(dsn: str) -> MigrationReport:
    try:
        return apply_migrations(dsn)
    except psycopg.OperationalError as exc:  # lost on the way: the same one line as a failed connect
        raise connection_error(dsn, exc) from None


async def run_init(env: Mapping[str, str] | None = None) -> InitReport:
    env = dict(os.environ if env is None else env)
    if env.get(DATABASE_URL_ENV, "").strip():
        # A DSN that is malformed or does not answer is never written into the block.
        check_database(resolve_dsn(None, env))
    blocks = await ensure_blocks(env)
    database = await load_block(EiaDatabase, DATABASE_BLOCK) or EiaDatabase()  # ensure_blocks created it
    dsn = resolve_dsn(database.dsn.get_secret_value() if database.dsn else None, env)
    migrated = _migrate(dsn)
    with connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT eia_apply_retention(%s)", (database.retention_years,)).fetchone()
    limits = await ensure_limits()
    return InitReport(
        database=describe_dsn(dsn) if database.dsn else f"embedded PostgreSQL ({describe_dsn(dsn)})",
        flavor=migrated.flavor,
        migrations_applied=[f"{m.version:04d}_{m.name}" for m in migrated.applied],
        schema_version=migrated.current_version,
        retention=str(row[0]) if row else "",
        blocks=blocks,
        limits=limits,
    )
