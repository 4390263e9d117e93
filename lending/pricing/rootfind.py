"""Bracketed, safeguarded Newton solver for the per-unit-period rate of a loan's cash flows.

The equation is Appendix J (b)(8) written as a net present value of signed flows:
    F(i) = sum(amount_k / d_k(i)) = 0
with payments positive, advances negative and d_k the discount factor of flow k. All arithmetic
is Decimal at PRECISION digits, so there is no float and no NaN anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext
from enum import Enum
from itertools import accumulate, repeat
from operator import mul
from typing import NamedTuple

from lending.errors import InvalidCashFlowError, RootFindingError

# 40 digits: far more than the 1e-10 percent we report, so rounding never shows in the answer.
PRECISION = 40
_TOL = Decimal("1e-28")
_NEWTON_DONE = Decimal("1e-15")
_RATE_FLOOR = Decimal("1e-9")
_VERIFY_REL = Decimal("1e-6")
_MAX_RATE = Decimal(10) ** 12
_MAX_ITER = 400
_GRID_STEPS = 64


class Discounting(Enum):
    """How a flow located at (t, f) unit-periods is discounted."""

    REGZ = "regz"
    """(1 + f*i) * (1 + i)**t: simple interest for the fraction, Appendix J (b)(8)."""
    COMPOUND = "compound"
    """(1 + i)**(t + f): pure compound discounting, the textbook IRR."""


class Flow(NamedTuple):
    """One signed cash flow: amount > 0 is paid to the lender, < 0 is advanced to the borrower."""

    amount: Decimal
    t: int
    f: Decimal


def solve_unit_rate(flows: Sequence[Flow], discounting: Discounting) -> Decimal:
    """Smallest non-negative per-unit-period rate i with F(i) = 0, verified to 1e-6 relative."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return _Solver(flows, discounting).solve()


