"""The tables as SQLModel classes: the one typed definition of every table the pipeline owns.

Why it exists: the migrations in `sql/` create the tables (per flavour, verbatim SQL), and the read
paths query them with `select()` over these classes instead of SQL strings. Each class names its
table from `tables`, and its columns, types, nullability, server defaults, primary key and indexes
(with the migrations' names) are what the migrated database holds: `tests/store/test_models.py`
compares `SQLModel.metadata` with a migrated database of each flavour (plain PostgreSQL and
TimescaleDB), so a column added on one side only fails the tests.

The observation columns come from the observation record (`tasks/normalize/observation.py`): the
staging table and the observation table share `ObservationColumns`, whose fields are the record's
`STAGED_COLUMNS` in COPY order (a test proves the names, order and types equal the record's).

Not models: the observation table's partitions (`eia_series_timeseries_pYYYYMM`/`_yYYYY`, created by
`eia_ensure_partitions`), the monthly aggregate (a materialized view or a continuous aggregate) and
the migration runner's own `eia_schema_migrations`. Writes on the hot path (COPY, the merge, the
reservation function, the quarantine's INSERT ... ON CONFLICT) stay SQL; these classes never create
tables (`SQLModel.metadata.create_all` is not how a database is made: `eia init` is).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Index, text
from sqlalchemy.dialects.postgresql import (
    ARRAY,
    BIGINT,
    BOOLEAN,
    DOUBLE_PRECISION,
    INTEGER,
    JSONB,
    NUMERIC,
    TEXT,
    TIMESTAMP,
)
from sqlalchemy.types import TypeEngine
from sqlmodel import Field, SQLModel, col

from tasks.store import tables

TIMESTAMPTZ = TIMESTAMP(timezone=True)
SqlType = TypeEngine[Any] | type[TypeEngine[Any]]


def column(sa_type: SqlType, default: str | None = None, *, primary_key: bool = False) -> Any:
    """A column of `sa_type`; `default` is its server default as PostgreSQL prints it (`pg_get_expr`),
    so the model and the migrated database compare as text. Nullability follows the annotation."""
    kwargs = {} if default is None else {"server_default": text(default)}
    return Field(sa_type=sa_type, primary_key=primary_key, sa_column_kwargs=kwargs)


def optional(sa_type: SqlType, *, name: str | None = None) -> Any:
    """A NULL-able column without a server default (the field defaults to None); `name` when the
    column's name is not the field's."""
    return Field(default=None, sa_type=sa_type, sa_column_kwargs={} if name is None else {"name": name})


def now() -> Any:
    """`TIMESTAMPTZ NOT NULL DEFAULT now()`."""
    return column(TIMESTAMPTZ, "now()")


def counter(sa_type: SqlType = BIGINT) -> Any:
    """A counter: `BIGINT NOT NULL DEFAULT 0` (or INTEGER)."""
    return column(sa_type, "0")


def serial() -> Any:
    """`BIGSERIAL PRIMARY KEY`."""
    return Field(primary_key=True, sa_type=BIGINT)


# -- Observations ---------------------------------------------------------------------------------


class ObservationColumns(SQLModel):
    """The observation record's columns in COPY order (`STAGED_COLUMNS`): the loader's tenant, the
    record's fields, then the ingest columns. Shared by the staging table and the observation table."""

    tenant_id: str = column(TEXT)
    series_id: str = column(TEXT)
    period: datetime = column(TIMESTAMPTZ)
    period_end: datetime = column(TIMESTAMPTZ)
    raw_period: str = column(TEXT)
    frequency: str = column(TEXT)
    value: float | None = optional(DOUBLE_PRECISION)
    raw_value: str | None = optional(TEXT)
    value_flag: str | None = optional(TEXT)
    unit: str | None = optional(TEXT)
    canonical_unit: str | None = optional(TEXT)
    canonical_currency: str | None = optional(TEXT)
    conversion_factor: float | None = optional(DOUBLE_PRECISION)
    canonical_value: float | None = optional(DOUBLE_PRECISION)
    area: str | None = optional(TEXT)
    sector: str | None = optional(TEXT)
    seasonal_adjustment: str | None = optional(TEXT)
    description: str | None = optional(TEXT)
    source: str = column(TEXT)
    dataset: str | None = optional(TEXT)
    # `metadata` is SQLModel's own attribute (the MetaData): the field is `metadata_`, the column `metadata`.
    metadata_: dict[str, Any] | None = optional(JSONB, name="metadata")
    ingest_ts: int = column(BIGINT)
    ingest_job_id: str | None = optional(TEXT)
    ingest_run_id: str | None = optional(TEXT)
    ingest_batch_id: str = column(TEXT)


