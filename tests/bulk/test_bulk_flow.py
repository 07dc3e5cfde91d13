"""The bulk flow end to end against the EIA stand-in: exact loads, skips without downloads, bad archives,
bad lines, and resuming a killed load from its checkpoint."""

from __future__ import annotations

import json
import uuid
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import State
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

import tasks.bulk.load as bulk_load
from flows.bulk import ingest_eia_bulk
from tests.bulk.conftest import Bulk
from tests.bulk.synthetic import archive_bytes, category_line, series_line, synthetic_archive_lines, tokens
from tests.support.services import reset_database

pytestmark = pytest.mark.slow

SNAPSHOT = """SELECT series_id, period, period_end, raw_period, frequency, value, raw_value, value_flag, unit,
                     canonical_value, revision FROM eia_series_timeseries ORDER BY series_id, period"""


def _bad_lines() -> list[bytes]:
    """Bad items among good lines: a garbage line, a line without series_id, a bad period token (4 items, 1 good)."""
    return [
        b"<html>503 Service Unavailable</html>",
        json.dumps({"name": "no id", "f": "M", "units": "megawatthours", "data": [["202101", 1.0]]}).encode(),
        series_line("SYN.BAD.PERIOD.M", "M", "megawatthours", [["202113", 1.0], ["202012", 2.0]]),
    ]


async def test_a_200k_archive_loads_exactly_its_valid_observations_and_an_unchanged_manifest_downloads_nothing(
    bulk: Bulk,
) -> None:
    lines = list(synthetic_archive_lines(200_000))
    bad = _bad_lines()
    bulk.serve({"SYN": archive_bytes("SYN", [*lines[:50], *bad, *lines[50:]])})

    state, result = await bulk.run("SYN")

    assert state.is_completed(), state.message
    (report,) = result.datasets
    assert report.status == "loaded" and report.downloaded
    c = result.counts
    assert (c.received, c.inserted, c.updated, c.unchanged, c.quarantined, c.skipped) == (
        200_000 + 4,
        200_000 + 1,
        0,
        0,
        3,
        0,
    )  # the bad-period line has one good point and one bad one
    assert bulk.scalar("SELECT count(*) FROM eia_series_timeseries") == 200_001
    assert Counter(r for (r,) in bulk.rows("SELECT reason FROM eia_series_quarantine")) == {
        "invalid_json": 1,
        "missing_series_id": 1,
        "bad_period": 1,
    }
    assert bulk.rows(
        "SELECT received, inserted, quarantined, batches, lines FROM eia_bulk_versions WHERE dataset = 'SYN'"
    ) == [(200_004, 200_001, 3, 5, len(lines) + 3)]
    assert bulk.scalar("SELECT count(*) FROM eia_bulk_checkpoints") == 0
    assert bulk.scalar("SELECT sum(received) FROM eia_batch_log") == 200_004
    assert not (bulk.work_dir / "SYN.zip").exists()  # the loaded archive is not kept
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["eia-bulk-syn"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(result.run_id)]),
            )
        )
    assert artifacts and "| 200,004 | 200,001 | 0 | 0 | 3 | 0 |" in str(artifacts[0].data)
    assert (bulk.stats.manifest_requests, bulk.stats.zip_requests) == (1, 1)

    state, again = await bulk.run("SYN")

    assert state.is_completed(), state.message
    assert again.datasets[0].status == "unchanged" and not again.datasets[0].downloaded
    assert again.counts.received == 0
    assert (bulk.stats.manifest_requests, bulk.stats.zip_requests) == (2, 1)  # no download, not even a 304
    assert bulk.stats.by_path["/bulk/SYN.zip"] == 1
    assert bulk.scalar("SELECT count(*) FROM eia_series_timeseries") == 200_001


