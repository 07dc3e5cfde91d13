"""The per-batch quality artifact: failed and warned checks, their counts and example rows."""

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest
from prefect import flow, task
from prefect.artifacts import Artifact
from prefect.cache_policies import NO_CACHE

from tasks.core.redact import register_secret
from tasks.load.artifact import TABLE_COLUMNS, artifact_key, quality_artifact
from tasks.load.tasks import create_quality_artifact, quality_artifact_task
from tasks.quality.gate import EXAMPLE_ROWS, GateResult, run_gate
from tasks.store.staging import BatchContext
from tests.quality.batches import US48_DEMAND, clean_batch, replace, rows_of, stage
from tests.quality.test_gate import _unknown_unit

PLANTED_KEY = "SECRETKEY-quality-artifact-0123456789"


def flagged_batch(dsn: str) -> tuple[BatchContext, GateResult]:
    """A batch with 4 unknown-unit rows (fail) and one unknown value token (warn), gated for real."""
    batch = clean_batch()
    hourly = rows_of(batch, US48_DEMAND)
    for index in hourly:
        batch = _unknown_unit(batch, index)
    retail = next(i for i, o in enumerate(batch) if o.value_flag is None and o.unit == "cents per kilowatt-hour")
    batch = replace(
        batch, retail, value=None, raw_value=f"n/a api_key={PLANTED_KEY}", value_flag="n/a", canonical_value=None
    )
    ctx = BatchContext.new("t-artifact", "run-artifact", "quality-test")
    stage(dsn, ctx, batch)
    return ctx, run_gate(dsn, ctx)


def test_the_gate_reads_example_rows_of_failed_and_warned_checks(db: str) -> None:
    register_secret(PLANTED_KEY)
    _, result = flagged_batch(db)

    assert result.failed == ["unknown_unit"] and result.warned == ["value_flag_known"]
    assert set(result.examples) == {"unknown_unit", "value_flag_known"}
    unknown = result.examples["unknown_unit"]
    assert len(unknown) == EXAMPLE_ROWS == 3  # of 4 offending rows
    assert {e["series_id"] for e in unknown} == {US48_DEMAND}
    assert {e["unit"] for e in unknown} == {"furlongs per fortnight"} and unknown[0]["canonical_unit"] is None
    assert unknown[0]["period"] < unknown[1]["period"]  # ISO text, in period order
    (token,) = result.examples["value_flag_known"]
    assert PLANTED_KEY not in str(token) and token["value_flag"] == "n/a"


def test_quality_artifact_lists_failed_and_warned_checks_with_counts_and_examples(db: str) -> None:
    register_secret(PLANTED_KEY)
    ctx, result = flagged_batch(db)

    markdown, rows = quality_artifact(result, result.examples, batch_id=ctx.batch_id)

    assert f"## Quality gate for batch `{ctx.batch_id}`: blocked" in markdown
    assert f"{len(result.checks) - 2} of {len(result.checks)} checks passed; 1 failed, 1 warned." in markdown
    assert "| unknown_unit | fail | fail | 4 |" in markdown
    assert "| value_flag_known | warn | warn | 1 |" in markdown
    # Registry order: completeness before validity.
    assert [(r["check"], r["outcome"], r["offending_rows"], r["example"]) for r in rows] == [
        ("value_flag_known", "warn", 1.0, 1),
        ("unknown_unit", "fail", 4.0, 1),
        ("unknown_unit", "fail", 4.0, 2),
        ("unknown_unit", "fail", 4.0, 3),
    ]
    assert all(tuple(r) == TABLE_COLUMNS for r in rows)
    assert PLANTED_KEY not in markdown and PLANTED_KEY not in str(rows)


def test_a_check_without_row_examples_gets_one_row() -> None:
    from tasks.quality.gate import CheckOutcome

    result = GateResult(
        passed=True,
        failed=[],
        warned=["row_count_expected"],
        checks=[CheckOutcome("row_count_expected", "warn", "warn", 7.0, None)],
        score=0.0,
    )
    markdown, rows = quality_artifact(result, {})
    assert rows == [
        {
            "batch": None,
            "check": "row_count_expected",
            "severity": "warn",
            "outcome": "warn",
            "offending_rows": 7.0,
            "threshold": None,
            "example": None,
            **dict.fromkeys(TABLE_COLUMNS[7:]),
        }
    ]
    assert "| row_count_expected | warn | warn | 7 |" in markdown


def test_each_flow_has_one_stable_quality_artifact_key_made_of_lowercase_letters_digits_and_dashes() -> None:
    assert artifact_key("ingest_eia_series_timescale") == "eia-series-batch-quality"
    assert artifact_key("ingest_eia_bulk") == "eia-bulk-batch-quality"
    assert artifact_key("eia_quarantine_replay") == "eia-replay-batch-quality"
    assert artifact_key("Some_Other:flow") == "eia-some-other-flow-batch-quality"


def test_a_clean_batch_gets_no_artifact(db: str) -> None:
    ctx = BatchContext.new("t-artifact", "run-artifact", "quality-test")
    stage(db, ctx, clean_batch())
    result = run_gate(db, ctx)
    assert result.passed and result.examples == {}
    assert create_quality_artifact(ctx.batch_id, result, "ingest_eia_bulk") is None  # no Prefect call needed


@pytest.mark.slow
async def test_the_task_publishes_the_batch_table_artifact(prefect_server: None, db: str) -> None:
    ctx, result = flagged_batch(db)

    # Called as the series flow calls load_batch_task: from a task run in a worker thread.
    @task(cache_policy=NO_CACHE)
    def load_like_the_flow(batch_id: str, gate_result: GateResult) -> None:
        quality_artifact_task(batch_id, gate_result, "gate_report")

    @flow(name="gate_report")
    async def gate_report() -> None:
        await asyncio.to_thread(load_like_the_flow, ctx.batch_id, result)

    await gate_report()
    artifact = await Artifact.aget(artifact_key("gate_report"))
    assert artifact is not None and artifact.type == "table"
    assert artifact.description is not None and "unknown_unit" in artifact.description
    assert ctx.batch_id in artifact.description and ctx.batch_id in str(artifact.data)
    table = str(artifact.data)
    assert "value_flag_known" in table and US48_DEMAND in table and "furlongs per fortnight" in table


def test_soda_logs_only_warnings() -> None:
    assert logging.getLogger("soda").getEffectiveLevel() == logging.WARNING


def test_the_gate_reconnects_when_its_kept_connection_was_closed(db: str) -> None:
    ctx = BatchContext.new("t-artifact", "run-artifact", "quality-test")
    stage(db, ctx, clean_batch())
    assert run_gate(db, ctx).passed
    with psycopg.connect(db, autocommit=True) as conn:  # e.g. a restart, or an idle-session timeout
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'eia-pipeline-quality-gate'"
        ).fetchone()
    assert killed == (1,)
    result = run_gate(db, ctx)
    assert result.passed and result.errors == []
