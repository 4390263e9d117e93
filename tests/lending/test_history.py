"""lending.loans.history: one loan's whole story read back from its escrow on a real EVM."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lending.loans.disbursement import (
    ConfirmationMode,
    EscrowTerms,
    LoanStatus,
    OrderStatus,
)
from lending.loans.history import ScheduleLine, days_past_due, loan_history, next_due
from lending.loans.offers import StoredOffer
from lending.pricing.disclosure import disclose
from lending.pricing.schedule import ScheduleKind, ScheduleTerms
from tests._fixtures import client_for
from tests.contracts.conftest_loans import (
    ADMIN,
    COOP,
    DAY,
    FARMER,
    FARMER_ID,
    FERTILIZER,
    LENDER,
    MERCHANT,
    SEEDLINGS,
    deploy_loan_system,
    invoice,
)


@pytest.fixture
def system(tmp_path):
    return deploy_loan_system(client_for("embedded", tmp_path))


def _offer(system):
    """A 12-month equal-installment offer, its disclosure and the escrow terms it becomes."""
    start = datetime.fromtimestamp(system.now(), UTC).date()
    d = disclose(
        ScheduleTerms(
            principal_fen=1_000_000,
            annual_rate=800,
            term_months=12,
            kind=ScheduleKind.EQUAL_INSTALLMENT,
            start=start,
        )
    )
    t = EscrowTerms.from_disclosure(
        d,
        farmer_id=FARMER_ID,
        farmer=system.addr(FARMER),
        lender=system.addr(LENDER),
        budgets_fen={"fertilizer": 600_000, "seedlings": 400_000},
        draw_deadline=system.now() + 30 * DAY,
        agent=system.addr(COOP),
        mode=ConfirmationMode.MERCHANT_CONFIRMS,
    )
    offer = StoredOffer(
        "o1", "d1", t.lender, "0x" + FARMER_ID.hex(), datetime.now(UTC), t, d, None, None, None,
        None,
    )  # fmt: skip
    return offer, t


def test_history_of_a_drawn_and_partly_repaid_loan(system):
    offer, t = _offer(system)
    loan = system.desk.issue(t, system.sender(LENDER), system.accept(t))
    desk, escrow, merchant = system.desk, loan.escrow, system.addr(MERCHANT)
    desk.order_payment(escrow, merchant, "fertilizer", 200_000, invoice(1), system.sender(COOP))
    desk.order_payment(escrow, merchant, "seedlings", 100_000, invoice(2), system.sender(FARMER))
    desk.order_payment(escrow, merchant, "fertilizer", 50_000, invoice(3), system.sender(COOP))
    desk.accept_order(escrow, 1, system.sender(MERCHANT))
    desk.confirm_payment(escrow, 1, system.sender(MERCHANT))
    desk.cancel_payment(escrow, 2, system.sender(FARMER))
    system.sender(ADMIN).transact(desk.mint_call(system.addr(FARMER), 50_000))
    desk.repay(escrow, system.sender(FARMER), 30_000)

    names = system.merchants.category_names()
    h = loan_history(desk, escrow, offer=offer, category_names=names)

    assert h.status == LoanStatus.ACTIVE and h.is_open and h.state.loan_id == loan.loan_id
    assert h.state.principal_fen == 1_000_000 and h.apr_bps == t.apr_bps
    assert h.disclosure_hash == t.disclosure_hash and h.grace_days == 0
    assert [(o.order_id, o.status, o.amount_fen, o.category_name) for o in h.orders] == [
        (1, OrderStatus.RELEASED, 200_000, "fertilizer"),
        (2, OrderStatus.CANCELLED, 100_000, "seedlings"),
        (3, OrderStatus.PENDING, 50_000, "fertilizer"),
    ]
    first, second, third = h.orders
    assert first.invoice_hash == invoice(1) and first.merchant == merchant
    assert first.accepted_at and first.confirmed_at and first.cancelled_at is None
    assert second.cancelled_at and second.confirmed_at is None
    assert third.created_at >= h.issued_at > 0
    budgets = {b.category: b for b in h.budgets}
    fert, seed = budgets[FERTILIZER], budgets[SEEDLINGS]
    assert (fert.budget_fen, fert.spent_fen, fert.reserved_fen, fert.left_fen) == (
        600_000, 200_000, 50_000, 350_000,
    )  # fmt: skip
    assert (seed.budget_fen, seed.spent_fen, seed.reserved_fen, seed.left_fen) == (
        400_000, 0, 0, 400_000,
    )  # fmt: skip
    due = 200_000 * t.total_due_fen // t.principal_fen  # pro rata on what was paid out
    assert h.state.amount_due_fen == due and h.state.outstanding_fen == due - 30_000
    assert [(r.payer, r.amount_fen, r.via_settlement) for r in h.repayments] == [
        (system.addr(FARMER), 30_000, False)
    ]
    assert h.repayments[0].outstanding_after_fen == due - 30_000
    assert len(h.schedule) == 12 and h.schedule_verified
    assert sum(s.total_fen for s in h.schedule) == t.total_due_fen
    assert h.next_due is not None and h.next_due.number == 2  # 30,000 fen covers the first
    assert h.days_past_due == 0 and h.returned_fen == 0
    # a repayment from the settlement contract is marked as such
    via = loan_history(desk, escrow, settlement=system.addr(FARMER))
    assert via.repayments[0].via_settlement and via.schedule == () and via.next_due is None


def test_a_stored_offer_whose_disclosure_was_not_accepted_gives_no_schedule(system):
    _, t = _offer(system)
    loan = system.desk.issue(t, system.sender(LENDER), system.accept(t))
    other, _ = _offer(system)
    tampered = StoredOffer(
        *[getattr(other, f) for f in ("offer_id", "decision_id", "lender", "farmer_id",
                                      "created_at", "terms")],
        other.disclosure.model_copy(update={"total_interest_fen": 1}),
        None, None, None, None,
    )  # fmt: skip
    h = loan_history(system.desk, loan.escrow, offer=tampered)
    assert h.schedule == () and not h.schedule_verified and h.orders == ()
    assert sorted(b.left_fen for b in h.budgets) == [400_000, 600_000]


def test_next_due_is_pro_rata_and_days_past_due_counts_whole_days():
    lines = [ScheduleLine(n, f"2027-0{n}-01", 0, 0, 0, 100, 0) for n in (1, 2, 3)]
    assert next_due(lines, 300, 300, 0).amount_fen == 100
    assert (next_due(lines, 300, 300, 150).number, next_due(lines, 300, 300, 150).amount_fen) == (
        2, 50,
    )  # fmt: skip
    assert next_due(lines, 300, 150, 0).amount_fen == 50  # half drawn: half of each installment
    assert next_due(lines, 300, 300, 300) is None and next_due([], 300, 300, 0) is None


def test_days_past_due(system):
    loan = system.issue()
    system.pay(loan.escrow, 1_000)
    state = system.desk.state(loan.escrow)
    assert days_past_due(state, state.due_date) == 0
    assert days_past_due(state, state.due_date + 3 * DAY + 5) == 3
