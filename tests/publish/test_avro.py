"""The Avro schemas are derived from the record and the quarantine table, and records round-trip."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime

import fastavro
import psycopg
import pytest

from tasks.normalize.observation import TABLE_COLUMNS, Observation
from tasks.publish import avro
from tasks.store.tables import QUARANTINE, TIMESERIES

OBSERVATION_PAYLOAD = {  # as to_jsonb renders a merged row (session time zone not UTC on purpose)
    "tenant_id": "aurum-prod",
    "series_id": "ELEC.PRICE.CA-RES.M",
    "period": "2024-02-29T16:00:00-08:00",
    "period_end": "2024-04-01T00:00:00+00:00",
    "raw_period": "2024-03",
    "frequency": "monthly",
    "value": 31,  # an integral double comes back from JSON as int
    "raw_value": "31",
    "value_flag": None,
    "unit": "cents per kilowatt-hour",
    "canonical_unit": "USD/MWh",
    "canonical_currency": "USD",
    "conversion_factor": 10.0,
    "canonical_value": 310.0,
    "area": "CA",
    "sector": "RES",
    "seasonal_adjustment": None,
    "description": "Average retail price of electricity: California: residential",
    "source": "eia-api-v2",
    "dataset": "electricity/retail-sales",
    "metadata": {"facets": {"stateid": "CA", "sectorid": "RES"}, "note": "é"},
    "ingest_ts": 1764064800123456,
    "ingest_job_id": "eia_api_series",
    "ingest_run_id": "run-1",
    "ingest_batch_id": "20261125T100000-abc",
    "revision": 2,
    "created_at": "2026-11-25T10:00:00.123456+00:00",
    "updated_at": "2026-11-25T11:30:00.5+00:00",
}


def _round_trip(schema: dict[str, object], record: dict[str, object]) -> dict[str, object]:
    parsed = fastavro.parse_schema(schema)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    buf.seek(0)
    result = fastavro.schemaless_reader(buf, parsed, parsed)
    assert isinstance(result, dict)
    return result


def test_observation_schema_has_one_field_per_table_column_in_order() -> None:
    schema = avro.observation_schema()
    assert (schema["namespace"], schema["name"]) == ("com.aurum.eia", "SeriesObservation")
    assert tuple(f["name"] for f in schema["fields"]) == TABLE_COLUMNS


def test_every_observation_field_is_in_the_schema() -> None:
    # Adding a field to Observation must reach the published schema (via TABLE_COLUMNS and the hints).
    names = {f["name"] for f in avro.observation_schema()["fields"]}
    assert {f.name for f in dataclasses.fields(Observation)} <= names


def test_python_types_map_to_avro_types() -> None:
    fields = {f["name"]: f for f in avro.observation_schema()["fields"]}
    timestamp = {"type": "long", "logicalType": "timestamp-micros"}
    assert fields["series_id"] == {"name": "series_id", "type": "string"}
    assert fields["period"]["type"] == timestamp
    assert fields["updated_at"]["type"] == timestamp
    assert fields["value"] == {"name": "value", "type": ["null", "double"], "default": None}
    assert fields["metadata"]["type"] == ["null", "string"]
    assert fields["metadata"]["default"] is None
    assert fields["ingest_ts"]["type"] == "long"
    assert fields["revision"]["type"] == "long"
    assert fields["ingest_job_id"]["type"] == ["null", "string"]


def test_unsupported_annotations_fail_naming_the_field() -> None:
    with pytest.raises(TypeError, match="'weird'"):
        avro._avro_type("weird", list[int])
    with pytest.raises(TypeError, match="'either'"):
        avro._avro_type("either", int | str | None)


def test_observation_payload_round_trips_through_avro() -> None:
    record = avro.observation_record(OBSERVATION_PAYLOAD)
    decoded = _round_trip(avro.observation_schema(), record)

    assert decoded["period"] == datetime(2024, 3, 1, tzinfo=UTC)
    assert decoded["created_at"] == datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
    assert decoded["updated_at"] == datetime(2026, 11, 25, 11, 30, 0, 500000, tzinfo=UTC)
    assert decoded["value"] == 31.0 and isinstance(decoded["value"], float)
    assert decoded["seasonal_adjustment"] is None
    assert json.loads(str(decoded["metadata"])) == OBSERVATION_PAYLOAD["metadata"]
    assert decoded["ingest_ts"] == 1764064800123456
    assert decoded["revision"] == 2
    assert decoded["series_id"] == "ELEC.PRICE.CA-RES.M"


def test_payload_without_metadata_round_trips_as_null() -> None:
    record = avro.observation_record({**OBSERVATION_PAYLOAD, "metadata": None, "value": None})
    decoded = _round_trip(avro.observation_schema(), record)
    assert decoded["metadata"] is None
    assert decoded["value"] is None


def test_payload_missing_a_required_field_is_rejected_by_name() -> None:
    payload = {k: v for k, v in OBSERVATION_PAYLOAD.items() if k != "raw_period"}
    with pytest.raises(ValueError, match="'raw_period'"):
        avro.observation_record(payload)


def test_quarantine_payload_round_trips_with_payload_as_json_text() -> None:
    payload = {
        "id": 7,
        "tenant_id": "aurum-prod",
        "series_id": None,
        "raw_period": "2024-13",
        "raw_value": "12.5",
        "reason": "bad_period",
        "detail": "month 13",
        "source": "eia-api-v2",
        "dataset": "electricity/retail-sales",
        "payload": {"period": "2024-13", "value": "12.5"},
        "ingest_run_id": None,
        "ingest_batch_id": "b1",
        "quarantined_at": "2026-11-25T10:00:00.000001+00:00",
    }
    decoded = _round_trip(avro.quarantine_schema(), avro.quarantine_record(payload))
    assert decoded["reason"] == "bad_period"
    assert decoded["series_id"] is None
    assert json.loads(str(decoded["payload"])) == payload["payload"]
    assert decoded["quarantined_at"] == datetime(2026, 11, 25, 10, 0, 0, 1, tzinfo=UTC)


def _nullable_columns(dsn: str, table: str) -> list[tuple[str, bool]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return [(r[0], r[1] == "YES") for r in rows]


def test_quarantine_schema_matches_the_quarantine_table(pg_dsn: str) -> None:
    fields = avro.quarantine_schema()["fields"]
    assert [(f["name"], isinstance(f["type"], list)) for f in fields] == _nullable_columns(pg_dsn, QUARANTINE)


def test_observation_schema_nullability_matches_the_timeseries_table(pg_dsn: str) -> None:
    fields = avro.observation_schema()["fields"]
    assert [(f["name"], isinstance(f["type"], list)) for f in fields] == _nullable_columns(pg_dsn, TIMESERIES)
