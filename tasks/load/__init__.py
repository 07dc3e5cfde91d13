"""The load use case: one batch through the gate into the table, and the quarantine replay.

What it does: `load_batch` stages a batch (COPY), asks the quality gate, sets aside the rows row rules
refuse, asks again, then quarantines and merges in one transaction, or blocks the batch as a whole
(`batch`: `BatchOutcome`, `LoadTargets`, `settle_batch`, `quarantine_summary`); `replay_quarantine`
sends quarantined rows through the same path after a fix (`replay`); `batch_quality_report` builds a
batch's quality artifact (`artifact`). Its Prefect wrappers are `tasks.load.tasks`
(`report_batch_quality`, `quality_artifact_task`, `publish_outbox_task`).

What it never does: judge a row itself (the gate does, from the rule registry) or decide what to fetch.
"""

from tasks.load.artifact import batch_quality_report
from tasks.load.batch import (
    DEFAULT_MAX_QUARANTINE_SHARE,
    BatchOutcome,
    LoadTargets,
    check_share,
    load_batch,
    quarantine_summary,
    settle_batch,
)
from tasks.load.replay import ReplayError, ReplayResult, ReplayTargets, replay_quarantine

__all__ = [
    "DEFAULT_MAX_QUARANTINE_SHARE",
    "BatchOutcome",
    "LoadTargets",
    "ReplayError",
    "ReplayResult",
    "ReplayTargets",
    "batch_quality_report",
    "check_share",
    "load_batch",
    "quarantine_summary",
    "replay_quarantine",
    "settle_batch",
]
