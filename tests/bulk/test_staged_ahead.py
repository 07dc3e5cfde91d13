"""The loader stages batch n+1 while batch n merges: what that must never change.

A batch staged ahead and not settled (the load stopped) is never merged and leaves no staged rows; the
next run stages it again from the checkpoint. A reload files exactly the changed rows as revisions,
also in the later parts of a long line and in a line split across batches, whose series are stored
by the time the batch merges.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from tasks.bulk.archive import ArchiveLimits, verify_archive
from tasks.bulk.checkpoints import ArchiveVersion
from tasks.bulk.load import BulkLoadConfig, load_archive
from tests.bulk.synthetic import archive_bytes, series_line, tokens
from tests.bulk.test_streaming import LongLines

LIMITS = ArchiveLimits(max_member_bytes=1 << 30, max_ratio=1000.0)
# Lines over 4 KiB are parsed in parts of 100 points, so a 450-point hourly line is five parts.
PARTS = LongLines(long_line_bytes=4_096, part_points=100)


def _monthly(series_id: str, n: int, bump: frozenset[int] = frozenset()) -> bytes:
    data = [[p, 1.0 + i + (0.5 if i in bump else 0.0)] for i, p in enumerate(tokens("M", n))]
    return series_line(series_id, "M", "thousand megawatthours", data)


def _hourly(series_id: str, n: int, bump: frozenset[int] = frozenset()) -> bytes:
    data = [[p, float(i % 97) + (0.5 if i in bump else 0.0)] for i, p in enumerate(tokens("H", n))]
    return series_line(series_id, "H", "megawatthours", data)


def _load(
    db: str, tmp_path: Path, lines: list[bytes], version: str, max_batches: int | None = None
) -> tuple[str, int, int, int]:
    path = tmp_path / f"SYN-{version}.zip"
    path.write_bytes(archive_bytes("SYN", lines))
    info = verify_archive(path, "SYN", LIMITS)
    outcome = load_archive(
        db,
        info,
        ArchiveVersion(version, f"sha-{version}", None, None),
        BulkLoadConfig("t", f"run-{version}", "j", "SYN", batch_size=120, max_batches=max_batches, **PARTS),
    )
    c = outcome.counts
    return outcome.status, c.inserted, c.updated, c.unchanged


def _scalar(db: str, sql: str) -> object:
    with psycopg.connect(db) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_a_batch_the_gate_blocks_stops_the_load_and_the_batch_staged_after_it_is_never_merged(
    db: str, tmp_path: Path
) -> None:
    # 120-item batches: four of S.A.M and S.LONG.H, a fifth holding S.B.M's 90 implausible prices
    # (50 USD/kWh, above the unit's range: 75% of the batch fails a row rule), a sixth with S.C.M's rest.
    implausible = series_line("S.B.M", "M", "cents per kilowatthour", [[p, 5000.0] for p in tokens("M", 90)])
    lines = [_monthly("S.A.M", 50), _hourly("S.LONG.H", 450), implausible, _monthly("S.C.M", 80)]

    status, inserted, _, _ = _load(db, tmp_path, lines, "v1")

    assert (status, inserted) == ("failed", 480)
    assert _scalar(db, "SELECT count(*) FROM eia_series_staging") == 0  # the sixth batch, staged ahead, went
    assert _scalar(db, "SELECT count(*) FROM eia_series_timeseries") == 480
    assert _scalar(db, "SELECT count(*) FROM eia_series_timeseries WHERE series_id = 'S.C.M'") == 0
    assert _scalar(db, "SELECT batches FROM eia_bulk_checkpoints") == 4
    assert _scalar(db, "SELECT count(*) FROM eia_series_quarantine") == 120  # the blocked batch, every row


def test_a_load_stopped_after_two_batches_leaves_nothing_staged_and_the_next_run_loads_exactly_the_rest(
    db: str, tmp_path: Path
) -> None:
    lines = [_monthly("S.A.M", 50), _hourly("S.LONG.H", 450), _monthly("S.B.M", 90), _monthly("S.C.M", 80)]

    first = _load(db, tmp_path, lines, "v1", max_batches=2)

    assert first == ("partial", 240, 0, 0)
    assert _scalar(db, "SELECT count(*) FROM eia_series_staging") == 0
    assert _scalar(db, "SELECT batches FROM eia_bulk_checkpoints") == 2

    rest = _load(db, tmp_path, lines, "v1")

    assert rest == ("loaded", 670 - 240, 0, 0)
    assert _scalar(db, "SELECT count(*) FROM eia_series_staging") == 0
    assert _scalar(db, "SELECT count(*) FROM eia_series_timeseries") == 670
    assert _scalar(db, "SELECT max(revision) FROM eia_series_timeseries") == 0  # no row merged twice


def test_a_reload_files_exactly_the_changed_rows_as_revisions_in_every_part_of_a_line(db: str, tmp_path: Path) -> None:
    # 120-item batches: S.A.M (150 points) is split across the first two; S.LONG.H, parsed in five
    # parts, spans four, so its later parts merge when the series is already stored.
    before = [_monthly("S.A.M", 150), _hourly("S.LONG.H", 450), _monthly("S.B.M", 90)]
    changed_a, changed_long, changed_b = frozenset({0, 149}), frozenset({5, 130, 260, 449}), frozenset({89})
    after = [
        _monthly("S.A.M", 150, changed_a),
        _hourly("S.LONG.H", 450, changed_long),
        _monthly("S.B.M", 90, changed_b),
    ]

    assert _load(db, tmp_path, before, "v1") == ("loaded", 690, 0, 0)
    assert _scalar(db, "SELECT count(*) FROM eia_series_revisions") == 0

    changed = len(changed_a) + len(changed_long) + len(changed_b)
    assert _load(db, tmp_path, after, "v2") == ("loaded", 0, changed, 690 - changed)

    with psycopg.connect(db) as conn:
        revisions = conn.execute(
            "SELECT series_id, new_value - old_value, old_revision FROM eia_series_revisions ORDER BY 1, period"
        ).fetchall()
        bumped = conn.execute("SELECT count(*) FROM eia_series_timeseries WHERE revision = 1").fetchone()
    assert sorted(r[0] for r in revisions) == sorted(
        ["S.A.M"] * len(changed_a) + ["S.B.M"] * len(changed_b) + ["S.LONG.H"] * len(changed_long)
    )
    assert {(r[1], r[2]) for r in revisions} == {(0.5, 0)}
    assert bumped == (changed,)
