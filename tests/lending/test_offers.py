"""lending.loans.offers: when a decision may become a loan, and the escrow terms it becomes;
lending.credit.access: consent before every profile read, failing closed."""

from datetime import UTC, date, datetime, timedelta

import pytest

from lending.credit.access import (
    AccessOutcome,
    MappingProfileReader,
    MemoryAccessLog,
    StaticConsent,
    read_with_consent,
)
from lending.credit.decision import decide
from lending.credit.features import snapshot_from_profile
from lending.credit.policy import Outcome
from lending.credit.scorecard import load_model
from lending.errors import (
    BudgetsNotFinancedError,
    ConsentCheckError,
    ConsentRequiredError,
    DecisionExpiredError,
    DecisionNotApprovedError,
    LoanOfferError,
    PrincipalOverLimitError,
)
from lending.loans.disbursement import ConfirmationMode
from lending.loans.offers import DECISION_VALID_DAYS, escrow_terms, offer_disclosure

FARMER = "0x" + "ab" * 32
LENDER = "0x" + "1f" * 20
WALLET = "0x" + "2e" * 20
DECIDED = datetime(2025, 12, 1, 2, 30, tzinfo=UTC)
STRONG = {
    "farmer_id": FARMER,
    "block_number": 1,
    "block_hash": "0x" + "11" * 32,
    "as_of": date(2025, 11, 30),
    "registered_at": date(2019, 3, 1),
    "plot_area_centi_mu": 800,
    "harvest_grams_by_grade": {1: 900_000, 2: 500_000, 3: 100_000},
    "harvest_grams_prior_12m": 1_400_000,
    "seasonal_sale_income_fen": [3_600_000] * 4,
    "quality_failures_24m": 0,
    "recalled_lots_24m": 0,
    "loans_repaid_on_time": 2,
    "max_days_past_due_24m": 0,
    "outstanding_principal_fen": 0,
}
WEAK = {
    **STRONG,
    "registered_at": date(2025, 11, 1),
    "plot_area_centi_mu": 100,
    "harvest_grams_by_grade": {5: 20_000},
    "harvest_grams_prior_12m": 200_000,
    "seasonal_sale_income_fen": [0, 5_000, 0, 90_000],
    "quality_failures_24m": 3,
}


def _record(profile):
    return decide(
        FARMER,
        LENDER,
        profiles=MappingProfileReader({FARMER: profile}),
        consent=StaticConsent(everyone=True),
        access_log=MemoryAccessLog(),
        model=load_model(),
        now=DECIDED,
    )


APPROVED = _record(STRONG)


def test_an_approved_decision_becomes_its_disclosure_and_escrow_terms():
    assert APPROVED.decision.outcome is Outcome.APPROVE
    budgets = {"fertilizer": 300_000, "seedlings": 200_000}
    now = DECIDED + timedelta(days=3)
    disclosure = offer_disclosure(APPROVED, budgets, now=now)
    assert disclosure.amount_financed_fen == 500_000
    assert disclosure.start == now.date()  # after the contract date: the loan starts today
    terms = escrow_terms(
        APPROVED,
        disclosure,
        budgets,
        now=now,
        draw_days=60,
        mode=ConfirmationMode.MERCHANT_CONFIRMS,
        farmer_wallet=WALLET,
        lender=LENDER,
    )
    assert terms.farmer_id == bytes.fromhex(FARMER[2:]) and terms.farmer == WALLET
    assert terms.principal_fen == 500_000 and dict(terms.budgets_fen) == budgets
    assert terms.total_due_fen == disclosure.total_repayment_fen
    assert terms.draw_deadline == int(now.timestamp()) + 60 * 86_400
    assert terms.mode is ConfirmationMode.MERCHANT_CONFIRMS


@pytest.mark.parametrize(
    ("record", "budgets", "days", "error", "message"),
    [
        (_record(WEAK), {"fertilizer": 100_000}, 0, DecisionNotApprovedError, "approved"),
        (APPROVED, {"fertilizer": 100_000}, DECISION_VALID_DAYS + 1, DecisionExpiredError,
         "older than 30 days"),
        (APPROVED, {"fertilizer": 10**9}, 0, PrincipalOverLimitError, "above the decision's"),
    ],
)  # fmt: skip
def test_refusals_are_named(record, budgets, days, error, message):
    with pytest.raises(error, match=message) as info:
        offer_disclosure(record, budgets, now=DECIDED + timedelta(days=days))
    assert isinstance(info.value, LoanOfferError)


def test_budgets_must_be_the_amount_financed():
    policy = APPROVED.decision.policy
    product = policy.product.model_copy(update={"upfront_fee_bps": 100})
    with_fee = APPROVED.model_copy(
        update={
            "decision": APPROVED.decision.model_copy(
                update={"policy": policy.model_copy(update={"product": product})}
            )
        }
    )
    with pytest.raises(BudgetsNotFinancedError, match="budget the amount financed, 495000 fen"):
        offer_disclosure(with_fee, {"fertilizer": 500_000}, now=DECIDED)


class _Broken:
    def has_consent(self, farmer_id, lender):
        raise RuntimeError("node down")


def _read(consent, log):
    return read_with_consent(
        FARMER,
        LENDER,
        purpose="profile_view",
        consent=consent,
        profiles=MappingProfileReader({FARMER: STRONG}),
        access_log=log,
        parse=snapshot_from_profile,
        at=DECIDED,
    )


def test_a_read_needs_consent_and_is_logged_either_way():
    log = MemoryAccessLog()
    with pytest.raises(ConsentRequiredError):
        _read(StaticConsent(), log)
    snapshot = _read(StaticConsent([(FARMER, LENDER)]), log)
    assert snapshot.block_number == 1
    assert [(e.outcome, e.purpose, e.block_number) for e in log.entries] == [
        (AccessOutcome.REFUSED_NO_CONSENT, "profile_view", None),
        (AccessOutcome.READ, "profile_view", 1),
    ]


def test_consent_fails_closed():
    log = MemoryAccessLog()
    with pytest.raises(ConsentCheckError, match="node down") as info:
        _read(_Broken(), log)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert log.entries == []  # consent unproven: nothing was read
