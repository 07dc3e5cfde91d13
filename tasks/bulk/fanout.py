"""Bulk fan-out: one child flow run per dataset on the work pool, and what the parent reports of them.

Why it exists: in a deployment, `ingest_eia_bulk` with several datasets starts one child flow run per
dataset (the `ingest_eia_bulk/dataset` deployment, see README "Scale out") so each dataset loads in
its own pod; the global concurrency limit `eia_bulk_datasets` bounds how many load at once. This
module holds the plain rules: the names and tags, the idempotency key, which datasets a parent retry
still has to run, and the parent's artifact. The Prefect calls are in `flows/_fanout.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from tasks.store.runlog import COUNT_FIELDS, Counts

# The deployment a parent starts per dataset (prefect.yaml): the same flow, without the
# one-at-a-time limit of `ingest_eia_bulk/prod`, behind which children would wait for their parent.
CHILD_DEPLOYMENT: Final = "ingest_eia_bulk/dataset"
# Prefect global concurrency limit: datasets loading at once, pool-wide (`eia init` creates it).
DATASET_LIMIT: Final = "eia_bulk_datasets"
DATASET_SLOTS: Final = 3
# Each slot is a lease the holder renews; a killed pod's slot comes back after this long.
DATASET_LEASE_S: Final = 120.0
PARENT_TAG: Final = "eia-bulk-parent:"
DATASET_TAG: Final = "eia-bulk-dataset:"
ARTIFACT_KEY: Final = "eia-bulk-datasets"


def child_tags(parent_id: str, code: str) -> list[str]:
    """Tags of a child run: how a parent (and its retries) finds its children, and which dataset each loads."""
    return [f"{PARENT_TAG}{parent_id}", f"{DATASET_TAG}{code}"]


def dataset_of(tags: Iterable[str]) -> str | None:
    return next((t.removeprefix(DATASET_TAG) for t in tags if t.startswith(DATASET_TAG)), None)


def idempotency_key(parent_id: str, code: str, attempt: int) -> str:
    """One child per dataset per parent attempt: a re-sent request does not start a second one."""
    return f"{parent_id}:{code}:{attempt}"


@dataclass(frozen=True, slots=True)
class ChildRun:
    """A child flow run as the parent sees it in Prefect."""

    dataset: str
    flow_run_id: str
    state: str  # Prefect's state name: Completed, Failed, Crashed, ...
    completed: bool
    created: float  # for "the latest child of this dataset" (epoch seconds)


def still_to_run(codes: Sequence[str], previous: Iterable[ChildRun]) -> tuple[list[str], dict[str, ChildRun]]:
    """The datasets a parent (retry) must start a child for, and the finished children it keeps.

    A dataset whose latest child Completed is done; every other one gets a new child, which resumes
    from the dataset's checkpoint (no committed batch is loaded twice).
    """
    latest: dict[str, ChildRun] = {}
    for child in previous:
        if child.dataset in codes and (child.dataset not in latest or child.created > latest[child.dataset].created):
            latest[child.dataset] = child
    done = {code: child for code, child in latest.items() if child.completed}
    return [c for c in codes if c not in done], done


@dataclass(slots=True)
class ChildOutcome:
    """One dataset's line of the parent's artifact: the child's final state and its run-log row."""

    dataset: str
    flow_run_id: str
    state: str
    url: str | None
    status: str = "unknown"  # the dataset's status in the child's run log (loaded, unchanged, failed, ...)
    counts: Counts = field(default_factory=Counts)
    message: str | None = None
    host: str | None = None
    pid: int | None = None
    reused: bool = False  # finished by an earlier attempt of the parent: not run again

    @property
    def ok(self) -> bool:
        return self.state == "Completed"


def apply_run_log(outcome: ChildOutcome, row: Mapping[str, Any] | None) -> None:
    """Fills the outcome from the child's eia_run_log row (None: the child never reached its start)."""
    if row is None:
        outcome.message = outcome.message or f"the child run ended {outcome.state} before it started loading"
        return
    details = row.get("details") or {}
    outcome.status = str((details.get("datasets") or {}).get(outcome.dataset, row.get("status") or "unknown"))
    outcome.counts = Counts.of(
        row[name] for name in ("received", "inserted", "updated", "unchanged", "quarantined", "skipped")
    )
    outcome.message = row.get("message") or outcome.message
    outcome.host, outcome.pid = row.get("host"), row.get("pid")


def failure_message(outcomes: Sequence[ChildOutcome]) -> str | None:
    """Names every dataset whose child did not complete, with why; None when all did."""
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return None
    return "; ".join(f"{o.dataset}: child run {o.state}" + (f" ({o.message})" if o.message else "") for o in failed)


def artifact_markdown(outcomes: Sequence[ChildOutcome], *, parent: str) -> str:
    """The parent's artifact: one row per dataset with its report and a link to its child run."""
    lines = [
        f"# Bulk datasets of {parent}",
        "",
        "| dataset | child run | state | status | received | inserted | updated | unchanged | quarantined "
        "| skipped | where | message |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for o in outcomes:
        c = o.counts
        link = f"[{o.flow_run_id[:8]}]({o.url})" if o.url else o.flow_run_id
        where = f"{o.host}:{o.pid}" if o.host else ""
        note = (o.message or "").replace("|", "/").replace("\n", " ")
        if o.reused:
            note = f"finished by an earlier attempt; {note}".rstrip("; ")
        lines.append(
            f"| {o.dataset} | {link} | {o.state} | {o.status} | {c.received:,} | {c.inserted:,} | {c.updated:,} "
            f"| {c.unchanged:,} | {c.quarantined:,} | {c.skipped:,} | {where} | {note} |"
        )
    return "\n".join(lines) + "\n"


def artifact_rows(outcomes: Sequence[ChildOutcome]) -> list[dict[str, Any]]:
    return [
        {
            "dataset": o.dataset,
            "child_run": o.flow_run_id,
            "url": o.url,
            "state": o.state,
            "status": o.status,
            **{name: getattr(o.counts, name) for name in COUNT_FIELDS},
            "host": o.host,
            "pid": o.pid,
            "reused": o.reused,
            "message": o.message,
        }
        for o in outcomes
    ]
