"""What the local EIA replay server serves: real EIA samples plus synthetic series in EIA's real shapes.

There is no internet in tests or in the offline demo, so everything the pipeline fetches must exist
here. Real samples (`samples/`, see `samples/NOTICE.md`) are served as they are; synthetic series
copy the real rows' keys, period tokens, string values and unit columns, so a parser that passes
against this data has seen what EIA actually sends. Synthetic values are made up: they are not EIA
data and must never be presented as such.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

SAMPLES_DIR: Final = Path(__file__).with_name("samples")

# EIA's format masks, as the API reports them in `dateFormat` and in route metadata.
DATE_FORMATS: Final[dict[str, str]] = {
    "annual": "YYYY",
    "quarterly": 'YYYY-"Q"Q',
    "monthly": "YYYY-MM",
    "weekly": "YYYY-MM-DD",
    "daily": "YYYY-MM-DD",
    "hourly": 'YYYY-MM-DD"T"HH24',
    "local-hourly": 'YYYY-MM-DD"T"HH24TZH',
}

# Example tokens; also the start of a synthetic series when none is given.
EXAMPLE_PERIODS: Final[dict[str, str]] = {
    "annual": "2001",
    "quarterly": "2001-Q1",
    "monthly": "2001-01",
    "weekly": "2024-01-05",
    "daily": "2024-01-01",
    "hourly": "2024-01-01T00",
    "local-hourly": "2024-01-01T00-05",
}

# The myeia route samples had `request` emptied upstream, so their route cannot be read from the body.
_ROUTES_OF_SAMPLES_WITHOUT_COMMAND: Final[dict[str, str]] = {
    "myeia_route_steo_PADI_OPEC_monthly.json": "steo",
    "myeia_route_petroleum_move_pipe_MD0MP_R10-R20_1_monthly.json": "petroleum/move/pipe",
}
_SERIESID_PREFIX: Final = "myeia_seriesid_"
_MANIFEST_SAMPLE: Final = "fc_bulk_manifest_trimmed.json"
# Bulk archives built from real bulk lines, in archive order (series lines, then category lines): every
# dataset `ingest_eia_bulk` loads by default (ELEC, PET, NG, COAL, TOTAL, EBA), so a deployment run with
# its default parameters finds them all. Each source is a sample file and the series-id prefix of the
# lines taken from it (None: every line). `dc_bulk_ELEC_lines_edited.txt` is left out: its upstream
# author hand-edited it, so it is not EIA output. EBA has no real bulk lines among the samples: its
# archive is `_eba_lines`, below.
_BULK_ARCHIVES: Final[dict[str, tuple[tuple[str, str | None], ...]]] = {
    "ELEC": (("pudl_bulk_ELEC_lines.txt", None),),
    "NG": (("dc_bulk_NG_more_lines.txt", None), ("dc_bulk_NG_series_and_category_lines.txt", None)),
    "PET": (("dc_bulk_PET_lines.txt", None),),
    "COAL": (("dc_bulk_COAL_lines_selected.txt", None),),
    "TOTAL": (("dc_bulk_INTL_TOTAL_SEDS_lines.txt", "TOTAL."),),
    "EBA": (),
}
# The trimmed manifest sample lists ELEC, EBA and NG only. The other datasets get entries in the same
# shape (no category, description or coverage fields: the samples do not hold EIA's); their stamps are
# the newest `last_updated` of the lines served, not EIA's manifest values.
_DERIVED_MANIFEST_ENTRIES: Final[dict[str, dict[str, str]]] = {
    "PET": {"name": "Petroleum", "title": "Petroleum"},
    "COAL": {"name": "Coal", "title": "Coal"},
    "TOTAL": {"name": "Total Energy", "title": "Total Energy"},
}
_EBA_SAMPLE: Final = "fc_v2_rto_fuel_type_hourly_first_rows.json"


@dataclass
class RouteData:
    """All rows one route serves at one frequency, in EIA's `/data` row shape (string values)."""

    route: str
    rows: list[dict[str, Any]]
    frequency: str
    date_format: str
    description: str | None = None
    numbers_as_strings: bool = True


