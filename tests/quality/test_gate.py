"""The quality gate against the real database: clean batches pass, every rule catches its defect.

`DEFECTS` plants exactly one defect per rule of the registry; the parametrised test fails for a rule
without one, so a new rule cannot ship untested.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
import pytest

from tasks.load.batch import BatchOutcome, LoadTargets, settle_batch
from tasks.normalize.observation import SOURCE_API, Observation
from tasks.quality.contract import offending_rows_sql
from tasks.quality.gate import (
    BATCH_BLOCKED,
    GateResult,
    gate_summary_markdown,
    prepare_batch,
    record_results,
    run_gate,
)
from tasks.quality.rules import RULES, rule
from tasks.store.runlog import Counts
from tasks.store.staging import BatchContext
from tests.quality.batches import (
    GASOLINE_WEEKLY,
    HENRY_HUB,
    HKG_GENERATION,
    RETAIL_PRICE,
    US48_DEMAND,
    clean_batch,
    replace,
    rows_of,
    stage,
    store,
)
from tests.support.services import scalar

TENANT = "t-quality"


def new_ctx() -> BatchContext:
    return BatchContext.new(TENANT, "run-quality", "quality-test")


@dataclass(frozen=True)
class Planted:
    """A batch with one defect, plus what must happen around it."""

    batch: list[Observation]
    stored: list[Observation] = field(default_factory=list)  # merged into the table first
    staged_sql: str | None = None  # run on the staged batch (bind %(batch)s)
    ddl: tuple[str, str] | None = None  # (apply, revert) around the test
    expected_rows: tuple[int, int] | None = None


def _first(batch: list[Observation], series_id: str) -> int:
    return rows_of(batch, series_id)[0]


def _one_row_sql(assignment: str) -> str:
    return (
        f"UPDATE eia_series_staging SET {assignment} WHERE ctid = (SELECT ctid FROM eia_series_staging "
        f"WHERE ingest_batch_id = %(batch)s AND series_id = '{US48_DEMAND}' ORDER BY period LIMIT 1)"
    )


def _nullable(column: str) -> tuple[str, str]:
    return (
        f"ALTER TABLE eia_series_staging ALTER COLUMN {column} DROP NOT NULL",
        f"DELETE FROM eia_series_staging WHERE {column} IS NULL; "
        f"ALTER TABLE eia_series_staging ALTER COLUMN {column} SET NOT NULL",
    )


def _hourly(batch: list[Observation], **changes: object) -> list[Observation]:
    return replace(batch, _first(batch, US48_DEMAND), **changes)


def _shift_hour(b: list[Observation], delta: timedelta, end_delta: timedelta | None = None) -> list[Observation]:
    o = b[_first(b, US48_DEMAND)]
    return _hourly(b, period=o.period + delta, period_end=o.period_end + (end_delta or delta))


def _retail_row(b: list[Observation], **changes: object) -> list[Observation]:
    return replace(b, _first(b, RETAIL_PRICE), **changes)


def _whole_series(b: list[Observation], series_id: str, **changes: object) -> list[Observation]:
    return [dataclasses.replace(o, **changes) if o.series_id == series_id else o for o in b]  # type: ignore[arg-type]


def _history(b: list[Observation], series_id: str, **changes: object) -> list[Observation]:
    """Stored rows of a series, the batch's rows moved 30 periods back, with `changes`."""
    rows = [o for o in b if o.series_id == series_id]
    step = rows[1].period - rows[0].period
    return [
        dataclasses.replace(o, period=o.period - 30 * step, period_end=o.period_end - 30 * step, **changes)  # type: ignore[arg-type]
        for o in rows
    ]


def _unknown_unit(b: list[Observation], index: int) -> list[Observation]:
    return replace(
        b,
        index,
        unit="furlongs per fortnight",
        canonical_unit=None,
        canonical_currency=None,
        conversion_factor=None,
        canonical_value=None,
    )


