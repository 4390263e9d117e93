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
the contract date or today if later; `offer_disclosure` returns the disclosure of that offer.
`escrow_terms` turns it into the EscrowTerms that LoanFactory.issueAndFundLoan takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from lending.credit.decision import DecisionRecord
from lending.credit.policy import Outcome
from lending.errors import (
    BudgetsNotFinancedError,
    DecisionExpiredError,
    DecisionNotApprovedError,
    PrincipalOverLimitError,
)
from lending.loans.disbursement import ConfirmationMode, EscrowTerms
from lending.pricing.disclosure import Disclosure, disclose
from lending.pricing.schedule import ScheduleTerms

DECISION_VALID_DAYS = 30
SECONDS_PER_DAY = 86_400


def offer_disclosure(
    record: DecisionRecord, budgets_fen: Mapping[str, int], *, now: datetime
) -> Disclosure:
    """The disclosure of the loan the budgets ask for, if the decision allows it (rules 1-4)."""
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
        start=max(d.contract_date, now.date()),
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
    now: datetime,
    draw_days: int,
    mode: ConfirmationMode,
    farmer_wallet: str,
    lender: str,
) -> EscrowTerms:
    """The escrow terms of an offer: the draw window runs `draw_days` from `now`."""
    return EscrowTerms.from_disclosure(
        disclosure,
        farmer_id=bytes.fromhex(record.decision.farmer_id[2:]),
        farmer=farmer_wallet,
        lender=lender,
        budgets_fen=dict(budgets_fen),
        draw_deadline=int(now.timestamp()) + draw_days * SECONDS_PER_DAY,
        mode=mode,
    )