@dataclass
class ReplayDataset:
    routes: dict[str, list[RouteData]]
    seriesid: dict[str, dict[str, Any]]
    bulk_manifest: dict[str, Any] | None = None
    bulk_files: dict[str, bytes] = field(default_factory=dict)
    # Real route metadata bodies (`GET /v2/<route>`); routes without one get metadata derived from rows.
    route_meta: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_route_rows(
        self,
        route: str,
        frequency: str,
        date_format: str,
        rows: Iterable[dict[str, Any]],
        description: str | None = None,
    ) -> None:
        """Appends rows to the route's data at that frequency, creating it if needed."""
        route = route.strip("/")
        for data in self.routes.setdefault(route, []):
            if data.frequency == frequency:
                data.rows.extend(rows)
                if data.description is None:
                    data.description = description
                return
        self.routes[route].append(RouteData(route, list(rows), frequency, date_format, description))

    def add_seriesid(self, series_id: str, body: dict[str, Any]) -> None:
        self.seriesid[series_id] = body

    def route_data(self, route: str, frequency: str) -> RouteData | None:
        return next((d for d in self.routes.get(route.strip("/"), []) if d.frequency == frequency), None)


def _route_of(path: Path, body: dict[str, Any]) -> str:
    command = (body.get("request") or {}).get("command")
    if isinstance(command, str) and command.startswith("/v2/"):
        return command.removeprefix("/v2/").strip("/").removesuffix("/data").strip("/")
    try:
        return _ROUTES_OF_SAMPLES_WITHOUT_COMMAND[path.name]
    except KeyError:
        raise ValueError(f"sample {path.name} has no request.command; its route is unknown") from None


def _load_response_samples(dataset: ReplayDataset, samples_dir: Path) -> None:
    for path in sorted(samples_dir.glob("*.json")):
        if not path.name.startswith(("fc_v2_", "myeia_")):
            continue
        body = json.loads(path.read_text(encoding="utf-8"))
        if path.name.startswith(_SERIESID_PREFIX):
            dataset.add_seriesid(path.stem.removeprefix(_SERIESID_PREFIX), body)
            continue
        response = body["response"]
        route = _route_of(path, body)
        if "data" in response and isinstance(response["data"], list):
            dataset.add_route_rows(
                route,
                response["frequency"],
                response["dateFormat"],
                response["data"],
                response.get("description"),
            )
        else:
            dataset.route_meta[route] = body


def _zip_bytes(member: str, text: bytes, modified: datetime) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # A fixed timestamp keeps the archive bytes, and so its ETag, identical across runs.
        info = zipfile.ZipInfo(member, date_time=modified.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, text)
    return buffer.getvalue()


