"""Rate caps: a configurable hard cap and a multiple of the 1-year LPR at the contract date.

The binding cap is the lower of the two; the LPR must come from a table valid on the contract
date (StaleLprTableError otherwise). A rate equal to the cap passes; anything above raises a
RateCapExceededError naming the rule. Late charges are capped on the combined rate: the
annualized contract rate plus the penalty rate must also stay within the binding cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from lending.errors import (
    InvalidRateError,
    PenaltyRateCapExceededError,
    RateCapExceededError,
    StaleLprTableError,
)
from lending.pricing.lpr import LprQuote, LprTable, load_lpr_table
from lending.pricing.units import Rate, rate_percent


class CapBasis(StrEnum):
    """Which disclosed annualized figure a loan offer is checked against."""

    STRICTEST = "strictest"
    """The highest of the three below, so no way of presenting the loan slips under the cap."""
    REGZ_APR = "regz_apr"
    PBOC_SIMPLE = "pboc_simple"
    PBOC_COMPOUND = "pboc_compound"


def parse_cap_basis(name: str | CapBasis) -> CapBasis:
    """CapBasis from its name, with an error listing the valid ones."""
    try:
        return CapBasis(name)
    except ValueError:
        names = ", ".join(b.value for b in CapBasis)
        raise InvalidRateError(f"unknown cap basis {name!r}; use one of {names}") from None


@dataclass(frozen=True)
class CapPolicy:
    """Cap configuration: hard cap in bps, LPR multiple, and the basis for offers."""

    hard_cap_bps: int = 2400
    lpr_multiple: int = 4
    use_lpr_cap: bool = True
    basis: CapBasis = CapBasis.STRICTEST

    def __post_init__(self) -> None:
        """Refuse non-positive caps and unknown bases."""
        for name in ("hard_cap_bps", "lpr_multiple"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidRateError(f"{name} is {value!r}; it must be a positive int")
        object.__setattr__(self, "basis", parse_cap_basis(self.basis))

    @property
    def hard_cap_pct(self) -> Decimal:
        """Hard cap in percent."""
        return Decimal(self.hard_cap_bps).scaleb(-2)

    @property
    def hard_cap_rule(self) -> str:
        """Rule name of the hard cap, e.g. 'hard_cap_24pct'."""
        return f"hard_cap_{_plain(self.hard_cap_pct)}pct"


DEFAULT_POLICY = CapPolicy()


@dataclass(frozen=True)
class CapCheck:
    """Outcome of a cap check: the binding rule, the cap and the rate checked against it."""

    rule: str
    cap_pct: Decimal
    rate_pct: Decimal
    within_cap: bool
    hard_cap_pct: Decimal
    lpr_cap_pct: Decimal | None
    lpr: LprQuote | None
    what: str

    @property
    def headroom_pct(self) -> Decimal:
        """Cap minus rate (negative when exceeded)."""
        return self.cap_pct - self.rate_pct


def binding_cap(
    contract_date: date, policy: CapPolicy = DEFAULT_POLICY, table: LprTable | None = None
) -> tuple[str, Decimal, Decimal | None, LprQuote | None]:
    """(rule, cap %, LPR cap % or None, LPR quote or None) binding on `contract_date`.

    A contract date after the table's validity raises StaleLprTableError: a newer fixing may
    lower the cap, so nothing is priced against an old one.
    """
    if not policy.use_lpr_cap:
        return policy.hard_cap_rule, policy.hard_cap_pct, None, None
    source = table or load_lpr_table()
    quote = source.quote(contract_date)
    if quote.stale:
        raise StaleLprTableError(
            contract_date, source.covers_through, source.version, source.origin
        )
    lpr_cap = quote.fixing.rate_pct * policy.lpr_multiple
    if lpr_cap < policy.hard_cap_pct:
        rule = f"{policy.lpr_multiple}x_lpr_{quote.fixing.date.isoformat()}"
        return rule, lpr_cap, lpr_cap, quote
    # On a tie the hard cap is reported: it does not depend on a table that may go stale.
    return policy.hard_cap_rule, policy.hard_cap_pct, lpr_cap, quote


def evaluate_rate_cap(
    rate: Rate,
    contract_date: date,
    policy: CapPolicy = DEFAULT_POLICY,
    table: LprTable | None = None,
    what: str = "annualized rate",
) -> CapCheck:
    """Check `rate` (int bps or Decimal percent) against the binding cap, without raising."""
    pct = rate_percent(rate, what)
    rule, cap, lpr_cap, quote = binding_cap(contract_date, policy, table)
    return CapCheck(rule, cap, pct, pct <= cap, policy.hard_cap_pct, lpr_cap, quote, what)


def check_rate_cap(
    rate: Rate,
    contract_date: date,
    policy: CapPolicy = DEFAULT_POLICY,
    table: LprTable | None = None,
) -> CapCheck:
    """Return the binding rule for `rate`, or raise RateCapExceededError above the cap."""
    result = evaluate_rate_cap(rate, contract_date, policy, table)
    if not result.within_cap:
        raise RateCapExceededError(
            result.rate_pct, result.cap_pct, result.rule, contract_date, result.what
        )
    return result


def check_penalty_rate_cap(
    rate: Rate,
    penalty_rate: Rate,
    contract_date: date,
    policy: CapPolicy = DEFAULT_POLICY,
    table: LprTable | None = None,
) -> CapCheck:
    """Cap the combined overdue rate (contract rate + penalty rate) like any other rate."""
    combined = rate_percent(rate, "rate") + rate_percent(penalty_rate, "penalty rate")
    result = evaluate_rate_cap(
        combined, contract_date, policy, table, what="combined rate (contract + penalty)"
    )
    if not result.within_cap:
        raise PenaltyRateCapExceededError(
            result.rate_pct, result.cap_pct, result.rule, contract_date, result.what
        )
    return result


def _plain(value: Decimal) -> str:
    """Decimal without exponent or trailing zeros: 24.00 -> '24', 24.50 -> '24.5'."""
    return format(value.normalize(), "f")