DEFECTS: dict[str, Callable[[list[Observation]], Planted]] = {
    "schema_matches": lambda b: Planted(
        b,
        ddl=(
            "ALTER TABLE eia_series_staging ADD COLUMN planted_defect TEXT",
            "ALTER TABLE eia_series_staging DROP COLUMN planted_defect",
        ),
    ),
    "tenant_id_present": lambda b: Planted(b, staged_sql=_one_row_sql("tenant_id = ' '")),
    "series_id_present": lambda b: Planted(replace(b, _first(b, HKG_GENERATION), series_id="")),
    "period_present": lambda b: Planted(b, ddl=_nullable("period"), staged_sql=_one_row_sql("period = NULL")),
    "period_end_present": lambda b: Planted(
        b, ddl=_nullable("period_end"), staged_sql=_one_row_sql("period_end = NULL")
    ),
    "raw_period_present": lambda b: Planted(_hourly(b, raw_period="")),
    "frequency_present": lambda b: Planted(_hourly(b, frequency=" ")),
    "source_present": lambda b: Planted(_hourly(b, source="")),
    "value_present_or_flagged": lambda b: Planted(
        _hourly(b, value=None, raw_value=None, value_flag=None, canonical_value=None)
    ),
    "value_flag_known": lambda b: Planted(
        _hourly(b, value=None, raw_value="n/a", value_flag="n/a", canonical_value=None)
    ),
    "unit_present": lambda b: Planted(
        _hourly(b, unit=None, canonical_unit=None, conversion_factor=None, canonical_value=None)
    ),
    "frequency_known": lambda b: Planted(_hourly(b, frequency="minutely")),
    "source_known": lambda b: Planted(_hourly(b, source="eia-scraper")),
    "period_aligned": lambda b: Planted(_shift_hour(b, timedelta(minutes=30))),
    "period_end_after_period": lambda b: Planted(_hourly(b, period_end=b[_first(b, US48_DEMAND)].period)),
    "period_end_matches_frequency": lambda b: Planted(_shift_hour(b, timedelta(0), timedelta(hours=1))),
    "period_not_in_future": lambda b: Planted(_shift_hour(b, timedelta(days=5))),
    "series_id_length": lambda b: Planted(replace(b, _first(b, HKG_GENERATION), series_id="X" * 300)),
    "text_length": lambda b: Planted(_hourly(b, description="d" * 5000)),
    "unknown_unit": lambda b: Planted(_unknown_unit(b, _first(b, US48_DEMAND))),
    "canonical_unit_known": lambda b: Planted(_whole_series(b, HENRY_HUB, canonical_unit="USD/MMBTU")),
    "value_finite": lambda b: Planted(_hourly(b, value=float("inf"), raw_value="1e999", canonical_value=float("inf"))),
    "canonical_value_consistent": lambda b: Planted(
        _hourly(b, canonical_value=b[_first(b, US48_DEMAND)].canonical_value * 1.001)  # type: ignore[operator]
    ),
    "value_in_plausible_range": lambda b: Planted(_retail_row(b, value=-5.0, raw_value="-5", canonical_value=-0.05)),
    "unique_series_period": lambda b: Planted([*b, b[_first(b, US48_DEMAND)]]),
    "series_single_frequency": lambda b: Planted(_hourly(b, frequency="local-hourly")),
    "series_single_canonical_unit": lambda b: Planted(_hourly(b, unit="megawatts", canonical_unit="MW")),
    "series_single_unit_text": lambda b: Planted(_retail_row(b, unit="cents per kilowatthour")),
    "frequency_unchanged": lambda b: Planted(b, stored=_history(b, US48_DEMAND, frequency="local-hourly")),
    "canonical_unit_unchanged": lambda b: Planted(
        b, stored=_history(b, US48_DEMAND, unit="megawatts", canonical_unit="MW")
    ),
    "unit_text_unchanged": lambda b: Planted(b, stored=_history(b, RETAIL_PRICE, unit="cents per kilowatthour")),
    "batch_not_empty": lambda b: Planted([]),
    "row_count_expected": lambda b: Planted(b, expected_rows=(1000, 5000)),
    "series_fresh": lambda b: Planted(
        [
            dataclasses.replace(o, period=o.period - timedelta(days=70), period_end=o.period_end - timedelta(days=70))
            if o.series_id == GASOLINE_WEEKLY
            else o
            for o in b
        ]
    ),
    "value_jump": lambda b: Planted(_hourly(b, value=450120000.0, raw_value="450120000", canonical_value=450120000.0)),
}


@contextlib.contextmanager
def _ddl(dsn: str, ddl: tuple[str, str] | None) -> Iterator[None]:
    if ddl is None:
        yield
        return
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ddl[0])
    try:
        yield
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in ddl[1].split("; "):
                conn.execute(statement)


