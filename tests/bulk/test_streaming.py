"""Streaming a member: lines with their offsets, a line-size cap, resuming mid-file, and fixed-size batches."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import pytest

from tasks.bulk.archive import ArchiveLimits, verify_archive
from tasks.bulk.checkpoints import Position
from tasks.bulk.errors import CheckpointError
from tasks.bulk.load import DEFAULT_LONG_LINE_BYTES, DEFAULT_PART_POINTS, Batch, BulkLoadConfig, cut_batches, parse_line
from tasks.bulk.reader import Line, MemberReader
from tests.bulk.synthetic import archive_bytes, category_line, series_line, tokens

LIMITS = ArchiveLimits(max_member_bytes=1 << 30, max_ratio=1000.0)


def _archive(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "SYN.zip"
    path.write_bytes(archive_bytes("SYN", lines))
    return path


def _read(path: Path, **kwargs: int) -> list[Line]:
    info = verify_archive(path, "SYN", LIMITS)
    with MemberReader(info, max_line_bytes=kwargs.pop("max_line_bytes", 1 << 20), **kwargs) as reader:
        return list(reader)


def test_lines_come_with_their_number_and_byte_offset(tmp_path: Path) -> None:
    raw = [b'{"a":1}', b'{"bb":22}', b"", b'{"ccc":333}']
    lines = _read(_archive(tmp_path, raw))

    assert [(ln.number, ln.offset, ln.size, ln.data) for ln in lines] == [
        (0, 0, 8, b'{"a":1}'),
        (1, 8, 10, b'{"bb":22}'),
        (2, 18, 1, b""),
        (3, 19, 12, b'{"ccc":333}'),
    ]


def test_reading_resumes_at_a_recorded_offset(tmp_path: Path) -> None:
    path = _archive(tmp_path, [b'{"a":1}', b'{"bb":22}', b'{"ccc":333}'])

    lines = _read(path, start_line=1, start_offset=8)

    assert [(ln.number, ln.offset, ln.data) for ln in lines] == [(1, 8, b'{"bb":22}'), (2, 18, b'{"ccc":333}')]


def test_an_offset_that_is_not_a_line_start_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = _archive(tmp_path, [b'{"a":1}', b'{"bb":22}'])

    with pytest.raises(CheckpointError, match=r"offset 5 of SYN\.txt is not the start of a line"):
        _read(path, start_line=1, start_offset=5)


def test_a_line_over_the_cap_is_flagged_and_skipped_without_holding_it(tmp_path: Path) -> None:
    long_line = b'{"series_id":"' + b"x" * 5_000 + b'"}'
    path = _archive(tmp_path, [b'{"a":1}', long_line, b'{"bb":22}'])

    lines = _read(path, max_line_bytes=1_000)

    assert [(ln.number, ln.too_long, ln.size) for ln in lines] == [
        (0, False, 8),
        (1, True, len(long_line) + 1),
        (2, False, 10),
    ]
    assert lines[1].data == long_line[:1_001]  # a prefix (what the capped read saw), for the quarantine record
    assert lines[2].offset == 8 + len(long_line) + 1 and lines[2].data == b'{"bb":22}'


def _lines(raw: list[bytes]) -> list[Line]:
    lines, offset = [], 0
    for number, data in enumerate(raw):
        lines.append(Line(number, offset, len(data) + 1, data))
        offset += len(data) + 1
    return lines


def _monthly(series_id: str, n: int) -> bytes:
    return series_line(series_id, "M", "thousand megawatthours", [[p, 1.0 + i] for i, p in enumerate(tokens("M", n))])


class LongLines(TypedDict):
    long_line_bytes: int
    part_points: int


def _cut(
    raw: list[bytes],
    batch_size: int,
    start: Position = Position(),
    *,
    long_line_bytes: int = DEFAULT_LONG_LINE_BYTES,
    part_points: int = DEFAULT_PART_POINTS,
) -> list[Batch]:
    lines = [ln for ln in _lines(raw) if ln.number >= start.line_number]
    return list(
        cut_batches(
            lines,
            "SYN",
            batch_size=batch_size,
            max_line_bytes=1 << 20,
            start=start,
            long_line_bytes=long_line_bytes,
            part_points=part_points,
        )
    )


def test_batches_hold_exactly_batch_size_items_and_a_line_may_span_batches() -> None:
    raw = [_monthly("S.A.M", 7), _monthly("S.B.M", 5), category_line(1, None, "root", ["S.A.M"])]

    batches = _cut(raw, batch_size=4)

    assert [b.result.received for b in batches] == [4, 4, 4, 0]
    ends = [b.end for b in batches]
    offsets = [ln.offset for ln in _lines(raw)]
    assert ends == [
        Position(0, 0, 4),  # 4 of S.A.M's 7 points are in the first batch
        Position(1, offsets[1], 1),  # the rest of S.A.M, and 1 of S.B.M
        Position(2, offsets[2], 0),  # S.B.M finished exactly at the batch boundary
        Position(3, offsets[2] + len(raw[2]) + 1, 0),  # the category line, after the last observation
    ]
    assert [m.series_id for b in batches for m in b.metas] == ["S.A.M", "S.B.M"]
    assert [c.category_id for c in batches[3].categories] == [1]
    periods = [o.raw_period for b in batches for o in b.result.observations]
    assert periods == tokens("M", 7) + tokens("M", 5)


def test_resuming_mid_line_yields_exactly_the_items_not_yet_committed() -> None:
    raw = [_monthly("S.A.M", 7), _monthly("S.B.M", 5)]
    first = _cut(raw, batch_size=4)[0]

    rest = _cut(raw, batch_size=4, start=first.end)

    resumed = [(o.series_id, o.raw_period) for b in rest for o in b.result.observations]
    assert resumed == [("S.A.M", p) for p in tokens("M", 7)[4:]] + [("S.B.M", p) for p in tokens("M", 5)]
    assert [m.series_id for b in rest for m in b.metas] == ["S.B.M"]  # S.A.M's metadata committed with batch 1


def test_two_lines_of_the_same_series_never_share_a_batch() -> None:
    raw = [_monthly("S.A.M", 2), _monthly("S.A.M", 2), _monthly("S.B.M", 2)]

    batches = _cut(raw, batch_size=100)

    assert [[o.series_id for o in b.result.observations] for b in batches] == [
        ["S.A.M", "S.A.M"],
        ["S.A.M", "S.A.M", "S.B.M", "S.B.M"],
    ]


def test_a_checkpoint_claiming_more_items_than_the_line_has_is_refused() -> None:
    with pytest.raises(CheckpointError, match="says 9 items of line 1 are loaded, but it has 7"):
        _cut([_monthly("S.A.M", 7)], batch_size=4, start=Position(0, 0, 9))


def _long_hourly(series_id: str, n: int, repeat_at: int) -> bytes:
    periods = tokens("H", n)
    data = [[p, float(i % 97)] for i, p in enumerate(periods)]
    data.insert(repeat_at, [periods[3], 123.0])  # period 3 again, in a later part: a repeat to reject
    return series_line(series_id, "H", "megawatthours", data)


# Long-line parsing at a small scale: lines over 4 kB are parsed in parts of 100 points.
SMALL_PARTS = LongLines(long_line_bytes=4_096, part_points=100)


def test_long_lines_are_parsed_in_parts_of_10_000_points_above_1_mib_by_default() -> None:
    config = BulkLoadConfig("t", "r", "j", "SYN")

    assert (config.long_line_bytes, config.part_points) == (DEFAULT_LONG_LINE_BYTES, DEFAULT_PART_POINTS)
    assert (DEFAULT_LONG_LINE_BYTES, DEFAULT_PART_POINTS) == (1 << 20, 10_000)
    raw = _long_hourly("S.LONG.H", 450, repeat_at=250)  # over 4 kB, far under 1 MiB: one piece
    assert len(list(parse_line(_lines([raw])[0], "SYN", 1 << 20))) == 1


@pytest.mark.parametrize("setting", ["long_line_bytes", "part_points"])
def test_a_long_line_setting_below_1_is_refused_naming_it(setting: str) -> None:
    with pytest.raises(ValueError, match=f"^{setting} must be at least 1, got 0$"):
        BulkLoadConfig("t", "r", "j", "SYN", **{setting: 0})


def test_a_long_series_line_is_parsed_in_parts_with_the_same_outcome_as_in_one_piece() -> None:
    from tasks.normalize.bulk_lines import parse_bulk_line

    raw = _long_hourly("S.LONG.H", 450, repeat_at=250)
    assert len(list(parse_line(_lines([raw])[0], "SYN", 1 << 20, **SMALL_PARTS))) == 5  # 451 points: five parts

    batches = _cut([raw], batch_size=1_000, **SMALL_PARTS)
    whole = parse_bulk_line(raw, "SYN").result

    (batch,) = batches
    assert batch.result.observations == whole.observations
    assert len(batch.result.observations) == 450
    (repeat,) = batch.result.rejections
    (expected,) = whole.rejections
    assert (repeat.reason, repeat.detail, repeat.raw_period, repeat.raw_value) == (
        expected.reason,
        expected.detail,
        expected.raw_period,
        expected.raw_value,
    )
    assert [m.series_id for m in batch.metas] == ["S.LONG.H"]


def test_resuming_inside_a_long_line_continues_with_exactly_the_uncommitted_items() -> None:
    raw = [_monthly("S.A.M", 5), _long_hourly("S.LONG.H", 450, repeat_at=250), _monthly("S.B.M", 5)]
    everything = _cut(raw, batch_size=70, **SMALL_PARTS)
    resume_at = everything[2].end
    assert resume_at.line_number == 1 and resume_at.items_done == 3 * 70 - 5  # inside the long line

    rest = _cut(raw, batch_size=70, start=resume_at, **SMALL_PARTS)

    def items(batches: list[Batch]) -> list[tuple[str | None, str | None, str]]:
        return [(o.series_id, o.raw_period, "obs") for b in batches for o in b.result.observations] + [
            (r.series_id, r.raw_period, r.reason) for b in batches for r in b.result.rejections
        ]

    assert items(everything[3:]) == items(rest)
    assert [b.result.received for b in rest] == [b.result.received for b in everything[3:]]


def test_long_lines_load_in_parts_through_the_loader_with_exactly_their_points(db: str, tmp_path: Path) -> None:
    import psycopg

    from tasks.bulk.checkpoints import ArchiveVersion
    from tasks.bulk.load import load_archive

    raw = [
        _monthly("S.A.M", 50),
        _long_hourly("S.LONG.H", 450, repeat_at=250),
        _monthly("S.B.M", 50),
        _long_hourly("S.LONG2.H", 300, repeat_at=150),
    ]
    path = _archive(tmp_path, raw)
    info = verify_archive(path, "SYN", LIMITS)

    outcome = load_archive(
        db,
        info,
        ArchiveVersion("v1", "sha", None, None),
        BulkLoadConfig("t", "r", "j", "SYN", batch_size=120, **SMALL_PARTS),
    )

    assert outcome.status == "loaded"
    assert (outcome.counts.received, outcome.counts.inserted, outcome.counts.quarantined) == (852, 850, 2)
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT series_id, count(*) FROM eia_series_timeseries GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [("S.A.M", 50), ("S.B.M", 50), ("S.LONG.H", 450), ("S.LONG2.H", 300)]
