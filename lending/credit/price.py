"""The price of an offer: the band rate, checked against the rate cap with a full disclosure.

Above the cap the rate is lowered to the highest whole bps within it (`over_cap=cap`) or the
offer is refused (`over_cap=decline`); every offer made is re-checked with the raising cap
checks (lending.pricing.caps), so no offer above the cap can leave this module.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from lending.credit.policy import CapAction, CreditPolicy, CreditProduct, OverCapAction, ScoreBand
from lending.pricing.caps import check_penalty_rate_cap, check_rate_cap
from lending.pricing.disclosure import Disclosure, disclose
from lending.pricing.lpr import LprTable
from lending.pricing.schedule import ScheduleTerms


class Pricing(BaseModel):
    """The band rate, the rate offered, and the cap rule that was applied."""

    model_config = ConfigDict(frozen=True)

    band_rate_bps: int
    offered_rate_bps: int | None
    cap_action: CapAction
    cap_rule: str
    cap_pct: Decimal
    checked_rate_pct: Decimal | None
    """The annualized figure checked against the cap (per the policy's cap basis)."""


def price_offer(
    limit_fen: int,
    band: ScoreBand,
    policy: CreditPolicy,
    contract_date: date,
    lpr_table: LprTable | None = None,
) -> tuple[Pricing, Disclosure | None]:
    """Price an offer at the band rate, or the highest rate within the cap, or refuse it."""
    cap_policy = policy.cap_policy()

    def trial(rate_bps: int) -> Disclosure:
        terms = _terms(limit_fen, rate_bps, policy.product, contract_date)
        return disclose(terms, cap_policy, lpr_table, enforce_caps=False)

    first = trial(band.rate_bps)
    if _within_cap(first):
        offer = _guard(first, policy, lpr_table)
        return _pricing(band, band.rate_bps, CapAction.WITHIN_CAP, first), offer
    found = _highest_within_cap(trial, first) if policy.over_cap is OverCapAction.CAP else None
    if found is None:
        return _pricing(band, None, CapAction.DECLINED_OVER_CAP, first), None
    rate, best = found
    return _pricing(band, rate, CapAction.CAPPED, best), _guard(best, policy, lpr_table)


def _highest_within_cap(
    trial: Callable[[int], Disclosure], over: Disclosure
) -> tuple[int, Disclosure] | None:
    """Highest whole-bps contract rate whose offer is within the cap (None if not even 0 is).

    `over` is the offer at the band rate, known to be over the cap. The annualized rate is
    close to proportional to the contract rate, so the search starts at band rate x cap /
    checked rate and gallops from there; usually two more disclosures settle it.
    """
    band_rate = int(over.annual_rate_pct * 100)
    if band_rate <= 0:
        return None  # fees or the overdue rate alone carry a zero contract rate over the cap
    checked, cap = over.rate_cap.rate_pct, over.rate_cap.cap_pct
    # Over the cap on the overdue rate only, `checked` may be 0: then search down from the top.
    proportional = int(band_rate * cap / checked) if checked > 0 else band_rate
    guess = min(band_rate - 1, max(0, proportional))
    high, probe, step = band_rate, guess, 1  # invariant: rate `high` is over the cap
    while not _within_cap(best := trial(probe)):
        if probe == 0:
            return None
        high, probe, step = probe, max(0, probe - step), step * 2
    low, step = probe, 1  # invariant: rate `low` is within the cap
    while low + step < high:
        candidate = trial(low + step)
        if not _within_cap(candidate):
            high = low + step
            break
        low, best, step = low + step, candidate, step * 2
    while high - low > 1:
        mid = (low + high) // 2
        candidate = trial(mid)
        if _within_cap(candidate):
            low, best = mid, candidate
        else:
            high = mid
    return low, best


def _terms(limit_fen: int, rate_bps: int, product: CreditProduct, start: date) -> ScheduleTerms:
    """Loan terms of an offer of the full limit."""
    return ScheduleTerms(
        principal_fen=limit_fen,
        annual_rate=rate_bps,
        term_months=product.term_months,
        kind=product.kind,
        start=start,
        upfront_fee_fen=limit_fen * product.upfront_fee_bps // 10_000,
        grace_months=product.grace_months,
        penalty_rate_bps=product.penalty_rate_bps,
    )


def _within_cap(d: Disclosure) -> bool:
    """True when the rate (and the combined overdue rate, if any) is within the cap."""
    return d.rate_cap.within_cap and (d.penalty_cap is None or d.penalty_cap.within_cap)


def _guard(d: Disclosure, policy: CreditPolicy, table: LprTable | None) -> Disclosure:
    """Re-check the offered disclosure with the raising cap checks: no offer over the cap."""
    cap_policy = policy.cap_policy()
    check_rate_cap(d.rate_cap.rate_pct, d.start, cap_policy, table)
    if d.penalty_rate_bps:
        check_penalty_rate_cap(d.rate_cap.rate_pct, d.penalty_rate_bps, d.start, cap_policy, table)
    return d


def _pricing(band: ScoreBand, offered: int | None, action: CapAction, d: Disclosure) -> Pricing:
    """The pricing record of an offer."""
    return Pricing(
        band_rate_bps=band.rate_bps,
        offered_rate_bps=offered,
        cap_action=action,
        cap_rule=d.rate_cap.rule,
        cap_pct=d.rate_cap.cap_pct,
        checked_rate_pct=d.rate_cap.rate_pct if offered is not None else None,
    )