@dataclass(frozen=True)
class Outcome:
    ctx: BatchContext
    result: GateResult
    offending: int = 0  # rows the rule's own offending-rows SQL selects
    settled: BatchOutcome | None = None  # what settle_batch made of the staged batch
    quarantined: dict[str, int] = field(default_factory=dict)  # quarantine table rows per reason


TARGETS = LoadTargets(outbox_topic=None, dlq_topic="eia.dlq", source=SOURCE_API, dataset=None)


def settle(dsn: str, ctx: BatchContext, staged: int, **options: object) -> BatchOutcome:
    """Settles an already staged batch the way the loaders do (quarantine, merge or block)."""
    return settle_batch(dsn, ctx, Counts(received=staged), staged, [], TARGETS, **options)  # type: ignore[arg-type]


def _run(dsn: str, planted: Planted, rule_name: str | None = None, *, quarantine: bool = False) -> Outcome:
    """Stages and gates the batch; counts `rule_name`'s offending rows; optionally settles it."""
    ctx = new_ctx()
    with _ddl(dsn, planted.ddl):
        if planted.stored:
            store(dsn, planted.stored, TENANT)
        stage(dsn, ctx, planted.batch)
        if planted.staged_sql:
            with psycopg.connect(dsn) as conn:
                conn.execute(planted.staged_sql, {"batch": ctx.batch_id})
        result = run_gate(dsn, ctx, expected_rows=planted.expected_rows)
        outcome = Outcome(ctx, result)
        with psycopg.connect(dsn) as conn:
            if rule_name is not None and rule(rule_name).predicate is not None:
                prepare_batch(conn, ctx.batch_id)
                sql = offending_rows_sql(rule(rule_name))
                outcome = dataclasses.replace(
                    outcome, offending=len(conn.execute(sql, {"batch": ctx.batch_id}).fetchall())
                )
        if quarantine:
            settled = settle(dsn, ctx, len(planted.batch), expected_rows=planted.expected_rows)
            with psycopg.connect(dsn) as conn:
                rows = conn.execute(
                    "SELECT reason, count(*) FROM eia_series_quarantine WHERE ingest_batch_id = %s GROUP BY reason",
                    (ctx.batch_id,),
                ).fetchall()
            outcome = dataclasses.replace(outcome, settled=settled, quarantined=dict(rows))
        return outcome


def test_clean_batch_passes_every_check(db: str) -> None:
    batch = clean_batch()
    result = _run(db, Planted(batch)).result

    assert result.errors == []
    assert [(c.name, c.outcome) for c in result.checks if c.outcome != "pass"] == []
    assert result.passed and result.failed == [] and result.warned == []
    assert result.score == 1.0
    assert result.check("batch_not_empty").measured == len(batch)
    withheld = [o for o in batch if o.value_flag == "w"]
    assert len(withheld) == 1 and withheld[0].value is None
    retail = batch[rows_of(batch, RETAIL_PRICE)[0]]
    assert (retail.unit, retail.value, retail.canonical_unit) == ("cents per kilowatt-hour", 6.75, "USD/kWh")
    assert retail.canonical_value == pytest.approx(0.0675)


def test_clean_batch_with_its_own_history_passes(db: str) -> None:
    """Series already stored with the same units and frequency: the history rules stay quiet."""
    batch = clean_batch()
    stored = [o for sid in (US48_DEMAND, RETAIL_PRICE, HENRY_HUB) for o in _history(batch, sid)]
    result = _run(db, Planted(batch, stored=stored)).result
    assert (result.passed, result.failed, result.warned, result.score) == (True, [], [], 1.0)


def test_every_rule_has_a_planted_defect() -> None:
    assert sorted(DEFECTS) == sorted(r.name for r in RULES)


