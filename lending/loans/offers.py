"""When a credit decision may become a loan, and the terms it becomes.

A lender turns its own stored decision into a loan by budgeting the money by merchant category.
The rules, in order (each refusal a named LoanOfferError):

  1. Only an approved decision with an offered rate can become a loan
     (DecisionNotApprovedError).
  2. The offer stands DECISION_VALID_DAYS from the decision (DecisionExpiredError).
  3. The budgets add up to the principal, which may not exceed the decision's limit
     (PrincipalOverLimitError).
  4. The escrow holds the amount financed (the principal less the upfront fee), so the budgets
     must add up to exactly that (BudgetsNotFinancedError).

The rate is the decision's offered rate and the schedule the decision's product, starting on
the contract date or the chain's date if later; `offer_disclosure` returns the disclosure of
that offer. `escrow_terms` turns it into the EscrowTerms that LoanFactory.issueAndFundLoan
takes, with the draw deadline counted from the chain's time (never the server's clock).

`OfferStore` keeps each offer (table loan_offer): the terms and disclosure the farmer is shown,
then the farmer's signed acceptance, then the loan. One decision has at most one offer, so one
decision gives at most one loan (a unique index; a second offer is OfferExistsError).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lending.credit.decision import DecisionRecord
from lending.credit.policy import Outcome
from lending.errors import (
    BudgetsNotFinancedError,
    DecisionExpiredError,
    DecisionNotApprovedError,
    PrincipalOverLimitError,
)
from lending.loans.disbursement import Acceptance, ConfirmationMode, EscrowTerms
from lending.loans.errors import LoanTermsError
from lending.loans.models import LoanOfferRow
from lending.pricing.disclosure import Disclosure, disclose
from lending.pricing.schedule import ScheduleTerms

DECISION_VALID_DAYS = 30
SECONDS_PER_DAY = 86_400


def offer_disclosure(
    record: DecisionRecord,
    budgets_fen: Mapping[str, int],
    *,
    now: datetime,
    chain_now: datetime | None = None,
) -> Disclosure:
    """The disclosure of the loan the budgets ask for, if the decision allows it (rules 1-4).
    The decision's age counts on the server's clock (`now`, when it was decided); the schedule
    starts on the chain's date (`chain_now`, default `now`)."""
    d = record.decision
    if d.outcome is not Outcome.APPROVE or d.pricing is None or d.pricing.offered_rate_bps is None:
        raise DecisionNotApprovedError(
            f"decision {record.decision_id} is {d.outcome.value}: only an approved decision "
            "can become a loan"
        )
    if record.decided_at < now - timedelta(days=DECISION_VALID_DAYS):
        raise DecisionExpiredError(
            f"decision {record.decision_id} is older than {DECISION_VALID_DAYS} days: decide again"
        )
    principal = sum(budgets_fen.values())
    if principal > d.limit_fen:
        raise PrincipalOverLimitError(
            f"the budgets add up to {principal} fen, above the decision's limit of "
            f"{d.limit_fen} fen"
        )
    product = d.policy.product
    terms = ScheduleTerms(
        principal_fen=principal,
        annual_rate=d.pricing.offered_rate_bps,
        term_months=product.term_months,
        kind=product.kind,
        start=max(d.contract_date, (chain_now or now).date()),
        upfront_fee_fen=principal * product.upfront_fee_bps // 10_000,
        grace_months=product.grace_months,
        penalty_rate_bps=product.penalty_rate_bps,
    )
    disclosure = disclose(terms, d.policy.cap_policy())
    if disclosure.amount_financed_fen != principal:
        raise BudgetsNotFinancedError(
            f"budget the amount financed, {disclosure.amount_financed_fen} fen (the principal "
            "less the upfront fee)"
        )
    return disclosure


def escrow_terms(
    record: DecisionRecord,
    disclosure: Disclosure,
    budgets_fen: Mapping[str, int],
    *,
    chain_time: int,
    draw_days: int,
    mode: ConfirmationMode,
    farmer_wallet: str,
    lender: str,
    agent: str | None = None,
) -> EscrowTerms:
    """The escrow terms of an offer: the draw window runs `draw_days` from the chain's time;
    `agent` (the farmer's cooperative) may order and receive payments for the farmer."""
    return EscrowTerms.from_disclosure(
        disclosure,
        farmer_id=bytes.fromhex(record.decision.farmer_id[2:]),
        farmer=farmer_wallet,
        lender=lender,
        budgets_fen=dict(budgets_fen),
        draw_deadline=chain_time + draw_days * SECONDS_PER_DAY,
        mode=mode,
        agent=agent,
    )


# --------------------------------------------------------------------------- stored offers


class OfferExistsError(LoanTermsError):
    """The decision already has an offer (one decision gives one loan)."""


class OfferStateError(LoanTermsError):
    """The offer is not in the state the action needs (not accepted yet, already issued)."""


def terms_to_json(terms: EscrowTerms) -> str:
    """EscrowTerms as JSON (budgets keep their category names)."""
    body: dict[str, Any] = {
        "farmer_id": "0x" + terms.farmer_id.hex(),
        "farmer": terms.farmer,
        "lender": terms.lender,
        "principal_fen": terms.principal_fen,
        "budgets_fen": {str(k): v for k, v in terms.budgets_fen.items()},
        "schedule_hash": "0x" + terms.schedule_hash.hex(),
        "disclosure_hash": "0x" + terms.disclosure_hash.hex(),
        "draw_deadline": terms.draw_deadline,
        "total_due_fen": terms.total_due_fen,
        "due_date": terms.due_date,
        "grace_days": terms.grace_days,
        "default_days": terms.default_days,
        "agent": terms.agent,
        "mode": int(terms.mode),
        "apr_bps": terms.apr_bps,
    }
    return json.dumps(body, sort_keys=True)


