"""Ground truth for the risk monitor: a seeded, labelled plan of misuse to inject (pure, no chain).

Each pattern the monitor's rules look for gets `per_pattern` cases whose parameters are drawn
from wide ranges, never one fixed number, so a rule tuned to the generator's figures would show
up as a miss: amounts as shares of a disbursement, delays from hours to about twenty days, hop
counts, cycle lengths, spreads in time, harvest excess factors and APRs above the cap. An
executor (tealedger.demo.risk_injection) plays the plan on a chain and names each case's subject.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from fractions import Fraction

HOUR = 3_600
DAY = 86_400

PATTERNS: tuple[str, ...] = (
    "cash_out",
    "circular",
    "shared_wallet",
    "merchant_concentration",
    "new_merchant_surge",
    "loan_stacking",
    "rapid_reborrow",
    "harvest_implausible",
    "apr_above_cap",
)
"""Pattern names: each is the name of the rule expected to find it."""


@dataclass(frozen=True)
class Case:
    """One injected instance of a pattern and the parameters it was drawn with."""

    pattern: str
    case_id: str
    principal_yuan: int = 0
    """The carrier loan's principal (or a circulated amount), whole yuan."""
    share: Fraction = Fraction(0)
    """Share of the disbursement sent back (cash-out), kept per hop (circular), spent at once
    (stacked or over-pledged loans), or of the mass-balance bound booked as made tea (pinned
    yields: 99.1%-100%)."""
    delay_s: int = 0
    """Total delay the pattern is spread over (seconds of chain time)."""
    hops: int = 0
    """Transfers on the way back (cash-out), or wallets in the cycle (circular)."""
    count: int = 0
    """Loans paid to the merchant, lenders deciding, rounds of the cycle, or processing steps."""
    factor: Fraction = Fraction(0)
    """Harvest: how many times its cooperative's season kg/mu the plot is made to yield, or
    (pledged) how many times all its leaf is worth the farmer borrows."""
    apr_excess_bps: int = 0
    """APR above the cap in force, in bps."""
    variant: str = ""
    """A qualitative choice (how the shared wallet arises; applications or a second identity;
    a plot's or a processor's harvest, or an over-pledged lot)."""


def _share(rng: random.Random, low: int, high: int) -> Fraction:
    """A share in percent, drawn whole and kept exact."""
    return Fraction(rng.randint(low, high), 100)


def _delay(rng: random.Random, low_s: int = 2 * HOUR, high_s: int = 20 * DAY) -> int:
    """A delay drawn log-uniformly (as many hours-long as weeks-long cases), whole seconds."""
    return int(low_s * (high_s / low_s) ** rng.random())


VARIANTS: dict[str, tuple[str, ...]] = {
    "shared_wallet": ("registered", "changed", "other_cooperative"),
    "loan_stacking": ("applications", "identity"),
    "harvest_implausible": ("plot", "yields", "pledged"),
}
"""A pattern's qualitative variants, taken in turn (stratified): every variant is played as
soon as a pattern has as many cases, whatever the seed."""


