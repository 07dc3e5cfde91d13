"""Values become finite floats or kept tokens; a token is information and is never dropped."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tasks.normalize.values import KNOWN_TOKENS, ParsedValue, parse_value, parse_value_parts
from tests.normalize import bulk_lines, response_rows, sample_files


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("6.75", 6.75),
        (" 12 ", 12.0),
        ("-3.5", -3.5),
        ("1.2E+3", 1200.0),
        ("1e-3", 0.001),
        (".5870106451", 0.5870106451),  # steo route: no leading zero
        ("0", 0.0),
        ("-0", -0.0),
        ("+7", 7.0),
        ("332493.16", 332493.16),
    ],
)
def test_numeric_text_is_a_number_and_keeps_its_text(raw: str, value: float) -> None:
    assert parse_value(raw) == ParsedValue(value, raw, None)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (0.230242794, "0.230242794"),
        (2023, "2023"),
        (0, "0"),
        (-256, "-256"),
        (1036.0, "1036.0"),
        (1e-7, "1e-07"),
    ],
)
def test_json_numbers_keep_a_round_tripping_text(raw: float, text: str) -> None:
    parsed = parse_value(raw)
    assert parsed == ParsedValue(float(raw), text, None)
    assert float(text) == raw


def test_json_null_has_no_text_and_the_null_flag() -> None:
    assert parse_value(None) == ParsedValue(None, None, "null")


@pytest.mark.parametrize("token", ["w", "W", "NA", "--", "(s)", "*", "NM", "(D)", "-", "abc", "n/a"])
def test_a_withheld_or_missing_token_is_kept_exactly_with_no_number(token: str) -> None:
    assert parse_value(token) == ParsedValue(None, token, token)


@pytest.mark.parametrize("raw", ["", "   "])
def test_empty_text_is_flagged_empty(raw: str) -> None:
    assert parse_value(raw) == ParsedValue(None, raw, "empty")


@pytest.mark.parametrize(
    ("raw", "flag"),
    [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        ("1e999", "1e999"),  # overflows to infinity
    ],
)
def test_non_finite_values_are_never_numbers(raw: object, flag: str) -> None:
    parsed = parse_value(raw)
    assert parsed.value is None
    assert parsed.flag == flag
    assert parsed.raw_value == flag


@pytest.mark.parametrize("raw", ["nan", "inf", "1_000", "٣", "0x1A", "1,234", "1.2.3", "e5", "."])
def test_text_python_would_accept_as_a_float_but_eia_does_not_mean_as_one_is_a_token(raw: str) -> None:
    assert parse_value(raw) == ParsedValue(None, raw, raw)


def test_text_longer_than_64_characters_is_never_a_number() -> None:
    digits = "1" * 65
    assert parse_value(digits) == ParsedValue(None, digits, digits)
    assert parse_value("1" * 64).value == float("1" * 64)


def test_booleans_and_structures_are_not_numbers() -> None:
    assert parse_value(True) == ParsedValue(None, "true", "true")
    assert parse_value([1, 2]) == ParsedValue(None, "[1, 2]", "invalid")
    assert parse_value({"a": 1}) == ParsedValue(None, '{"a": 1}', "invalid")


def test_an_integer_beyond_float_range_is_flagged_not_infinite() -> None:
    parsed = parse_value(10**400)
    assert parsed.value is None
    assert parsed.flag == "overflow"


def test_known_tokens_are_exactly_the_documented_set() -> None:
    assert frozenset({"w", "W", "NA", "--", "(s)", "*", "null", "NM", "(D)", "-"}) == KNOWN_TOKENS
    for token in KNOWN_TOKENS - {"null"}:
        assert parse_value(token).flag == token


def test_parts_and_parsed_value_agree() -> None:
    for raw in ("6.75", 0.2331, 7, None, "w", "", float("nan")):
        assert parse_value_parts(raw) == tuple(getattr(parse_value(raw), f) for f in ParsedValue.__slots__)


def _sample_values() -> list[tuple[str, Any]]:
    values: list[tuple[str, Any]] = []
    for path in (p for p in sample_files() if p.suffix == ".json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        data = document.get("response", {}).get("data")
        if not isinstance(data, list):
            continue
        for row in data:
            for key, raw in row.items():
                if key == "value" or f"{key}-units" in row:
                    values.append((path.name, raw))
    for path in (p for p in sample_files() if p.suffix == ".txt"):
        for line in bulk_lines(path.name):
            for pair in json.loads(line).get("data") or []:
                values.append((path.name, pair[1]))
    return values


def test_every_sample_value_is_a_finite_number_or_a_kept_token() -> None:
    values = _sample_values()
    assert len(values) > 900  # the packaged samples alone hold 990
    for where, raw in values:
        parsed = parse_value(raw)
        if parsed.value is not None:
            assert math.isfinite(parsed.value), where
            assert parsed.flag is None
        else:
            assert parsed.flag in {"null", "w", "NA"}, (where, raw)


def test_the_withheld_coal_price_keeps_its_w_and_carries_no_number() -> None:
    row = response_rows("openbb_body_coal_market_sales_price.json")[0]
    assert parse_value(row["price"]) == ParsedValue(None, "w", "w")
    assert parse_value(row["sales"]) == ParsedValue(None, "w", "w")
