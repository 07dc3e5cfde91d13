"""The bulk benchmark's archives: an EBA-like and an ELEC-like zip in EIA's real bulk line format.

Issue 16 measured "about 1M hourly EBA and 1M monthly ELEC": so an archive set of N observations
is half EBA-like hourly series with long lines (20,000 to 100,000 points each, as real EBA lines
run from 2015 to today) and half ELEC-like monthly series (288 points, 2001-01 to 2024-12). Lines
come from tests/bulk/synthetic.py (key order, `f` codes, compact periods, newest first, nulls,
category lines at the end), so every side reads the same bytes the real archives hold.
Deterministic for a given size, and written streaming.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bulk.synthetic import category_line, series_line, tokens, write_archive

DATASETS = ("EBA", "ELEC")
_STATES = ("AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DE", "FL", "GA", "IA", "ID", "IL", "IN", "KS", "KY")
_EBA_POINTS = (20_000, 100_000)  # points per hourly line, drawn uniformly
_ELEC_POINTS = 288


@dataclass(frozen=True)
class Archive:
    code: str
    path: Path
    observations: int
    series: int

    @property
    def mb(self) -> float:
        return self.path.stat().st_size / 1e6


def _series(code: str, observations: int, seed: int, ids: list[str]) -> Iterator[bytes]:
    rng = random.Random(f"{code}:{seed}")
    left, index = observations, 0
    while left > 0:
        if code == "EBA":
            n = min(rng.randint(*_EBA_POINTS), left)
            series_id, f, unit, high = f"EBA.BA{index:03d}-ALL.D.H", "H", "megawatthours", 60_000.0
        else:
            n = min(_ELEC_POINTS, left)
            state = _STATES[index % len(_STATES)]
            series_id, f, unit, high = f"ELEC.GEN.ALL-{state}-{index}.M", "M", "thousand megawatthours", 900.0
        data: list[list[Any]] = [[p, round(rng.uniform(1.0, high), 3)] for p in tokens(f, n)]
        if n > 10 and index % 7 == 0:
            data[3][1] = None  # EIA sends null for a missing value
        ids.append(series_id)
        yield series_line(series_id, f, unit, data)
        left -= n
        index += 1


def _lines(code: str, observations: int, seed: int, ids: list[str]) -> Iterator[bytes]:
    yield from _series(code, observations, seed, ids)
    yield category_line(1, None, f"{code} root", [])
    yield category_line(2, 1, f"{code} series", ids[:1000])


def write_archives(
    folder: Path, observations: int, datasets: tuple[str, ...] = DATASETS, seed: int = 7
) -> list[Archive]:
    """One `<CODE>.zip` per dataset in `folder`, sharing `observations` out evenly (the first gets the rest)."""
    archives: list[Archive] = []
    share, rest = divmod(observations, len(datasets))
    for i, code in enumerate(datasets):
        n = share + (rest if i == 0 else 0)
        path = folder / f"{code}.zip"
        ids: list[str] = []
        write_archive(path, code, _lines(code, n, seed, ids))
        archives.append(Archive(code, path, n, len(ids)))
    return archives