def _truncated() -> bytes:
    data = archive_bytes("BAD", synthetic_archive_lines(2_000, dataset="BAD"))
    return data[: len(data) * 2 // 3]


def _dotdot() -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../BAD.txt", series_line("BAD.X.M", "M", "megawatthours", [["202101", 1.0]]))
    return buffer.getvalue()


def _bomb() -> bytes:
    return archive_bytes("BAD", [b" " * (30 * 1024 * 1024)])  # 30 MiB of spaces: about 1000x


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_truncated, "BAD.zip is not a readable zip archive (truncated or corrupt download)"),
        (_dotdot, "BAD.zip: member '../BAD.txt' climbs out of the archive with '..'; archive refused"),
        (_bomb, "more than the cap max_compression_ratio=100; archive refused (zip bomb?)"),
    ],
    ids=["truncated", "dotdot-member", "over-ratio"],
)
async def test_a_bad_archive_fails_its_dataset_with_a_clear_message_and_leaves_the_table_unchanged(
    bulk: Bulk, make: Any, message: str
) -> None:
    good = list(synthetic_archive_lines(500, dataset="GOOD"))
    bulk.serve({"GOOD": archive_bytes("GOOD", good), "BAD": make()})
    state, _ = await bulk.run("GOOD")
    assert state.is_completed(), state.message
    before = bulk.rows(SNAPSHOT)

    state, result = await bulk.run("BAD")

    assert state.is_failed()
    assert state.message is not None and message in state.message
    assert state.message.startswith("BAD: ") and "Traceback" not in state.message
    assert result.datasets[0].status == "failed" and result.counts.received == 0
    assert bulk.rows(SNAPSHOT) == before
    assert bulk.scalar("SELECT count(*) FROM eia_bulk_versions WHERE dataset = 'BAD'") == 0
    assert bulk.scalar("SELECT count(*) FROM eia_bulk_checkpoints") == 0
    assert bulk.scalar("SELECT status FROM eia_run_log WHERE run_id = %s", result.run_id) == "failed"
    assert not (bulk.work_dir / "BAD.zip").exists()


async def test_bad_lines_are_quarantined_with_reasons_and_the_counts_reconcile(bulk: Bulk) -> None:
    good = [
        series_line("SYN.A.M", "M", "megawatthours", [[p, 10.0 + i] for i, p in enumerate(tokens("M", 10))]),
        series_line("SYN.B.M", "M", "megawatthours", [[p, 20.0 + i] for i, p in enumerate(tokens("M", 10))]),
    ]
    lines = [
        good[0],
        b"this is not json",
        json.dumps({"name": "a line without an id", "f": "A", "data": [["2020", 1.0]]}).encode(),
        series_line("SYN.C.M", "M", "megawatthours", [["202113", 1.0], ["2021Q4", 2.0], ["202101", 3.0]]),
        b'{"series_id":"SYN.D.M","name":"caf\xe9 not utf-8","f":"M","data":[["202101",1.0]]}',
        series_line("SYN.E.M", "M", "megawatthours", [[p, 1.0] for p in tokens("M", 400)]),  # > 4 kB
        b"[1, 2, 3]",
        series_line("SYN.F.M", "M", "megawatthours", [["202101", 1.0]], name="nul \u0000 inside"),
        series_line("SYN.G.M", "M", "megawatthours", [["202101", 1.0], ["202101", 1.5], ["202102", 2.0]]),
        b"",
        good[1],
        category_line(10, None, "root", ["SYN.A.M", "SYN.B.M"]),
    ]
    bulk.serve({"SYN": archive_bytes("SYN", lines)})

    state, result = await bulk.run("SYN", max_line_bytes=4_096)

    assert state.is_completed(), state.message
    reasons = Counter(r for (r,) in bulk.rows("SELECT reason FROM eia_series_quarantine"))
    assert reasons == {
        "invalid_json": 1,
        "missing_series_id": 1,
        "bad_period": 2,
        "invalid_utf8": 1,
        "line_too_long": 1,
        "bad_line": 1,
        "nul_character": 1,
        "duplicate_in_response": 1,
    }
    c = result.counts
    loaded = 10 + 10 + 1 + 2  # A, B, C's good point, G's two distinct periods
    assert (c.received, c.inserted, c.quarantined) == (loaded + 9, loaded, 9)
    assert c.received == c.inserted + c.updated + c.unchanged + c.quarantined + c.skipped
    assert bulk.scalar("SELECT count(*) FROM eia_series_timeseries") == loaded
    too_long = bulk.rows(
        "SELECT detail, payload->>'line_number' FROM eia_series_quarantine WHERE reason = 'line_too_long'"
    )
    assert too_long == [(f"line 6 is {len(lines[5]) + 1} bytes, more than the cap max_line_bytes=4096", "6")]
    assert bulk.scalar("SELECT payload->>'line_number' FROM eia_series_quarantine WHERE reason = 'invalid_json'") == "2"
    assert bulk.rows("SELECT category_id, childseries FROM eia_categories") == [(10, ["SYN.A.M", "SYN.B.M"])]