def load_bulk_samples(samples_dir: Path | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The real (trimmed) bulk manifest, completed for every default dataset, and their archives."""
    samples_dir = samples_dir or SAMPLES_DIR
    manifest = json.loads((samples_dir / _MANIFEST_SAMPLE).read_text(encoding="utf-8"))
    entries: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for dataset_id, sources in _BULK_ARCHIVES.items():
        if sources:
            lines = [line for name, prefix in sources for line in _bulk_lines(samples_dir / name, prefix)]
        else:  # EBA
            lines = _eba_lines(samples_dir / _EBA_SAMPLE)
        entry = manifest["dataset"].get(dataset_id) or _derived_entry(dataset_id, manifest["dataset"]["ELEC"], lines)
        modified = datetime.fromisoformat(entry["modified"])
        files[f"{dataset_id}.zip"] = _zip_bytes(f"{dataset_id}.txt", b"".join(lines), modified)
        entries[dataset_id] = entry
    return {"dataset": entries}, files


def _bulk_lines(path: Path, prefix: str | None) -> list[bytes]:
    """The sample's lines (each ending in a newline), or those whose series_id starts with `prefix`."""
    lines = _with_newline(path.read_bytes()).splitlines(keepends=True)
    if prefix is None:
        return lines
    return [line for line in lines if str(json.loads(line).get("series_id", "")).startswith(prefix)]


def _derived_entry(dataset_id: str, model: dict[str, Any], lines: list[bytes]) -> dict[str, Any]:
    """A manifest entry in the real entries' shape for a dataset the trimmed manifest sample lacks."""
    stamp = max(str(json.loads(line)["last_updated"]) for line in lines if b'"last_updated"' in line)
    dropped = ("category_id", "description", "keyword", "spatial", "temporal")
    fixed = {k: v for k, v in model.items() if k not in dropped}
    return {
        **fixed,
        **_DERIVED_MANIFEST_ENTRIES[dataset_id],
        "data_set": dataset_id,
        "identifier": dataset_id,
        "accessURL": f"https://www.eia.gov/opendata/bulk/{dataset_id}.zip",
        "last_updated": stamp,
        "modified": stamp,
    }


def _eba_lines(path: Path) -> list[bytes]:
    """EBA.txt lines carrying the real EIA-930 rows of the API sample, one series line per fuel.

    EBA.txt holds the same Form EIA-930 data as the API's electricity/rto routes. Its lines are
    series lines like the other datasets' (`series_id`, `name`, `units`, `f`, `data` newest first),
    with EBA's ids (`EBA.<respondent>-ALL.NG.<fuel>.H`) and UTC hour tokens (`20190101T00Z`). The
    values are EIA's, reshaped: this is not EIA's bulk output.
    """
    body = json.loads(path.read_text(encoding="utf-8"))
    by_series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in body["response"]["data"]:
        by_series.setdefault((row["respondent"], row["fueltype"]), []).append(row)
    lines: list[bytes] = []
    for (respondent, fuel), rows in by_series.items():
        first = rows[0]
        tokens = [datetime.strptime(r["period"], "%Y-%m-%dT%H").strftime("%Y%m%dT%HZ") for r in rows]
        line = {
            "series_id": f"EBA.{respondent}-ALL.NG.{fuel}.H",
            "name": f"Net generation from {first['type-name'].lower()} for {first['respondent-name']}, "
            "hourly - UTC time",
            "units": first["value-units"],
            "f": "H",
            "start": min(tokens),
            "end": max(tokens),
            "data": [[t, int(r["value"])] for t, r in sorted(zip(tokens, rows, strict=True), reverse=True)],
        }
        lines.append(json.dumps(line, separators=(",", ":")).encode() + b"\n")
    return lines


def _with_newline(content: bytes) -> bytes:
    return content if content.endswith(b"\n") else content + b"\n"


def load_samples(samples_dir: Path | None = None) -> ReplayDataset:
    """The real samples: route rows, route metadata, seriesid bodies, the bulk manifest and archives."""
    samples_dir = samples_dir or SAMPLES_DIR
    dataset = ReplayDataset(routes={}, seriesid={})
    _load_response_samples(dataset, samples_dir)
    if (samples_dir / _MANIFEST_SAMPLE).exists():
        dataset.bulk_manifest, dataset.bulk_files = load_bulk_samples(samples_dir)
    return dataset


# --- synthetic series -------------------------------------------------------------------------


def _bad_start(frequency: str, start: str) -> ValueError:
    example = EXAMPLE_PERIODS.get(frequency, "?")
    return ValueError(f"start {start!r} is not a {frequency} period token like {example!r}")


def period_tokens(frequency: str, start: str, count: int) -> list[str]:
    """`count` consecutive EIA period tokens of `frequency`, from `start` forward."""
    if frequency not in DATE_FORMATS:
        raise ValueError(f"unknown EIA frequency {frequency!r}; expected one of {sorted(DATE_FORMATS)}")
    try:
        if frequency == "annual":
            return [str(int(start) + i) for i in range(count)]
        if frequency in ("quarterly", "monthly"):
            # Count periods from year 0 so that stepping across a year boundary is plain arithmetic.
            per_year, pattern = (4, r"(\d{4})-Q([1-4])") if frequency == "quarterly" else (12, r"(\d{4})-(\d{2})")
            match = re.fullmatch(pattern, start)
            if match is None or not 1 <= int(match.group(2)) <= per_year:
                raise _bad_start(frequency, start)
            first = int(match.group(1)) * per_year + int(match.group(2)) - 1
            if frequency == "quarterly":
                return [f"{k // 4:04d}-Q{k % 4 + 1}" for k in range(first, first + count)]
            return [f"{k // 12:04d}-{k % 12 + 1:02d}" for k in range(first, first + count)]
        if frequency in ("weekly", "daily"):
            step = timedelta(days=7 if frequency == "weekly" else 1)
            day = date.fromisoformat(start)
            return [(day + i * step).isoformat() for i in range(count)]
        # Hourly tokens: UTC for "hourly"; local time plus a fixed UTC offset for "local-hourly".
        match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2})([+-]\d{2})?", start)
        if match is None or (match.group(2) is None) != (frequency == "hourly"):
            raise _bad_start(frequency, start)
        hour = datetime.strptime(match.group(1), "%Y-%m-%dT%H")
        offset = match.group(2) or ""
        return [(hour + timedelta(hours=i)).strftime("%Y-%m-%dT%H") + offset for i in range(count)]
    except ValueError:
        raise _bad_start(frequency, start) from None


