"""Routes of the EIA families the default catalog covers beyond the original samples: international,
SEDS and AEO, served at `/v2/<route>/data` in EIA's `/data` row shape (strings, descriptive columns).

- `international`: the real `/v2/seriesid/INTL.29-12-HKG-BKWH.A` sample's rows, as the route sends
  them (numbers written as strings, `dataFlagId` kept);
- `seds`: the real SEDS bulk lines (`dc_bulk_INTL_TOTAL_SEDS_lines.txt`), reshaped into route rows
  (`seriesId`, `stateId` from the v1 id, `unit` from the line's units): their values are EIA's;
- `aeo/2025`: no sample of any AEO body exists, so its rows are synthetic (made-up values in the
  facet shape of `../shared/eia-routes.md`: history, scenario, tableId, seriesId, regionId); they are
  not EIA data and must never be presented as such.
"""

from __future__ import annotations

import json
from typing import Any, Final

from tasks.standin.data import SAMPLES_DIR, ReplayDataset, _add_new_rows, _oracle_number_text, _wave

_SEDS_LINES: Final = "dc_bulk_INTL_TOTAL_SEDS_lines.txt"
_STATES: Final = {"US": "United States", "CA": "California"}


def _international(dataset: ReplayDataset) -> None:
    body = dataset.seriesid.get("INTL.29-12-HKG-BKWH.A")
    if body is None:
        return
    rows = [
        {
            **{k: v if v is None else str(v) for k, v in row.items() if k != "value"},
            "value": _oracle_number_text(row["value"]),
        }
        for row in body["response"]["data"]
    ]
    # The route's dataFlagId is null on most rows: EIA sends null, not the string "None".
    for row in rows:
        for key in ("dataFlagId", "dataFlagDescription"):
            if row.get(key) == "None":
                row[key] = None
    _add_new_rows(dataset, "international", "annual", rows)


def _seds(dataset: ReplayDataset) -> None:
    path = SAMPLES_DIR / _SEDS_LINES
    if not path.exists():
        return
    rows: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        series = str(record.get("series_id", ""))
        if not series.startswith("SEDS.") or record.get("f") != "A":
            continue
        _, msn, state, _ = series.split(".")
        name = str(record["name"]).rsplit(", ", 1)[0]
        for period, value in sorted(record.get("data") or []):
            rows.append(
                {
                    "period": str(period),
                    "seriesId": msn,
                    "seriesDescription": name,
                    "stateId": state,
                    "stateDescription": _STATES.get(state, state),
                    "value": _oracle_number_text(value),
                    "unit": record["units"],
                }
            )
    _add_new_rows(dataset, "seds", "annual", rows)


def _aeo(dataset: ReplayDataset) -> None:
    value = _wave(93.0, cycle=11, amplitude=0.02, trend=0.002, decimals=3)
    rows = [
        {
            "period": str(year),
            "history": "HISTORY" if year <= 2024 else "PROJECTION",
            "scenario": "ref2025",
            "scenarioDescription": "Reference case",
            "tableId": "1",
            "tableName": "Total Energy Supply, Disposition, and Price Summary",
            "seriesId": "cnsm_NA_NA_NA_NA_NA_usa_qbtu",
            "seriesName": "Total Energy : Consumption",
            "regionId": "1-0",
            "regionName": "United States",
            "value": value(i),
            "unit": "quadrillion Btu",
        }
        for i, year in enumerate(range(2015, 2051))
    ]
    _add_new_rows(dataset, "aeo/2025", "annual", rows)


def add_catalog_families(dataset: ReplayDataset) -> None:
    """Adds the international, SEDS and AEO routes (see the module note for what is real)."""
    for build in (_international, _seds, _aeo):
        build(dataset)