@pytest.mark.parametrize("name", [r.name for r in RULES])
def test_planted_defect_trips_its_rule_and_no_other_fail_rule(db: str, name: str) -> None:
    if name not in DEFECTS:
        pytest.fail(f"rule {name!r} has no planted-defect builder in tests/quality/test_gate.py DEFECTS")
    r = rule(name)
    planted = DEFECTS[name](clean_batch())
    run = _run(db, planted, name, quarantine=True)
    result = run.result

    assert result.errors == []
    other_failures = [n for n in result.failed if n != name]
    assert other_failures == [], f"{name}: other fail-level checks tripped: {other_failures}"
    outcome = result.check(name)
    if r.predicate is not None:  # the Soda count and the offending-rows SQL agree
        assert outcome.measured is not None and outcome.measured >= 1
        assert run.offending == outcome.measured
    settled = run.settled
    assert settled is not None
    staged = len(planted.batch)
    if r.severity == "warn":
        assert outcome.outcome == "warn"
        assert name in result.warned and result.passed
        # A warning holds nothing back: every row merges.
        assert settled.blocked is None and run.quarantined == {}
        assert settled.counts.inserted == staged
        return
    assert outcome.outcome == "fail"
    assert result.failed == [name] and not result.passed
    if r.scope == "row":
        # A row rule: its offending rows go to quarantine under its name and the rest of the batch
        # merges, after the contract passed again on what remained.
        offending = int(outcome.measured or 0)
        assert settled.blocked is None, settled.blocked
        assert settled.quarantined_by_reason == {name: offending}
        # Both planted copies of the duplicate are the same row (one natural key): filed once.
        assert run.quarantined == {name: 1 if name == "unique_series_period" else offending}
        assert settled.counts.inserted == staged - offending
        assert settled.recheck is not None and settled.recheck.failed == []
    elif staged == 0:
        # An empty batch has nothing to hold back: the loaders do not ask the gate, and no row is lost.
        assert settled.blocked is None and settled.gate is None and run.quarantined == {}
    else:
        # A batch rule: the batch is blocked as a whole, nothing merges, nothing is lost.
        assert settled.blocked is not None and name in settled.blocked
        assert settled.counts.inserted == 0
        assert run.quarantined == {BATCH_BLOCKED: staged}


def test_one_warning_is_recorded_exactly(db: str) -> None:
    batch = DEFECTS["value_flag_known"](clean_batch()).batch
    run = _run(db, Planted(batch))
    ctx, result = run.ctx, run.result
    with psycopg.connect(db) as conn:
        assert record_results(conn, ctx, result) == len(RULES)
        conn.commit()
        rows = conn.execute(
            """SELECT check_name, severity, outcome, measured_value, threshold, run_id, tenant_id
               FROM eia_quality_results WHERE batch_id = %s ORDER BY id""",
            (ctx.batch_id,),
        ).fetchall()

    evaluated = len(RULES)
    assert result.passed and result.failed == [] and result.warned == ["value_flag_known"]
    assert result.score == (evaluated - 1) / evaluated
    expected = []
    for r in RULES:
        if r.name == "value_flag_known":
            expected.append((r.name, "warn", "warn", 1.0, 0.0))
        elif r.measure == "row_count_at_least":
            expected.append((r.name, "fail", "pass", float(len(batch)), 1.0))
        elif r.measure == "row_count_expected":
            expected.append((r.name, "warn", "pass", float(len(batch)), None))
        else:
            expected.append((r.name, r.severity, "pass", 0.0, 0.0))
    assert [row[:5] for row in rows] == expected
    assert {row[5:] for row in rows} == {("run-quality", TENANT)}
    summary = gate_summary_markdown(result)
    assert "| value_flag_known | warn | warn | 1 | 0 |" in summary
    assert f"{evaluated - 1} of {evaluated} checks passed" in summary


def test_unknown_unit_rows_go_to_quarantine_with_a_dlq_message_and_the_rest_merges(db: str) -> None:
    batch = clean_batch()
    hourly = rows_of(batch, US48_DEMAND)[:2]
    for index in hourly:
        batch = _unknown_unit(batch, index)
    ctx = new_ctx()
    stage(db, ctx, batch)
    settled = settle(db, ctx, len(batch))

    assert settled.gate is not None and settled.gate.failed == ["unknown_unit"]
    assert settled.gate.check("unknown_unit").measured == 2
    assert settled.blocked is None and settled.quarantined_by_reason == {"unknown_unit": 2}
    assert (settled.counts.inserted, settled.counts.quarantined) == (len(batch) - 2, 2)
    with psycopg.connect(db) as conn:
        quarantined = conn.execute(
            """SELECT reason, series_id, raw_period, detail, ingest_batch_id FROM eia_series_quarantine
               ORDER BY raw_period"""
        ).fetchall()
        left = conn.execute("SELECT count(*) FROM eia_series_staging").fetchone()
        dlq = conn.execute("SELECT count(*) FROM eia_outbox WHERE topic = 'eia.dlq' AND kind = 'quarantine'").fetchone()
        log = conn.execute(
            "SELECT gate_passed, quarantined, quarantined_by_reason, recheck_passed FROM eia_batch_log "
            "WHERE batch_id = %s",
            (ctx.batch_id,),
        ).fetchone()
        stored = conn.execute("SELECT count(*) FROM eia_series_timeseries").fetchone()

    assert [(q[0], q[1], q[2], q[4]) for q in quarantined] == [
        ("unknown_unit", US48_DEMAND, batch[i].raw_period, ctx.batch_id)
        for i in sorted(hourly, key=lambda i: batch[i].raw_period)
    ]
    assert all("unknown_unit" in q[3] for q in quarantined)
    assert left == (0,) and dlq == (2,) and stored == (len(batch) - 2,)
    assert log == (True, 2, {"unknown_unit": 2}, True)