def eia_number(value: float, decimals: int = 2) -> str:
    """A number as EIA's `/data` routes write it: a string, no trailing zeros ("2.9", "3")."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _default_value(i: int) -> str:
    return eia_number(100 + 10 * math.sin(i / 6))


def synthetic_route_series(
    route: str,
    frequency: str,
    *,
    n_points: int,
    facets: dict[str, str],
    column: str = "value",
    unit: str,
    unit_column: str | None = None,
    start: str | None = None,
    value_fn: Callable[[int], str | None] | None = None,
    extra: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Rows of one series in EIA's `/data` shape: period, facets, descriptive columns, value, unit.

    `route` only names the series in error messages; rows carry no route. Values are strings (or
    None, EIA's null); the unit column is `<column>-units` unless `unit_column` says otherwise
    ("units" on the petroleum and natural-gas routes, "unit" on steo and total-energy).
    """
    if n_points < 0:
        raise ValueError(f"{route}: n_points must not be negative, got {n_points}")
    periods = period_tokens(frequency, start or EXAMPLE_PERIODS.get(frequency, ""), n_points)
    value_of = value_fn or _default_value
    units_key = unit_column or f"{column}-units"
    return [
        {"period": period, **facets, **(extra or {}), column: value_of(i), units_key: unit}
        for i, period in enumerate(periods)
    ]


def synthetic_seriesid(
    series_id: str,
    frequency: str,
    *,
    n_points: int,
    start: str,
    unit: str,
    value_fn: Callable[[int], float | str | None] | None = None,
    description: str = "Synthetic series",
) -> dict[str, Any]:
    """A `/v2/seriesid/<ID>` body for one made-up series, in the shape of the real STEO sample.

    Rows are newest first with JSON-number values, as EIA sends them on this endpoint; the stand-in
    pages, filters and sorts them like the real samples.
    """
    if n_points < 0:
        raise ValueError(f"{series_id}: n_points must not be negative, got {n_points}")
    periods = period_tokens(frequency, start, n_points)
    value_of = value_fn or (lambda i: round(100 + 10 * math.sin(i / 6), 2))
    short_id = series_id.split(".")[1] if series_id.count(".") >= 2 else series_id
    rows = [
        {"period": period, "seriesId": short_id, "seriesDescription": description, "value": value_of(i), "unit": unit}
        for i, period in enumerate(periods)
    ]
    rows.reverse()
    response = {
        "total": n_points,
        "dateFormat": DATE_FORMATS[frequency],
        "frequency": frequency,
        "data": rows,
        "description": description,
        "id": series_id.split(".", 1)[0].lower(),
    }
    return {"response": response, "request": {}, "apiVersion": "2.1.14", "ExcelAddInVersion": "2.1.0"}


def data_columns(row: dict[str, Any]) -> list[str]:
    """A `/data` row's data columns: each one with a `<column>-units` partner, and `value`.

    `value` counts even without a partner: the petroleum, natural-gas, steo and total-energy routes
    name its unit column `units` or `unit`, which is descriptive and stays in every row.
    """
    return [k for k in row if f"{k}-units" in row or k == "value"]


def data_and_unit_columns(row: dict[str, Any]) -> set[str]:
    columns = data_columns(row)
    return {*columns, *(f"{c}-units" for c in columns if f"{c}-units" in row)}