class SeriesObservation(ObservationColumns, table=True):
    """eia_series_timeseries: a hypertable (TimescaleDB) or range-partitioned by month/year (PostgreSQL)."""

    __tablename__ = tables.TIMESERIES

    tenant_id: str = column(TEXT, "'aurum-prod'::text", primary_key=True)
    series_id: str = column(TEXT, primary_key=True)
    period: datetime = column(TIMESTAMPTZ, primary_key=True)
    revision: int = column(INTEGER, "0")
    created_at: datetime = now()
    updated_at: datetime = now()


Index("idx_eia_series_period", col(SeriesObservation.series_id), col(SeriesObservation.period).desc())
Index("idx_eia_frequency", col(SeriesObservation.frequency), col(SeriesObservation.period).desc())
Index("idx_eia_sector", col(SeriesObservation.sector), col(SeriesObservation.period).desc())
Index("idx_eia_area", col(SeriesObservation.area), col(SeriesObservation.period).desc())
Index("idx_eia_ingest_ts", col(SeriesObservation.ingest_ts).desc())
# TimescaleDB's own: create_hypertable() adds an index on the time column (create_default_indexes);
# plain PostgreSQL has no such index. `info["flavor"]` says which flavour holds an object.
Index("eia_series_timeseries_period_idx", col(SeriesObservation.period).desc(), info={"flavor": "timescale"})


class StagedObservation(ObservationColumns, table=True):
    """eia_series_staging: one batch at a time (the COPY target), UNLOGGED. The table has no primary
    key; the ORM's identity is the batch and the row's key."""

    __tablename__ = tables.STAGING
    __table_args__ = {"prefixes": ["UNLOGGED"]}
    __mapper_args__ = {"primary_key": ["ingest_batch_id", "tenant_id", "series_id", "period"]}


Index("eia_series_staging_batch_idx", col(StagedObservation.ingest_batch_id))


class QuarantinedRow(SQLModel, table=True):
    """eia_series_quarantine: rows that did not make it into the table, with the reason."""

    __tablename__ = tables.QUARANTINE

    id: int = serial()
    tenant_id: str = column(TEXT)
    series_id: str | None = optional(TEXT)
    raw_period: str | None = optional(TEXT)
    raw_value: str | None = optional(TEXT)
    reason: str = column(TEXT)
    detail: str | None = optional(TEXT)
    source: str = column(TEXT)
    dataset: str | None = optional(TEXT)
    payload: dict[str, Any] | None = optional(JSONB)
    ingest_run_id: str | None = optional(TEXT)
    ingest_batch_id: str = column(TEXT)
    quarantined_at: datetime = now()
    natural_key: str | None = optional(TEXT)  # 0007; NULL for later copies filed before it


Index("eia_series_quarantine_reason_idx", col(QuarantinedRow.reason), col(QuarantinedRow.quarantined_at).desc())
Index("eia_series_quarantine_series_idx", col(QuarantinedRow.series_id))
Index("eia_series_quarantine_batch_idx", col(QuarantinedRow.ingest_batch_id))
Index("eia_series_quarantine_natural_key", col(QuarantinedRow.tenant_id), col(QuarantinedRow.natural_key), unique=True)


class Revision(SQLModel, table=True):
    """eia_series_revisions: the value a row had before each change EIA made."""

    __tablename__ = tables.REVISIONS

    id: int = serial()
    tenant_id: str = column(TEXT)
    series_id: str = column(TEXT)
    period: datetime = column(TIMESTAMPTZ)
    raw_period: str = column(TEXT)
    old_revision: int = column(INTEGER)
    old_value: float | None = optional(DOUBLE_PRECISION)
    old_raw_value: str | None = optional(TEXT)
    old_value_flag: str | None = optional(TEXT)
    new_value: float | None = optional(DOUBLE_PRECISION)
    new_raw_value: str | None = optional(TEXT)
    new_value_flag: str | None = optional(TEXT)
    ingest_run_id: str | None = optional(TEXT)
    ingest_batch_id: str = column(TEXT)
    revised_at: datetime = now()


Index("eia_series_revisions_series_idx", col(Revision.tenant_id), col(Revision.series_id), col(Revision.period))


