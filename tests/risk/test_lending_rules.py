"""The lending, harvest and pricing rules on small worlds written straight into real databases."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from indexer.models import (
    CoopSeason,
    Harvest,
    IndexedLoanTerms,
    Loan,
    LoanEvent,
    LotConsumed,
    LotProduced,
    LotSource,
    Plot,
    RawEvent,
    Sale,
    WindowBlock,
)
from lending.credit.models import CreditDecisionRow
from lending.loans.disbursement import LoanStatus
from lending.loans.models import LoanOfferRow
from lending.pricing.disclosure import disclose
from lending.pricing.lpr import LprFixing, LprTable
from lending.pricing.schedule import ScheduleKind, ScheduleTerms
from risk.rules import DAY, Finding
from risk.scan import context, find
from risk.scan import scan as run_scan

T0 = int(datetime(2025, 3, 3, tzinfo=UTC).timestamp())
SEASON = "2025-spring"
TABLE = LprTable(
    version="test",
    source="test fixings",
    covers_through=date(2025, 12, 31),
    fixings=(LprFixing(date(2024, 1, 22), 345), LprFixing(date(2025, 1, 20), 310)),
)
"""Caps: 4 x 3.45% = 13.80% in 2024, 4 x 3.10% = 12.40% in 2025, nothing judged after 2025."""


def ident(kind: str, n: int, size: int = 32) -> bytes:
    """A pseudonymous id or address."""
    return hashlib.sha256(f"{kind}{n}".encode()).digest()[:size]


def addr(kind: str, n: int) -> bytes:
    """A 20-byte address."""
    return ident(kind, n, 20)


def hx(value: bytes) -> str:
    """0x-hex."""
    return "0x" + value.hex()


class World:
    """Rows of a small world, written straight into the tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.blocks = itertools.count(1)
        self.orders = itertools.count(1)

    def add(self, table: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows."""
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(table), list(rows))

    def now(self, at: int) -> None:
        """Set the chain's time (the latest indexed block)."""
        self.add(
            WindowBlock,
            [dict(number=10**6 + at % 10**6, hash=b"h" * 32, parent_hash=b"p" * 32, timestamp=at)],
        )

    def loan(
        self,
        loan_id: int,
        farmer: bytes,
        lender: bytes,
        principal: int,
        at: int,
        *,
        total_due: int | None = None,
        due: int | None = None,
        draw_days: int = 30,
        funded: bool = True,
        drawn: Sequence[tuple[int, int]] = (),
        repaid: Sequence[tuple[int, int]] = (),
        statuses: Sequence[tuple[int, LoanStatus]] = (),
        borrower: bytes | None = None,
    ) -> None:
        """A loan with its terms and escrow events (drawn/repaid: (time, fen)); its borrowing
        wallet is its own unless `borrower` is given."""
        total = total_due if total_due is not None else principal * 108 // 100
        block = next(self.blocks)
        self.add(
            Loan,
            [
                dict(
                    loan_id=loan_id,
                    escrow=addr("escrow", loan_id),
                    farmer=farmer,
                    lender=lender,
                    borrower=borrower or addr("wallet", loan_id),
                    agent=bytes(20),
                    principal_fen=principal,
                    block_number=block,
                    log_index=0,
                    block_timestamp=at,
                )
            ],
        )
        self.add(
            IndexedLoanTerms,
            [
                dict(
                    loan_id=loan_id,
                    total_due_fen=total,
                    due_date=due or at + 240 * DAY,
                    draw_deadline=at + draw_days * DAY,
                    grace_days=0,
                    default_days=30,
                    mode=0,
                    schedule_hash=b"s" * 32,
                    disclosure_hash=b"d" * 32,
                    block_number=block,
                )
            ],
        )
        events: list[tuple[int, dict[str, Any]]] = [(at, dict(kind="status", status=1))]
        if funded:
            events += [
                (at, dict(kind="funded", amount_fen=principal)),
                (at, dict(kind="status", status=int(LoanStatus.ACTIVE))),
            ]
        for t, amount in drawn:
            events.append(
                (t, dict(kind="disbursed", amount_fen=amount, order_id=next(self.orders)))
            )
        for t, amount in repaid:
            owed = sum(a for d, a in drawn if d <= t) * total // principal
            paid = sum(a for r, a in repaid if r <= t)
            events.append((t, dict(kind="repaid", amount_fen=amount, outstanding_fen=owed - paid)))
        events += [(t, dict(kind="status", status=int(s))) for t, s in statuses]
        rows = []
        for i, (t, event) in enumerate(sorted(events, key=lambda e: e[0])):
            row = dict.fromkeys(
                (
                    "amount_fen",
                    "party",
                    "category",
                    "order_id",
                    "status",
                    "outstanding_fen",
                    "reference",
                )
            )
            row.update(
                block_number=next(self.blocks),
                log_index=i,
                loan_id=loan_id,
                block_timestamp=t,
                **event,
            )
            rows.append(row)
        self.add(LoanEvent, rows)

    def repaid_loan(
        self, loan_id: int, farmer: bytes, lender: bytes, principal: int, at: int, repaid_at: int
    ) -> None:
        """A loan drawn in full on its first day and repaid in full at `repaid_at`."""
        total = principal * 108 // 100
        self.loan(
            loan_id,
            farmer,
            lender,
            principal,
            at,
            total_due=total,
            drawn=[(at + DAY, principal)],
            repaid=[(repaid_at, total)],
            statuses=[(repaid_at, LoanStatus.REPAID)],
        )

    def decision(self, n: int, farmer: bytes, lender: bytes, at: int, outcome: str) -> None:
        """A stored credit decision."""
        self.add(
            CreditDecisionRow,
            [
                dict(
                    decision_id=f"d{n:04d}",
                    farmer_id=hx(farmer),
                    lender=hx(lender),
                    decided_at=datetime.fromtimestamp(at, UTC),
                    contract_date=datetime.fromtimestamp(at, UTC).date(),
                    profile_block_number=1,
                    profile_block_hash="0x" + "00" * 32,
                    model_version="m1",
                    policy_hash="p" * 64,
                    score=600,
                    band="B",
                    outcome=outcome,
                    limit_fen=500_000,
                    offered_rate_bps=900,
                    cap_rule=None,
                    cap_action=None,
                    reason_codes="",
                    record_json="{}",
                    content_hash=f"{n:064d}",
                )
            ],
        )

    def plot(self, plot: bytes, farmer: bytes, coop: bytes, area_centi_mu: int) -> None:
        """A registered plot."""
        self.add(
            Plot,
            [
                dict(
                    plot=plot,
                    farmer=farmer,
                    cooperative=coop,
                    area_centi_mu=area_centi_mu,
                    variety=1,
                    location_hash=b"l" * 32,
                    block_number=next(self.blocks),
                    log_index=0,
                )
            ],
        )

    def harvest(
        self,
        lot: bytes,
        farmer: bytes,
        plot: bytes,
        coop: bytes,
        grams: int,
        at: int = T0,
        season: str = SEASON,
    ) -> None:
        """A fresh-leaf lot."""
        self.add(
            Harvest,
            [
                dict(
                    lot=lot,
                    farmer=farmer,
                    plot=plot,
                    cooperative=coop,
                    grams=grams,
                    grade=1,
                    picked_at=at,
                    season=season,
                    data_hash=b"x" * 32,
                    block_number=next(self.blocks),
                    log_index=0,
                    block_timestamp=at,
                )
            ],
        )

    def step(
        self,
        pid: bytes,
        processor: bytes,
        inputs: Sequence[tuple[bytes, int]],
        outputs: Sequence[tuple[bytes, int]],
    ) -> None:
        """A processing step: consumed inputs, produced outputs."""
        block = next(self.blocks)
        self.add(
            LotConsumed,
            [
                dict(
                    block_number=block,
                    log_index=i,
                    lot=lot,
                    process_id=pid,
                    processor=processor,
                    grams=g,
                )
                for i, (lot, g) in enumerate(inputs)
            ],
        )
        self.add(
            LotProduced,
            [
                dict(
                    lot=lot,
                    process_id=pid,
                    processor=processor,
                    grams=g,
                    data_hash=b"y" * 32,
                    upstream_sold=False,
                    block_number=block,
                    log_index=100 + i,
                )
                for i, (lot, g) in enumerate(outputs)
            ],
        )


@pytest.fixture
def world(engine: Engine) -> World:
    """An empty world."""
    return World(engine)


def scan(
    engine: Engine, name: str, *, service: bool = True, extra: dict[str, object] | None = None
) -> list[Finding]:
    """The named rule's findings (the engine serves as indexer and service database)."""
    with engine.connect() as conn:
        given = {"lpr": TABLE} if extra is None else extra
        ctx = context(conn, conn if service else None, extra=given)
        return find(ctx, [name])


def keys(findings: Sequence[Finding]) -> list[str]:
    """The findings' keys, sorted."""
    return sorted(f.key for f in findings)


F = [ident("farmer", n) for n in range(20)]
L = [addr("lender", n) for n in range(5)]


# ------------------------------------------------------------------------------ loan_stacking


def test_overlapping_loans_from_other_lenders_are_high(world: World) -> None:
    world.loan(1, F[1], L[1], 500_000, T0, drawn=[(T0 + DAY, 480_000)])
    world.loan(2, F[1], L[2], 320_000, T0 + 41 * DAY, drawn=[(T0 + 42 * DAY, 100_000)])
    world.loan(3, F[2], L[1], 260_000, T0 + 5 * DAY, drawn=[(T0 + 6 * DAY, 70_000)])
    world.loan(4, F[2], L[1], 410_000, T0 + 17 * DAY)  # same lender, another factory
    world.now(T0 + 60 * DAY)
    found = {f.key: f for f in scan(world.engine, "loan_stacking")}
    assert sorted(found) == ["loan_stacking:overlap:2", "loan_stacking:overlap:4"]
    high, medium = found["loan_stacking:overlap:2"], found["loan_stacking:overlap:4"]
    assert (high.severity, high.subject) == ("high", f"farmer:{hx(F[1])}")
    assert high.evidence.loans == (1, 2)
    assert high.evidence.amounts_fen["total_principal"] == 820_000
    assert high.evidence.amounts_fen["owed_at_issue"] == 480_000 * 108 // 100
    assert high.explanation_zh.startswith("农户") and "lenders" in high.explanation_en
    assert medium.severity == "medium" and medium.evidence.loans == (3, 4)


def test_two_farmer_ids_borrowing_into_one_wallet_are_one_borrower(world: World) -> None:
    shared = addr("wallet", 90)
    world.loan(1, F[5], L[1], 400_000, T0, drawn=[(T0 + DAY, 400_000)], borrower=shared)
    world.loan(2, F[6], L[2], 350_000, T0 + 9 * DAY, drawn=[(T0 + 10 * DAY, 300_000)],
               borrower=shared)  # fmt: skip
    world.loan(3, F[7], L[1], 200_000, T0 + 3 * DAY, drawn=[(T0 + 4 * DAY, 200_000)])
    world.loan(4, F[8], L[2], 200_000, T0 + 5 * DAY, drawn=[(T0 + 6 * DAY, 200_000)])
    world.now(T0 + 60 * DAY)
    (found,) = scan(world.engine, "loan_stacking")
    assert (found.key, found.subject) == ("loan_stacking:overlap:2", f"farmer:{hx(F[6])}")
    assert found.severity == "high" and found.evidence.loans == (1, 2)
    assert found.evidence.farmers == tuple(sorted((hx(F[5]), hx(F[6]))))
    assert hx(shared) in found.evidence.wallets and found.evidence.figures["farmer_ids"] == "2"
    assert "2 farmer ids borrowing into one wallet" in found.explanation_en
    assert "共用一个收款钱包" in found.explanation_zh


def test_loans_one_after_another_are_not_stacked(world: World) -> None:
    # Repaid the day before the next loan; never funded; drawn nothing and past its window.
    world.repaid_loan(1, F[1], L[1], 500_000, T0, T0 + 90 * DAY)
    world.loan(2, F[1], L[2], 450_000, T0 + 91 * DAY, drawn=[(T0 + 92 * DAY, 450_000)])
    world.loan(
        3, F[2], L[1], 300_000, T0, funded=False, statuses=[(T0 + 31 * DAY, LoanStatus.CANCELLED)]
    )
    world.loan(4, F[2], L[2], 280_000, T0 + 10 * DAY, drawn=[(T0 + 11 * DAY, 90_000)])
    world.loan(5, F[3], L[1], 200_000, T0, draw_days=20)
    world.loan(6, F[3], L[2], 230_000, T0 + 25 * DAY)
    world.now(T0 + 200 * DAY)
    assert scan(world.engine, "loan_stacking") == []


def test_overlap_keys_are_stable_as_the_chain_grows(world: World) -> None:
    world.loan(1, F[4], L[1], 700_000, T0, drawn=[(T0 + 2 * DAY, 700_000)])
    world.loan(2, F[4], L[3], 150_000, T0 + 9 * DAY)
    world.now(T0 + 10 * DAY)
    first = scan(world.engine, "loan_stacking")
    assert keys(first) == keys(scan(world.engine, "loan_stacking")) == ["loan_stacking:overlap:2"]
    world.loan(3, F[4], L[2], 90_000, T0 + 33 * DAY)
    world.now(T0 + 34 * DAY)
    later = {f.key: f for f in scan(world.engine, "loan_stacking")}
    assert sorted(later) == ["loan_stacking:overlap:2", "loan_stacking:overlap:3"]
    assert later["loan_stacking:overlap:2"] == first[0]
    assert later["loan_stacking:overlap:3"].evidence.loans == (1, 2, 3)


def test_decisions_by_several_lenders_within_the_window(world: World) -> None:
    world.decision(1, F[1], L[1], T0, "approve")
    world.decision(2, F[1], L[2], T0 + 12 * DAY, "decline")
    world.decision(3, F[2], L[1], T0 + 3 * DAY, "refer")
    world.decision(4, F[2], L[2], T0 + 5 * DAY, "approve")
    world.decision(5, F[2], L[3], T0 + 26 * DAY, "approve")
    found = {f.key: f for f in scan(world.engine, "loan_stacking")}
    assert sorted(found) == ["loan_stacking:applications:d0001", "loan_stacking:applications:d0003"]
    two, three = (
        found["loan_stacking:applications:d0001"],
        found["loan_stacking:applications:d0003"],
    )
    assert (two.severity, two.subject) == ("medium", f"farmer:{hx(F[1])}")
    assert two.evidence.figures["span_days"] == "12.00"
    assert two.evidence.wallets == tuple(sorted((hx(L[1]), hx(L[2]))))
    assert three.severity == "high" and three.evidence.figures["lenders"] == "3"
    assert three.evidence.figures["approved"] == "2"


def test_decisions_near_misses_and_no_service(world: World) -> None:
    world.decision(1, F[1], L[1], T0, "approve")
    world.decision(2, F[1], L[1], T0 + 4 * DAY, "approve")  # the same lender again
    world.decision(3, F[1], L[2], T0 + 45 * DAY, "approve")  # another lender, much later
    world.decision(4, F[2], L[1], T0, "decline")
    world.decision(5, F[3], L[2], T0 + DAY, "approve")  # another farmer
    assert scan(world.engine, "loan_stacking") == []
    world.decision(6, F[2], L[3], T0 + 29 * DAY, "approve")
    assert keys(scan(world.engine, "loan_stacking")) == ["loan_stacking:applications:d0004"]
    assert scan(world.engine, "loan_stacking", service=False) == []


def test_an_episode_keeps_its_key_while_it_grows(world: World) -> None:
    world.decision(1, F[5], L[1], T0, "decline")
    world.decision(2, F[5], L[2], T0 + 8 * DAY, "decline")
    before = scan(world.engine, "loan_stacking")
    world.decision(3, F[5], L[3], T0 + 20 * DAY, "approve")
    world.decision(4, F[5], L[4], T0 + 47 * DAY, "approve")  # within 30 days of the last
    after = scan(world.engine, "loan_stacking")
    assert keys(before) == keys(after) == ["loan_stacking:applications:d0001"]
    assert after[0].evidence.figures["decisions"] == "4"
    assert after[0].observed_at == T0 + 47 * DAY


# ----------------------------------------------------------------------------- rapid_reborrow


def test_reborrowing_right_after_repaying(world: World) -> None:
    repaid = T0 + 120 * DAY
    world.repaid_loan(1, F[1], L[1], 600_000, T0, repaid)
    world.loan(
        2,
        F[1],
        L[1],
        570_000,
        repaid + 3 * DAY,
        drawn=[(repaid + 4 * DAY, 400_000), (repaid + 5 * DAY, 170_000)],
    )
    world.repaid_loan(3, F[2], L[2], 250_000, T0 + 10 * DAY, T0 + 70 * DAY)
    # 1.2 x the last loan, 92% of it drawn in 4 days
    world.loan(4, F[2], L[3], 300_000, T0 + 79 * DAY, drawn=[(T0 + 83 * DAY, 276_000)])
    world.now(T0 + 200 * DAY)
    found = {f.key: f for f in scan(world.engine, "rapid_reborrow")}
    assert sorted(found) == ["rapid_reborrow:2", "rapid_reborrow:4"]
    same = found["rapid_reborrow:2"]
    assert (same.severity, same.subject, same.evidence.loans) == (
        "medium",
        f"farmer:{hx(F[1])}",
        (1, 2),
    )
    assert same.evidence.figures == {
        "days_after_repaid": "3.00",
        "principal_ratio": "0.9500",
        "drawn_share": "1.0000",
        "days_to_draw": "2.00",
    }
    assert same.evidence.amounts_fen["drawn"] == 570_000
    grown = found["rapid_reborrow:4"]
    assert grown.severity == "high" and grown.evidence.figures["principal_ratio"] == "1.2000"
    assert keys(scan(world.engine, "rapid_reborrow")) == sorted(found)


@pytest.mark.parametrize(
    ("gap_days", "principal", "drawn"),
    [
        (20, 580_000, [(1, 580_000)]),  # too long after the repayment
        (6, 470_000, [(1, 470_000)]),  # much smaller (78%)
        (2, 600_000, [(1, 330_000)]),  # half drawn
        (9, 610_000, [(2, 300_000), (11, 310_000)]),  # drawn slowly
    ],
)
def test_reborrowing_near_misses(
    world: World, gap_days: int, principal: int, drawn: list[tuple[int, int]]
) -> None:
    repaid = T0 + 150 * DAY
    world.repaid_loan(1, F[3], L[1], 600_000, T0, repaid)
    start = repaid + gap_days * DAY
    world.loan(2, F[3], L[2], principal, start, drawn=[(start + d * DAY, a) for d, a in drawn])
    world.now(start + 60 * DAY)
    assert scan(world.engine, "rapid_reborrow") == []


def test_a_repayment_closes_a_loan_before_its_status_is_refreshed(world: World) -> None:
    # Loan 1: repaid in full after its draw window, nobody refreshed the status.
    world.loan(1, F[6], L[1], 420_000, T0, total_due=453_600, draw_days=20,
               drawn=[(T0 + DAY, 420_000)], repaid=[(T0 + 60 * DAY, 453_600)])  # fmt: skip
    world.loan(2, F[6], L[2], 400_000, T0 + 66 * DAY, drawn=[(T0 + 67 * DAY, 390_000)])
    # Loan 3: paid down to nothing inside its draw window: it could still be drawn, not repaid.
    world.loan(3, F[7], L[1], 420_000, T0, total_due=453_600, draw_days=90,
               drawn=[(T0 + DAY, 420_000)], repaid=[(T0 + 30 * DAY, 453_600)])  # fmt: skip
    world.loan(4, F[7], L[2], 400_000, T0 + 36 * DAY, drawn=[(T0 + 37 * DAY, 390_000)])
    world.now(T0 + 100 * DAY)
    assert keys(scan(world.engine, "rapid_reborrow")) == ["rapid_reborrow:2"]
    assert keys(scan(world.engine, "loan_stacking")) == ["loan_stacking:overlap:4"]


def test_a_farmer_borrowing_once_a_season_is_not_reborrowing(world: World) -> None:
    for farmer in range(6):
        at = T0 + farmer * 7 * DAY
        world.repaid_loan(
            10 * farmer + 1, F[farmer], L[farmer % 3], 300_000 + farmer * 41_000, at, at + 160 * DAY
        )
        later = at + (180 + farmer * 11) * DAY
        world.loan(
            10 * farmer + 2,
            F[farmer],
            L[farmer % 2],
            320_000 + farmer * 37_000,
            later,
            drawn=[(later + DAY, 320_000 + farmer * 37_000)],
        )
    world.now(T0 + 400 * DAY)
    assert scan(world.engine, "rapid_reborrow") == []
    assert scan(world.engine, "loan_stacking") == []


# -------------------------------------------------------------------------- harvest: plot yield

COOP = [addr("coop", n) for n in range(3)]
HONEST_KG_PER_MU = [96, 104, 118, 121, 133, 140, 152, 163]


def honest_plots(world: World, coop: int, yields: Sequence[int], first: int = 0) -> None:
    """Plots of varied areas whose season's leaf gives `yields` kg per mu (two picks each)."""
    for i, kg in enumerate(yields):
        n = first + i
        area = 150 + 37 * n  # centi-mu
        grams = kg * area * 10
        plot, farmer = ident("plot", n), F[n % len(F)]
        world.plot(plot, farmer, COOP[coop], area)
        world.harvest(ident("lot", 2 * n), farmer, plot, COOP[coop], grams // 3, T0 + n * DAY)
        world.harvest(
            ident("lot", 2 * n + 1),
            farmer,
            plot,
            COOP[coop],
            grams - grams // 3,
            T0 + (n + 20) * DAY,
        )


def test_a_plot_far_above_its_cooperative(world: World) -> None:
    honest_plots(world, 0, HONEST_KG_PER_MU)
    honest_plots(world, 0, [410], first=50)  # about 3.2 x the median
    honest_plots(world, 0, [230], first=60)  # 1.8 x the median: high, but plausible
    world.now(T0 + 90 * DAY)
    found = scan(world.engine, "harvest_implausible")
    assert keys(found) == [f"harvest_implausible:plot:{hx(ident('plot', 50))}:{SEASON}"]
    f = found[0]
    assert f.subject == f"plot:{hx(ident('plot', 50))}" and f.severity == "medium"
    assert f.evidence.figures["kg_per_mu"] == "410.0000"
    assert f.evidence.figures["coop_median_kg_per_mu"] == "136.5000"
    assert f.evidence.figures["plots_in_season"] == "10"
    assert f.evidence.lots == tuple(sorted((hx(ident("lot", 100)), hx(ident("lot", 101)))))
    assert f.observed_at == T0 + 70 * DAY


def test_honest_seasons_and_small_cooperatives_say_nothing(world: World) -> None:
    honest_plots(world, 0, HONEST_KG_PER_MU)
    honest_plots(world, 1, [80, 95, 1200, 101], first=20)  # too few plots to judge
    world.now(T0 + 90 * DAY)
    assert scan(world.engine, "harvest_implausible") == []


# ------------------------------------------------------------------- harvest: pinned yields

PROC = [addr("processor", n) for n in range(6)]


def steps(world: World, processor: int, yields_bps: Sequence[int], tag: str) -> None:
    """Steps of one processor from fresh leaf (varied grams) at the given yields."""
    for i, bps in enumerate(yields_bps):
        fresh = 40_000 + 7_919 * i
        lot = ident(f"{tag}-in", i)
        world.harvest(lot, F[i % 5], ident("plot", 900 + i), COOP[2], fresh)
        made = fresh * bps // 10_000
        world.step(
            ident(f"{tag}-step", i),
            PROC[processor],
            [(lot, fresh)],
            [(ident(f"{tag}-out", i), made)],
        )


def test_a_processor_booking_made_tea_at_the_bound(world: World) -> None:
    steps(world, 0, [3000, 3000, 2985, 3000, 2210, 2999], "p0")  # 5 of 6 pinned
    steps(world, 1, [2050, 2310, 2480, 1960, 2222, 2390, 2105], "p1")  # honest
    steps(world, 2, [3000, 3000, 3000, 3000], "p2")  # too few steps
    steps(world, 3, [3000, 2990, 3000, 2400, 2100, 2500], "p3")  # half pinned
    world.now(T0 + 30 * DAY)
    found = scan(world.engine, "harvest_implausible")
    assert keys(found) == [f"harvest_implausible:processor:{hx(PROC[0])}"]
    f = found[0]
    assert (f.subject, f.severity) == (f"wallet:{hx(PROC[0])}", "medium")
    assert f.evidence.figures["pinned_steps"] == "5" and f.evidence.figures["bound"] == "0.3000"
    assert len(f.evidence.lots) == 5


def test_the_bound_is_read_from_the_chain(world: World) -> None:
    data = (3000).to_bytes(32, "big") + (2500).to_bytes(32, "big")
    world.add(
        RawEvent,
        [
            dict(
                block_hash=b"b" * 32,
                log_index=0,
                block_number=0,
                block_timestamp=T0 - DAY,
                tx_hash=b"t" * 32,
                tx_index=0,
                address=addr("trace", 0),
                data=data,
                event="MaxYieldChanged",
            )
        ],
    )
    steps(world, 4, [2500, 2500, 2496, 2500, 2500], "p4")  # at the lowered bound
    steps(world, 5, [2000, 2200, 2350, 2100, 1900], "p5")
    world.now(T0 + 30 * DAY)
    found = scan(world.engine, "harvest_implausible")
    assert keys(found) == [f"harvest_implausible:processor:{hx(PROC[4])}"]
    assert found[0].evidence.figures["bound"] == "0.2500" and found[0].severity == "high"


# --------------------------------------------------------------------- harvest: pledged lots


def priced_season(world: World, coop: int, fresh_grams: int, income_fen: int) -> None:
    """A cooperative-season that sold leaf (its average price per fresh gram)."""
    world.add(
        CoopSeason,
        [
            dict(
                cooperative=COOP[coop],
                season=SEASON,
                fresh_grams=fresh_grams,
                income_fen=income_fen,
            )
        ],
    )


@pytest.mark.parametrize("due_in_days", [45, 200, 330])
def test_a_loan_for_next_season_is_not_pledged_on_this_seasons_lots(
    world: World, due_in_days: int
) -> None:
    priced_season(world, 0, 1_000_000, 2_400_000)
    world.harvest(ident("held", 1), F[1], ident("plot", 1), COOP[0], 50_000)  # ¥1,200 held
    world.loan(
        1, F[1], L[1], 500_000, T0, total_due=540_000, due=T0 + due_in_days * DAY,
        drawn=[(T0 + DAY, 500_000)],
    )  # fmt: skip
    world.now(T0 + 10 * DAY)
    assert scan(world.engine, "harvest_implausible") == []


def test_a_lot_pledged_beyond_what_it_can_earn(world: World) -> None:
    priced_season(world, 0, 1_000_000, 2_400_000)  # 2.4 fen a gram of fresh leaf
    # Farmer 1: 50 kg of leaf held (¥1,200), ¥5,400 owed: over four times the value.
    world.harvest(ident("held", 1), F[1], ident("plot", 1), COOP[0], 50_000)
    world.loan(
        1, F[1], L[1], 500_000, T0 - 40 * DAY, total_due=540_000, due=T0 + 30 * DAY,
        drawn=[(T0 - 39 * DAY, 500_000)],
    )  # fmt: skip
    # Farmer 2: 400 kg held (¥9,600) in a made-tea lot shared with farmer 1's leaf, ¥3,240 owed.
    world.harvest(ident("h", 2), F[2], ident("plot", 2), COOP[0], 400_000)
    world.harvest(ident("h", 3), F[1], ident("plot", 1), COOP[0], 20_000)
    world.step(
        ident("step", 1),
        PROC[0],
        [(ident("h", 2), 400_000), (ident("h", 3), 20_000)],
        [(ident("made", 1), 92_000)],
    )
    world.add(
        LotSource,
        [
            dict(
                lot=ident("made", 1),
                harvest_lot=ident("h", n),
                farmer=f,
                cooperative=COOP[0],
                season=SEASON,
                grams=g,
                block_number=90,
            )
            for n, f, g in ((2, F[2], 400_000), (3, F[1], 20_000))
        ],
    )
    world.loan(
        2, F[2], L[2], 300_000, T0 - 20 * DAY, total_due=324_000, due=T0 + 35 * DAY,
        drawn=[(T0 - 19 * DAY, 300_000)],
    )  # fmt: skip
    world.now(T0 + 10 * DAY)
    found = scan(world.engine, "harvest_implausible")
    assert keys(found) == [f"harvest_implausible:lot:{hx(ident('held', 1))}"]
    f = found[0]
    assert f.subject == f"lot:{hx(ident('held', 1))}" and f.evidence.loans == (1,)
    # Farmer 1 holds ¥1,200 + ¥480 of leaf: 1200/1680 of the ¥5,400 falls on this lot.
    assert f.evidence.amounts_fen == {
        "lot_value": 120_000,
        "pledged_on_lot": 385_714,
        "farmers_outstanding": 540_000,
    }
    assert f.evidence.figures["pledge_ratio"] == "3.2143"


def test_sold_unpriced_and_covered_lots_are_not_over_pledged(world: World) -> None:
    priced_season(world, 0, 2_000_000, 5_000_000)
    world.harvest(ident("held", 1), F[1], ident("plot", 1), COOP[0], 300_000)  # ¥7,500
    world.loan(1, F[1], L[1], 600_000, T0 - 30 * DAY, drawn=[(T0 - 29 * DAY, 600_000)])
    world.harvest(ident("sold", 2), F[2], ident("plot", 2), COOP[0], 10_000)
    world.add(
        Sale,
        [
            dict(
                block_number=500,
                log_index=0,
                lot=ident("sold", 2),
                seller=COOP[0],
                buyer=addr("buyer", 1),
                price_fen=25_000,
                attributed=True,
                block_timestamp=T0,
            )
        ],
    )
    world.loan(2, F[2], L[1], 900_000, T0 - 30 * DAY, drawn=[(T0 - 29 * DAY, 900_000)])
    world.harvest(ident("new", 3), F[3], ident("plot", 3), COOP[1], 10_000)  # coop 1 sold nothing
    world.loan(3, F[3], L[2], 800_000, T0 - 30 * DAY, drawn=[(T0 - 29 * DAY, 800_000)])
    world.now(T0 + 10 * DAY)
    assert scan(world.engine, "harvest_implausible") == []


# ------------------------------------------------------------------------------ apr_above_cap


def bullet_total(principal: int, rate_bps: int, days: int) -> int:
    """Simple interest for `days` at `rate_bps` a year."""
    return principal + principal * rate_bps * days // (10_000 * 365)


def unix(day: date) -> int:
    """Noon UTC of a day."""
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp())


def test_chain_loans_above_the_cap_of_their_date(world: World) -> None:
    cases = [  # (loan id, issue day, principal, rate bps, days)
        (1, date(2025, 3, 3), 1_000_000, 1800, 365),  # 18% > 12.40%
        (2, date(2025, 3, 10), 730_000, 1200, 240),  # 12% within 12.40%
        (3, date(2024, 6, 3), 480_000, 1350, 300),  # 13.5% within 2024's 13.80%
        (4, date(2025, 5, 19), 480_000, 1350, 300),  # the same 13.5% above 2025's 12.40%
    ]
    for loan_id, day, principal, bps, days in cases:
        at = unix(day)
        world.loan(
            loan_id,
            F[loan_id],
            L[1],
            principal,
            at,
            total_due=bullet_total(principal, bps, days),
            due=at + days * DAY,
        )
    world.now(unix(date(2025, 6, 1)))
    found = {f.key: f for f in scan(world.engine, "apr_above_cap")}
    assert sorted(found) == ["apr_above_cap:1", "apr_above_cap:4"]
    f = found["apr_above_cap:1"]
    assert (f.subject, f.severity) == ("loan:1", "high")
    figures = f.evidence.figures
    assert figures["cap_pct"] == "12.40" and figures["cap_rule"] == "4x_lpr_2025-01-20"
    assert figures["contract_date"] == "2025-03-03" and figures["source"] == "chain"
    assert Decimal("17.9") < Decimal(figures["apr_pct"]) < Decimal("18.1")
    assert "12.40%" in f.explanation_zh and "4x_lpr_2025-01-20" in f.explanation_en
    assert f.evidence.amounts_fen == {"principal": 1_000_000, "total_due": 1_180_000}


def offer(world: World, loan_id: int, rate_bps: int, start: date, kind: ScheduleKind) -> int:
    """An issued offer with the disclosure the farmer was shown; the amount financed."""
    terms = ScheduleTerms(
        principal_fen=600_000 + 13_000 * loan_id,
        annual_rate=rate_bps,
        term_months=10,
        kind=kind,
        start=start,
    )
    d = disclose(terms, table=TABLE, enforce_caps=False)
    created = datetime.combine(start, datetime.min.time(), UTC)
    world.add(
        LoanOfferRow,
        [
            dict(
                offer_id=f"o{loan_id}",
                decision_id=f"d{loan_id}",
                lender=hx(L[1]),
                farmer_id=hx(F[loan_id]),
                created_at=created,
                terms_json=json.dumps({}),
                disclosure_json=d.model_dump_json(),
                escrow=hx(addr("escrow", loan_id)),
                loan_id=loan_id,
                issued_at=created,
            )
        ],
    )
    return d.amount_financed_fen


def test_disclosed_rates_above_the_cap(world: World) -> None:
    # The chain's terms say little here (total due = principal): the disclosure is what counts.
    for loan_id, bps, day, kind in [
        (1, 1500, date(2025, 4, 7), ScheduleKind.EQUAL_INSTALLMENT),
        (2, 1000, date(2025, 4, 8), ScheduleKind.EQUAL_PRINCIPAL),
        (3, 1290, date(2024, 9, 2), ScheduleKind.SEASONAL),  # within 2024's cap
    ]:
        financed = offer(world, loan_id, bps, day, kind)
        world.loan(loan_id, F[loan_id], L[1], financed, unix(day), total_due=financed)
    world.now(unix(date(2025, 5, 1)))
    found = scan(world.engine, "apr_above_cap")
    assert keys(found) == ["apr_above_cap:1"]
    figures = found[0].evidence.figures
    assert figures["source"] == "disclosure" and figures["contract_date"] == "2025-04-07"
    assert Decimal(figures["rate_checked_pct"]) >= Decimal(figures["apr_pct"]) > Decimal("15")


def test_loans_past_the_tables_validity_are_skipped_and_counted(engine: Engine) -> None:
    world = World(engine)
    late = unix(date(2026, 2, 2))
    world.loan(
        1,
        F[1],
        L[1],
        500_000,
        late,
        total_due=bullet_total(500_000, 3000, 200),
        due=late + 200 * DAY,
    )
    world.now(late + DAY)
    extra: dict[str, object] = {"lpr": TABLE}
    with engine.connect() as conn:
        ctx = context(conn, conn, extra=extra)
        assert find(ctx, ["apr_above_cap"]) == []
        assert ctx.extra["skipped"] == {"apr_above_cap": {"stale_lpr": 1, "unpriced": 0}}


def test_without_a_table_the_default_one_is_used(world: World) -> None:
    # tests/conftest.py points the default loader at the 3.00% fixings (cap 12%).
    at = unix(date(2026, 3, 2))
    world.loan(
        1, F[1], L[1], 500_000, at, total_due=bullet_total(500_000, 1250, 180), due=at + 180 * DAY
    )
    world.loan(
        2, F[2], L[1], 500_000, at, total_due=bullet_total(500_000, 1150, 180), due=at + 180 * DAY
    )
    world.now(at + DAY)
    found = scan(world.engine, "apr_above_cap", extra={})
    assert keys(found) == ["apr_above_cap:1"]
    assert found[0].evidence.figures["cap_pct"] == "12.00"


def test_a_second_scan_sees_the_same_alerts_again(world: World) -> None:
    world.loan(1, F[1], L[1], 500_000, T0, drawn=[(T0 + DAY, 480_000)])
    world.loan(2, F[1], L[2], 320_000, T0 + 41 * DAY)
    world.decision(1, F[2], L[1], T0, "approve")
    world.decision(2, F[2], L[2], T0 + 2 * DAY, "approve")
    at = unix(date(2025, 4, 1))
    world.loan(3, F[3], L[1], 200_000, at, total_due=bullet_total(200_000, 2400, 200),
               due=at + 200 * DAY)  # fmt: skip
    world.now(T0 + 60 * DAY)
    names = ["loan_stacking", "rapid_reborrow", "harvest_implausible", "apr_above_cap"]
    first = run_scan(world.engine, world.engine, extra={"lpr": TABLE}, names=names)
    again = run_scan(world.engine, world.engine, extra={"lpr": TABLE}, names=names)
    assert (first.summary.new, first.summary.seen_again) == (3, 0)
    assert (again.summary.new, again.summary.seen_again) == (0, 3)
    assert again.summary.by_rule == {"loan_stacking": 2, "apr_above_cap": 1}
