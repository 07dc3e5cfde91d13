"""Tests of the pure normalization core, run against the real EIA samples.

The samples come from the packaged copy the stand-in serves (`tasks/standin/samples`), so these
tests always run. A few samples exist only in ../shared/eia-samples (EIA_SAMPLES_DIR overrides): the
OpenBB recordings, from an AGPL repository, are deliberately not packaged (samples/NOTICE.md). Where a
test needs one of those and the directory is missing, it is skipped with the path in the reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.standin.data import SAMPLES_DIR as PACKAGED

SHARED = Path(os.environ.get("EIA_SAMPLES_DIR") or Path(__file__).resolve().parents[3] / "shared" / "eia-samples")


def sample_path(name: str) -> Path:
    """A sample file: the packaged copy, else the shared one; a test needing a missing one is skipped."""
    for folder in (PACKAGED, SHARED):
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"EIA sample {name} is not packaged (AGPL source) and not found in {SHARED}")


def sample_files() -> list[Path]:
    """Every sample: the packaged ones, plus the shared-only ones when the shared folder exists."""
    packaged = {p.name: p for p in PACKAGED.iterdir() if p.is_file()}
    shared = {p.name: p for p in SHARED.iterdir() if p.is_file()} if SHARED.is_dir() else {}
    return [found for _, found in sorted({**shared, **packaged}.items())]


# Keys under which EIA states a unit, in API responses, route metadata and bulk lines.
UNIT_KEYS = frozenset({"units", "unit", "unitName", "unitsshort"})


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def sample_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sample_path(name).read_text(encoding="utf-8"))
    return data


def response_rows(name: str) -> list[dict[str, Any]]:
    """The `response.data` rows of a sample API response."""
    rows: list[dict[str, Any]] = sample_json(name)["response"]["data"]
    return rows


def bulk_lines(name: str) -> list[str]:
    """The non-blank lines of a sample bulk file."""
    return [line for line in sample_path(name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _cassette_bodies(path: Path) -> Iterator[Any]:
    cassette = yaml.safe_load(path.read_text(encoding="utf-8"))
    for interaction in cassette.get("interactions", []):
        body = interaction["response"]["body"]["string"]
        yield json.loads(body)


def sample_documents() -> Iterator[tuple[str, Any]]:
    """Every JSON document in the samples: responses, metadata, cassette bodies, bulk lines."""
    for path in sample_files():
        if path.suffix == ".json":
            yield path.name, json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".yaml":
            for body in _cassette_bodies(path):
                yield path.name, body
        elif path.suffix == ".txt":
            for number, line in enumerate(bulk_lines(path.name), start=1):
                yield f"{path.name}:{number}", json.loads(line)


def _units_in(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            if isinstance(value, str) and (key in UNIT_KEYS or key.endswith("-units")) and value:
                yield value
            else:
                yield from _units_in(value)
    elif isinstance(document, list):
        for item in document:
            yield from _units_in(item)


def sample_units() -> dict[str, str]:
    """Every unit string found in the samples → the first sample it appears in."""
    units: dict[str, str] = {}
    for where, document in sample_documents():
        for unit in _units_in(document):
            units.setdefault(unit, where)
    return units