class SeriesMetadata(SQLModel, table=True):
    """eia_series_metadata: series metadata shared by the API and bulk paths."""

    __tablename__ = tables.METADATA

    tenant_id: str = column(TEXT, primary_key=True)
    series_id: str = column(TEXT, primary_key=True)
    name: str | None = optional(TEXT)
    units: str | None = optional(TEXT)
    frequency: str | None = optional(TEXT)
    description: str | None = optional(TEXT)
    source: str | None = optional(TEXT)
    copyright: str | None = optional(TEXT)
    geography: str | None = optional(TEXT)
    iso3166: str | None = optional(TEXT)
    latitude: float | None = optional(DOUBLE_PRECISION)
    longitude: float | None = optional(DOUBLE_PRECISION)
    last_updated: str | None = optional(TEXT)
    dataset: str | None = optional(TEXT)
    route: str | None = optional(TEXT)
    facets: dict[str, Any] | None = optional(JSONB)
    updated_at: datetime = now()
    extra: dict[str, Any] | None = optional(JSONB)  # 0003: bulk keys the shared columns do not name


class Category(SQLModel, table=True):
    """eia_categories: the bulk files' category tree."""

    __tablename__ = tables.CATEGORIES

    tenant_id: str = column(TEXT, primary_key=True)
    dataset: str = column(TEXT, primary_key=True)
    category_id: int = column(BIGINT, primary_key=True)
    parent_category_id: int | None = optional(BIGINT)
    name: str = column(TEXT)
    notes: str | None = optional(TEXT)
    childseries: list[str] = column(ARRAY(TEXT), "'{}'::text[]")
    updated_at: datetime = now()


# -- Runs, batches, quality ------------------------------------------------------------------------


class RunLog(SQLModel, table=True):
    """eia_run_log: one row per flow run (status running | completed | failed)."""

    __tablename__ = tables.RUN_LOG

    run_id: str = column(TEXT, primary_key=True)
    flow_name: str = column(TEXT)
    tenant_id: str = column(TEXT)
    status: str = column(TEXT)
    started_at: datetime = now()
    ended_at: datetime | None = optional(TIMESTAMPTZ)
    series: int = counter(INTEGER)
    received: int = counter()
    inserted: int = counter()
    updated: int = counter()
    unchanged: int = counter()
    quarantined: int = counter()
    skipped: int = counter()
    requests: int = counter()
    message: str | None = optional(TEXT)
    details: dict[str, Any] | None = optional(JSONB)
    host: str | None = optional(TEXT)  # where the run ran (0009): the pod or machine
    pid: int | None = optional(INTEGER)  # and its process


Index("eia_run_log_flow_idx", col(RunLog.flow_name), col(RunLog.started_at).desc())


class BatchLog(SQLModel, table=True):
    """eia_batch_log: one row per gated batch."""

    __tablename__ = tables.BATCH_LOG

    batch_id: str = column(TEXT, primary_key=True)
    run_id: str | None = optional(TEXT)
    tenant_id: str = column(TEXT)
    source: str = column(TEXT)
    dataset: str | None = optional(TEXT)
    received: int = column(BIGINT)
    inserted: int = counter()
    updated: int = counter()
    unchanged: int = counter()
    quarantined: int = counter()
    skipped: int = counter()
    gate_passed: bool = column(BOOLEAN)
    failed_checks: list[str] = column(ARRAY(TEXT), "'{}'::text[]")
    quality_score: float | None = optional(DOUBLE_PRECISION)
    created_at: datetime = now()
    quarantined_by_reason: dict[str, int] = column(JSONB, "'{}'::jsonb")  # 0007
    recheck_passed: bool | None = optional(BOOLEAN)  # 0007
    blocked_reason: str | None = optional(TEXT)  # 0007


Index("eia_batch_log_run_idx", col(BatchLog.run_id))


class QualityResult(SQLModel, table=True):
    """eia_quality_results: every check's outcome per gated batch."""

    __tablename__ = tables.QUALITY_RESULTS

    id: int = serial()
    batch_id: str = column(TEXT)
    run_id: str | None = optional(TEXT)
    tenant_id: str = column(TEXT)
    check_name: str = column(TEXT)
    severity: str = column(TEXT)  # fail | warn
    outcome: str = column(TEXT)  # pass | fail | warn | error
    measured_value: float | None = optional(DOUBLE_PRECISION)
    threshold: float | None = optional(DOUBLE_PRECISION)
    checked_at: datetime = now()


Index("eia_quality_results_batch_idx", col(QualityResult.batch_id))
Index("eia_quality_results_time_idx", col(QualityResult.checked_at).desc())


# -- Operations: breaker, audit, outbox ------------------------------------------------------------


