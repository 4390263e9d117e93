"""Stateful property test: random sequences of fund / order / confirm / cancel / repay / settle /
return / time travel / approval changes / default, valid and invalid alike, against a Python
model of the contracts. After every step the invariants of docs/invariants.md are checked on
the chain, and the chain must equal the model exactly (balances, accounting, statuses, errors).
"""

from __future__ import annotations

import functools
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth_utils import keccak
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from lending.loans.disbursement import ConfirmationMode, LoanStatus, category_id
from lending.loans.errors import ContractRuleError
from lending.loans.settlement import FarmerShare, split_amount
from tests._fixtures import client_for
from tests.contracts.conftest_loans import (
    ADMIN,
    COOP,
    DAY,
    DISTRIBUTOR,
    FARMER,
    FARMER2,
    FARMER2_ID,
    FARMER3_ID,
    FARMER_ID,
    LENDER,
    LOT,
    LOT_DATA,
    MERCHANT,
    MERCHANT2,
    OUTSIDER,
    REGISTRAR,
    LoanSystem,
    deploy_loan_system,
    invoice,
)

S = LoanStatus
REPAYABLE = (S.ACTIVE, S.OVERDUE, S.DEFAULTED)
OPEN = (S.ISSUED, S.ACTIVE, S.OVERDUE, S.DEFAULTED)
CATS = [category_id(c) for c in ("fertilizer", "seedlings", "equipment", "labour service")]
BUDGETS = {"fertilizer": 500_000, "seedlings": 300_000, "equipment": 200_000}
PRINCIPAL, TOTAL_DUE = 1_000_000, 1_080_000
SHARES = tuple(
    sorted(
        [FarmerShare(FARMER_ID, 600), FarmerShare(FARMER2_ID, 300), FarmerShare(FARMER3_ID, 100)]
    )
)
WALLET = {FARMER_ID: FARMER, FARMER2_ID: FARMER2}  # FARMER3 has none: proceeds are held
CONFIRMATION_PERIOD = 30 * DAY
FIXED_GAS = 2_000_000
RECENT = 2  # a rule waits this many steps before it may run again
TRAVEL_SLACK = 1_000  # keeps every time comparison far from its boundary (see module notes)

_BASE: dict[str, Any] = {}


def base() -> tuple[LoanSystem, Any]:
    """The contracts deployed once for the whole test, with the lot's shares committed."""
    if not _BASE:
        data_dir = Path(tempfile.mkdtemp(prefix="escrow-invariants-"))
        client = client_for("embedded", data_dir)
        system = deploy_loan_system(client)
        system.sales.commit_shares(LOT, LOT_DATA, SHARES, system.sender(COOP))
        for index in range(len(client.accounts)):
            # Speed: skip eth-tester's gas search (it runs each transaction ~8 times). A revert
            # then surfaces from the mined receipt instead of the estimate; the sender replays
            # the call and raises the same decoded error, which the desk translates as usual.
            client.sender(index).estimate_gas = lambda tx: FIXED_GAS  # type: ignore[method-assign]
        _BASE.update(system=system, snapshot=system.snapshot())
    return _BASE["system"], _BASE["snapshot"]


def step(
    when: Callable[[EscrowMachine], bool] | None = None, **strategies: Any
) -> Callable[[Callable[..., None]], Any]:
    """A rule that runs only when `when` holds and not again within the next RECENT steps.
    (Hypothesis otherwise favours long runs of one or two rules, which wastes the few examples
    a chain-backed test can afford.)"""

    def wrap(fn: Callable[..., None]) -> Any:
        name = fn.__name__

        @functools.wraps(fn)
        def run(self: EscrowMachine, **kwargs: Any) -> None:
            self.recent = [*self.recent, name][-RECENT:]
            fn(self, **kwargs)

        def enabled(self: EscrowMachine) -> bool:
            return name not in self.recent and (when is None or when(self))

        return precondition(enabled)(rule(**strategies)(run))

    return wrap


