"""Test data for series runs: seven series in EIA's real row shapes, one per frequency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasks.standin.data import DATE_FORMATS, ReplayDataset, synthetic_route_series


@dataclass(frozen=True)
class SeriesSpec:
    entry_id: str
    route: str
    frequency: str
    column: str
    unit: str
    facets: dict[str, str]
    n_points: int
    start: str
    unit_column: str | None = None
    base: float = 100.0  # a realistic level for the unit (prices stay inside their plausible range)

    def value(self, i: int) -> str:
        return f"{self.base * (1 + (i % 17) / 100):.3f}"

    def entry(self) -> dict[str, Any]:
        return {
            "id": self.entry_id,
            "route": self.route,
            "frequency": self.frequency,
            "data": [self.column],
            "facets": {k: [v] for k, v in self.facets.items()},
            "series_facets": sorted(self.facets),
            "area_facet": next(iter(self.facets)),
        }


SEVEN = [
    SeriesSpec(
        "hh-daily",
        "natural-gas/pri/fut",
        "daily",
        "value",
        "$/MMBTU",
        {"series": "RNGWHHD"},
        60,
        "2026-06-01",
        unit_column="units",
        base=3.1,
    ),
    SeriesSpec(
        "gasoline-weekly",
        "petroleum/pri/spt",
        "weekly",
        "value",
        "$/GAL",
        {"series": "EER_EPMRU_PF4_Y35NY_DPG"},
        30,
        "2026-03-06",
        unit_column="units",
        base=2.4,
    ),
    SeriesSpec(
        "retail-monthly",
        "electricity/retail-sales",
        "monthly",
        "price",
        "cents per kilowatt-hour",
        {"stateid": "US", "sectorid": "ALL"},
        48,
        "2022-01",
        base=12.5,
    ),
    SeriesSpec(
        "generation-quarterly",
        "electricity/electric-power-operational-data",
        "quarterly",
        "generation",
        "thousand megawatthours",
        {"location": "US", "sectorid": "99"},
        20,
        "2020-Q1",
    ),
    SeriesSpec(
        "coal-annual",
        "coal/market-sales-price",
        "annual",
        "price",
        "dollars per short ton",
        {"stateRegionId": "US", "marketTypeId": "TOT"},
        20,
        "2005",
        base=40.0,
    ),
    SeriesSpec(
        "eia930-hourly",
        "electricity/rto/fuel-type-data",
        "hourly",
        "value",
        "megawatthours",
        {"respondent": "US48", "fueltype": "NG"},
        12_500,
        "2025-01-01T00",
        unit_column="value-units",
    ),
    SeriesSpec(
        "eia930-local-hourly",
        "electricity/rto/region-data",
        "local-hourly",
        "value",
        "megawatthours",
        {"respondent": "PJM", "type": "D"},
        200,
        "2026-10-01T00-04",
        unit_column="value-units",
    ),
]


def add_series(dataset: ReplayDataset, spec: SeriesSpec, **overrides: Any) -> list[dict[str, Any]]:
    options: dict[str, Any] = {"value_fn": spec.value, **overrides}
    rows = synthetic_route_series(
        spec.route,
        spec.frequency,
        n_points=spec.n_points,
        facets=spec.facets,
        column=spec.column,
        unit=spec.unit,
        unit_column=spec.unit_column,
        start=spec.start,
        **options,
    )
    dataset.add_route_rows(spec.route, spec.frequency, DATE_FORMATS[spec.frequency], rows)
    return rows


def seven_series_dataset() -> tuple[ReplayDataset, list[dict[str, Any]], int]:
    dataset = ReplayDataset(routes={}, seriesid={})
    served = sum(len(add_series(dataset, spec)) for spec in SEVEN)
    return dataset, [s.entry() for s in SEVEN], served