class BreakerState(SQLModel, table=True):
    """eia_breaker_state: the circuit breaker every process shares (pybreaker storage)."""

    __tablename__ = tables.BREAKER

    name: str = column(TEXT, primary_key=True)
    state: str = column(TEXT, "'closed'::text")  # closed | open | half-open
    fail_counter: int = counter(INTEGER)
    success_counter: int = counter(INTEGER)
    opened_at: datetime | None = optional(TIMESTAMPTZ)
    updated_at: datetime = now()


class AuditEntry(SQLModel, table=True):
    """eia_audit_log: who made which operational change, and when (append-only for the writer)."""

    __tablename__ = tables.AUDIT_LOG

    id: int = serial()
    at: datetime = now()
    actor: str = column(TEXT)
    action: str = column(TEXT)
    details: dict[str, Any] | None = optional(JSONB)


class OutboxMessage(SQLModel, table=True):
    """eia_outbox: Kafka messages written in the transaction of the rows they describe."""

    __tablename__ = tables.OUTBOX

    id: int = serial()
    topic: str = column(TEXT)
    message_key: str = column(TEXT)
    payload: dict[str, Any] = column(JSONB)
    version: int = counter(INTEGER)
    kind: str = column(TEXT)  # observation | quarantine
    created_at: datetime = now()
    sent_at: datetime | None = optional(TIMESTAMPTZ)


Index("eia_outbox_pending_idx", col(OutboxMessage.id), postgresql_where=text("sent_at IS NULL"))


# -- Bulk archives ---------------------------------------------------------------------------------


class BulkVersion(SQLModel, table=True):
    """eia_bulk_versions: one row per bulk dataset version fully loaded."""

    __tablename__ = tables.BULK_VERSIONS

    tenant_id: str = column(TEXT, primary_key=True)
    dataset: str = column(TEXT, primary_key=True)
    last_updated: str = column(TEXT, primary_key=True)
    etag: str | None = optional(TEXT)
    last_modified: str | None = optional(TEXT)
    archive_sha256: str | None = optional(TEXT)
    archive_bytes: int | None = optional(BIGINT)
    member_bytes: int | None = optional(BIGINT)
    lines: int = counter()
    batches: int = counter(INTEGER)
    received: int = counter()
    inserted: int = counter()
    updated: int = counter()
    unchanged: int = counter()
    quarantined: int = counter()
    skipped: int = counter()
    run_id: str | None = optional(TEXT)
    started_at: datetime | None = optional(TIMESTAMPTZ)
    loaded_at: datetime = now()


Index(
    "eia_bulk_versions_latest_idx",
    col(BulkVersion.tenant_id),
    col(BulkVersion.dataset),
    col(BulkVersion.loaded_at).desc(),
)


class BulkCheckpoint(SQLModel, table=True):
    """eia_bulk_checkpoints: where an unfinished bulk load stands (at most one per dataset)."""

    __tablename__ = tables.BULK_CHECKPOINTS

    tenant_id: str = column(TEXT, primary_key=True)
    dataset: str = column(TEXT, primary_key=True)
    last_updated: str = column(TEXT)
    archive_sha256: str = column(TEXT)
    etag: str | None = optional(TEXT)
    last_modified: str | None = optional(TEXT)
    line_number: int = counter()
    byte_offset: int = counter()
    items_done: int = counter()
    batches: int = counter(INTEGER)
    received: int = counter()
    inserted: int = counter()
    updated: int = counter()
    unchanged: int = counter()
    quarantined: int = counter()
    skipped: int = counter()
    run_id: str | None = optional(TEXT)
    started_at: datetime = now()
    updated_at: datetime = now()


# -- Usage ledger, rate and cost -------------------------------------------------------------------


class UsageHour(SQLModel, table=True):
    """eia_usage_ledger: every EIA request per tenant and UTC hour (counts, errors, latency histogram)."""

    __tablename__ = tables.USAGE_LEDGER

    tenant_id: str = column(TEXT, primary_key=True)
    hour_bucket: datetime = column(TIMESTAMPTZ, primary_key=True)
    requests: int = counter()
    hour_quota_offset: int = counter()
    day_quota_offset: int = counter()
    requests_2xx: int = counter()
    requests_3xx: int = counter()
    requests_4xx: int = counter()
    requests_5xx: int = counter()
    requests_no_status: int = counter()
    errors_server_error: int = counter()
    errors_timeout: int = counter()
    errors_malformed: int = counter()
    errors_rate_limited: int = counter()
    errors_auth: int = counter()
    errors_not_found: int = counter()
    errors_client_error: int = counter()
    errors_other: int = counter()
    retries: int = counter()
    bytes: int = counter()
    latency_sum_s: float = column(DOUBLE_PRECISION, "0")
    latency_count: int = counter()
    latency_le_0_1: int = counter()
    latency_le_0_25: int = counter()
    latency_le_0_5: int = counter()
    latency_le_1: int = counter()
    latency_le_2_5: int = counter()
    latency_le_5: int = counter()
    latency_le_10: int = counter()
    latency_le_20: int = counter()
    latency_le_30: int = counter()
    latency_le_60: int = counter()
    updated_at: datetime = now()


