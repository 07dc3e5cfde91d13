"""Fixtures for the quality tests: a temporary extra row in the unit table, and the flow fixtures.

`add_units` is how a test plays "after the unit is added": it puts extra rows, in units.csv's own
format and validated by its own parser, on top of the packaged table for the duration of the test
(the cached table is swapped, and the lookup cache cleared before and after). A new row must map to
a canonical unit and currency the table already has, as in production, where the rules are built
from the table when the process starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import MappingProxyType

import pytest

from tasks.normalize import units
from tests.flows.conftest import eia_server, setup, standin  # noqa: F401  (shared fixtures)

AddUnits = Callable[..., None]


@pytest.fixture
def add_units(monkeypatch: pytest.MonkeyPatch) -> Iterator[AddUnits]:
    def add(*rows: str) -> None:
        extra = units.parse_unit_table("\n".join([",".join(units.COLUMNS), *rows]) + "\n")
        packaged = units.unit_table()
        clashes = sorted(set(extra) & set(packaged))
        assert not clashes, f"already in units.csv: {clashes}"
        known = {(m.canonical_unit, m.canonical_currency) for m in packaged.values()}
        assert {(m.canonical_unit, m.canonical_currency) for m in extra.values()} <= known
        table = MappingProxyType({**packaged, **extra})
        monkeypatch.setattr(units, "unit_table", lambda: table)
        units._lookup.cache_clear()

    yield add
    units._lookup.cache_clear()