async def test_a_load_dying_after_two_batches_resumes_mid_line_from_its_checkpoint_without_downloading_again(
    bulk: Bulk, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [*synthetic_archive_lines(12_000, seed=3), *_bad_lines()]
    bulk.serve({"SYN": archive_bytes("SYN", lines)})
    from tasks.load.batch import load_batch as real_load_batch

    calls = 0

    def dies_after_two_batches(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("worker killed (simulated) after 2 committed batches")
        return real_load_batch(*args, **kwargs)

    monkeypatch.setattr(bulk_load, "load_batch", dies_after_two_batches)
    killed: State[Any] = await ingest_eia_bulk(
        datasets=["SYN"], batch_size=4_000, work_dir=str(bulk.work_dir), progress=False, return_state=True
    )
    assert killed.is_failed()
    line, _offset, items_done, batches, received = bulk.rows(
        "SELECT line_number, byte_offset, items_done, batches, received FROM eia_bulk_checkpoints"
    )[0]
    assert (batches, received) == (2, 8_000)
    assert items_done > 0  # the load died in the middle of a series line
    assert bulk.scalar("SELECT count(*) FROM eia_series_timeseries") == 8_000
    assert bulk.scalar("SELECT count(*) FROM eia_bulk_versions") == 0
    assert bulk.scalar("SELECT status FROM eia_run_log") == "failed"
    assert (bulk.work_dir / "SYN.zip").exists()

    monkeypatch.setattr(bulk_load, "load_batch", real_load_batch)
    state, resumed = await bulk.run("SYN", batch_size=4_000)

    assert state.is_completed(), state.message
    (report,) = resumed.datasets
    assert report.status == "loaded" and report.resumed_from_line == line + 1
    assert not report.downloaded and bulk.stats.zip_requests == 1  # the kept archive was current (HTTP 304)
    assert resumed.counts.received == 12_004 - 8_000
    assert report.total_counts is not None and report.total_counts.received == 12_004
    resumed_table = bulk.rows(SNAPSHOT)
    assert len(resumed_table) == 12_001 and {r[-1] for r in resumed_table} == {0}  # no row merged twice
    assert bulk.scalar("SELECT count(*) FROM eia_series_revisions") == 0
    assert bulk.rows("SELECT received, inserted, quarantined FROM eia_bulk_versions") == [(12_004, 12_001, 3)]

    # Exactly what the archive holds (the SIGKILL test below also compares with an uninterrupted run).
    synthetic = [json.loads(line) for line in lines[:-3]]  # the last three are _bad_lines()
    points = [(o["series_id"], p, v) for o in synthetic if "series_id" in o for p, v in o["data"]]
    points += [("SYN.BAD.PERIOD.M", "202012", 2.0)]
    assert sorted((r[0], r[3], r[5]) for r in resumed_table) == sorted(points)


def test_a_load_checkpointed_for_another_archive_starts_over(bulk: Bulk, tmp_path: Path) -> None:
    from tasks.bulk.archive import ArchiveLimits, verify_archive
    from tasks.bulk.checkpoints import ArchiveVersion
    from tasks.bulk.load import BulkLoadConfig, load_archive

    path = tmp_path / "SYN.zip"
    path.write_bytes(archive_bytes("SYN", synthetic_archive_lines(3_000)))
    info = verify_archive(path, "SYN", ArchiveLimits(1 << 30, 100))
    config = BulkLoadConfig("aurum-prod", "run-1", "test", "SYN", batch_size=1_000, max_batches=1)
    first = load_archive(bulk.dsn, info, ArchiveVersion("v1", "sha-one", None, None), config)
    assert (first.status, first.batches) == ("partial", 1)

    other = load_archive(bulk.dsn, info, ArchiveVersion("v2", "sha-two", None, None), config)

    assert other.resumed_from is None and other.total_counts.received == 1_000  # started again at line 1


async def test_a_new_manifest_stamp_for_the_same_archive_is_recorded_without_downloading_it_again(bulk: Bulk) -> None:
    content = archive_bytes("SYN", synthetic_archive_lines(1_000))
    bulk.serve({"SYN": content}, stamps={"SYN": "2024-08-23T15:23:15-04:00"})
    state, _ = await bulk.run("SYN")
    assert state.is_completed(), state.message
    bulk.serve({"SYN": content}, stamps={"SYN": "2024-09-23T15:23:15-04:00"})  # EIA re-stamped, same bytes

    state, result = await bulk.run("SYN")

    assert state.is_completed(), state.message
    (report,) = result.datasets
    assert (report.status, report.downloaded) == ("unchanged", False)
    assert report.detail == "manifest stamp changed to 2024-09-23T15:23:15-04:00, archive unchanged (HTTP 304)"
    assert bulk.stats.zip_requests == 1 and bulk.stats.by_path["/bulk/SYN.zip"] == 2
    assert bulk.rows("SELECT last_updated, received FROM eia_bulk_versions ORDER BY loaded_at") == [
        ("2024-08-23T15:23:15-04:00", 1_000),
        ("2024-09-23T15:23:15-04:00", 0),
    ]


def test_eia_run_bulk_prints_one_line_per_dataset_and_exits_non_zero_with_one_error_line(bulk: Bulk) -> None:
    from typer.testing import CliRunner

    from flows.cli.app import app

    bulk.serve({"SYN": archive_bytes("SYN", synthetic_archive_lines(500))})
    runner = CliRunner()
    args = ["run", "bulk", "--work-dir", str(bulk.work_dir), "--no-progress"]

    ok = runner.invoke(app, [*args, "--dataset", "SYN"])
    failed = runner.invoke(app, [*args, "--dataset", "syn", "--dataset", "NOPE"])

    assert ok.exit_code == 0, ok.output
    assert (
        "SYN: loaded (version 2024-08-23T15:23:15-04:00): 500 inserted, 0 updated, 0 unchanged, 0 quarantined, "
        "0 skipped from 500 observations (5 archive lines) in 1 batches"
    ) in ok.output
    assert failed.exit_code == 1
    assert "SYN: unchanged" in failed.output
    assert "run failed: NOPE: dataset 'NOPE' is not in the EIA bulk manifest" in failed.output
    assert "Traceback" not in failed.output


async def test_a_run_killed_with_sigkill_resumes_exactly_where_its_last_batch_committed(bulk: Bulk) -> None:
    import asyncio
    import os
    import signal
    import sys

    from prefect.settings import PREFECT_API_URL

    bulk.serve({"SYN": archive_bytes("SYN", synthetic_archive_lines(10_000, seed=5))})
    eia = str(Path(sys.executable).with_name("eia"))
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "SODA_CORE_TELEMETRY_ENABLED": "false"}
    proc = await asyncio.create_subprocess_exec(
        *[eia, "run", "bulk", "-d", "SYN", "--batch-size", "2000", "--work-dir", str(bulk.work_dir), "--no-progress"],
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(1200):  # up to 60 s: the subprocess imports Prefect and Soda first
            if proc.returncode is not None:
                break
            if bulk.rows("SELECT 1 FROM eia_bulk_checkpoints WHERE batches >= 2"):
                break
            await asyncio.sleep(0.05)
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
    finally:
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    (committed,) = bulk.rows("SELECT batches, received, line_number FROM eia_bulk_checkpoints")
    assert committed[0] >= 2 and bulk.scalar("SELECT count(*) FROM eia_series_timeseries") == committed[1]

    state, resumed = await bulk.run("SYN", batch_size=2_000)

    assert state.is_completed(), state.message
    assert resumed.datasets[0].resumed_from_line == committed[2] + 1
    assert resumed.counts.received == 10_000 - committed[1]
    table = bulk.rows(SNAPSHOT)
    reset_database(bulk.dsn)
    state, _ = await bulk.run("SYN", batch_size=2_000)
    assert state.is_completed(), state.message
    assert bulk.rows(SNAPSHOT) == table and len(table) == 10_000


async def test_a_batch_failing_a_rule_in_most_rows_stops_the_dataset_and_the_checkpoint_stays_before_it(
    bulk: Bulk,
) -> None:
    good = series_line("SYN.A.M", "M", "megawatthours", [[p, 5.0] for p in tokens("M", 100)])
    odd = series_line("SYN.B.M", "M", "furlongs per fortnight", [[p, 5.0] for p in tokens("M", 100)])
    bulk.serve({"SYN": archive_bytes("SYN", [good, odd])})

    state, result = await bulk.run("SYN", batch_size=100)

    assert state.is_failed()
    (report,) = result.datasets
    assert report.status == "failed" and report.failed_checks == ["unknown_unit"]
    assert state.message == (
        "SYN: the quality gate blocked a batch of 100 rows from line 2: 100 of the batch's 100 rows (100%) fail "
        "row rules (unknown_unit), more than max_quarantine_share=50%: a systematic break; its rows are "
        "quarantined and the checkpoint stays before it, so a rerun retries it"
    )
    assert (result.counts.inserted, result.counts.quarantined) == (100, 100)
    assert bulk.scalar("SELECT count(*) FROM eia_series_timeseries WHERE series_id = 'SYN.B.M'") == 0
    assert bulk.rows("SELECT reason, count(*) FROM eia_series_quarantine GROUP BY reason") == [("unknown_unit", 100)]
    assert bulk.rows("SELECT line_number, items_done, batches FROM eia_bulk_checkpoints") == [(1, 0, 1)]
    assert bulk.scalar("SELECT count(*) FROM eia_bulk_versions") == 0


async def test_one_unknown_unit_row_is_quarantined_the_dataset_finishes_and_a_forced_reload_files_nothing_twice(
    bulk: Bulk, kafka_bootstrap: str
) -> None:
    await bulk.setup.configure(kafka=(kafka_bootstrap, "mock://eia-bulk-row-quarantine"))
    odd = series_line("SYN.ODD.M", "M", "furlongs per fortnight", [["202401", 5.0]])
    lines = [odd, *synthetic_archive_lines(1_200)]
    bulk.serve({"SYN": archive_bytes("SYN", lines)})

    state, result = await bulk.run("SYN", batch_size=500)

    assert state.is_completed(), state.message
    (report,) = result.datasets
    assert report.status == "loaded" and report.batches == 3
    c = result.counts
    assert (c.received, c.inserted, c.quarantined) == (1_201, 1_200, 1)
    assert report.quarantined_by_reason == {"unknown_unit": 1}
    assert "1 quarantined (unknown_unit 1)" in (state.message or "")
    assert bulk.scalar("SELECT count(*) FROM eia_series_timeseries") == 1_200
    assert bulk.rows("SELECT series_id, raw_period, reason FROM eia_series_quarantine") == [
        ("SYN.ODD.M", "202401", "unknown_unit")
    ]
    dlq = "SELECT count(*) FROM eia_outbox WHERE kind = 'quarantine'"
    assert bulk.scalar(dlq) == 1
    # The UI follows the load by compressed bytes read: one progress artifact per dataset, ending at 100%.
    async with get_client() as client:
        (progress,) = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["eia-bulk-progress-syn"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(result.run_id)]),
            )
        )
    assert progress.type == "progress" and float(progress.data) == 100.0  # type: ignore[arg-type]
    # On plain PostgreSQL the monthly aggregate was refreshed after the load: it can be read and holds
    # every (series, month) of the table.
    months = """SELECT count(*) FROM (SELECT DISTINCT tenant_id, series_id, frequency, sector, area,
                date_trunc('month', period, 'UTC') FROM eia_series_timeseries) m"""
    if bulk.scalar("SELECT flavor FROM eia_schema_migrations ORDER BY version LIMIT 1") == "postgres":
        assert bulk.scalar("SELECT count(*) FROM eia_monthly_aggregates") == bulk.scalar(months) > 0

    state, again = await bulk.run("SYN", batch_size=500, force=True)

    assert state.is_completed(), state.message
    assert (again.counts.received, again.counts.unchanged, again.counts.quarantined) == (1_201, 1_200, 1)
    assert bulk.scalar("SELECT count(*) FROM eia_series_quarantine") == 1
    assert bulk.scalar(dlq) == 1


