"""Exact figures for evidence: ratios and days as decimal strings, exact medians (no floats)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, localcontext
from fractions import Fraction
from math import comb

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


def median(values: Iterable[Fraction | int]) -> Fraction:
    """The exact median (mean of the two middle values for an even count)."""
    ordered = sorted(Fraction(v) for v in values)
    if not ordered:
        raise ValueError("median of nothing")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def binomial_tail(k: int, n: int, p: Fraction) -> Fraction:
    """P(X >= k) for X ~ Binomial(n, p), exact."""
    return sum(
        (comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(max(k, 0), n + 1)), Fraction(0)
    )


def poisson_tail(k: int, mean: Fraction) -> Fraction:
    """P(X >= k) for X ~ Poisson(mean), to 40 significant digits (e^-mean is not rational)."""
    if k <= 0:
        return Fraction(1)
    with localcontext() as ctx:
        ctx.prec = 40
        lam = Decimal(mean.numerator) / Decimal(mean.denominator)
        term, below = (-lam).exp(), Decimal(0)
        for i in range(k):
            below += term
            term = term * lam / (i + 1)
        return Fraction(max(Decimal(0), 1 - below))
