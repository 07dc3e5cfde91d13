"""Bulk-file lines: series → metadata + observations, category lines → categories, junk → a rejection."""

from __future__ import annotations

import json

import pytest

from tasks.normalize.bulk_lines import Category, parse_bulk_line
from tasks.normalize.observation import SOURCE_BULK
from tests.normalize import bulk_lines, utc

BULK_FILES = [
    "pudl_bulk_ELEC_lines.txt",
    "dc_bulk_COAL_lines_selected.txt",
    "dc_bulk_ELEC_lines_edited.txt",
    "dc_bulk_INTL_TOTAL_SEDS_lines.txt",
    "dc_bulk_NG_more_lines.txt",
    "dc_bulk_NG_series_and_category_lines.txt",
    "dc_bulk_NUC_STATUS_lines.txt",
    "dc_bulk_PET_lines.txt",
]
# The hand-edited line: "f":"M" but quarterly periods (see eia-samples/README.md).
EDITED_LINE = "ELEC.SALES.MA-RES.Q"


def line_of(name: str, series_id: str) -> str:
    for line in bulk_lines(name):
        if json.loads(line).get("series_id") == series_id:
            return line
    raise AssertionError(f"{series_id} is not in {name}")


@pytest.mark.parametrize("name", BULK_FILES)
def test_every_sample_line_parses_into_its_kind(name: str) -> None:
    for line in bulk_lines(name):
        raw = json.loads(line)
        parsed = parse_bulk_line(line, "TEST")
        if "series_id" in raw:
            assert parsed.kind == "series"
            assert parsed.meta is not None and parsed.meta.series_id == raw["series_id"]
            points = len(raw["data"] or [])
            assert parsed.result.received == points
            if raw["series_id"] != EDITED_LINE:
                assert parsed.result.rejections == []
                assert len(parsed.result.observations) == points
        else:
            assert parsed.kind == "category"
            assert parsed.category is not None
            assert parsed.category.category_id == int(raw["category_id"])
            assert parsed.result.received == 0


def test_the_sample_files_hold_the_expected_kinds_and_points() -> None:
    kinds: dict[str, int] = {}
    observations = rejections = 0
    for name in BULK_FILES:
        for line in bulk_lines(name):
            parsed = parse_bulk_line(line, "TEST")
            kinds[parsed.kind] = kinds.get(parsed.kind, 0) + 1
            observations += len(parsed.result.observations)
            rejections += len(parsed.result.rejections)
    assert kinds == {"series": 29, "category": 8}
    assert (observations, rejections) == (84, 3)  # 87 points; the hand-edited line's 3 are bad periods


def test_a_quarterly_elec_line_in_full() -> None:
    parsed = parse_bulk_line(line_of("pudl_bulk_ELEC_lines.txt", "ELEC.COST_BTU.NG-US-2.Q"), "ELEC")
    assert parsed.meta is not None
    assert parsed.meta.frequency == "quarterly"
    assert parsed.meta.units == "dollars per million Btu"
    assert parsed.meta.geography == parsed.meta.iso3166 == "USA"
    assert parsed.meta.last_updated == "2022-05-24T10:42:22-04:00"
    assert parsed.meta.copyright == "None"
    assert parsed.meta.extra == {
        "f": "Q",
        "start": "2008Q1",
        "end": "2022Q1",
        "geoset_id": "ELEC.COST_BTU.NG-2.Q",
    }
    assert len(parsed.result.observations) == 8
    newest = parsed.result.observations[0]
    assert newest.series_id == "ELEC.COST_BTU.NG-US-2.Q"
    assert (newest.period, newest.period_end, newest.raw_period) == (
        utc(2021, 10, 1),
        utc(2022, 1, 1),
        "2021Q4",
    )
    assert (newest.value, newest.raw_value) == (4.995772961839175, "4.995772961839175")
    assert (newest.canonical_unit, newest.canonical_currency, newest.canonical_value) == (
        "USD/MMBtu",
        "USD",
        4.995772961839175,
    )
    assert (newest.area, newest.sector, newest.source, newest.dataset) == ("USA", None, SOURCE_BULK, "ELEC")
    assert (
        newest.description
        == "Natural Gas; Power plants owned by regulated electric utilties that produce electricity only; "
    )
    assert newest.metadata == {"name": parsed.meta.name, "geography": "USA"}