async def test_with_kafka_every_merged_bulk_row_is_published_on_the_bulk_topic_keyed_by_series(
    bulk: Bulk, kafka_bootstrap: str
) -> None:
    import asyncio

    from tasks.publish.consumer import read_topic

    registry, topic = "mock://eia-bulk-tests", f"test.eia.bulk.{uuid.uuid4().hex[:8]}"  # this test's own topic
    await bulk.setup.configure(kafka=(kafka_bootstrap, registry), topics={"bulk_topic": topic})
    lines = [
        series_line("KAF.A.M", "M", "megawatthours", [[p, 1.0 + i] for i, p in enumerate(tokens("M", 30))]),
        series_line("KAF.B.Q", "Q", "billion Btu", [[p, 2.0 + i] for i, p in enumerate(tokens("Q", 10))]),
        b"not json",
    ]
    bulk.serve({"KAF": archive_bytes("KAF", lines)})

    state, result = await bulk.run("KAF")

    assert state.is_completed(), state.message
    messages = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, schema_registry_url=registry)
    ours = [(k, v) for k, v, _ in messages if v["series_id"].startswith("KAF.")]
    assert len(ours) == result.counts.inserted == 40
    assert all(key == value["series_id"] and value["source"] == "eia-bulk" for key, value in ours)
    assert set(bulk.rows("SELECT series_id, raw_period FROM eia_series_timeseries")) == {
        (v["series_id"], v["raw_period"]) for _, v in ours
    }
    assert bulk.scalar("SELECT count(*) FROM eia_outbox WHERE sent_at IS NULL") == 0
