"""Benchmarks of the lending math: APR solves, schedule building and full disclosures."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

from bench.report import table
from lending.pricing.apr import actuarial_apr, pboc_annualized_rate
from lending.pricing.caps import CapPolicy
from lending.pricing.disclosure import disclose
from lending.pricing.schedule import ScheduleKind, ScheduleTerms, build_schedule

SECONDS = 1.5  # per benchmark: long enough to smooth timer noise on a 2-core machine


def _rate(fn: Callable[[], object], seconds: float = SECONDS) -> float:
    """Calls per second of `fn`, timed with perf_counter over about `seconds`."""
    fn()  # warm caches (LPR table, Decimal contexts) outside the timed loop
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            fn()
        calls += 20
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def _terms(kind: ScheduleKind, months: int) -> ScheduleTerms:
    """A 100,000-yuan loan at 8% with a 1% upfront fee."""
    return ScheduleTerms(
        principal_fen=10_000_000,
        annual_rate=800,
        term_months=months,
        kind=kind,
        start=date(2025, 1, 15),
        upfront_fee_fen=100_000,
    )


def run(seconds: float = SECONDS) -> list[dict[str, object]]:
    """Measure and return one row per benchmark."""
    monthly = build_schedule(_terms(ScheduleKind.EQUAL_INSTALLMENT, 12)).regz_cash_flows()
    advances, payments = list(monthly.advances), list(monthly.payments)
    long = build_schedule(_terms(ScheduleKind.EQUAL_INSTALLMENT, 360)).regz_cash_flows()
    long_adv, long_pay = list(long.advances), list(long.payments)
    seasonal = _terms(ScheduleKind.SEASONAL, 24)
    policy = CapPolicy(use_lpr_cap=False)
    cases: list[tuple[str, Callable[[], object]]] = [
        (
            "APR computations/s (12-month equal installment)",
            lambda: actuarial_apr(advances, payments, 12),
        ),
        (
            "PBoC IRR computations/s (12-month equal installment)",
            lambda: pboc_annualized_rate(advances, payments, 12),
        ),
        (
            "APR computations/s (360-month equal installment)",
            lambda: actuarial_apr(long_adv, long_pay, 12),
        ),
        (
            "schedules built/s (12-month equal installment)",
            lambda: build_schedule(_terms(ScheduleKind.EQUAL_INSTALLMENT, 12)),
        ),
        ("disclosures/s (24-month seasonal, caps checked)", lambda: disclose(seasonal, policy)),
    ]
    return [
        {"benchmark": name, "value": round(_rate(fn, seconds), 1), "unit": "ops/s"}
        for name, fn in cases
    ]


if __name__ == "__main__":
    print(table(run()))
