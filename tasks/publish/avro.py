"""Avro schemas for the published streams, derived from the record so they cannot drift from it.

`SeriesObservation` is generated from `tasks.normalize.observation`: one Avro field per column of the
time-series table (`TABLE_COLUMNS`, in order), so a consumer sees exactly the merged row, including
`revision` and the `created_at`/`updated_at` bookkeeping as timestamp-micros. Observation fields take
their types from the dataclass annotations; the loader's columns, which the dataclass does not carry,
are typed in `_TABLE_ONLY_TYPES`. `QuarantinedRow` mirrors the quarantine table (checked against the
live database by a test).

The `*_record` functions turn an outbox payload (PostgreSQL `to_jsonb` of the row: timestamps as ISO
strings, JSONB as nested objects) into what `AvroSerializer` writes.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, Final

from tasks.normalize.observation import INGEST_FIELDS, TABLE_COLUMNS, TABLE_ONLY_FIELDS, Observation

NAMESPACE: Final = "com.aurum.eia"
OBSERVATION_NAME: Final = "SeriesObservation"
QUARANTINE_NAME: Final = "QuarantinedRow"

_TIMESTAMP: Final = {"type": "long", "logicalType": "timestamp-micros"}
_JSON_DOC: Final = "JSON text"

# Types of the table columns the Observation dataclass does not carry (NOT NULL-ness as in the DDL).
_TABLE_ONLY_TYPES: Final[Mapping[str, Any]] = {
    "tenant_id": str,
    "ingest_ts": int,  # microseconds since the epoch, as the loader stamps it
    "ingest_job_id": str | None,
    "ingest_run_id": str | None,
    "ingest_batch_id": str,
    "revision": int,
    "created_at": datetime,
    "updated_at": datetime,
}

# The quarantine table's columns in DDL order (sql/common/0001_core.sql, then 0007). `payload` is JSONB.
QUARANTINE_COLUMNS: Final[tuple[tuple[str, Any], ...]] = (
    ("id", int),
    ("tenant_id", str),
    ("series_id", str | None),
    ("raw_period", str | None),
    ("raw_value", str | None),
    ("reason", str),
    ("detail", str | None),
    ("source", str),
    ("dataset", str | None),
    ("payload", dict[str, Any] | None),
    ("ingest_run_id", str | None),
    ("ingest_batch_id", str),
    ("quarantined_at", datetime),
    ("natural_key", str | None),  # migration 0007: what makes a quarantined row the same row again
)


def _avro_type(field: str, hint: Any) -> Any:
    """Maps one Python annotation to an Avro type; unknown types fail loudly, naming the field."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            raise TypeError(f"field {field!r}: only `X | None` unions map to Avro, got {hint!r}")
        return ["null", _avro_type(field, inner[0])]
    if hint is str:
        return "string"
    if hint is float:
        return "double"
    if hint is int:
        return "long"
    if hint is bool:
        return "boolean"
    if hint is datetime:
        return dict(_TIMESTAMP)
    if hint is dict or typing.get_origin(hint) is dict:
        return "string"  # JSON objects travel as JSON text: their shape varies by route and dataset
    raise TypeError(f"field {field!r}: no Avro mapping for {hint!r}")


def _is_json(hint: Any) -> bool:
    inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return any(h is dict or typing.get_origin(h) is dict for h in inner)


def _field(name: str, hint: Any) -> dict[str, Any]:
    avro_type = _avro_type(name, hint)
    field: dict[str, Any] = {"name": name, "type": avro_type}
    if isinstance(avro_type, list):
        field["default"] = None
    if _is_json(hint):
        field["doc"] = _JSON_DOC
    return field


def observation_hints() -> dict[str, Any]:
    """Every table column with its Python type, in TABLE_COLUMNS order."""
    declared = typing.get_type_hints(Observation)
    hints = {f.name: declared[f.name] for f in dataclasses.fields(Observation)}
    missing = [c for c in (*INGEST_FIELDS, *TABLE_ONLY_FIELDS) if c not in _TABLE_ONLY_TYPES]
    if missing:
        raise TypeError(f"no Avro type declared for table column(s) {missing}; add them to _TABLE_ONLY_TYPES")
    hints.update(_TABLE_ONLY_TYPES)
    return {c: hints[c] for c in TABLE_COLUMNS}