def terms_from_json(text: str) -> EscrowTerms:
    """The EscrowTerms stored by terms_to_json."""
    body = json.loads(text)
    for name in ("farmer_id", "schedule_hash", "disclosure_hash"):
        body[name] = bytes.fromhex(body[name][2:])
    body["mode"] = ConfirmationMode(body["mode"])
    return EscrowTerms(**body)


@dataclass(frozen=True)
class StoredOffer:
    """An offer as stored."""

    offer_id: str
    decision_id: str
    lender: str
    farmer_id: str
    created_at: datetime
    terms: EscrowTerms
    disclosure: Disclosure
    acceptance: Acceptance | None
    escrow: str | None
    loan_id: int | None
    transaction: str | None

    @property
    def status(self) -> str:
        """offered, accepted (signed by the farmer) or issued (on chain)."""
        if self.escrow is not None:
            return "issued"
        return "accepted" if self.acceptance is not None else "offered"


def _stored(row: LoanOfferRow) -> StoredOffer:
    """The row as a StoredOffer."""
    acceptance = None
    if row.acceptance_signature is not None:
        assert row.acceptance_nonce is not None and row.acceptance_deadline is not None
        signature = bytes.fromhex(row.acceptance_signature[2:])
        acceptance = Acceptance(row.acceptance_nonce, row.acceptance_deadline, signature)
    return StoredOffer(
        offer_id=row.offer_id,
        decision_id=row.decision_id,
        lender=row.lender,
        farmer_id=row.farmer_id,
        created_at=row.created_at,
        terms=terms_from_json(row.terms_json),
        disclosure=Disclosure.model_validate_json(row.disclosure_json),
        acceptance=acceptance,
        escrow=row.escrow,
        loan_id=row.loan_id,
        transaction=row.transaction,
    )


class OfferStore:
    """Loan offers on the service database (table loan_offer)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, decision_id: str, terms: EscrowTerms, disclosure: Disclosure) -> StoredOffer:
        """Store a new offer; OfferExistsError if the decision already has one."""
        row = LoanOfferRow(
            offer_id=secrets.token_hex(16),
            decision_id=decision_id,
            lender=terms.lender.lower(),
            farmer_id="0x" + terms.farmer_id.hex(),
            created_at=datetime.now(UTC),
            terms_json=terms_to_json(terms),
            disclosure_json=disclosure.model_dump_json(),
        )
        with Session(self.engine) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError as exc:
                raise OfferExistsError(
                    f"decision {decision_id} already has a loan offer: one decision gives one "
                    "loan (make a new decision for another loan)"
                ) from exc
            session.refresh(row)
            return _stored(row)

    def _row(self, session: Session, offer_id: str) -> LoanOfferRow | None:
        """The row of `offer_id`, if any."""
        stmt = select(LoanOfferRow).where(col(LoanOfferRow.offer_id) == offer_id)
        return session.exec(stmt).first()

    def get(self, offer_id: str) -> StoredOffer | None:
        """The offer, or None."""
        with Session(self.engine) as session:
            row = self._row(session, offer_id)
            return None if row is None else _stored(row)

    def for_farmer(self, farmer_id: str) -> list[StoredOffer]:
        """Every offer to the farmer, oldest first."""
        stmt = (
            select(LoanOfferRow)
            .where(col(LoanOfferRow.farmer_id) == farmer_id.lower())
            .order_by(col(LoanOfferRow.id))
        )
        with Session(self.engine) as session:
            return [_stored(r) for r in session.exec(stmt).all()]

    def waiting_to_issue(self, lender: str, limit: int) -> list[StoredOffer]:
        """The lender's offers its farmers signed and it has not issued yet, oldest first."""
        stmt = (
            select(LoanOfferRow)
            .where(col(LoanOfferRow.lender) == lender.lower())
            .where(col(LoanOfferRow.acceptance_signature).is_not(None))
            .where(col(LoanOfferRow.escrow).is_(None))
            .order_by(col(LoanOfferRow.id))
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [_stored(r) for r in session.exec(stmt).all()]

    def for_farmers(self, farmer_ids: list[str]) -> list[StoredOffer]:
        """Every offer to any of the farmers, oldest first."""
        wanted = [f.lower() for f in farmer_ids]
        stmt = (
            select(LoanOfferRow)
            .where(col(LoanOfferRow.farmer_id).in_(wanted))
            .order_by(col(LoanOfferRow.id))
        )
        with Session(self.engine) as session:
            return [_stored(r) for r in session.exec(stmt).all()] if wanted else []

    def record_acceptance(self, offer_id: str, acceptance: Acceptance) -> StoredOffer:
        """Keep the farmer's (checked) signature; refused once the loan is issued."""
        with Session(self.engine) as session:
            row = self._row(session, offer_id)
            assert row is not None
            if row.escrow is not None:
                raise OfferStateError(f"offer {offer_id} is already a loan: nothing to accept")
            row.acceptance_nonce = acceptance.nonce
            row.acceptance_deadline = acceptance.deadline
            row.acceptance_signature = "0x" + acceptance.signature.hex()
            row.accepted_at = datetime.now(UTC)
            session.add(row)
            session.commit()
            session.refresh(row)
            return _stored(row)

    def record_issue(self, offer_id: str, escrow: str, loan_id: int, tx: str) -> StoredOffer:
        """The loan the offer became."""
        with Session(self.engine) as session:
            row = self._row(session, offer_id)
            assert row is not None
            row.escrow, row.loan_id, row.transaction = escrow, loan_id, tx
            row.issued_at = datetime.now(UTC)
            session.add(row)
            session.commit()
            session.refresh(row)
            return _stored(row)
