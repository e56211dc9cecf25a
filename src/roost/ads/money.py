"""Money as integer micro-units: 1 unit of the account's currency = 1,000,000 micros, as Google's and
Meta's ads APIs count it. Amounts are parsed from text with Decimal and never pass through a float,
so "0.10" is exactly 100,000 micros and a day of charges adds up to the cent."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICROS = 1_000_000
MAX_MICROS = 2**63 - 1  # a BIGINT column


def parse_money(value: str | int) -> int:
    """Micros of an amount written as text ("12.50", "0.000001") or given as whole micros (int).
    Refuses floats (their binary value is not the amount written), negatives and fractions of a micro."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"money must be text like '12.50' or whole micros, not {type(value).__name__}")
    if isinstance(value, int):
        micros = value
    else:
        try:
            amount = Decimal(value.strip().replace("_", ""))
        except InvalidOperation:
            raise ValueError(f"{value!r} is not an amount of money (write it like 12.50)") from None
        if not amount.is_finite():
            raise ValueError(f"{value!r} is not an amount of money")
        scaled = amount * MICROS
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value!r} has more than 6 decimal places (the smallest unit is a micro)")
        micros = int(scaled)
    if micros < 0:
        raise ValueError(f"money cannot be negative: {value!r}")
    if micros > MAX_MICROS:
        raise ValueError(f"{value!r} is more money than roost counts")
    return micros


def format_money(micros: int) -> str:
    """'12.50' for 12,500,000 micros: at least two decimals, more only where the amount has them."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS)
    digits = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits}"