def test_null_values_in_a_bulk_series_are_kept_as_null_observations() -> None:
    parsed = parse_bulk_line(line_of("pudl_bulk_ELEC_lines.txt", "ELEC.COST_BTU.NG-US-2.A"), "ELEC")
    assert [(o.raw_period, o.value, o.raw_value, o.value_flag) for o in parsed.result.observations] == [
        ("2021", None, None, "null"),
        ("2020", None, None, "null"),
    ]


def test_the_coal_line_of_null_points_keeps_three_null_observations() -> None:
    parsed = parse_bulk_line(line_of("dc_bulk_COAL_lines_selected.txt", "COAL.CONS_TOT.WV-9.Q"), "COAL")
    assert [(o.raw_period, o.value_flag) for o in parsed.result.observations] == [
        ("2000Q3", "null"),
        ("2000Q2", "null"),
        ("2000Q1", "null"),
    ]
    assert {o.unit for o in parsed.result.observations} == {"short tons"}


def test_a_null_data_array_gives_zero_observations_and_no_error() -> None:
    raw = json.loads(line_of("dc_bulk_COAL_lines_selected.txt", "COAL.CONS_TOT.WV-9.Q"))
    raw["data"] = None
    parsed = parse_bulk_line(json.dumps(raw), "COAL")
    assert parsed.kind == "series"
    assert parsed.meta is not None and parsed.meta.series_id == "COAL.CONS_TOT.WV-9.Q"
    assert parsed.result.received == 0


def test_a_plant_line_carries_its_coordinates() -> None:
    parsed = parse_bulk_line(line_of("dc_bulk_COAL_lines_selected.txt", "COAL.EXPORT_PRICE.COK-TW-SE_WA.A"), "COAL")
    assert parsed.meta is not None
    assert (parsed.meta.latitude, parsed.meta.longitude) == (47.6097, -122.3331)
    assert parsed.meta.extra["geography2"] == "USA-WA"
    observation = parsed.result.observations[0]
    assert observation.metadata == {
        "name": parsed.meta.name,
        "geography": "TWN",
        "lat": 47.6097,
        "lon": -122.3331,
    }
    assert (observation.unit, observation.canonical_unit, observation.value) == (
        "$/short ton",
        "USD/short ton",
        334.07,
    )
    assert observation.description is not None and len(observation.description) > 1000


def test_daily_nuclear_lines() -> None:
    parsed = parse_bulk_line(line_of("dc_bulk_NUC_STATUS_lines.txt", "NUC_STATUS.CAP.4046.D"), "NUC_STATUS")
    first = parsed.result.observations[0]
    assert (first.period, first.period_end, first.frequency) == (utc(2021, 5, 11), utc(2021, 5, 12), "daily")
    assert (first.unit, first.canonical_unit, first.value) == ("Megawatts", "MW", 1197.1)
    assert parsed.meta is not None and parsed.meta.copyright is None


def test_negative_net_withdrawals_and_reserve_adjustments_load() -> None:
    storage = parse_bulk_line(line_of("dc_bulk_NG_more_lines.txt", "NG.NA1350_NUS_2.A"), "NG")
    assert [o.canonical_value for o in storage.result.observations] == [58084000.0, 9248000.0, -256000.0]
    reserves = parse_bulk_line(line_of("dc_bulk_NG_more_lines.txt", "NG.RL2R02SOK_1.A"), "NG")
    assert reserves.result.observations[1].canonical_value == -4000000.0


def test_a_line_without_a_description_describes_itself_by_name() -> None:
    parsed = parse_bulk_line(line_of("dc_bulk_INTL_TOTAL_SEDS_lines.txt", "TOTAL.COFMUCL.A"), "TOTAL")
    observation = parsed.result.observations[0]
    assert observation.description == "Average Free on Board Cost of Crude Oil Imports From Colombia, Annual"
    assert (observation.unit, observation.canonical_unit, observation.value) == (
        "Dollars per Barrel",
        "USD/bbl",
        36.03,
    )
    assert observation.area is None


def test_category_lines_become_categories() -> None:
    lines = bulk_lines("dc_bulk_NG_series_and_category_lines.txt")
    categories = [parse_bulk_line(line, "NG").category for line in lines[2:]]
    assert categories[0] == Category(
        category_id=714805, parent_category_id=714804, name="Summary", notes=None, childseries=()
    )
    assert categories[4] == Category(
        category_id=457054,
        parent_category_id=457053,
        name="U.S.",
        notes=None,
        childseries=("NG.N9140US2.M", "NG.N9140US2.A"),
    )