def test_the_same_rows_quarantined_again_add_no_quarantine_row_and_no_dlq_message(db: str) -> None:
    batch = _unknown_unit(clean_batch(), _first(clean_batch(), US48_DEMAND))
    for _ in range(2):
        ctx = new_ctx()
        stage(db, ctx, batch)
        settled = settle(db, ctx, len(batch))
        assert settled.quarantined_by_reason == {"unknown_unit": 1}  # counted in each batch: nothing is lost
    with psycopg.connect(db) as conn:
        quarantined = conn.execute("SELECT count(*) FROM eia_series_quarantine").fetchone()
        dlq = conn.execute("SELECT count(*) FROM eia_outbox WHERE kind = 'quarantine'").fetchone()
    assert quarantined == (1,) and dlq == (1,)


def test_most_of_a_batch_breaking_a_row_rule_blocks_it_naming_the_rule_and_the_share(db: str) -> None:
    batch = clean_batch()
    broken = range(round(len(batch) * 0.8))
    for index in broken:
        batch = _unknown_unit(batch, index)
    ctx = new_ctx()
    stage(db, ctx, batch)
    settled = settle(db, ctx, len(batch))

    offending = len(broken)
    assert settled.blocked is not None
    assert "unknown_unit" in settled.blocked and f"({offending / len(batch):.0%})" in settled.blocked
    assert "max_quarantine_share=50%" in settled.blocked
    assert settled.counts.inserted == 0
    assert settled.quarantined_by_reason == {"unknown_unit": offending, BATCH_BLOCKED: len(batch) - offending}
    assert scalar(db, "SELECT count(*) FROM eia_series_timeseries") == 0
    assert scalar(db, "SELECT gate_passed FROM eia_batch_log WHERE batch_id = %s", ctx.batch_id) is False


def test_a_higher_share_lets_the_same_batch_through_without_its_offending_rows(db: str) -> None:
    batch = clean_batch()
    for index in range(round(len(batch) * 0.8)):
        batch = _unknown_unit(batch, index)
    ctx = new_ctx()
    stage(db, ctx, batch)
    settled = settle(db, ctx, len(batch), max_quarantine_share=0.9)
    assert settled.blocked is None
    assert settled.counts.inserted == len(batch) - round(len(batch) * 0.8)


def test_passed_batch_is_not_quarantined(db: str) -> None:
    ctx = new_ctx()
    batch = clean_batch()
    stage(db, ctx, batch)
    settled = settle(db, ctx, len(batch))
    assert settled.blocked is None and settled.quarantined_by_reason == {} and settled.recheck is None
    assert settled.counts.inserted == len(batch)


def test_a_check_that_cannot_run_blocks_the_batch(db: str) -> None:
    """A rule whose SQL errors (here: the table it reads is gone) is reported, never passed."""
    rename = (
        "ALTER TABLE eia_series_timeseries RENAME TO eia_series_timeseries_hidden",
        "ALTER TABLE eia_series_timeseries_hidden RENAME TO eia_series_timeseries",
    )
    ctx = new_ctx()
    stage(db, ctx, clean_batch())
    with _ddl(db, rename):
        result = run_gate(db, ctx)
    assert not result.passed
    errored = [c.name for c in result.checks if c.outcome == "error"]
    assert "frequency_unchanged" in errored and "value_jump" in errored
    assert set(errored) <= set(result.failed)
    assert result.errors
    assert "error" in gate_summary_markdown(result)
