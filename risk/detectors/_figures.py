"""Exact figures for evidence: ratios as decimal strings, medians of fractions (no floats)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from risk.rules import DAY


def decimal_str(value: Fraction | int, places: int = 4) -> str:
    """An exact ratio as a decimal string rounded half up (away from zero) to `places`."""
    scaled = abs(Fraction(value)) * 10**places
    whole = (scaled.numerator * 2 + scaled.denominator) // (2 * scaled.denominator)
    sign = "-" if value < 0 and whole else ""
    digits = str(whole).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"


def days_str(seconds: int) -> str:
    """Seconds as days, two decimals."""
    return decimal_str(Fraction(seconds, DAY), 2)


def median(values: Sequence[Fraction]) -> Fraction:
    """The median (mean of the two middle values for an even count); values must not be empty."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