def test_the_hand_edited_line_rejects_each_quarterly_point_of_a_monthly_series() -> None:
    parsed = parse_bulk_line(line_of("dc_bulk_ELEC_lines_edited.txt", EDITED_LINE), "ELEC")
    assert parsed.kind == "series"
    assert parsed.result.observations == []
    assert [(r.reason, r.raw_period, r.raw_value) for r in parsed.result.rejections] == [
        ("bad_period", "2021Q1", "1809.70299"),
        ("bad_period", "2021Q2", "1956.15091"),
        ("bad_period", "2021Q3", None),
    ]
    first = parsed.result.rejections[0]
    assert first.series_id == EDITED_LINE
    assert first.payload == {"series_id": EDITED_LINE, "point": ["2021Q1", 1809.70299]}
    assert "monthly (M)" in first.detail


def test_bad_points_are_rejected_one_by_one_and_the_rest_loads() -> None:
    raw = json.loads(line_of("dc_bulk_NG_more_lines.txt", "NG.RL2R02SOK_1.A"))
    raw["data"] = [["2008", 6], ["2008", 7], ["2007"], "2006", ["2006", "w"], ["20x5", 1]]
    parsed = parse_bulk_line(json.dumps(raw), "NG")
    assert [(o.raw_period, o.value, o.value_flag) for o in parsed.result.observations] == [
        ("2008", 6.0, None),
        ("2006", None, "w"),
    ]
    assert [r.reason for r in parsed.result.rejections] == [
        "duplicate_in_response",
        "bad_data_point",
        "bad_data_point",
        "bad_period",
    ]
    assert parsed.result.rejections[0].raw_value == "7"
    assert parsed.result.received == 6


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"series_id": "X", "f": "A", "data": [["2020", 1]], "name": "\xff"}', "invalid_utf8"),
        ('{"series_id": "X", "f": "A", "data": [["2020", 1]]', "invalid_json"),
        ("", "invalid_json"),
        ('["series_id", "X"]', "bad_line"),
        ('{"f": "A", "data": [["2020", 1]]}', "missing_series_id"),
        ('{"series_id": "", "f": "A", "data": []}', "missing_series_id"),
        ('{"series_id": "X", "f": "Y", "data": []}', "bad_line"),
        ('{"series_id": "X", "f": "A", "data": {"2020": 1}}', "bad_line"),
        ('{"category_id": "abc", "name": "n"}', "bad_line"),
        ('{"category_id": "1", "childseries": "NG.X"}', "bad_line"),
    ],
)
def test_unreadable_lines_become_one_rejection_each(line: str | bytes, reason: str) -> None:
    parsed = parse_bulk_line(line, "TEST")
    assert parsed.kind == "rejected"
    assert (parsed.meta, parsed.category, parsed.result.observations) == (None, None, [])
    (rejection,) = parsed.result.rejections
    assert rejection.reason == reason
    assert rejection.payload is not None and set(rejection.payload) == {"line"}


def test_a_rejected_line_keeps_at_most_2000_characters() -> None:
    line = '{"series_id": "X", "name": "' + "n" * 5000
    (rejection,) = parse_bulk_line(line, "TEST").result.rejections
    assert rejection.payload == {"line": line[:2000]}


def test_an_over_long_series_id_rejects_the_line() -> None:
    line = json.dumps({"series_id": "S" * 300, "f": "A", "data": [["2020", 1]]})
    (rejection,) = parse_bulk_line(line, "TEST").result.rejections
    assert (rejection.reason, rejection.series_id) == ("series_id_too_long", None)


def test_a_byte_order_mark_before_the_first_line_is_ignored() -> None:
    line = line_of("dc_bulk_PET_lines.txt", "PET.KDLVISSCO1.A")
    assert parse_bulk_line(b"\xef\xbb\xbf" + line.encode(), "PET") == parse_bulk_line(line, "PET")


def test_bytes_and_text_lines_parse_alike() -> None:
    line = line_of("dc_bulk_PET_lines.txt", "PET.KDLVISSCO1.A")
    assert parse_bulk_line(line.encode(), "PET") == parse_bulk_line(line, "PET")


def test_all_points_of_a_line_share_one_metadata_dict() -> None:
    parsed = parse_bulk_line(line_of("pudl_bulk_ELEC_lines.txt", "ELEC.RECEIPTS_BTU.NG-US-2.Q"), "ELEC")
    assert len({id(o.metadata) for o in parsed.result.observations}) == 1
    assert {o.canonical_unit for o in parsed.result.observations} == {"MMBtu"}
    assert parsed.result.observations[0].canonical_value == pytest.approx(971009169.34)
