"""Money is exact: parsed from text with Decimal, stored as integer micros, never a float."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.ads.money import MAX_MICROS, format_money, parse_money


def test_amounts_are_exact_micros() -> None:
    assert parse_money("0.10") == 100_000
    assert parse_money("12.5") == 12_500_000
    assert parse_money("0.000001") == 1
    assert parse_money("1_000") == 1_000_000_000
    assert parse_money(42) == 42  # whole micros pass through
    # 0.1 + 0.2 as floats is 0.30000000000000004; as money it is 300,000 micros, exactly
    assert parse_money("0.1") + parse_money("0.2") == parse_money("0.3")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.1, "not float"),
        ("1.0000001", "more than 6 decimal places"),
        ("-1", "cannot be negative"),
        ("ten", "not an amount"),
        ("nan", "not an amount"),
        (str(MAX_MICROS), "more money"),
        (True, "not bool"),
    ],
)
def test_refuses_what_is_not_money(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_money(value)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**15))
def test_formatting_round_trips(micros: int) -> None:
    assert parse_money(format_money(micros)) == micros


def test_formatting_reads_like_money() -> None:
    assert format_money(12_500_000) == "12.50"
    assert format_money(1) == "0.000001"
    assert format_money(0) == "0.00"
