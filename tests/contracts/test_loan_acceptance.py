"""A loan binds a farmer only by the farmer's own signature (issue #17), and the loan findings
of the contract audit: each attack is reproduced in a comment (what the old code allowed) and
then refused with a named custom error, with its arguments."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_utils import keccak

from lending.loans.disbursement import ConfirmationMode, LoanStatus, OrderStatus, events_of
from tests.contracts import conftest_loans
from tests.contracts.conftest_loans import (
    ADMIN,
    COOP,
    DAY,
    DISTRIBUTOR,
    FARMER,
    FARMER3_ID,
    FARMER_ID,
    FERTILIZER,
    LENDER,
    LOT,
    LOT_DATA,
    MERCHANT,
    OUTSIDER,
    LoanSystem,
    raw,
    reverts,
)

loans_module, loans = conftest_loans.loans_module, conftest_loans.loans  # shared fixtures

LENDER_ROLE = keccak(text="LENDER_ROLE")
ADMIN_ROLE = bytes(32)
ZERO = "0x" + "00" * 20
LENDER2 = OUTSIDER  # made a second lender where a test needs one


def second_lender(loans: LoanSystem) -> None:
    """Give OUTSIDER the lender role and an allowance."""
    raw(loans, ADMIN, loans.factory.functions.grantRole(LENDER_ROLE, loans.addr(LENDER2)))
    raw(loans, ADMIN, loans.token.functions.mint(loans.addr(LENDER2), 10**9))
    raw(loans, LENDER2, loans.token.functions.approve(loans.factory.address, 10**9))


def issue_raw(loans: LoanSystem, terms, acceptance, sender: int = LENDER, fund: bool = True):
    """Send the issue through the chain layer, as an attacker would (no Python-side checks)."""
    f = loans.factory.functions
    fn = (f.issueAndFundLoan if fund else f.issueLoan)(terms.params(), acceptance.as_tuple())
    return raw(loans, sender, fn)


# ---------------------------------------------------------------- acceptance on chain


def test_a_lender_cannot_attach_a_loan_to_someone_elses_farmer(loans: LoanSystem):
    # Old code: a LENDER_ROLE account issued a 1-fen loan with 10^9 fen due under FARMER_ID with
    # an outsider as borrower; SaleSettlement then sent the victim's whole share to the lender.
    terms = loans.terms(
        farmer=loans.addr(OUTSIDER),
        principal_fen=1,
        budgets_fen={"fertilizer": 1},
        total_due_fen=10**9,
    )
    forged = loans.desk.sign_acceptance(terms, loans.wallet(loans.addr(OUTSIDER)))
    with reverts(
        "LoanFactoryNotFarmerWallet",
        farmerId=FARMER_ID,
        wallet=loans.addr(FARMER),
        given=loans.addr(OUTSIDER),
    ):
        issue_raw(loans, terms, forged)
    # The farmer's real wallet as borrower, but signed by someone else: refused too.
    terms = loans.terms(principal_fen=1, budgets_fen={"fertilizer": 1}, total_due_fen=10**9)
    forged = loans.desk.sign_acceptance(terms, loans.wallet(loans.addr(OUTSIDER)))
    with reverts("LoanFactoryInvalidAcceptance", farmerId=FARMER_ID, wallet=loans.addr(FARMER)):
        issue_raw(loans, terms, forged)
    with reverts("LoanFactoryInvalidAcceptance", farmerId=FARMER_ID, wallet=loans.addr(FARMER)):
        issue_raw(loans, terms, forged.__class__(0, forged.deadline, b"\x01" * 65))
    # Nothing binds the victim: the next sale pays the victim's whole share.
    assert loans.desk.active_loan_of(FARMER_ID) is None
    raw(loans, COOP, loans.settlement.functions.commitShares(LOT, LOT_DATA, [FARMER_ID], [1]))
    raw(loans, DISTRIBUTOR, loans.token.functions.approve(loans.settlement.address, 300_000))
    settle = loans.settlement.functions.settleSale(LOT, 300_000, [FARMER_ID], [1])
    raw(loans, DISTRIBUTOR, settle)
    assert loans.balance(FARMER) == 300_000


@pytest.mark.parametrize(
    "change",
    [
        {"total_due_fen": 1_200_000},
        {"apr_bps": 1},
        {"disclosure_hash": keccak(text="another disclosure")},
        {"budgets_fen": {"fertilizer": 600_000, "seedlings": 200_000, "equipment": 200_000}},
        {"draw_deadline": None},
        {"agent": None},
        {"mode": ConfirmationMode.BORROWER_CONFIRMS},
    ],
    ids=lambda c: next(iter(c)),
)
def test_the_signature_covers_every_term(loans: LoanSystem, change):
    # Old code: the lender alone chose the terms; now the farmer signs them and any change after
    # signing makes the signature someone else's.
    signed_terms = loans.terms()
    acceptance = loans.accept(signed_terms)
    if "draw_deadline" in change:
        change = {"draw_deadline": signed_terms.draw_deadline + 1}
    changed = loans.terms(**change, schedule_hash=signed_terms.schedule_hash)
    with reverts("LoanFactoryInvalidAcceptance", farmerId=FARMER_ID, wallet=loans.addr(FARMER)):
        issue_raw(loans, changed, acceptance)


def test_the_signature_names_the_lender(loans: LoanSystem):
    # A signature for LENDER relayed by another lender: the digest names the sender as lender.
    second_lender(loans)
    signed_terms = loans.terms()
    acceptance = loans.accept(signed_terms)
    relayed = loans.terms(lender=loans.addr(LENDER2), schedule_hash=signed_terms.schedule_hash)
    with reverts("LoanFactoryInvalidAcceptance", farmerId=FARMER_ID, wallet=loans.addr(FARMER)):
        issue_raw(loans, relayed, acceptance, sender=LENDER2)


def test_python_and_solidity_compute_the_same_digest_and_the_escrow_keeps_it(loans: LoanSystem):
    terms = loans.terms()
    nonce, deadline = 0, loans.now() + DAY
    python = loans.desk.acceptance_digest(terms, nonce, deadline)
    solidity = loans.factory.functions.acceptanceDigest(
        terms.params(), terms.lender, nonce, deadline
    ).call()
    assert python == bytes(solidity)
    typed = loans.desk.acceptance_typed_data(terms, nonce, deadline)
    assert json.loads(json.dumps(typed)) == typed  # what a wallet's eth_signTypedData_v4 takes
    acceptance = loans.accept(terms, deadline=deadline)
    receipt = issue_raw(loans, terms, acceptance)
    event = events_of(loans.factory, "LoanAccepted", receipt)[0]["args"]
    assert (event["farmerId"], event["wallet"], event["nonce"]) == (FARMER_ID, terms.farmer, 0)
    assert event["digest"] == python and event["signature"] == acceptance.signature
    assert Account._recover_hash(event["digest"], signature=event["signature"]) == terms.farmer
    escrow = loans.factory.functions.activeLoanOf(FARMER_ID).call()
    assert loans.desk.acceptance_of(escrow) == (python, terms.disclosure_hash, 800)
    assert loans.factory.functions.acceptanceNonce(FARMER_ID).call() == 1


def test_an_acceptance_is_used_once_expires_and_can_be_burnt(loans: LoanSystem):
    terms = loans.terms()
    acceptance = loans.accept(terms)
    loan = loans.desk.issue(terms, loans.sender(LENDER), acceptance, fund=False)
    loans.desk.cancel_loan(loan.escrow, loans.sender(LENDER))
    replay = loans.terms(schedule_hash=keccak(text="replayed"))
    with reverts("LoanFactoryAcceptanceNonce", farmerId=FARMER_ID, expected=1, given=0):
        issue_raw(loans, replay, acceptance)  # the same signature, a second time
    late = loans.accept(replay, deadline=loans.now() - 1)
    with reverts("LoanFactoryAcceptanceExpired", deadline=late.deadline):
        issue_raw(loans, replay, late)
    # Old code: a signed, unrelayed acceptance could not be withdrawn. Now the wallet burns it.
    signed = loans.accept(replay)
    with reverts("LoanFactoryNotFarmer", farmerId=FARMER_ID, caller=loans.addr(OUTSIDER)):
        raw(loans, OUTSIDER, loans.factory.functions.burnAcceptanceNonce(FARMER_ID))
    receipt = loans.desk.burn_acceptance_nonce(FARMER_ID, loans.sender(FARMER))
    burnt = events_of(loans.factory, "AcceptanceNonceBurned", receipt)[0]["args"]
    assert (burnt["farmerId"], burnt["wallet"], burnt["nonce"]) == (FARMER_ID, terms.farmer, 1)
    with reverts("LoanFactoryAcceptanceNonce", farmerId=FARMER_ID, expected=2, given=1):
        issue_raw(loans, replay, signed)


def test_an_old_wallets_acceptance_stays_void_when_the_wallet_is_set_back(loans: LoanSystem):
    # Without the epoch: a cooperative moves the farmer to a new wallet (a lost phone) and later
    # back; an acceptance the old wallet signed before the move, never relayed, validated again.
    terms = loans.terms()
    signed = loans.accept(terms)
    assert loans.factory.functions.acceptanceEpoch(FARMER_ID).call() == 0
    coop, wallet = loans.addr(COOP), loans.addr(FARMER)
    raw(loans, ADMIN, loans.trace.functions.setFarmer(FARMER_ID, coop, loans.addr(OUTSIDER)))
    raw(loans, ADMIN, loans.trace.functions.setFarmer(FARMER_ID, coop, wallet))
    assert loans.factory.functions.acceptanceEpoch(FARMER_ID).call() == 2
    with reverts("LoanFactoryInvalidAcceptance", farmerId=FARMER_ID, wallet=wallet):
        issue_raw(loans, terms, signed)
    issue_raw(loans, terms, loans.accept(terms))  # signed again, in the current epoch


def test_only_known_active_farmers_with_their_own_wallet_accept(loans: LoanSystem):
    nobody = keccak(text="nobody")
    terms = loans.terms(farmer_id=nobody)
    with reverts("LoanFactoryUnknownFarmer", farmerId=nobody):
        issue_raw(loans, terms, loans.accept(terms))
    terms = loans.terms(farmer_id=FARMER3_ID)  # registered without a wallet
    with reverts(
        "LoanFactoryNotFarmerWallet", farmerId=FARMER3_ID, wallet=ZERO, given=loans.addr(FARMER)
    ):
        issue_raw(loans, terms, loans.accept(terms))


# ---------------------------------------------------------------- interest on what was drawn


def test_a_loan_nobody_drew_costs_nothing_and_interest_is_pro_rata(loans: LoanSystem):
    # Old code: totalDue was owed in full (interest on the whole principal) as soon as the loan
    # was funded, drawn or not: a sale repaid 80,000 fen of interest on an undrawn loan.
    loan = loans.issue()
    state = loans.desk.state(loan.escrow)
    assert (state.amount_due_fen, state.outstanding_fen) == (0, 0)
    raw(loans, COOP, loans.settlement.functions.commitShares(LOT, LOT_DATA, [FARMER_ID], [1]))
    raw(loans, DISTRIBUTOR, loans.token.functions.approve(loans.settlement.address, 10**9))
    settle = loans.settlement.functions.settleSale(LOT, 300_000, [FARMER_ID], [1])
    raw(loans, DISTRIBUTOR, settle)
    assert loans.balance(FARMER) == 300_000  # the whole share: nothing was owed
    loans.pay(loan.escrow, 333_333)
    # floor(333,333 x 1,080,000 / 1,000,000) = floor(359,999.64): rounded in the farmer's favour
    assert loans.desk.state(loan.escrow).outstanding_fen == 359_999
    loans.pay(loan.escrow, 166_667, n=2)  # the whole fertilizer budget
    loans.pay(loan.escrow, 300_000, n=3, category=keccak(text="seedlings"))
    loans.pay(loan.escrow, 200_000, n=4, category=keccak(text="equipment"))
    assert loans.desk.state(loan.escrow).amount_due_fen == 1_080_000  # all drawn: totalDue


# ---------------------------------------------------------------- an unfunded loan blocks nobody


def test_an_unfunded_loan_stops_blocking_the_farmer_after_its_draw_deadline(loans: LoanSystem):
    # Old code: a lender issued and never funded; isOpen stayed true forever, only that lender
    # could cancel, and every other lender got LoanFactoryActiveLoanExists for this farmer.
    second_lender(loans)
    stale = loans.issue(fund=False)
    other = loans.terms(lender=loans.addr(LENDER2), schedule_hash=keccak(text="second lender"))
    with reverts("LoanFactoryActiveLoanExists", farmerId=FARMER_ID, escrow=stale.escrow):
        issue_raw(loans, other, loans.accept(other), sender=LENDER2)  # within its window
    escrow = loans.escrow(stale.escrow)
    with reverts("EscrowNotLender", loanId=1, caller=loans.addr(OUTSIDER)):
        raw(loans, OUTSIDER, escrow.functions.cancelLoan())  # the lender's call, for now
    loans.travel(30 * DAY + 1)
    assert not escrow.functions.isOpen().call()  # closed: it can never be funded or drawn
    assert loans.desk.active_loan_of(FARMER_ID) is None
    other = loans.terms(lender=loans.addr(LENDER2), schedule_hash=keccak(text="second lender"))
    loans.desk.issue(other, loans.sender(LENDER2), loans.accept(other))
    receipt = raw(loans, MERCHANT, escrow.functions.cancelLoan())  # anyone tidies it up
    assert events_of(escrow, "LoanStatusChanged", receipt)[0]["args"]["current"] == (
        LoanStatus.CANCELLED
    )


def test_a_funded_loan_nobody_drew_closes_after_its_draw_deadline(loans: LoanSystem):
    loan = loans.issue()
    escrow = loans.escrow(loan.escrow)
    loans.travel(30 * DAY + 1)
    assert not escrow.functions.isOpen().call() and loans.desk.active_loan_of(FARMER_ID) is None
    assert loans.desk.refresh_status(loan.escrow, loans.sender(OUTSIDER)) == LoanStatus.REPAID
    lender_before = loans.balance(LENDER)
    assert loans.desk.return_unspent(loan.escrow, loans.sender(OUTSIDER)) == 1_000_000
    assert loans.balance(LENDER) == lender_before + 1_000_000


def test_an_expired_unfunded_loan_refreshes_to_cancelled(loans: LoanSystem):
    loan = loans.issue(fund=False)
    loans.travel(30 * DAY + 1)
    assert loans.desk.refresh_status(loan.escrow, loans.sender(OUTSIDER)) == LoanStatus.CANCELLED


# ---------------------------------------------------------------- merchant-confirms orders


def test_the_borrower_cannot_front_run_the_merchants_confirmation(loans: LoanSystem):
    # Old code: in merchant-confirms mode the farmer could cancel an order at any moment, e.g.
    # after the goods were delivered, by front-running the merchant's confirmPayment: the
    # merchant delivered and was never paid. Now the merchant accepts the order before
    # delivering, and from then on the borrower cannot cancel it.
    loan = loans.issue(mode=ConfirmationMode.MERCHANT_CONFIRMS)
    escrow = loans.escrow(loan.escrow)
    loans.pay(loan.escrow, 100_000, n=1)
    loans.pay(loan.escrow, 50_000, n=2)
    loans.desk.cancel_payment(loan.escrow, 2, loans.sender(FARMER))  # not yet accepted: fine
    with reverts("EscrowNotOrderMerchant", loanId=1, orderId=1, caller=loans.addr(FARMER)):
        raw(loans, FARMER, escrow.functions.acceptOrder(1))
    loans.desk.accept_order(loan.escrow, 1, loans.sender(MERCHANT))
    assert loans.desk.order(loan.escrow, 1).status == OrderStatus.ACCEPTED
    with reverts("EscrowOrderNotPending", loanId=1, orderId=1, status=OrderStatus.ACCEPTED):
        raw(loans, MERCHANT, escrow.functions.acceptOrder(1))
    for who in (FARMER, COOP):  # the front-running cancel, by the farmer or the agent
        with reverts("EscrowNotCanceller", loanId=1, orderId=1, caller=loans.addr(who)):
            raw(loans, who, escrow.functions.cancelPayment(1))
    loans.desk.confirm_payment(loan.escrow, 1, loans.sender(MERCHANT))
    assert loans.balance(MERCHANT) == 100_000


def test_an_accepted_order_the_merchant_never_confirms_can_be_cancelled_later(loans: LoanSystem):
    loan = loans.issue(mode=ConfirmationMode.MERCHANT_CONFIRMS)
    escrow = loans.escrow(loan.escrow)
    loans.pay(loan.escrow, 100_000)
    loans.desk.accept_order(loan.escrow, 1, loans.sender(MERCHANT))
    loans.travel(14 * DAY - 10)
    with reverts("EscrowNotCanceller", loanId=1, orderId=1, caller=loans.addr(FARMER)):
        raw(loans, FARMER, escrow.functions.cancelPayment(1))
    loans.travel(20)  # the delivery period is over without a confirmation
    loans.desk.cancel_payment(loan.escrow, 1, loans.sender(FARMER))
    assert loans.desk.order(loan.escrow, 1).status == OrderStatus.CANCELLED


def test_orders_are_accepted_only_in_merchant_confirms_mode(loans: LoanSystem):
    loan = loans.issue(mode=ConfirmationMode.BORROWER_CONFIRMS)
    loans.pay(loan.escrow, 100_000)
    mode = ConfirmationMode.BORROWER_CONFIRMS
    with reverts("EscrowWrongMode", loanId=1, mode=mode):
        raw(loans, MERCHANT, loans.escrow(loan.escrow).functions.acceptOrder(1))


# ---------------------------------------------------------------- errors with their arguments


def test_cancel_loan_and_write_off_name_their_errors_with_arguments(loans: LoanSystem):
    loan = loans.issue()
    escrow = loans.escrow(loan.escrow).functions
    with reverts("EscrowInvalidStatus", loanId=1, status=LoanStatus.ACTIVE):
        raw(loans, LENDER, escrow.cancelLoan())
    with reverts("EscrowNotLender", loanId=1, caller=loans.addr(FARMER)):
        raw(loans, FARMER, escrow.writeOff())
    with reverts("EscrowInvalidStatus", loanId=1, status=LoanStatus.ACTIVE):
        raw(loans, LENDER, escrow.writeOff())
    unfunded = loans.issue(
        fund=False,
        farmer_id=conftest_loans.FARMER2_ID,
        farmer=loans.addr(conftest_loans.FARMER2),
    )
    with reverts("EscrowNotLender", loanId=2, caller=loans.addr(FARMER)):
        raw(loans, FARMER, loans.escrow(unfunded.escrow).functions.cancelLoan())


def test_factory_roles_name_their_errors_with_arguments(loans: LoanSystem):
    f = loans.factory.functions
    with reverts(
        "AccessControlUnauthorizedAccount", account=loans.addr(LENDER), neededRole=ADMIN_ROLE
    ):
        raw(loans, LENDER, f.grantRole(LENDER_ROLE, loans.addr(OUTSIDER)))
    with reverts("LoanFactorySelfGrant", role=LENDER_ROLE, account=loans.addr(ADMIN)):
        raw(loans, ADMIN, f.grantRole(LENDER_ROLE, loans.addr(ADMIN)))
    with reverts(
        "AccessControlUnauthorizedAccount", account=loans.addr(OUTSIDER), neededRole=ADMIN_ROLE
    ):
        raw(loans, OUTSIDER, f.revokeRole(LENDER_ROLE, loans.addr(LENDER)))
    assert f.hasRole(LENDER_ROLE, loans.addr(LENDER)).call()
    with reverts(
        "AccessControlUnauthorizedAccount", account=loans.addr(OUTSIDER), neededRole=ADMIN_ROLE
    ):
        raw(loans, OUTSIDER, f.revokeRole(ADMIN_ROLE, loans.addr(ADMIN)))
    assert f.hasRole(ADMIN_ROLE, loans.addr(ADMIN)).call()


def test_the_escrow_has_no_roles_to_revoke(loans: LoanSystem):
    abi = loans.client.artifacts["LoanEscrow"].abi
    assert not {f.get("name") for f in abi} & {"grantRole", "revokeRole", "renounceRole"}
    assert FERTILIZER  # the escrow's access is by address: lender, farmer, agent, merchant


def test_a_deactivated_farmer_accepts_no_loan(tmp_path):
    # The real TeaTrace: the cooperative deactivates its member; the factory reads it there.
    system = conftest_loans.trace_loan_system(tmp_path)
    trace, coop = system.trace.functions, system.sender(COOP)
    coop.transact(trace.registerFarmer(FARMER_ID, system.addr(FARMER)))
    terms = system.terms()
    system.desk.check_issue(terms, system.accept(terms), system.addr(LENDER))  # active: fine
    coop.transact(trace.deactivateFarmer(FARMER_ID))
    with reverts("LoanFactoryFarmerInactive", farmerId=FARMER_ID):
        issue_raw(system, terms, system.accept(terms))