@cache
def _observation_schema() -> str:
    return json.dumps(
        {
            "type": "record",
            "name": OBSERVATION_NAME,
            "namespace": NAMESPACE,
            "doc": "One row of eia_series_timeseries as merged; key = series_id, header version = revision.",
            "fields": [_field(name, hint) for name, hint in observation_hints().items()],
        }
    )


@cache
def _quarantine_schema() -> str:
    return json.dumps(
        {
            "type": "record",
            "name": QUARANTINE_NAME,
            "namespace": NAMESPACE,
            "doc": "One row of eia_series_quarantine: input that was not loaded, with the reason.",
            "fields": [_field(name, hint) for name, hint in QUARANTINE_COLUMNS],
        }
    )


def observation_schema() -> dict[str, Any]:
    """The `SeriesObservation` Avro schema (a fresh copy; callers may mutate it)."""
    schema: dict[str, Any] = json.loads(_observation_schema())
    return schema


def quarantine_schema() -> dict[str, Any]:
    """The `QuarantinedRow` Avro schema for the dead-letter topic."""
    schema: dict[str, Any] = json.loads(_quarantine_schema())
    return schema


def observation_schema_str() -> str:
    """The schema as the JSON text the Schema Registry stores."""
    return _observation_schema()


def quarantine_schema_str() -> str:
    return _quarantine_schema()


# ---- payload -> Avro record -------------------------------------------------------------------------

Converter = Callable[[Any], Any]


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    # to_jsonb renders timestamptz in the writer's session time zone, with its offset: keep it aware.
    return datetime.fromisoformat(str(value))


def _to_json_text(value: Any) -> str:
    # Always encode, so a JSONB string scalar stays distinguishable from an object on the wire.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _converter(avro_type: Any, json_text: bool) -> Converter:
    if json_text:
        return _to_json_text
    if isinstance(avro_type, dict) and avro_type.get("logicalType") == "timestamp-micros":
        return _to_datetime
    if avro_type == "double":
        # JSON numbers without a fraction come back as int, and to_jsonb writes NaN as the string "NaN".
        return float
    if avro_type == "long":
        return int
    return lambda v: v


def _converters(schema: Mapping[str, Any]) -> tuple[tuple[str, bool, Converter], ...]:
    out = []
    for field in schema["fields"]:
        avro_type = field["type"]
        nullable = isinstance(avro_type, list)
        base = avro_type[1] if nullable else avro_type
        out.append((field["name"], nullable, _converter(base, field.get("doc") == _JSON_DOC)))
    return tuple(out)


@cache
def _observation_converters() -> tuple[tuple[str, bool, Converter], ...]:
    return _converters(observation_schema())


@cache
def _quarantine_converters() -> tuple[tuple[str, bool, Converter], ...]:
    return _converters(quarantine_schema())


def _record(
    payload: Mapping[str, Any], converters: tuple[tuple[str, bool, Converter], ...], name: str
) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for field, nullable, convert in converters:
        value = payload.get(field)
        if value is None:
            if not nullable:
                raise ValueError(f"{name} payload lacks required field {field!r}")
            record[field] = None
        else:
            try:
                record[field] = convert(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} payload field {field!r}: {type(exc).__name__}") from None
    return record


def observation_record(payload: Mapping[str, Any]) -> dict[str, Any]:
    """An outbox payload (to_jsonb of the merged row) as a `SeriesObservation` record."""
    return _record(payload, _observation_converters(), OBSERVATION_NAME)


def quarantine_record(payload: Mapping[str, Any]) -> dict[str, Any]:
    """An outbox payload (to_jsonb of the quarantine row) as a `QuarantinedRow` record."""
    return _record(payload, _quarantine_converters(), QUARANTINE_NAME)
