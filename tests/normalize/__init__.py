"""Tests of the pure normalization core, run against the real EIA samples.

The samples live in ../shared/eia-samples next to the repository (EIA_SAMPLES_DIR overrides);
tests that need them are skipped, with the path in the reason, when the directory is missing.
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

SAMPLES = Path(os.environ.get("EIA_SAMPLES_DIR") or Path(__file__).resolve().parents[3] / "shared" / "eia-samples")

requires_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"EIA samples not found at {SAMPLES}")

# Keys under which EIA states a unit, in API responses, route metadata and bulk lines.
UNIT_KEYS = frozenset({"units", "unit", "unitName", "unitsshort"})


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def sample_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return data


def response_rows(name: str) -> list[dict[str, Any]]:
    """The `response.data` rows of a sample API response."""
    rows: list[dict[str, Any]] = sample_json(name)["response"]["data"]
    return rows


def bulk_lines(name: str) -> list[str]:
    """The non-blank lines of a sample bulk file."""
    return [line for line in (SAMPLES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _cassette_bodies(path: Path) -> Iterator[Any]:
    cassette = yaml.safe_load(path.read_text(encoding="utf-8"))
    for interaction in cassette.get("interactions", []):
        body = interaction["response"]["body"]["string"]
        yield json.loads(body)


def sample_documents() -> Iterator[tuple[str, Any]]:
    """Every JSON document in the samples: responses, metadata, cassette bodies, bulk lines."""
    if not SAMPLES.is_dir():
        return
    for path in sorted(SAMPLES.iterdir()):
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