def _draw(rng: random.Random, pattern: str, k: int) -> Case:
    """Case `k` of `pattern` with freshly drawn parameters."""
    case_id = f"{pattern}-{k}"
    kinds = VARIANTS.get(pattern, ("",))
    variant = kinds[k % len(kinds)]
    principal = rng.randint(10, 80) * 100  # whole yuan, the size of the demo's input loans
    if pattern == "cash_out":
        return Case(pattern, case_id, principal, share=_share(rng, 20, 90),
                    delay_s=_delay(rng), hops=rng.randint(1, 4))  # fmt: skip
    if pattern == "circular":
        amount, share = rng.randint(10, 500) * 100, _share(rng, 90, 100)
        return Case(pattern, case_id, amount, share=share, delay_s=_delay(rng),
                    hops=rng.randint(2, 5), count=rng.randint(1, 3))  # fmt: skip
    if pattern == "shared_wallet":
        return Case(pattern, case_id, delay_s=_delay(rng), variant=variant)
    if pattern in ("merchant_concentration", "new_merchant_surge"):
        return Case(pattern, case_id, principal, share=_share(rng, 60, 100),
                    delay_s=_delay(rng, 6 * HOUR, 10 * DAY), count=rng.randint(5, 15))  # fmt: skip
    if pattern == "loan_stacking":
        # applications at several lenders, or a second farmer id on the wallet borrowing while
        # the first id's loan is open (the LoanFactory allows one open loan per id)
        return Case(pattern, case_id, principal, share=_share(rng, 50, 100),
                    delay_s=_delay(rng, HOUR, 10 * DAY), count=rng.randint(2, 3),
                    variant=variant)  # fmt: skip
    if pattern == "rapid_reborrow":
        # a full redraw: the old principal again, give or take a tenth, or more
        return Case(pattern, case_id, principal, share=_share(rng, 90, 130),
                    delay_s=_delay(rng, HOUR, 7 * DAY))  # fmt: skip
    if pattern == "harvest_implausible":
        # a plot yielding several times its cooperative's season, a new processor booking its
        # made tea at the mass-balance ceiling step after step, or a loan several times what
        # all the farmer's leaf is worth, due within weeks, spent at once
        if variant == "pledged":
            return Case(pattern, case_id, factor=Fraction(rng.randint(50, 120), 10),
                        share=_share(rng, 70, 100), delay_s=_delay(rng, 2 * DAY, 25 * DAY),
                        variant=variant)  # fmt: skip
        factor = Fraction(rng.randint(20, 50), 10)
        return Case(pattern, case_id, factor=factor, count=rng.randint(5, 9),
                    share=_share(rng, 991, 1000) / 10, variant=variant)  # fmt: skip
    if pattern == "apr_above_cap":
        return Case(pattern, case_id, principal, apr_excess_bps=rng.randint(1, 10) * 100)
    raise ValueError(f"unknown pattern {pattern!r}; patterns are {', '.join(PATTERNS)}")


def plan(seed: int, per_pattern: int = 6, patterns: tuple[str, ...] = PATTERNS) -> list[Case]:
    """The injection plan: `per_pattern` cases of each pattern, identical for identical args."""
    if per_pattern < 1:
        raise ValueError("per_pattern must be at least 1")
    out = []
    for pattern in patterns:
        # One stream per pattern: adding or dropping a pattern leaves the others' cases alone.
        rng = random.Random(f"{seed}:risk:{pattern}")
        out += [_draw(rng, pattern, k) for k in range(per_pattern)]
    return out


def typical(pattern: str, case_id: str = "") -> Case:
    """A mid-range case of `pattern` (for tests: well inside every range the plan draws from)."""
    cases = {
        "cash_out": Case("cash_out", "", 3_000, share=Fraction(1, 2), delay_s=3 * DAY, hops=2),
        "circular": Case("circular", "", 20_000, share=Fraction(98, 100), delay_s=2 * DAY,
                         hops=3, count=1),
        "shared_wallet": Case("shared_wallet", "", delay_s=DAY, variant="registered"),
        "merchant_concentration": Case("merchant_concentration", "", 3_000,
                                       share=Fraction(9, 10), delay_s=2 * DAY, count=12),
        "new_merchant_surge": Case("new_merchant_surge", "", 6_000, share=Fraction(9, 10),
                                   delay_s=2 * DAY, count=12),
        "loan_stacking": Case("loan_stacking", "", 3_000, share=Fraction(9, 10), delay_s=DAY,
                              count=2, variant="applications"),
        "rapid_reborrow": Case("rapid_reborrow", "", 3_000, share=Fraction(1), delay_s=DAY),
        "harvest_implausible": Case("harvest_implausible", "", factor=Fraction(3), variant="plot"),
        "apr_above_cap": Case("apr_above_cap", "", 3_000, apr_excess_bps=500),
    }  # fmt: skip
    if pattern not in cases:
        raise ValueError(f"unknown pattern {pattern!r}; patterns are {', '.join(PATTERNS)}")
    return replace(cases[pattern], case_id=case_id or f"{pattern}-typical")
