"""Money and rate units: integer fen, basis points, exact fractions; floats are refused."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from fractions import Fraction

from lending.errors import InvalidAmountError, InvalidRateError

BPS_PER_UNIT = 10_000
FEN_PER_YUAN = 100

Rate = int | Decimal
"""An annual rate: int means basis points (1200 = 12%), Decimal means percent (12.5 = 12.5%)."""


def rate_fraction(rate: Rate, what: str = "rate") -> Fraction:
    """Exact annual rate as a fraction of one (1200 bps -> 3/25)."""
    if isinstance(rate, bool) or not isinstance(rate, int | Decimal):
        raise InvalidRateError(
            f"{what} {rate!r} has type {type(rate).__name__}; pass an int of basis points "
            "(1200 = 12%) or a Decimal percent (Decimal('12') = 12%), never a float"
        )
    if isinstance(rate, Decimal) and not rate.is_finite():
        raise InvalidRateError(f"{what} {rate} is not a finite number; pass a Decimal percent")
    value = Fraction(rate, BPS_PER_UNIT) if isinstance(rate, int) else Fraction(rate) / 100
    if value < 0:
        raise InvalidRateError(f"{what} {rate} is negative; rates must be >= 0")
    return value


def rate_percent(rate: Rate, what: str = "rate") -> Decimal:
    """Annual rate in percent as an exact Decimal (1200 bps -> Decimal('12.00'))."""
    rate_fraction(rate, what)
    return Decimal(rate).scaleb(-2) if isinstance(rate, int) else rate


def round_half_up(x: Fraction) -> int:
    """Nearest integer with halves away from zero (四舍五入), computed exactly."""
    q, r = divmod(abs(x.numerator), x.denominator)
    if 2 * r >= x.denominator:
        q += 1
    return q if x >= 0 else -q


def check_fen(value: object, what: str, *, allow_zero: bool = True) -> int:
    """Validate a money amount in fen: an int (not bool), >= 0 (or > 0)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmountError(
            f"{what} {value!r} must be an int number of fen (1 yuan = 100 fen), "
            f"got {type(value).__name__}"
        )
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidAmountError(f"{what} is {value} fen; it must be {bound}")
    return value


def yuan_to_fen(yuan: Decimal | str, what: str = "amount") -> int:
    """Convert a yuan amount with at most 2 decimals to whole fen, exactly."""
    try:
        value = Decimal(yuan) if isinstance(yuan, str) else yuan
    except InvalidOperation:
        raise InvalidAmountError(f"{what} {yuan!r} is not a number of yuan") from None
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidAmountError(f"{what} {yuan!r} must be a finite Decimal number of yuan")
    fen = value * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise InvalidAmountError(
            f"{what} {yuan} yuan has more than 2 decimal places; amounts are whole fen (0.01 yuan)"
        )
    return check_fen(int(fen), what)


def format_fen(fen: int) -> str:
    """Fen as a yuan string with thousands separators: 123456 -> '1,234.56'."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{yuan:,}.{cents:02d}"


def quantize_pct(value: Decimal, places: int = 4) -> Decimal:
    """Round a percent figure to `places` decimals (banker's rounding, for display only)."""
    with localcontext() as ctx:
        ctx.prec = 50
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