class _Solver:
    """State for one solve: flows merged by position, with their powers precomputed by slot."""

    def __init__(self, flows: Sequence[Flow], discounting: Discounting) -> None:
        merged: dict[tuple[int, Decimal], Decimal] = {}
        for amount, t, f in flows:
            merged[t, f] = merged.get((t, f), 0) + amount
        self.flows = [Flow(amount, t, f) for (t, f), amount in sorted(merged.items())]
        self.discounting = discounting
        ts = sorted({fl.t for fl in self.flows})
        # Gaps between distinct t values: all 1 after the first in regular schedules.
        self.gaps = [b - a for a, b in zip([0, *ts], ts, strict=False)]
        self.unit_steps = all(g == 1 for g in self.gaps[1:])
        slot = {t: k for k, t in enumerate(ts)}
        self.rows = [(fl.amount, slot[fl.t], Decimal(fl.t), fl.f) for fl in self.flows]
        self.fractions = sorted({fl.f for fl in self.flows if fl.f})

    def _powers(self, v: Decimal) -> list[Decimal]:
        """v ** t for each distinct t, by running products."""
        if self.unit_steps:
            return list(accumulate(repeat(v, len(self.gaps) - 1), mul, initial=v ** self.gaps[0]))
        return list(accumulate((v if g == 1 else v**g for g in self.gaps), mul))

    def npv(self, i: Decimal) -> tuple[Decimal, Decimal]:
        """F(i) and F'(i) in one pass, multiplying by powers of v = 1 / (1 + i)."""
        base = 1 + i
        v = 1 / base
        powers = self._powers(v)
        # Per distinct fraction f: its discount factor and its term in d(log discount)/di.
        fraction: dict[Decimal, tuple[Decimal, Decimal]] = {}
        if self.fractions and self.discounting is Discounting.REGZ:
            for f in self.fractions:
                simple = 1 + f * i
                fraction[f] = (1 / simple, f / simple)
        elif self.fractions:
            ln_base = base.ln()
            for f in self.fractions:
                fraction[f] = ((-f * ln_base).exp(), f * v)
        value = timed = extra = Decimal(0)
        for amount, k, t, f in self.rows:
            term = amount * powers[k]
            if f:
                factor, weight = fraction[f]
                term *= factor
                extra += term * weight
            value += term
            timed += term * t
        # F'(i) = -sum(term * (t / (1 + i) + weight_f)).
        return value, -timed * v - extra

    def value(self, i: Decimal) -> Decimal:
        """F(i) alone."""
        return self.npv(i)[0]

    def solve(self) -> Decimal:
        """Bracket, refine, verify."""
        total = sum((fl.amount for fl in self.flows), Decimal(0))
        if total < 0:
            raise InvalidCashFlowError(
                f"payments total {sum(fl.amount for fl in self.flows if fl.amount > 0)} never "
                f"repay the advances total {-sum(fl.amount for fl in self.flows if fl.amount < 0)}"
                "; the rate would be negative: check the amounts and add the missing payments"
            )
        if total == 0:
            return Decimal(0)
        guess = self._first_order_guess(total)
        lo, hi = self._bracket(guess)
        if not self._conventional():
            lo, hi = self._first_sign_change(hi)
        root = self._refine(lo, hi, guess)
        self._verify(root)
        return root

    def _conventional(self) -> bool:
        """True when every advance comes no later than every payment (unique root, see docs)."""
        adv = [fl.t + fl.f for fl in self.flows if fl.amount < 0]
        pay = [fl.t + fl.f for fl in self.flows if fl.amount > 0]
        return not adv or not pay or max(adv) <= min(pay)

    def _first_order_guess(self, total: Decimal) -> Decimal | None:
        """Root of the tangent at i = 0: a lower bound when F is convex (the usual loan)."""
        duration = sum((fl.amount * (fl.t + fl.f) for fl in self.flows), Decimal(0))
        return total / duration if duration > 0 else None

    def _bracket(self, guess: Decimal | None) -> tuple[Decimal, Decimal]:
        """Find lo < hi with F(lo) > 0 > F(hi), growing hi geometrically."""
        lo = Decimal(0)
        hi = max(2 * guess, Decimal("1e-6")) if guess is not None else Decimal("0.01")
        conventional = self._conventional()
        while True:
            f_hi = self.value(hi)
            if f_hi < 0:
                return lo, hi
            if f_hi == 0:
                return hi, hi
            if conventional:
                lo = hi  # F is strictly decreasing here, so the root lies above hi
            hi *= 4
            if hi > _MAX_RATE:
                raise InvalidCashFlowError(
                    "no finite rate makes the payments' present value equal the advances: "
                    "payments due at the very start of the term outweigh the advances; "
                    "check the payment dates (t, f) and amounts"
                )

    def _first_sign_change(self, hi: Decimal) -> tuple[Decimal, Decimal]:
        """Bracket the smallest root on a geometric grid (only for interleaved flows)."""
        lo = Decimal(0)
        for k in range(_GRID_STEPS, -1, -1):
            x = hi / (Decimal(2) ** k)
            if self.value(x) <= 0:
                return lo, x
            lo = x
        return lo, hi

    def _refine(self, lo: Decimal, hi: Decimal, guess: Decimal | None) -> Decimal:
        """Newton steps kept inside the bracket; bisection whenever Newton misbehaves."""
        if lo == hi:
            return lo
        x = guess if guess is not None and lo < guess < hi else (lo + hi) / 2
        prev_abs = None
        for _ in range(_MAX_ITER):
            fx, dfx = self.npv(x)
            if fx == 0:
                return x
            if fx > 0:
                lo = x
            else:
                hi = x
            # Newton unless it leaves the bracket or |F| failed to halve (Brent-style safeguard).
            slow = prev_abs is not None and abs(fx) > prev_abs / 2
            nx = x - fx / dfx if dfx != 0 and not slow else None
            if nx is not None and lo < nx < hi:
                # Newton converges quadratically: once a step is below sqrt(tolerance) the next
                # error is below the tolerance itself, so stop without one more evaluation.
                if abs(nx - x) <= _NEWTON_DONE * max(x, _RATE_FLOOR):
                    return nx
            else:
                nx = (lo + hi) / 2
            prev_abs = abs(fx)
            if abs(nx - x) <= _TOL or hi - lo <= _TOL:
                return nx
            x = nx
        raise RootFindingError(
            f"rate solver did not converge in {_MAX_ITER} steps (bracket {lo}..{hi}); "
            "report these cash flows as a bug"
        )

    def _verify(self, root: Decimal) -> None:
        """Check F changes sign within 1e-6 relative of the root, so the root is certain."""
        if root == 0:
            return
        below = self.value(root * (1 - _VERIFY_REL))
        above = self.value(root * (1 + _VERIFY_REL))
        if below < 0 or above > 0:
            raise RootFindingError(
                f"solver answer {root} failed verification (F={below} below, {above} above); "
                "report these cash flows as a bug"
            )