@dataclass
class Order:
    merchant: str
    category: bytes
    amount: int
    invoice: bytes
    status: str = "pending"


@dataclass
class LoanModel:
    escrow: str
    farmer_id: bytes
    farmer: str
    agent: str
    mode: ConfirmationMode
    deadline: int
    due: int
    grace_days: int = 10
    default_days: int = 60
    status: LoanStatus = S.ISSUED
    budgets: dict[bytes, int] = field(default_factory=dict)
    committed: dict[bytes, int] = field(default_factory=dict)
    paid: int = 0
    reserved: int = 0
    returned: int = 0
    repaid: int = 0
    orders: dict[int, Order] = field(default_factory=dict)
    invoices: set[bytes] = field(default_factory=set)
    order_count: int = 0

    @property
    def funded(self) -> int:
        return PRINCIPAL if self.status not in (S.ISSUED, S.CANCELLED) else 0

    @property
    def available(self) -> int:
        return self.funded - self.paid - self.reserved - self.returned if self.funded else 0

    @property
    def amount_due(self) -> int:
        return self.paid * TOTAL_DUE // PRINCIPAL if self.funded else 0  # pro rata, rounded down

    @property
    def outstanding(self) -> int:
        return self.amount_due - self.repaid if self.status in REPAYABLE else 0

    def refresh(self, t: int, explicit: bool = False) -> None:
        """LoanEscrow._refresh (an unfunded loan is cancelled only by refreshStatus itself: the
        other callers need a funded loan)."""
        if explicit and self.status == S.ISSUED and t > self.deadline:
            self.status = S.CANCELLED
            return
        if self.status not in REPAYABLE:
            return
        if self.amount_due == self.repaid:
            if t > self.deadline and self.reserved == 0:
                self.status = S.REPAID
        elif self.status == S.ACTIVE and t > self.due + self.grace_days * DAY:
            self.status = S.OVERDUE


