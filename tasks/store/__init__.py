"""The PostgreSQL/TimescaleDB adapter: connections, migrations, and every statement on the tables.

What it does: `connect`/`transaction` open connections to the configured DSN or an embedded PostgreSQL
started on demand, with TLS checks and one-line errors (`database`); `apply_migrations` and `pending`
keep the schema current per flavour (`migrations`, SQL in `sql/`); a batch is COPYed into staging
(`staging`), merged with revisions and outbox rows (`merge`), or filed in quarantine idempotently
(`quarantine`); run and batch logs (`runlog`), the audit log (`audit`), the usage ledger's columns
(`usage`), watermarks, the monthly aggregate and an inventory of the tables. Table names are
`tables`, one constant each. What each table is (columns, types, keys, indexes) is `models`, one
SQLModel class per table, which the tests compare with the migrated database of each flavour; the
read paths query the models with `select()` in the sessions of `sessions` (not imported here: the
ORM is loaded only by the modules that read through it), while COPY, the merge and the other
statements of the hot path stay SQL.

What it never does: judge quality (the gate does), decide what to load (the use cases do), or talk
to EIA or Kafka.
"""

from tasks.store.aggregates import refresh_monthly_aggregates
from tasks.store.audit import write_audit
from tasks.store.database import (
    DatabaseConfigError,
    DatabaseUnavailable,
    connect,
    data_dir,
    in_production,
    resolve_dsn,
    transaction,
)
from tasks.store.merge import ensure_partitions, merge_batch
from tasks.store.migrations import MigrationError, apply_migrations, pending
from tasks.store.quarantine import quarantine_rejections, quarantine_staged
from tasks.store.runlog import Counts, RunSummary, finish_run, record_batch, start_run
from tasks.store.staging import BatchContext, drop_abandoned_staging, stage_observations

__all__ = [
    "BatchContext",
    "Counts",
    "DatabaseConfigError",
    "DatabaseUnavailable",
    "MigrationError",
    "RunSummary",
    "apply_migrations",
    "connect",
    "data_dir",
    "drop_abandoned_staging",
    "ensure_partitions",
    "finish_run",
    "in_production",
    "merge_batch",
    "pending",
    "quarantine_rejections",
    "quarantine_staged",
    "record_batch",
    "refresh_monthly_aggregates",
    "resolve_dsn",
    "stage_observations",
    "start_run",
    "transaction",
    "write_audit",
]
