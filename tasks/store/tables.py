"""Table names: one constant each, so SQL in code never spells a table name twice."""

from typing import Final

TIMESERIES: Final = "eia_series_timeseries"
STAGING: Final = "eia_series_staging"
QUARANTINE: Final = "eia_series_quarantine"
REVISIONS: Final = "eia_series_revisions"
METADATA: Final = "eia_series_metadata"
CATEGORIES: Final = "eia_categories"
RUN_LOG: Final = "eia_run_log"
BATCH_LOG: Final = "eia_batch_log"
BREAKER: Final = "eia_breaker_state"
AUDIT_LOG: Final = "eia_audit_log"
OUTBOX: Final = "eia_outbox"
QUALITY_RESULTS: Final = "eia_quality_results"
MIGRATIONS: Final = "eia_schema_migrations"
MONTHLY_AGGREGATES: Final = "eia_monthly_aggregates"
