"""Synthetic EIA bulk archives in the real line format, for tests and the bulk benchmark.

Lines look like ELEC.txt and EBA.txt lines (key order, `f` codes, compact periods, newest first,
`last_updated` stamps, category lines at the end). The mix of frequencies is ELEC-like (monthly,
quarterly, annual since 2001) plus EBA-like hourly lines, so batches span many periods as real
loads do. Everything is deterministic for a given seed, and archives are written streaming, so a
5M-observation archive never sits in memory as text.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# (f code, unit, share of the lines, points per line). Most lines are ELEC-like; one in a thousand is
# an EBA-like hourly line as long as the real ones (2015 to today: about 100,000 points, 2.7 MB).
_MIX = (
    ("M", "thousand megawatthours", 0.609, 288),  # 2001-01 .. 2024-12
    ("Q", "dollars per million Btu", 0.15, 96),
    ("A", "billion Btu", 0.14, 24),
    ("H", "megawatthours", 0.10, 2_000),
    ("H", "megawatthours", 0.001, 100_000),
)
_STATES = ("AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DE", "FL", "GA", "IA", "ID", "IL", "IN", "KS", "KY")
_HOUR_END = datetime(2023, 12, 31, 23, tzinfo=UTC)


def tokens(code: str, count: int) -> list[str]:
    """`count` bulk period tokens of frequency `code`, newest first (as EIA writes them)."""
    if code == "A":
        return [str(2024 - i) for i in range(count)]
    if code == "Q":
        return [f"{2024 - i // 4}Q{4 - i % 4}" for i in range(count)]
    if code == "M":
        return [f"{2024 - i // 12}{12 - i % 12:02d}" for i in range(count)]
    if code == "H":
        return [(_HOUR_END - timedelta(hours=i)).strftime("%Y%m%dT%HZ") for i in range(count)]
    raise ValueError(f"unsupported code {code}")


def series_line(series_id: str, code: str, unit: str, data: list[list[Any]], **extra: Any) -> bytes:
    line = {
        "series_id": series_id,
        "name": f"Synthetic series {series_id}",
        "units": unit,
        "f": code,
        "description": f"Synthetic {code} series for tests",
        "copyright": "None",
        "source": "EIA, U.S. Energy Information Administration",
        "iso3166": "USA",
        "geography": "USA",
        "start": data[-1][0] if data else None,
        "end": data[0][0] if data else None,
        "last_updated": "2024-08-23T15:23:15-04:00",
        "geoset_id": series_id.rsplit(".", 1)[0],
        **extra,
        "data": data,
    }
    return json.dumps(line, separators=(",", ":")).encode()


def category_line(category_id: int, parent: int | None, name: str, children: list[str]) -> bytes:
    return json.dumps(
        {
            "category_id": str(category_id),
            "parent_category_id": "" if parent is None else str(parent),
            "name": name,
            "notes": "",
            "childseries": children,
        },
        separators=(",", ":"),
    ).encode()


def synthetic_lines(observations: int, *, seed: int = 7, dataset: str = "SYN") -> Iterator[tuple[bytes, str]]:
    """Series lines holding `observations` valid points in total, then category lines; yields (line, series_id)."""
    rng = random.Random(seed)
    left = observations
    index = 0
    while left > 0:
        roll = rng.random()
        share = 0.0
        for code, unit, weight, points in _MIX:  # noqa: B007  (the loop picks the mix entry)
            share += weight
            if roll < share:
                break
        n = min(points, left)
        series_id = f"{dataset}.GEN.{_STATES[index % len(_STATES)]}-{index}.{code}"
        periods = tokens(code, n)
        high = 900.0 if unit != "dollars per million Btu" else 20.0
        data: list[list[Any]] = [[p, round(rng.uniform(1.0, high), 3)] for p in periods]
        if n > 10 and index % 7 == 0:
            data[3][1] = None  # EIA sends null for a missing value: kept, flagged "null"
        yield series_line(series_id, code, unit, data), series_id
        left -= n
        index += 1


def synthetic_archive_lines(observations: int, *, seed: int = 7, dataset: str = "SYN") -> Iterator[bytes]:
    """Series lines then category lines grouping the series by frequency (like a real bulk file)."""
    by_code: dict[str, list[str]] = {}
    for line, series_id in synthetic_lines(observations, seed=seed, dataset=dataset):
        by_code.setdefault(series_id.rsplit(".", 1)[1], []).append(series_id)
        yield line
    yield category_line(1, None, f"{dataset} root", [])
    for i, (code, ids) in enumerate(sorted(by_code.items()), start=2):
        yield category_line(i, 1, f"by frequency {code}", ids[:1000])


def write_archive(target: Path | io.BytesIO, dataset: str, lines: Iterable[bytes]) -> None:
    """A bulk zip holding `<dataset>.txt`, written streaming (deflate, as EIA's)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        info = zipfile.ZipInfo(f"{dataset}.txt", date_time=(2024, 8, 23, 15, 23, 15))
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            for line in lines:
                member.write(line)
                member.write(b"\n")


def archive_bytes(dataset: str, lines: Iterable[bytes]) -> bytes:
    buffer = io.BytesIO()
    write_archive(buffer, dataset, lines)
    return buffer.getvalue()


def manifest(entries: dict[str, str], base_url: str = "https://www.eia.gov/opendata/bulk") -> dict[str, Any]:
    """A manifest in EIA's shape for datasets {code: last_updated} (the stand-in rewrites accessURL)."""
    return {
        "dataset": {
            code: {
                "identifier": code,
                "title": f"Synthetic {code}",
                "accessURL": f"{base_url}/{code}.zip",
                "last_updated": stamp,
                "modified": stamp,
            }
            for code, stamp in entries.items()
        }
    }
