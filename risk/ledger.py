"""The loan book as the lending rules read it: each indexed loan's terms, money and status times.

Every rule reads loans from here (`ScanContext.loans`, loaded once per scan). Everything comes from
the indexer's `loan`, `loan_terms` and `loan_event` tables; statuses are ILoanEscrow.LoanStatus
(lending.loans.disbursement.LoanStatus), never bare numbers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx
from sqlalchemy import select
from sqlalchemy.engine import Connection

from indexer.models import IndexedLoanTerms, Loan, LoanEvent
from lending.loans.disbursement import LoanStatus

CLOSED_STATUSES = frozenset({LoanStatus.REPAID, LoanStatus.WRITTEN_OFF, LoanStatus.CANCELLED})
"""ILoanEscrow: Repaid, WrittenOff and Cancelled are closed; the rest are open."""


@dataclass
class LoanRecord:
    """One loan and everything its escrow reported (amounts fen, times chain seconds)."""

    loan_id: int
    farmer: bytes
    lender: bytes
    principal_fen: int
    issued_at: int
    escrow: bytes = b""
    borrower: bytes = b""
    agent: bytes = b""
    total_due_fen: int | None = None
    due_date: int | None = None
    draw_deadline: int | None = None
    statuses: list[tuple[int, LoanStatus]] = field(default_factory=list)
    funded: list[int] = field(default_factory=list)
    disbursed: list[tuple[int, int]] = field(default_factory=list)
    repaid: list[tuple[int, int, int | None]] = field(default_factory=list)
    """(time, amount, outstanding after it)."""
    ordered: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Reserved orders: order id -> (time, amount)."""
    settled: dict[int, int] = field(default_factory=dict)
    """Order id -> when it left the reserve (released or cancelled)."""

    def status_at(self, t: int) -> LoanStatus:
        """The last status reported at or before `t` (Issued before any report)."""
        current = LoanStatus.ISSUED
        for at, status in self.statuses:
            if at > t:
                break
            current = status
        return current

    def closed_at(self, status: LoanStatus | None = None) -> int | None:
        """When the loan first reached a closed status (`status` only, if given)."""
        wanted = CLOSED_STATUSES if status is None else {status}
        return next((at for at, s in self.statuses if s in wanted), None)

    def ever_funded(self) -> bool:
        """True if the lender's money ever reached the escrow."""
        return bool(self.funded) or bool(self.disbursed)

    def drawn_by(self, t: int) -> int:
        """Fen paid to merchants up to `t`."""
        return sum(a for at, a in self.disbursed if at <= t)

    def repaid_by(self, t: int) -> int:
        """Fen repaid up to `t`."""
        return sum(a for at, a, _ in self.repaid if at <= t)

    def owed_by(self, t: int) -> int:
        """What the escrow says is outstanding at `t`: floor(drawn x total due / principal)
        less repayments (ILoanEscrow.Accounting.outstanding)."""
        due = self.total_due_fen if self.total_due_fen is not None else self.principal_fen
        return max(0, self.drawn_by(t) * due // self.principal_fen - self.repaid_by(t))

    def reserved_by(self, t: int) -> int:
        """Fen held for pending orders at `t` (ordered, neither released nor cancelled yet)."""
        return sum(
            amount
            for order, (at, amount) in self.ordered.items()
            if at <= t and self.settled.get(order, t + 1) > t
        )

    def open_at(self, t: int) -> bool:
        """Open at `t` as ILoanEscrow.isOpen says: issued, not closed, and not merely waiting
        for a refresh (past the draw deadline, nothing owed and nothing reserved)."""
        if t < self.issued_at or self.status_at(t) in CLOSED_STATUSES:
            return False
        past_draw = self.draw_deadline is not None and t > self.draw_deadline
        return not (past_draw and self.owed_by(t) == 0 and self.reserved_by(t) == 0)

    def repaid_at(self) -> int | None:
        """When the loan was repaid: its Repaid status, or a repayment leaving nothing
        outstanding after the draw deadline (before anyone refreshed the status)."""
        closed = self.closed_at(LoanStatus.REPAID)
        deadline = self.draw_deadline if self.draw_deadline is not None else self.issued_at
        settled = next((at for at, _, left in self.repaid if left == 0 and at >= deadline), None)
        candidates = [at for at in (closed, settled) if at is not None]
        return min(candidates) if candidates else None


def load_loans(conn: Connection) -> dict[int, LoanRecord]:
    """Every indexed loan with its terms and events, in chain order."""
    loans: dict[int, LoanRecord] = {}
    rows = conn.execute(
        select(
            Loan.loan_id, Loan.farmer, Loan.lender, Loan.principal_fen, Loan.block_timestamp,
            Loan.escrow, Loan.borrower, Loan.agent,
        )
    )  # fmt: skip
    for loan_id, farmer, lender, principal, at, escrow, borrower, agent in rows:
        loans[loan_id] = LoanRecord(
            loan_id,
            bytes(farmer),
            bytes(lender),
            principal,
            at,
            bytes(escrow),
            bytes(borrower),
            bytes(agent),
        )
    terms = conn.execute(
        select(
            IndexedLoanTerms.loan_id, IndexedLoanTerms.total_due_fen, IndexedLoanTerms.due_date,
            IndexedLoanTerms.draw_deadline,
        )
    )  # fmt: skip
    for loan_id, total_due, due_date, draw_deadline in terms:
        if loan_id in loans:
            rec = loans[loan_id]
            rec.total_due_fen, rec.due_date, rec.draw_deadline = total_due, due_date, draw_deadline
    events = conn.execute(
        select(
            LoanEvent.loan_id, LoanEvent.kind, LoanEvent.amount_fen, LoanEvent.status,
            LoanEvent.order_id, LoanEvent.outstanding_fen, LoanEvent.block_timestamp,
        ).order_by(LoanEvent.block_number, LoanEvent.log_index)
    )  # fmt: skip
    for loan_id, kind, amount, status, order_id, outstanding, at in events:
        rec = loans.get(loan_id)
        if rec is not None:
            _apply(rec, kind, amount or 0, status, order_id, outstanding, at)
    return loans


def _apply(
    rec: LoanRecord, kind: str, amount: int, status: int | None, order_id: int | None,
    outstanding: int | None, at: int,
) -> None:  # fmt: skip
    """Add one loan_event row to its loan."""
    if kind == "status" and status is not None:
        rec.statuses.append((at, LoanStatus(status)))
    elif kind == "funded":
        rec.funded.append(at)
    elif kind == "disbursed":
        rec.disbursed.append((at, amount))
        if order_id is not None:
            rec.settled.setdefault(order_id, at)
    elif kind == "ordered" and order_id is not None:
        rec.ordered[order_id] = (at, amount)
    elif kind == "cancelled" and order_id is not None:
        rec.settled.setdefault(order_id, at)
    elif kind == "repaid":
        rec.repaid.append((at, amount, outstanding))


def by_farmer(loans: dict[int, LoanRecord]) -> dict[bytes, list[LoanRecord]]:
    """Each farmer's loans in order of issue."""
    grouped: dict[bytes, list[LoanRecord]] = defaultdict(list)
    for rec in sorted(loans.values(), key=lambda r: (r.issued_at, r.loan_id)):
        grouped[rec.farmer].append(rec)
    return dict(grouped)


def by_person(loans: dict[int, LoanRecord]) -> list[list[LoanRecord]]:
    """Loans grouped by the person behind them, each group in order of issue: farmer ids that
    borrowed into one wallet are one person (the LoanFactory's one-open-loan rule holds per
    farmer id, so a second id on the same wallet is how one person holds two loans at once)."""
    graph: nx.Graph = nx.Graph()
    for rec in loans.values():
        graph.add_node(("farmer", rec.farmer))
        if any(rec.borrower):
            graph.add_edge(("farmer", rec.farmer), ("wallet", rec.borrower))
    ordered = sorted(loans.values(), key=lambda r: (r.issued_at, r.loan_id))
    person = {
        node[1]: n
        for n, component in enumerate(nx.connected_components(graph))
        for node in component
        if node[0] == "farmer"
    }
    grouped: dict[int, list[LoanRecord]] = defaultdict(list)
    for rec in ordered:
        grouped[person[rec.farmer]].append(rec)
    return sorted(grouped.values(), key=lambda g: (g[0].issued_at, g[0].loan_id))