class EscrowMachine(RuleBasedStateMachine):
    """Two loans (two farmers), one settled lot, two merchants, one changing approval."""

    def __init__(self) -> None:
        super().__init__()
        self.sys, snapshot = base()
        self.sys.revert(snapshot)
        self.loans: list[LoanModel] = []
        a = self.sys.addr
        far = self.sys.now() + 3650 * DAY
        self.approvals = {(a(m), c): [far, False] for m in (MERCHANT, MERCHANT2) for c in CATS}
        self.lender_start = self.sys.balance(LENDER)
        assert self.balance(self.sys.addr(LENDER)) == self.lender_start  # storage layout check
        self.merchant_paid = {a(MERCHANT): 0, a(MERCHANT2): 0}
        self.wallet_paid = {a(FARMER): 0, a(FARMER2): 0}
        self.held = 0
        self.recent: list[str] = []

    # ------------------------------------------------------------------ helpers

    def t(self, ahead: int = 1) -> int:
        """Block time of the next transaction(s)."""
        return self.sys.now() + ahead

    def approved(self, merchant: str, category: bytes, t: int) -> bool:
        expires, revoked = self.approvals.get((merchant, category), [0, True])
        return not revoked and t < expires

    def expect(self, error: str | None, action: Any) -> Any:
        """Run `action`; it must fail with contract error `error`, or succeed if None."""
        event(f"{sys._getframe(1).f_code.co_name}: {error or 'ok'}")  # --hypothesis-show-statistics
        try:
            result = action()
        except ContractRuleError as exc:
            assert exc.name == error, f"expected {error}, got {exc}"
            return None
        assert error is None, f"expected {error}, but the call succeeded"
        return result

    def who(self, m: LoanModel, role: str | int) -> int:
        """Account index for "farmer" / "agent" of loan `m`, or the index given."""
        if role == "farmer":
            return FARMER if m.farmer == self.sys.addr(FARMER) else FARMER2
        return COOP if role == "agent" else int(role)

    def loan(self, index: int) -> LoanModel:
        return self.loans[index % len(self.loans)]

    # ------------------------------------------------------------------ set-up

    @initialize(
        mode_a=st.sampled_from(ConfirmationMode),
        mode_b=st.sampled_from(ConfirmationMode),
        fund_b=st.sampled_from([True, True, True, False]),
        first_orders=st.lists(
            st.tuples(
                st.integers(0, 1), st.sampled_from([MERCHANT, MERCHANT2]), st.integers(1, 150_000)
            ),
            min_size=1,
            max_size=3,
        ),
    )
    def issue_loans(self, mode_a, mode_b, fund_b, first_orders) -> None:
        """Two loans, then a few valid orders so every run starts with money moving."""
        self._issue(mode_a, mode_b, fund_b)
        for n, (index, merchant, amount) in enumerate(first_orders):
            self.order(
                index=index, merchant=merchant, category=CATS[n], amount=amount, by="farmer", n=n
            )
        self.recent = []

    def _issue(self, mode_a: ConfirmationMode, mode_b: ConfirmationMode, fund_b: bool) -> None:
        for farmer, fid, mode, fund in (
            (FARMER, FARMER_ID, mode_a, True),
            (FARMER2, FARMER2_ID, mode_b, fund_b),
        ):
            terms = self.sys.terms(
                farmer_id=fid,
                farmer=self.sys.addr(farmer),
                mode=mode,
                schedule_hash=keccak(fid),
                budgets_fen=BUDGETS,
            )
            accepted = self.sys.accept(terms)
            issued = self.sys.desk.issue(terms, self.sys.sender(LENDER), accepted, fund=fund)
            model = LoanModel(
                escrow=issued.escrow,
                farmer_id=fid,
                farmer=self.sys.addr(farmer),
                agent=self.sys.addr(COOP),
                mode=mode,
                deadline=terms.draw_deadline,
                due=terms.due_date,
                status=S.ACTIVE if fund else S.ISSUED,
                budgets={category_id(k): v for k, v in BUDGETS.items()},
                committed={category_id(k): 0 for k in BUDGETS},
            )
            self.loans.append(model)

    # ------------------------------------------------------------------ rules

    @step(
        index=st.integers(0, 1),
        merchant=st.sampled_from([MERCHANT, MERCHANT, MERCHANT2, MERCHANT2, FARMER, OUTSIDER]),
        category=st.sampled_from([*CATS, CATS[0]]),
        amount=st.integers(1, 200_000),
        by=st.sampled_from(["farmer", "farmer", "agent", "agent", FARMER, OUTSIDER]),
        n=st.integers(0, 5),
    )
    def order(self, index, merchant, category, amount, by, n) -> None:
        m, t = self.loan(index), self.t()
        by = self.who(m, by)
        shop, who, bill = self.sys.addr(merchant), self.sys.addr(by), invoice(n)
        error = self._order_error(m, shop, category, amount, who, bill, t)
        result = self.expect(
            error,
            lambda: self.sys.desk.order_payment(
                m.escrow, shop, category, amount, bill, self.sys.sender(by)
            ),
        )
        if result is None:
            return
        m.committed[category] += amount
        m.invoices.add(bill)
        m.order_count += 1
        assert result.order_id == m.order_count
        if m.mode == ConfirmationMode.IMMEDIATE:
            assert result.paid and self.approved(shop, category, t)  # never outside approval
            m.paid += amount
            self.merchant_paid[shop] += amount
        else:
            m.orders[result.order_id] = Order(shop, category, amount, bill)
            m.reserved += amount

    @step(
        index=st.integers(0, 1),
        merchant=st.sampled_from([MERCHANT, MERCHANT2]),
        amount=st.integers(1, 100_000),
        n=st.integers(0, 5),
    )
    def order_as_farmer(self, index, merchant, amount, n) -> None:
        """The common, mostly valid case (doubles the weight of ordering)."""
        self.order(
            index=index, merchant=merchant, category=CATS[n % 3], amount=amount, by="farmer", n=n
        )

    def _order_error(self, m, shop, category, amount, who, bill, t) -> str | None:
        if who not in (m.farmer, m.agent):
            return "EscrowNotBorrower"
        if m.status != S.ACTIVE:
            return "EscrowInvalidStatus"
        if t > m.deadline:
            return "EscrowDrawWindowClosed"
        if bill in m.invoices:
            return "EscrowInvoiceAlreadyUsed"
        if shop in (m.farmer, m.agent):
            return "EscrowMerchantIsBorrower"
        if not self.approved(shop, category, t):
            return "EscrowMerchantNotApproved"
        if category not in m.budgets:
            return "EscrowUnknownCategory"
        if amount > m.budgets[category] - m.committed[category]:
            return "EscrowCategoryBudgetExceeded"
        return None

    def pick(self, m: LoanModel, pending: bool) -> int:
        """The oldest pending order, or (else) a settled or unknown order id."""
        ids = [k for k, o in m.orders.items() if (o.status == "pending") == pending]
        return ids[0] if ids else m.order_count + 1

    @step(
        index=st.integers(0, 1),
        pending=st.sampled_from([True, True, True, False]),
        by=st.sampled_from(
            ["rightful", "rightful", "merchant", "farmer", "agent", LENDER, OUTSIDER]
        ),
    )
    def confirm(self, index, pending, by) -> None:
        m, t = self.loan(index), self.t()
        pick = self.pick(m, pending)
        o = m.orders.get(pick)
        if by == "rightful":
            by = "merchant" if m.mode == ConfirmationMode.MERCHANT_CONFIRMS else "farmer"
        if by == "merchant":
            who = o.merchant if o is not None else self.sys.addr(MERCHANT)
        else:
            who = self.sys.addr(self.who(m, by))
        sender = self.sys.client.sender_for(self._account(who))
        if o is None or o.status != "pending":
            error = "EscrowOrderNotPending"
        elif (m.mode == ConfirmationMode.MERCHANT_CONFIRMS and who != o.merchant) or (
            m.mode == ConfirmationMode.BORROWER_CONFIRMS and who not in (m.farmer, m.agent)
        ):
            error = "EscrowNotConfirmer"
        elif not self.approved(o.merchant, o.category, t):
            error = "EscrowMerchantNotApproved"
        else:
            error = None
        receipt = self.expect(error, lambda: self.sys.desk.confirm_payment(m.escrow, pick, sender))
        if receipt is None:
            return
        o.status = "released"
        m.reserved -= o.amount
        m.paid += o.amount
        self.merchant_paid[o.merchant] += o.amount

    def _account(self, address: str) -> Any:
        return next(a for a in self.sys.client.accounts if a.address == address)

    @step(
        when=lambda self: any(m.orders for m in self.loans),
        index=st.integers(0, 1),
        pending=st.sampled_from([True, True, True, False]),
        by=st.sampled_from(["merchant", MERCHANT2, "farmer", "agent", LENDER, OUTSIDER]),
    )
    def cancel(self, index, pending, by) -> None:
        m, t = self.loan(index), self.t()
        pick = self.pick(m, pending)
        o = m.orders.get(pick)
        if by == "merchant":
            who = o.merchant if o is not None else self.sys.addr(MERCHANT)
        else:
            who = self.sys.addr(self.who(m, by))
        sender = self.sys.client.sender_for(self._account(who))
        lender_may = who == self.sys.addr(LENDER) and t > m.deadline + CONFIRMATION_PERIOD
        if o is None or o.status != "pending":
            error = "EscrowOrderNotPending"
        elif who not in (m.farmer, m.agent, o.merchant) and not lender_may:
            error = "EscrowNotCanceller"
        else:
            error = None
        receipt = self.expect(error, lambda: self.sys.desk.cancel_payment(m.escrow, pick, sender))
        if receipt is None:
            return
        o.status = "cancelled"
        m.reserved -= o.amount
        m.committed[o.category] -= o.amount
        m.invoices.discard(o.invoice)
        m.refresh(t)

    @step(index=st.integers(0, 1), amount=st.one_of(st.just(-1), st.integers(1, 300_000)))
    def repay(self, index, amount) -> None:
        m = self.loan(index)
        value = m.outstanding if amount == -1 else amount
        self.sys.sender(ADMIN).transact(
            self.sys.token.functions.mint(self.sys.addr(OUTSIDER), max(value, 1))
        )
        t = self.t(2)  # approve, then repay
        if value == 0:
            error = "EscrowZeroAmount"
        elif m.status not in REPAYABLE:
            error = "EscrowInvalidStatus"
        elif value > m.outstanding:
            error = "EscrowRepaymentExceedsOutstanding"
        else:
            error = None
        paid = self.expect(
            error, lambda: self.sys.desk.repay(m.escrow, self.sys.sender(OUTSIDER), value)
        )
        if paid is None:
            return
        m.repaid += value
        m.refresh(t)

    @step(days=st.sampled_from([1, 1, 8, 8, 25, 40, 200, 400]), index=st.integers(0, 1))
    def travel_and_refresh(self, days, index) -> None:
        """Time passes; then anyone applies the time-driven status change of one loan."""
        self.sys.travel(days * DAY + TRAVEL_SLACK)
        m = self.loan(index)
        t = self.t()
        status = self.sys.desk.refresh_status(m.escrow, self.sys.sender(OUTSIDER))
        m.refresh(t, explicit=True)
        assert status == m.status

    @step(index=st.integers(0, 1))
    def return_unspent(self, index) -> None:
        m, t = self.loan(index), self.t()
        if t <= m.deadline:
            error = "EscrowDrawWindowOpen"
        elif not m.funded:
            error = "EscrowInvalidStatus"
        elif m.available == 0:
            error = "EscrowNothingToReturn"
        else:
            error = None
        amount = m.available
        got = self.expect(
            error, lambda: self.sys.desk.return_unspent(m.escrow, self.sys.sender(OUTSIDER))
        )
        if got is None:
            return
        assert got == amount
        m.returned += amount
        m.refresh(t)

    @step(when=lambda self: any(m.status == S.ISSUED for m in self.loans), index=st.integers(0, 1))
    def fund(self, index) -> None:
        m, t = self.loan(index), self.t(2)
        if m.status != S.ISSUED:
            error = "EscrowInvalidStatus"
        elif t > m.deadline:
            error = "EscrowDrawWindowClosed"
        else:
            error = None
        if (
            self.expect(error, lambda: self.sys.desk.fund(m.escrow, self.sys.sender(LENDER)))
            is not None
        ):
            m.status = S.ACTIVE

    @step(
        when=lambda self: any(self.t() > m.due for m in self.loans),
        index=st.integers(0, 1),
        write_off=st.booleans(),
    )
    def lender_enforces(self, index, write_off) -> None:
        """The lender declares default, or writes a defaulted loan off."""
        m, t = self.loan(index), self.t()
        lender = self.sys.sender(LENDER)
        if write_off:
            error = None if m.status == S.DEFAULTED else "EscrowInvalidStatus"
            if self.expect(error, lambda: self.sys.desk.write_off(m.escrow, lender)):
                m.status = S.WRITTEN_OFF
            return
        after = replace(m)
        after.refresh(t)
        if after.status not in (S.ACTIVE, S.OVERDUE):
            error = "EscrowInvalidStatus"
        elif after.outstanding == 0:
            error = "EscrowNothingOutstanding"
        elif t <= m.due + (m.grace_days + m.default_days) * DAY:
            error = "EscrowNotYetDefaultable"
        else:
            error = None
        if self.expect(error, lambda: self.sys.desk.declare_default(m.escrow, lender)):
            m.status = S.DEFAULTED

    @step(category=st.sampled_from(CATS[:3]))
    def revoke_or_renew_merchant2(self, category) -> None:
        shop, t = self.sys.addr(MERCHANT2), self.t()
        registrar = self.sys.sender(REGISTRAR)
        if self.approved(shop, category, t):
            self.sys.merchants.revoke(shop, category, registrar)
            self.approvals[(shop, category)][1] = True
        else:
            expires = t + 45 * DAY
            self.sys.merchants.approve(shop, category, expires, registrar)
            self.approvals[(shop, category)] = [expires, False]

    @step(amount=st.integers(1, 2_000_000))
    def settle(self, amount) -> None:
        t = self.t(2)  # approve, then settle
        result = self.sys.sales.settle_sale(LOT, amount, self.sys.sender(DISTRIBUTOR), SHARES)
        shares = split_amount(amount, [s.weight for s in SHARES])
        assert [r.share_fen for r in result.farmers] == shares
        assert sum(r.share_fen for r in result.farmers) == amount  # sum of shares = sale amount
        by_farmer = {m.farmer_id: m for m in self.loans}
        for share, row in zip(SHARES, result.farmers, strict=True):
            wallet = WALLET.get(share.farmer_id)
            m = by_farmer.get(share.farmer_id)
            owed = m.outstanding if m is not None else 0
            repaid = min(row.share_fen, owed)
            assert row.repaid_fen == repaid, (row, owed)
            if repaid:
                m.repaid += repaid
                m.refresh(t)
            rest = row.share_fen - repaid
            if wallet is None:
                assert row.held_fen == rest
                self.held += rest
            else:
                assert row.paid_out_fen == rest
                self.wallet_paid[self.sys.addr(wallet)] += rest

    # ------------------------------------------------------------------ invariants

    @invariant()
    def escrows_match_the_model_and_the_invariants(self) -> None:
        for m in self.loans:
            escrow = self.sys.escrow(m.escrow).functions
            a = escrow.accounting().call()
            funded, paid, reserved, returned, available, repaid, due, outstanding = a
            balance = self.balance(m.escrow)
            # escrow balance = funded - paid to merchants - returned
            assert balance == funded - paid - returned
            assert paid + reserved + returned <= funded and available >= 0
            # a loan is never repaid beyond what is due
            assert repaid <= due <= TOTAL_DUE
            committed = [escrow.budgetOf(c).call() for c in CATS[:3]]
            assert all(spent <= budget for budget, spent in committed)
            assert sum(spent for _, spent in committed) == paid + reserved
            assert LoanStatus(escrow.status().call()) == m.status
            assert (funded, paid, reserved, returned) == (m.funded, m.paid, m.reserved, m.returned)
            assert (available, repaid, due) == (m.available, m.repaid, m.amount_due)
            assert outstanding == (m.amount_due - m.repaid if m.funded else 0)

    @invariant()
    def money_went_only_where_it_may(self) -> None:
        s = self.sys
        funded = sum(m.funded for m in self.loans)
        back = sum(m.returned + m.repaid for m in self.loans)
        assert self.balance(s.addr(LENDER)) == self.lender_start - funded + back
        for address, total in self.merchant_paid.items():
            assert self.balance(address) == total  # only approved payments reached merchants
        for address, total in self.wallet_paid.items():
            assert self.balance(address) == total  # farmers got sale proceeds, never loan cash
        assert self.balance(s.addr(COOP)) == 0
        assert self.balance(s.settlement.address) == s.settlement.functions.totalHeld().call()
        assert s.sales.held_for(FARMER3_ID) == self.held

    def balance(self, address: str) -> int:
        """PaymentToken balance read straight from storage (ERC20._balances is slot 0): eight
        times faster than an eth_call, and independent of the token's own view code."""
        slot = keccak(bytes.fromhex(address[2:]).rjust(32, b"\0") + bytes(32))
        raw = self.sys.client.w3.eth.get_storage_at(self.sys.token.address, int.from_bytes(slot))
        return int.from_bytes(raw)


EscrowMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestEscrowInvariants = EscrowMachine.TestCase