def merge_data_columns(*series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Joins single-column series over the same periods into EIA's multi-column rows.

    EIA orders a multi-column row as: period and facet columns, the data columns, then their units.
    """
    merged: list[dict[str, Any]] = []
    for parts in zip(*series, strict=True):
        head: dict[str, Any] = {}
        values: dict[str, Any] = {}
        units: dict[str, Any] = {}
        for part in parts:
            for key, value in part.items():
                if key.endswith("-units"):
                    units[key] = value
                elif f"{key}-units" in part:
                    values[key] = value
                else:
                    head[key] = value
        merged.append({**head, **values, **units})
    return merged


def _add_new_rows(dataset: ReplayDataset, route: str, frequency: str, rows: list[dict[str, Any]]) -> None:
    """Adds synthetic rows, skipping any period a real sample already has for the same series.

    A duplicate (period, series) pair would be a fault the real API does not have.
    """
    existing = dataset.route_data(route, frequency)
    keys = [k for k in rows[0] if k not in data_and_unit_columns(rows[0])] if rows else []
    seen = {tuple(str(r.get(k)) for k in keys) for r in (existing.rows if existing else [])}
    fresh = [r for r in rows if tuple(str(r.get(k)) for k in keys) not in seen]
    dataset.add_route_rows(route, frequency, DATE_FORMATS[frequency], fresh)


def _wave(
    base: float,
    *,
    cycle: int,
    amplitude: float,
    trend: float = 0.0,
    phase: int = 0,
    decimals: int = 2,
    withheld_every: int = 0,
) -> Callable[[int], str | None]:
    """Made-up but plausible values: a linear trend times a periodic swing (daily, yearly, ...).

    With `withheld_every`, every n-th point is EIA's withheld token "w" (1: every point).
    """

    def value(i: int) -> str | None:
        if withheld_every and i % withheld_every == withheld_every - 1:
            return "w"
        swing = math.sin(2 * math.pi * ((i - phase) % cycle) / cycle)
        return eia_number(base * (1 + trend * i) * (1 + amplitude * swing), decimals)

    return value


def _retail_sales(dataset: ReplayDataset) -> None:
    sectors = {  # sectorid: (sectorName, price in 2001 in cents per kilowatt-hour)
        "ALL": ("all sectors", 6.75),
        "RES": ("residential", 8.3),
        "COM": ("commercial", 7.9),
        "IND": ("industrial", 4.9),
    }
    for sector, (name, base) in sectors.items():
        rows = synthetic_route_series(
            "electricity/retail-sales",
            "monthly",
            n_points=307,  # 2001-01 .. 2026-07, EIA's span for this route in the real metadata sample
            start="2001-01",
            facets={"stateid": "US"},
            extra={"stateDescription": "U.S. Total", "sectorid": sector, "sectorName": name},
            column="price",
            unit="cents per kilowatt-hour",
            value_fn=_wave(base, cycle=12, amplitude=0.04, trend=0.0032),
        )
        _add_new_rows(dataset, "electricity/retail-sales", "monthly", rows)


def _rto_fuel_type(dataset: ReplayDataset) -> None:
    fuels = {  # fueltype: (type-name, mean MWh per hour for the Lower 48, daily swing)
        "COL": ("Coal", 75000, 0.10),
        "NG": ("Natural Gas", 180000, 0.25),
        "NUC": ("Nuclear", 88000, 0.01),
        "SUN": ("Solar", 0, 0.0),
        "WND": ("Wind", 42000, 0.20),
    }
    for fuel, (name, mean, swing) in fuels.items():
        rows = synthetic_route_series(
            "electricity/rto/fuel-type-data",
            "hourly",
            n_points=720,
            start="2026-09-01T00",
            facets={"respondent": "US48"},
            extra={"respondent-name": "United States Lower 48", "fueltype": fuel, "type-name": name},
            unit="megawatthours",
            value_fn=_solar_mwh if fuel == "SUN" else _wave(mean, cycle=24, amplitude=swing, phase=18, decimals=0),
        )
        _add_new_rows(dataset, "electricity/rto/fuel-type-data", "hourly", rows)


def _solar_mwh(i: int) -> str:
    # Periods are UTC: Lower-48 daylight is roughly 13..01 UTC, and solar output is zero at night.
    return str(max(0, round(60000 * math.sin(math.pi * ((i % 24 - 13) % 24) / 12))))


def _rto_region_demand(dataset: ReplayDataset) -> None:
    respondents = {  # respondent: (respondent-name, UTC offset in September, mean demand MWh)
        "US48": ("United States Lower 48", "-04", 470000),
        "CISO": ("California Independent System Operator", "-07", 28000),
        "ERCO": ("Electric Reliability Council of Texas, Inc.", "-05", 52000),
        "PJM": ("PJM Interconnection, LLC", "-04", 95000),
    }
    for respondent, (name, offset, mean) in respondents.items():
        rows = synthetic_route_series(
            "electricity/rto/region-data",
            "local-hourly",
            n_points=336,
            start=f"2026-09-01T00{offset}",
            facets={"respondent": respondent},
            extra={"respondent-name": name, "type": "D", "type-name": "Demand"},
            unit="megawatthours",
            value_fn=_wave(mean, cycle=24, amplitude=0.18, phase=10, decimals=0),
        )
        _add_new_rows(dataset, "electricity/rto/region-data", "local-hourly", rows)


def _henry_hub(dataset: ReplayDataset) -> None:
    rows = synthetic_route_series(
        "natural-gas/pri/fut",
        "daily",
        n_points=365,  # up to 2026-08-31; the real sample continues from 2026-09-01
        start="2025-09-01",
        facets={"series": "RNGWHHD"},
        extra={
            "duoarea": "RGC",
            "area-name": "NA",
            "product": "EPG0",
            "product-name": "Natural Gas",
            "process": "PS0",
            "process-name": "Spot Price",
            "series-description": "Henry Hub Natural Gas Spot Price (Dollars per Million Btu)",
        },
        unit="$/MMBTU",
        unit_column="units",
        value_fn=_wave(3.1, cycle=145, amplitude=0.15, trend=0.0004),
    )
    # Reorder to the real row's key order, and drop weekends: spot prices exist on trading days only.
    order = ["period", "duoarea", "area-name", "product", "product-name", "process", "process-name"]
    trading = [r for r in rows if date.fromisoformat(r["period"]).weekday() < 5]
    _add_new_rows(dataset, "natural-gas/pri/fut", "daily", [_reordered(r, order) for r in trading])


def _reordered(row: dict[str, Any], first: list[str]) -> dict[str, Any]:
    return {**{k: row[k] for k in first}, **{k: v for k, v in row.items() if k not in first}}


def _gasoline_spot(dataset: ReplayDataset) -> None:
    rows = synthetic_route_series(
        "petroleum/pri/spt",
        "weekly",
        n_points=300,  # Fridays 2021-01-01 .. 2026-09-25
        start="2021-01-01",
        facets={"series": "EER_EPMRU_PF4_Y35NY_DPG"},
        extra={
            "duoarea": "Y35NY",
            "area-name": "NEW YORK CITY",
            "product": "EPMRU",
            "product-name": "Conventional Regular Gasoline",
            "process": "PF4",
            "process-name": "Spot Price FOB",
            "series-description": ("New York Harbor Conventional Gasoline Regular Spot Price FOB (Dollars per Gallon)"),
        },
        unit="$/GAL",
        unit_column="units",
        value_fn=_wave(2.35, cycle=107, amplitude=0.23, decimals=3),
    )
    order = ["period", "duoarea", "area-name", "product", "product-name", "process", "process-name"]
    _add_new_rows(dataset, "petroleum/pri/spt", "weekly", [_reordered(r, order) for r in rows])


def _coal_prices(dataset: ReplayDataset) -> None:
    regions = {  # stateRegionId: (description, price $/short ton, sales short tons, withheld every n-th year)
        "US": ("U.S. Total", 24.0, 900_000_000, 0),
        "WY": ("Wyoming", 9.5, 380_000_000, 0),
        "PA": ("Pennsylvania", 38.0, 45_000_000, 6),
        "AK": ("Alaska", 0.0, 0, 1),  # a single mine: EIA withholds every year
    }
    markets = {  # marketTypeId: (description, price factor, sales factor) relative to the open market
        "OM": ("Open Market", 1.0, 1.0),
        "TOT": ("Total", 0.97, 1.3),
    }
    for region, (name, price, sales, withheld_every) in regions.items():
        for market, (market_name, price_factor, sales_factor) in markets.items():
            common: dict[str, Any] = {
                "n_points": 24,  # 2001 .. 2024
                "start": "2001",
                "facets": {"stateRegionId": region},
                "extra": {
                    "stateRegionDescription": name,
                    "marketTypeId": market,
                    "marketTypeDescription": market_name,
                },
            }
            prices = synthetic_route_series(
                "coal/market-sales-price",
                "annual",
                column="price",
                unit="dollars per short ton",
                value_fn=_wave(
                    price * price_factor, cycle=9, amplitude=0.05, trend=0.035, withheld_every=withheld_every
                ),
                **common,
            )
            amounts = synthetic_route_series(
                "coal/market-sales-price",
                "annual",
                column="sales",
                unit="short tons",
                value_fn=_wave(
                    sales * sales_factor,
                    cycle=7,
                    amplitude=0.03,
                    trend=-0.025,
                    decimals=0,
                    withheld_every=withheld_every,
                ),
                **common,
            )
            _add_new_rows(dataset, "coal/market-sales-price", "annual", merge_data_columns(prices, amounts))


def _total_energy(dataset: ReplayDataset) -> None:
    rows = synthetic_route_series(
        "total-energy",
        "monthly",
        n_points=300,  # 2001-01 .. 2025-12
        start="2001-01",
        facets={"msn": "TETCBUS"},
        extra={"seriesDescription": "Total Primary Energy Consumption"},
        unit="Quadrillion Btu",
        unit_column="unit",
        value_fn=_wave(8.2, cycle=12, amplitude=0.08, trend=0.0001, decimals=3),
    )
    _add_new_rows(dataset, "total-energy", "monthly", rows)


def _operational_generation(dataset: ReplayDataset) -> None:
    rows = synthetic_route_series(
        "electricity/electric-power-operational-data",
        "quarterly",
        n_points=100,  # 2001-Q1 .. 2025-Q4
        start="2001-Q1",
        facets={"location": "US", "sectorid": "99", "fueltypeid": "ALL"},
        extra={
            "stateDescription": "U.S. Total",
            "sectorDescription": "All Sectors",
            "fuelTypeDescription": "all fuels",
        },
        column="generation",
        unit="thousand megawatthours",
        value_fn=_wave(950000, cycle=4, amplitude=0.07, trend=0.0012),
    )
    order = ["period", "location", "stateDescription", "sectorid", "sectorDescription", "fueltypeid"]
    _add_new_rows(
        dataset,
        "electricity/electric-power-operational-data",
        "quarterly",
        [_reordered(r, order) for r in rows],
    )


def _oracle_number_text(value: Any) -> str | None:
    """A seriesid number as the /data routes print it: a string without a leading zero (".4794")."""
    if value is None or isinstance(value, str):
        return value
    text = format(Decimal(repr(value)), "f")
    if text.startswith(("0.", "-0.")):
        text = text.replace("0.", ".", 1)
    return text


def _steo_world_consumption(dataset: ReplayDataset) -> None:
    """steo/PATC_WORLD as `/v2/steo/data` sends it: the real seriesid numbers, as strings."""
    body = dataset.seriesid["STEO.PATC_WORLD.M"]["response"]
    rows = [{**r, "value": _oracle_number_text(r["value"])} for r in body["data"]]
    _add_new_rows(dataset, "steo", "monthly", rows)


def default_demo_dataset() -> ReplayDataset:
    """The real samples plus deterministic synthetic series covering the default catalog."""
    dataset = load_samples()
    for build in (
        _retail_sales,
        _rto_fuel_type,
        _rto_region_demand,
        _henry_hub,
        _gasoline_spot,
        _coal_prices,
        _total_energy,
        _operational_generation,
        _steo_world_consumption,
    ):
        build(dataset)
    from tasks.standin.families import add_catalog_families  # it builds on this module's helpers

    add_catalog_families(dataset)
    return dataset
