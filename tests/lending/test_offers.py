"""lending.loans.offers: when a decision may become a loan, and the escrow terms it becomes;
lending.credit.access: consent before every profile read, failing closed."""

from datetime import UTC, date, datetime, timedelta

import pytest

from indexer.db import make_engine, migrate
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
from lending.loans.disbursement import Acceptance, ConfirmationMode, apr_bps
from lending.loans.offers import (
    DECISION_VALID_DAYS,
    OfferExistsError,
    OfferStateError,
    OfferStore,
    escrow_terms,
    offer_disclosure,
    terms_from_json,
    terms_to_json,
)

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
        chain_time=int(now.timestamp()) + 1_000,  # the chain's clock, not the server's
        draw_days=60,
        mode=ConfirmationMode.MERCHANT_CONFIRMS,
        farmer_wallet=WALLET,
        lender=LENDER,
    )
    assert terms.farmer_id == bytes.fromhex(FARMER[2:]) and terms.farmer == WALLET
    assert terms.principal_fen == 500_000 and dict(terms.budgets_fen) == budgets
    assert terms.total_due_fen == disclosure.total_repayment_fen
    assert terms.draw_deadline == int(now.timestamp()) + 1_000 + 60 * 86_400
    assert terms.apr_bps == apr_bps(disclosure.apr_regz_pct) > 0
    chain_later = now + timedelta(days=40)  # the demo moved the chain forward
    later = offer_disclosure(APPROVED, budgets, now=now, chain_now=chain_later)
    assert later.start == chain_later.date()  # the schedule starts on the chain's date
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


# ---------------------------------------------------------------- stored offers


def _offer_terms(now: datetime):
    budgets = {"fertilizer": 300_000, "seedlings": 200_000}
    disclosure = offer_disclosure(APPROVED, budgets, now=now)
    terms = escrow_terms(
        APPROVED,
        disclosure,
        budgets,
        chain_time=int(now.timestamp()),
        draw_days=30,
        mode=ConfirmationMode.IMMEDIATE,
        farmer_wallet=WALLET,
        lender=LENDER,
    )
    return terms, disclosure


def test_one_decision_gives_one_offer_on_a_real_database(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'offers.db'}")
    migrate(engine)
    store = OfferStore(engine)
    terms, disclosure = _offer_terms(DECIDED + timedelta(days=1))
    offer = store.create(APPROVED.decision_id, terms, disclosure)
    assert offer.status == "offered" and offer.terms == terms and offer.disclosure == disclosure
    assert terms_from_json(terms_to_json(terms)) == terms
    with pytest.raises(OfferExistsError, match="one decision gives one loan"):
        store.create(APPROVED.decision_id, terms, disclosure)
    accepted = store.record_acceptance(offer.offer_id, Acceptance(0, 99, b"\x01" * 65))
    assert accepted.status == "accepted" and accepted.acceptance == Acceptance(0, 99, b"\x01" * 65)
    issued = store.record_issue(offer.offer_id, "0x" + "12" * 20, 7, "0x" + "ab" * 32)
    assert issued.status == "issued" and issued.loan_id == 7
    with pytest.raises(OfferStateError, match="already a loan"):
        store.record_acceptance(offer.offer_id, Acceptance(1, 99, b"\x01" * 65))
    assert [o.offer_id for o in store.for_farmer(FARMER.upper().replace("0X", "0x"))] == [
        offer.offer_id
    ]
    assert store.get("nope") is None
