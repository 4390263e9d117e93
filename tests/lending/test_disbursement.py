"""lending.loans.disbursement / merchants / settlement / errors: terms, hashing, farmer shares
and their split, named errors, the pipelined first payment, and the merchant's view of payments.
(Shares computed from lineage: tests/traceability/test_weights.py.)"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from chain.compiler import compile_contracts
from chain.config import PROJECT_ROOT
from chain.errors import revert_class
from lending.loans import errors as loan_errors
from lending.loans.disbursement import (
    ConfirmationMode,
    EscrowTerms,
    LoanStatus,
    OrderResult,
    apr_bps,
    category_id,
    document_hash,
    end_of_day,
)
from lending.loans.merchants import payments_received, summarize
from lending.loans.settlement import FarmerShare, normalize_shares, split_amount
from lending.pricing.disclosure import disclose
from lending.pricing.schedule import ScheduleKind
from lending.pricing.schedule import ScheduleTerms as Offer
from tests._fixtures import client_for
from tests.contracts.conftest_loans import (
    COOP,
    FARMER,
    FARMER2,
    FARMER2_ID,
    FARMER_ID,
    FERTILIZER,
    LENDER,
    MERCHANT,
    MERCHANT2,
    SEEDLINGS,
    deploy_loan_system,
    invoice,
)

A1 = "0x" + "11" * 20
A2 = "0x" + "22" * 20
A3 = "0x" + "33" * 20
H = keccak(text="h")


def terms(**changes) -> EscrowTerms:
    values = {
        "farmer_id": keccak(text="f"),
        "farmer": A1,
        "lender": A2,
        "principal_fen": 1_000,
        "budgets_fen": {"fertilizer": 600, "seedlings": 400},
        "schedule_hash": H,
        "disclosure_hash": H,
        "draw_deadline": 100,
        "total_due_fen": 1_100,
        "due_date": 200,
        "agent": A3,
    }
    values.update(changes)
    return EscrowTerms(**values)


# ---------------------------------------------------------------- EscrowTerms


def test_params_are_in_the_contracts_order_with_sorted_categories():
    p = terms().params()
    assert p[4] == sorted([category_id("fertilizer"), category_id("seedlings")])
    assert p[5] == [dict(zip(p[4], p[5], strict=True))[c] for c in p[4]]
    assert dict(zip(p[4], p[5], strict=True)) == {FERTILIZER: 600, SEEDLINGS: 400}
    assert p[13] == ConfirmationMode.IMMEDIATE and p[2].lower() == A3
    assert terms(agent=None).params()[2] == "0x" + "00" * 20
    assert terms().categories == tuple(p[4])


def test_terms_are_frozen_and_budgets_cannot_change_afterwards():
    t = terms()
    with pytest.raises(AttributeError):
        t.principal_fen = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        t.budgets_fen["fertilizer"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"budgets_fen": {"fertilizer": 600, "seedlings": 300}}, "add up to 900"),
        ({"budgets_fen": {"fertilizer": 1_000, "seedlings": 0}}, "positive int"),
        ({"budgets_fen": {}}, "budget 1 to 16"),
        ({"budgets_fen": {"fertilizer": 500, FERTILIZER: 500}}, "same category"),
        ({"principal_fen": 0}, "principal_fen"),
        ({"principal_fen": 1.5}, "principal_fen"),
        ({"total_due_fen": 999}, "below the principal"),
        ({"due_date": 99}, "due date"),
        ({"farmer_id": bytes(32)}, "farmer_id is zero"),
        ({"schedule_hash": b"short"}, "32 bytes"),
        ({"farmer": A2}, "lender cannot be the farmer"),
        ({"agent": A1}, "agent cannot be the farmer"),
        ({"lender": "not an address"}, "not an address"),
        ({"grace_days": 70_000}, "grace_days"),
        ({"apr_bps": 65_536}, "apr_bps"),
        ({"apr_bps": True}, "apr_bps"),
    ],
)
def test_bad_terms_fail_before_anything_is_sent(changes, message):
    with pytest.raises(loan_errors.LoanTermsError, match=message):
        terms(**changes)


def test_terms_from_a_disclosure():
    offer = Offer(
        principal_fen=1_000_000,
        annual_rate=800,
        term_months=12,
        kind=ScheduleKind.BULLET,
        start=date(2025, 3, 1),
        upfront_fee_fen=10_000,
    )
    d = disclose(offer)
    t = EscrowTerms.from_disclosure(
        d,
        farmer_id=keccak(text="f"),
        farmer=A1,
        lender=A2,
        budgets_fen={"fertilizer": 990_000},
        draw_deadline=end_of_day(date(2025, 3, 31)),
    )
    assert t.principal_fen == 990_000  # the amount financed: what the farmer receives
    assert t.total_due_fen == d.total_repayment_fen
    assert t.due_date == end_of_day(d.maturity)
    assert t.disclosure_hash == document_hash(d)
    assert t.apr_bps == apr_bps(d.apr_regz_pct) and t.params()[14] == t.apr_bps
    assert apr_bps(Decimal("8.305")) == 831  # half up: the farmer is shown the higher rate


def test_hashes_and_dates():
    assert category_id("fertilizer") == keccak(text="fertilizer") == category_id(FERTILIZER)
    with pytest.raises(loan_errors.LoanTermsError):
        category_id(b"short")
    assert document_hash({"b": 1, "a": [date(2025, 1, 1)]}) == document_hash(
        {"a": ["2025-01-01"], "b": 1}
    )
    assert document_hash("x") == document_hash(b"x") == keccak(b"x")
    day = date(2025, 6, 1)
    assert datetime.fromtimestamp(end_of_day(day), UTC).isoformat() == "2025-06-01T23:59:59+00:00"


# ---------------------------------------------------------------- shares


@given(
    amount=st.integers(0, 10**12),
    weights=st.lists(st.integers(1, 10**9), min_size=1, max_size=30),
)
def test_split_sums_exactly_and_stays_within_a_fen(amount, weights):
    shares = split_amount(amount, weights)
    assert sum(shares) == amount
    total = sum(weights)
    assert all(abs(s * total - amount * w) < total for s, w in zip(shares, weights, strict=True))


def test_split_refuses_nonsense():
    with pytest.raises(loan_errors.SharesError):
        split_amount(10, [])
    with pytest.raises(loan_errors.SharesError):
        split_amount(10, [1, 0])


def test_normalize_shares_sorts_and_validates():
    a, b = keccak(text="a"), keccak(text="b")
    assert normalize_shares({b: 1, a: 2}) == tuple(sorted([FarmerShare(a, 2), FarmerShare(b, 1)]))
    with pytest.raises(loan_errors.SharesError, match="twice"):
        normalize_shares([FarmerShare(a, 1), FarmerShare(a, 2)])
    with pytest.raises(loan_errors.SharesError, match="1 to 100"):
        normalize_shares({keccak(text=str(i)): 1 for i in range(101)})
    with pytest.raises(loan_errors.SharesError, match="weight"):
        normalize_shares({a: 0})


# ---------------------------------------------------------------- named errors


def test_every_contract_error_has_a_named_python_error():
    artifacts = compile_contracts(PROJECT_ROOT, PROJECT_ROOT / ".tealedger" / "cache")
    names = {
        e["name"]
        for contract in ("MerchantRegistry", "LoanFactory", "LoanEscrow", "SaleSettlement")
        for e in artifacts[contract].errors
    } | {e["name"] for e in artifacts["PaymentToken"].errors if e["name"].startswith("ERC20")}
    missing = names - loan_errors.known_error_names()
    assert not missing, f"add hints to lending/loans/errors.py _ERRORS for {sorted(missing)}"


def test_translation_keeps_name_values_and_cause():
    raw = revert_class("EscrowRepaymentExceedsOutstanding")(
        "EscrowRepaymentExceedsOutstanding", {"loanId": 3, "outstanding": 10, "amount": 11}
    )
    with pytest.raises(loan_errors.EscrowError) as info, loan_errors.translate_reverts():
        raise raw
    err = info.value
    assert (err.name, err.loanId, err.outstanding, err.amount) == (
        "EscrowRepaymentExceedsOutstanding",
        3,
        10,
        11,
    )
    assert err.__cause__ is raw and "only 10 fen outstanding" in str(err)
    unknown = revert_class("SomethingNew")("SomethingNew", {"x": 1})
    assert isinstance(loan_errors.from_revert(unknown), loan_errors.UnknownContractError)
    bare = loan_errors.from_revert(revert_class("Reverted")("Reverted", {}))
    assert isinstance(bare, loan_errors.TokenError) and bare.name == "Reverted"
    status = loan_errors.from_revert(
        revert_class("EscrowInvalidStatus")(
            "EscrowInvalidStatus", {"loanId": 1, "status": LoanStatus.DEFAULTED}
        )
    )
    assert isinstance(status, loan_errors.EscrowError) and "is defaulted" in str(status)


# ---------------------------------------------------------------- on chain


@pytest.fixture
def system(tmp_path):
    client = client_for("embedded", tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    return deploy_loan_system(client)


def test_first_payment_pipelined_behind_the_issue(system):
    t = system.terms()
    result = system.desk.disburse_first_payment(
        t,
        system.accept(t),
        system.sender(LENDER),
        system.sender(FARMER),
        system.addr(MERCHANT),
        "fertilizer",
        120_000,
        invoice(1),
    )
    assert result.pipelined and result.order.paid and result.loan.escrow == result.order.escrow
    assert system.balance(MERCHANT) == 120_000
    with pytest.raises(loan_errors.LoanTermsError, match="terms name lender"):
        system.desk.send_issue(t, system.sender(COOP), system.accept(t))


def test_an_order_mined_before_its_escrow_is_detected_and_resent(system, monkeypatch):
    t = system.terms()
    escrow = system.desk.predict_escrow(t)
    early = system.desk.send_order(
        escrow,
        system.addr(MERCHANT),
        "fertilizer",
        1,
        invoice(1),
        system.sender(FARMER),
        gas=300_000,
    )
    receipt = system.sender(FARMER).wait([early])[0]
    with pytest.raises(loan_errors.OrderNotExecutedError, match="send it again"):
        system.desk._order_result(escrow, receipt)
    # the same race inside disburse_first_payment: the lost order is sent again after the issue
    original = system.desk.send_order
    lost = []

    def first_order_lands_nowhere(escrow_address, *args, **kwargs):
        if not lost:  # like an order mined before its escrow: it runs against empty code
            lost.append(escrow_address)
            return original(system.addr(9), *args, **kwargs)
        return original(escrow_address, *args, **kwargs)

    monkeypatch.setattr(system.desk, "send_order", first_order_lands_nowhere)
    result = system.desk.disburse_first_payment(
        t,
        system.accept(t),
        system.sender(LENDER),
        system.sender(FARMER),
        system.addr(MERCHANT),
        "fertilizer",
        100,
        invoice(2),
    )
    assert not result.pipelined and result.order.paid and result.order.order_id == 1
    assert system.balance(MERCHANT) == 100


def test_orders_sent_together_each_get_their_result_or_named_error(system):
    loan = system.issue()
    farmer, merchant = system.sender(FARMER), system.addr(MERCHANT)
    calls = [
        system.desk.order_call(loan.escrow, merchant, FERTILIZER, 100, invoice(1)),
        system.desk.order_call(loan.escrow, merchant, FERTILIZER, 100, invoice(1)),  # used
        system.desk.order_call(loan.escrow, merchant, SEEDLINGS, 200, invoice(2)),
    ]
    pending = system.desk.send_orders(calls, farmer)  # unchecked: the caller checked them
    first, twice, third = system.desk.order_outcomes([loan.escrow] * 3, pending, farmer)
    assert isinstance(first, OrderResult) and (first.order_id, first.paid) == (1, True)
    assert isinstance(twice, loan_errors.EscrowError) and twice.name == "EscrowInvoiceAlreadyUsed"
    assert isinstance(third, OrderResult) and (third.order_id, third.amount_fen) == (2, 200)
    assert system.balance(MERCHANT) == 300
    assert system.desk.budget(loan.escrow, "fertilizer") == (500_000, 100)


def test_a_spurious_resend_can_never_pay_twice(system):
    loan = system.issue()
    system.pay(loan.escrow, 100, n=1)
    with pytest.raises(loan_errors.EscrowError) as raised:  # the same invoice again
        system.pay(loan.escrow, 100, n=1)
    assert raised.value.name == "EscrowInvoiceAlreadyUsed"
    assert system.balance(MERCHANT) == 100


def test_bounded_calls_are_checked_by_eth_call_and_a_refused_one_sends_nothing(system):
    """Orders, returns and repayments go with measured gas bounds, not estimates; the eth_call
    before each still refuses a doomed call with its named error, and nothing is sent."""
    loan = system.issue()
    system.pay(loan.escrow, 100, n=1)
    farmer, coop = system.sender(FARMER), system.sender(COOP)
    count = system.client.w3.eth.get_transaction_count
    sent = count(farmer.address), count(coop.address)
    with pytest.raises(loan_errors.EscrowError) as raised:
        system.pay(loan.escrow, 100, n=1)
    assert raised.value.name == "EscrowInvoiceAlreadyUsed"
    with pytest.raises(loan_errors.EscrowError):
        system.desk.return_unspent(loan.escrow, coop)  # not the lender, window still open
    assert (count(farmer.address), count(coop.address)) == sent


def test_merchant_view_groups_payments_by_loan_and_category(system):
    first = system.issue()
    second = system.issue(
        farmer_id=FARMER2_ID, schedule_hash=keccak(text="sx"), farmer=system.addr(FARMER2)
    )
    system.pay(first.escrow, 100, n=1)
    system.pay(first.escrow, 200, n=2)
    system.pay(first.escrow, 300, n=3, category=SEEDLINGS)
    system.pay(second.escrow, 400, n=4, by=8)
    system.pay(second.escrow, 999, n=5, by=8, merchant=MERCHANT2)  # someone else's payment
    names = system.merchants.category_names()
    payments = payments_received(
        system.client,
        system.addr(MERCHANT),
        factory=system.factory.address,
        from_block=system.start_block,
        category_names=names,
    )
    assert [p.amount_fen for p in payments] == [100, 200, 300, 400]
    assert {p.merchant for p in payments} == {system.addr(MERCHANT)}
    assert payments[0].category_name == "fertilizer" and payments[0].invoice_hash == invoice(1)
    summary = summarize(payments)
    assert [(s.loan_id, s.category_name, s.total_fen) for s in summary] == sorted(
        [(1, "fertilizer", 300), (1, "seedlings", 300), (2, "fertilizer", 400)],
        key=lambda r: (r[0], category_id(r[1])),
    )
    fert = next(s for s in summary if s.loan_id == 1 and s.category == FERTILIZER)
    assert fert.invoice_hashes == (invoice(1), invoice(2))
    assert payments_received(system.client, system.addr(COOP), factory=system.factory.address) == []


# ---------------------------------------------------------------- the farmer's acceptance


def test_acceptance_typed_data_is_what_eth_account_and_the_factory_hash(system):
    t = system.terms()
    deadline = system.now() + 3_600
    typed = system.desk.acceptance_typed_data(t, 0, deadline)
    assert typed["domain"]["verifyingContract"] == system.factory.address
    assert typed["message"]["aprBps"] == 800
    assert typed["message"]["budgets"] == t.params()[5]  # in the contract's category order
    signable = encode_typed_data(full_message=typed)
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    on_chain = system.factory.functions.acceptanceDigest(t.params(), t.lender, 0, deadline).call()
    assert digest == system.desk.acceptance_digest(t, 0, deadline) == bytes(on_chain)
    signed = system.accept(t, deadline=deadline)
    assert system.desk.acceptance_signer(t, signed) == system.addr(FARMER)
    system.desk.check_acceptance(t, signed)  # passes: signer, nonce and deadline are right


def test_a_bad_acceptance_is_refused_before_anything_is_sent(system):
    t = system.terms()
    wrong_signer = system.desk.sign_acceptance(t, system.wallet(system.addr(COOP)))
    with pytest.raises(loan_errors.LoanTermsError, match="not by the farmer's wallet"):
        system.desk.check_acceptance(t, wrong_signer)
    with pytest.raises(loan_errors.LoanTermsError, match="nonce 5"):
        system.desk.check_acceptance(t, system.accept(t, nonce=5))
    with pytest.raises(loan_errors.LoanTermsError, match="expired"):
        system.desk.check_acceptance(t, system.accept(t, deadline=system.now() - 1))
    garbage = system.accept(t).__class__(0, system.now() + 60, b"\x00" * 10)
    with pytest.raises(loan_errors.LoanTermsError, match="not a valid signature"):
        system.desk.check_acceptance(t, garbage)
    with pytest.raises(loan_errors.LoanFactoryError) as info:  # the eth_call names the error
        system.desk.check_issue(t, wrong_signer, system.addr(LENDER))
    assert info.value.name == "LoanFactoryInvalidAcceptance" and info.value.farmerId == FARMER_ID
    assert system.desk.acceptance_nonce(FARMER_ID) == 0  # nothing was sent