class RateState(SQLModel, table=True):
    """eia_rate_state: the request rate each running client allows itself (one row per worker)."""

    __tablename__ = tables.RATE_STATE

    tenant_id: str = column(TEXT, primary_key=True)
    worker: str = column(TEXT, primary_key=True)
    rate_per_s: float = column(DOUBLE_PRECISION)
    base_rate_per_s: float = column(DOUBLE_PRECISION)
    ceiling_per_s: float | None = optional(DOUBLE_PRECISION)
    reason: str = column(TEXT)  # base | quota_spread | throttled
    updated_at: datetime = now()


class ThrottleState(SQLModel, table=True):
    """eia_throttle_state: the global back-off factor of the request rate, shared by every worker (0009)."""

    __tablename__ = tables.THROTTLE_STATE

    tenant_id: str = column(TEXT, primary_key=True)
    factor: float = column(DOUBLE_PRECISION, "1")
    throttled_at: datetime | None = optional(TIMESTAMPTZ)
    throttle_events: int = counter()
    updated_at: datetime = now()


class CostSnapshot(SQLModel, table=True):
    """eia_cost_snapshots: what each cost-monitoring run computed (money as exact NUMERIC)."""

    __tablename__ = tables.COST_SNAPSHOTS

    id: int = serial()
    tenant_id: str = column(TEXT)
    taken_at: datetime = column(TIMESTAMPTZ)
    run_id: str | None = optional(TEXT)
    hour_used: int = column(BIGINT)
    hour_limit: int = column(BIGINT)
    day_used: int = column(BIGINT)
    day_limit: int = column(BIGINT)
    month_requests: int = column(BIGINT)
    spend_usd: Decimal = column(NUMERIC(16, 2))
    projected_usd: Decimal = column(NUMERIC(16, 2))
    budget_usd: Decimal = column(NUMERIC(16, 2))
    percent_of_budget: Decimal = column(NUMERIC(12, 2))
    budget_state: str = column(TEXT)  # ok | warning | critical, as are the two below
    quota_state: str = column(TEXT)
    state: str = column(TEXT)
    spike_ratio_percent: Decimal | None = optional(NUMERIC(12, 2))
    spike: bool = column(BOOLEAN)
    rate_per_s: float | None = optional(DOUBLE_PRECISION)
    details: dict[str, Any] = column(JSONB)


Index("eia_cost_snapshots_tenant_idx", col(CostSnapshot.tenant_id), col(CostSnapshot.taken_at).desc())


# -- Monitoring ------------------------------------------------------------------------------------


class SeriesStaleness(SQLModel, table=True):
    """eia_series_staleness: the latest staleness verdict per series (rewritten by each monitor run)."""

    __tablename__ = tables.SERIES_STALENESS

    tenant_id: str = column(TEXT, primary_key=True)
    series_id: str = column(TEXT, primary_key=True)
    entry_id: str | None = optional(TEXT)
    frequency: str = column(TEXT)
    newest_period: datetime | None = optional(TIMESTAMPTZ)
    next_period: datetime | None = optional(TIMESTAMPTZ)
    due_at: datetime | None = optional(TIMESTAMPTZ)
    lateness_seconds: float = column(DOUBLE_PRECISION, "0")
    stale: bool = column(BOOLEAN)
    checked_at: datetime = column(TIMESTAMPTZ)


Index("eia_series_staleness_stale_idx", col(SeriesStaleness.tenant_id), postgresql_where=text("stale"))


class MonitorCheck(SQLModel, table=True):
    """eia_monitor_checks: each monitor check's current state (ok | breached) and since when."""

    __tablename__ = tables.MONITOR_CHECKS

    tenant_id: str = column(TEXT, primary_key=True)
    monitor: str = column(TEXT, primary_key=True)
    check_name: str = column(TEXT, primary_key=True)
    state: str = column(TEXT)
    severity: str = column(TEXT)  # info | warning | critical
    value: float | None = optional(DOUBLE_PRECISION)
    threshold: float | None = optional(DOUBLE_PRECISION)
    message: str = column(TEXT, "''::text")
    details: dict[str, Any] | None = optional(JSONB)
    changed_at: datetime = column(TIMESTAMPTZ)
    checked_at: datetime = column(TIMESTAMPTZ)
