"""Period tokens become exact half-open UTC intervals; anything else is a PeriodError, never a crash."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tasks.core.frequencies import BULK_FREQUENCY_CODES, BY_NAME, FREQUENCIES, Months
from tasks.normalize.periods import (
    Period,
    PeriodError,
    api_period_token,
    parse_bulk_period,
    parse_period,
    period_frequency_aligned,
)
from tests.normalize import bulk_lines, response_rows, sample_json, utc


@pytest.mark.parametrize(
    ("token", "frequency", "start", "end"),
    [
        ("2024", "annual", utc(2024, 1, 1), utc(2025, 1, 1)),
        ("2024-Q1", "quarterly", utc(2024, 1, 1), utc(2024, 4, 1)),
        ("2024-Q4", "quarterly", utc(2024, 10, 1), utc(2025, 1, 1)),
        ("2024-01", "monthly", utc(2024, 1, 1), utc(2024, 2, 1)),
        ("2024-12", "monthly", utc(2024, 12, 1), utc(2025, 1, 1)),
        ("2024-01-05", "weekly", utc(2024, 1, 5), utc(2024, 1, 12)),
        ("2024-01-05", "daily", utc(2024, 1, 5), utc(2024, 1, 6)),
        ("2024-02-29", "daily", utc(2024, 2, 29), utc(2024, 3, 1)),
        ("2024-03-01T05", "hourly", utc(2024, 3, 1, 5), utc(2024, 3, 1, 6)),
        ("2024-12-31T23", "hourly", utc(2024, 12, 31, 23), utc(2025, 1, 1)),
        ("2023-03-20T00-07", "local-hourly", utc(2023, 3, 20, 7), utc(2023, 3, 20, 8)),
        ("2023-03-20T23-04", "local-hourly", utc(2023, 3, 21, 3), utc(2023, 3, 21, 4)),
        ("2023-03-20T03+05", "local-hourly", utc(2023, 3, 19, 22), utc(2023, 3, 19, 23)),
    ],
)
def test_api_tokens_become_utc_intervals(token: str, frequency: str, start: datetime, end: datetime) -> None:
    assert parse_period(token, frequency) == Period(start, end, token)


def test_local_hourly_midnight_at_utc_minus_7_starts_at_0700_utc() -> None:
    period = parse_period("2023-03-20T00-07", "local-hourly")
    assert period.start == utc(2023, 3, 20, 7)
    assert period.start.tzinfo is UTC
    assert period.raw == "2023-03-20T00-07"


def test_integer_period_2023_from_seriesid_is_annual_2023() -> None:
    assert parse_period(2023, "annual") == Period(utc(2023, 1, 1), utc(2024, 1, 1), "2023")


@pytest.mark.parametrize(
    ("token", "code", "start", "end"),
    [
        ("2021", "A", utc(2021, 1, 1), utc(2022, 1, 1)),
        ("2021Q4", "Q", utc(2021, 10, 1), utc(2022, 1, 1)),
        ("202102", "M", utc(2021, 2, 1), utc(2021, 3, 1)),
        ("20210511", "D", utc(2021, 5, 11), utc(2021, 5, 12)),
        ("20210507", "W", utc(2021, 5, 7), utc(2021, 5, 14)),
        ("20220305T05Z", "H", utc(2022, 3, 5, 5), utc(2022, 3, 5, 6)),
        ("20220304T23-06", "HL", utc(2022, 3, 5, 5), utc(2022, 3, 5, 6)),
    ],
)
def test_bulk_compact_tokens_become_utc_intervals(token: str, code: str, start: datetime, end: datetime) -> None:
    assert parse_bulk_period(token, code) == Period(start, end, token)


def test_bulk_local_hour_and_utc_hour_of_the_same_instant_share_a_start() -> None:
    assert parse_bulk_period("20220304T23-06", "HL").start == parse_bulk_period("20220305T05Z", "H").start


@pytest.mark.parametrize(
    ("token", "frequency", "why"),
    [
        ("2023-02-30", "daily", "not a calendar date"),
        ("2023-02-29", "daily", "not a calendar date"),
        ("2024-13", "monthly", "month 13 does not exist"),
        ("2024-00", "monthly", "month 0 does not exist"),
        ("2024-Q5", "quarterly", "quarter 5 does not exist"),
        ("2024-Q0", "quarterly", "quarter 0 does not exist"),
        ("2024-03-01T24", "hourly", "hour 24 does not exist"),
        ("2023-03-20T24-07", "local-hourly", "hour 24 does not exist"),
        ("2023-03-20T00-15", "local-hourly", "out of range"),
        ("0000", "annual", "year 0 is out of range"),
    ],
)
def test_impossible_dates_are_bad_periods_not_crashes(token: str, frequency: str, why: str) -> None:
    with pytest.raises(PeriodError) as raised:
        parse_period(token, frequency)
    message = str(raised.value)
    assert repr(token) in message
    assert frequency in message
    assert why in message


@pytest.mark.parametrize(
    ("token", "frequency"),
    [
        ("2024-01-05", "monthly"),  # a daily token is not a month: strict, no truncation
        ("2024-01", "annual"),
        ("2024", "monthly"),
        ("2024-01", "quarterly"),
        ("2024-Q1", "monthly"),
        ("2024-03-01T05", "daily"),
        ("2024-03-01", "hourly"),
        ("2023-03-20T00-07", "hourly"),
        ("2024-03-01T05", "local-hourly"),
        ("202401", "monthly"),  # bulk shape through the API parser
        (" 2024", "annual"),
        ("2024 ", "annual"),
        ("", "annual"),
        ("\uff12\uff10\uff12\uff14", "annual"),  # full-width "2024": str.isdigit() is true
        ("2024-1a", "monthly"),
        ("2024/01/05", "daily"),
        ("2024-03-01 05", "hourly"),
    ],
)
def test_a_token_of_the_wrong_shape_for_its_frequency_is_a_period_error(token: str, frequency: str) -> None:
    with pytest.raises(PeriodError, match="is not a valid"):
        parse_period(token, frequency)


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("2021Q1", "M"),  # the hand-edited ELEC sample: "f":"M" with quarterly periods
        ("202102", "A"),
        ("2021", "M"),
        ("2021-02", "M"),  # API shape through the bulk parser
        ("20220305T05", "H"),  # UTC hours carry a Z in bulk files
        ("20220305T05Z", "HL"),
        ("20220304T23-06", "H"),
        ("20210231", "D"),
        ("2021Q5", "Q"),
        ("20220305T24Z", "H"),
    ],
)
def test_bulk_tokens_are_checked_against_the_frequency_code(token: str, code: str) -> None:
    with pytest.raises(PeriodError) as raised:
        parse_bulk_period(token, code)
    assert repr(token) in str(raised.value)
    assert f"({code})" in str(raised.value)


@pytest.mark.parametrize("token", [None, True, 2024.0, ["2024"], b"2024"])
def test_a_period_that_is_not_text_or_an_integer_is_a_period_error(token: object) -> None:
    with pytest.raises(PeriodError, match="expected a string"):
        parse_period(token, "annual")  # type: ignore[arg-type]
    with pytest.raises(PeriodError, match="expected a string"):
        parse_bulk_period(token, "A")  # type: ignore[arg-type]


def test_unknown_frequencies_are_period_errors() -> None:
    with pytest.raises(PeriodError, match="unknown frequency 'four-week-average'"):
        parse_period("2024-01-05", "four-week-average")
    with pytest.raises(PeriodError, match="unknown bulk frequency code 'X'"):
        parse_bulk_period("2024", "X")


def test_the_raw_token_is_kept_exactly() -> None:
    assert parse_period("2024-Q1", "quarterly").raw == "2024-Q1"
    assert parse_bulk_period("20220304T23-06", "HL").raw == "20220304T23-06"
    assert parse_bulk_period(2021, "A").raw == "2021"


def test_garbage_tokens_only_ever_raise_period_error() -> None:
    rng = random.Random(20261125)
    alphabet = "0123456789-QTZ+ :x²٣"
    codes = list(BULK_FREQUENCY_CODES)
    for _ in range(5000):
        token = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 17)))
        for parse, frequency in (
            (parse_period, rng.choice(FREQUENCIES)),
            (parse_bulk_period, rng.choice(codes)),
        ):
            try:
                period = parse(token, frequency)
            except PeriodError:
                continue
            assert period.start < period.end
            assert period.start.tzinfo is UTC


@pytest.mark.parametrize(
    "name",
    [
        "fc_v2_retail_sales_first_rows_warning.json",
        "fc_v2_rto_fuel_type_hourly_first_rows.json",
        "fc_v2_ng_pri_fut_henry_hub_daily_2026-09.json",
        "fc_v2_electric_power_operational_data_first_row.json",
        "myeia_route_petroleum_move_pipe_MD0MP_R10-R20_1_monthly.json",
        "myeia_route_steo_PADI_OPEC_monthly.json",
        "myeia_seriesid_INTL.29-12-HKG-BKWH.A.json",
        "myeia_seriesid_STEO.PATC_WORLD.M.json",
        "openbb_body_coal_market_sales_price.json",
        "openbb_body_facility_fuel.json",
        "openbb_body_ng_pri_sum_null_value.json",
        "openbb_body_rto_region_data_hourly.json",
    ],
)
def test_every_sample_response_period_parses_at_its_stated_frequency(name: str) -> None:
    frequency = sample_json(name)["response"]["frequency"]
    for row in response_rows(name):
        period = parse_period(row["period"], frequency)
        assert period.raw == str(row["period"])
        assert period_frequency_aligned(period.start, frequency)


def test_every_sample_bulk_period_parses_except_the_hand_edited_line() -> None:
    import json

    failures = []
    for name in ("pudl_bulk_ELEC_lines.txt", "dc_bulk_NUC_STATUS_lines.txt", "dc_bulk_ELEC_lines_edited.txt"):
        for line in bulk_lines(name):
            series = json.loads(line)
            for token, _value in series.get("data") or []:
                try:
                    parse_bulk_period(token, series["f"])
                except PeriodError:
                    failures.append((series["series_id"], token))
    assert failures == [
        ("ELEC.SALES.MA-RES.Q", "2021Q1"),
        ("ELEC.SALES.MA-RES.Q", "2021Q2"),
        ("ELEC.SALES.MA-RES.Q", "2021Q3"),
    ]


@pytest.mark.parametrize(
    ("start", "frequency", "aligned"),
    [
        (utc(2024, 1, 1), "annual", True),
        (utc(2024, 2, 1), "annual", False),
        (utc(2024, 4, 1), "quarterly", True),
        (utc(2024, 2, 1), "quarterly", False),
        (utc(2024, 2, 1), "monthly", True),
        (utc(2024, 2, 15), "monthly", False),
        (utc(2024, 2, 15), "daily", True),
        (utc(2024, 2, 15), "weekly", True),
        (utc(2024, 2, 15, 1), "daily", False),
        (utc(2024, 2, 15, 1), "hourly", True),
        (utc(2024, 2, 15, 1, 30), "hourly", False),
        (utc(2024, 2, 15, 7), "local-hourly", True),
        (datetime(2024, 2, 1, 2, tzinfo=timezone(timedelta(hours=2))), "monthly", True),  # 00:00 UTC
        (datetime(2024, 2, 1), "monthly", False),  # naive: never aligned
        (utc(2024, 2, 1), "four-week-average", False),
    ],
)
def test_period_frequency_alignment(start: datetime, frequency: str, aligned: bool) -> None:
    assert period_frequency_aligned(start, frequency) is aligned


@pytest.mark.parametrize(
    ("frequency", "api_token", "bulk_token"),
    [
        ("annual", "2024", "2024"),
        ("quarterly", "2024-Q2", "2024Q2"),
        ("monthly", "2024-05", "202405"),
        ("weekly", "2024-05-17", "20240517"),
        ("daily", "2024-05-17", "20240517"),
        ("hourly", "2024-05-17T13", "20240517T13Z"),
        ("local-hourly", "2024-05-17T08-05", "20240517T08-05"),
    ],
)
def test_both_shapes_of_a_frequency_give_the_same_period_of_the_tables_length(
    frequency: str, api_token: str, bulk_token: str
) -> None:
    record = BY_NAME[frequency]
    api, bulk = parse_period(api_token, frequency), parse_bulk_period(bulk_token, record.code)
    assert (api.start, api.end) == (bulk.start, bulk.end)
    if isinstance(record.length, Months):
        assert (api.end.year - api.start.year) * 12 + api.end.month - api.start.month == record.length.count
    else:
        assert api.end - api.start == record.length
    assert period_frequency_aligned(api.start, frequency)
    with pytest.raises(PeriodError, match=f"expected the shape {record.api_shape}$"):
        parse_period(api_token + "0", frequency)
    with pytest.raises(PeriodError, match=f"expected the shape {record.bulk_shape}$"):
        parse_bulk_period(bulk_token + "0", record.code)


@pytest.mark.parametrize(
    ("frequency", "token"),
    [
        ("annual", "2024"),
        ("quarterly", "2024-Q2"),
        ("monthly", "2024-05"),
        ("weekly", "2024-05-17"),
        ("daily", "2024-05-17"),
        ("hourly", "2024-05-17T13"),
        ("local-hourly", "2024-05-17T13"),  # a request names the hour without an offset
    ],
)
def test_a_request_token_names_the_period_holding_the_moment(frequency: str, token: str) -> None:
    moment = utc(2024, 5, 17, 13, 45)
    assert api_period_token(moment, frequency) == token
    period = parse_period(token, "hourly" if frequency == "local-hourly" else frequency)
    assert period.start <= moment < period.end
