"""LoanFactory: clone issuance, funding in the same transaction, validation, one open loan."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from lending.loans import errors as loan_errors
from lending.loans.disbursement import LoanStatus, events_of
from tests.contracts import conftest_loans
from tests.contracts.conftest_loans import (
    ADMIN,
    COOP,
    DAY,
    EQUIPMENT,
    FARMER,
    FARMER2,
    FARMER2_ID,
    FARMER_ID,
    FERTILIZER,
    LENDER,
    OUTSIDER,
    SEEDLINGS,
    LoanSystem,
    raw,
    reverts,
)

loans_module, loans = conftest_loans.loans_module, conftest_loans.loans  # shared fixtures

LENDER_ROLE = keccak(text="LENDER_ROLE")
ZERO = "0x" + "00" * 20
MAX_AMOUNT = 2**88 - 1
# LoanParams fields by position (ILoanEscrow.LoanParams).
FIELDS = [
    "farmerId",
    "farmer",
    "agent",
    "principal",
    "categories",
    "budgets",
    "scheduleHash",
    "disclosureHash",
    "drawDeadline",
    "totalDue",
    "dueDate",
    "graceDays",
    "defaultDays",
    "mode",
    "aprBps",
]
# Any acceptance: validation runs before the signature is checked.
NO_ACCEPTANCE = (0, 2**64, b"\x00" * 65)


def params(loans: LoanSystem, **changes):
    """Valid LoanParams with some fields replaced (bypassing the Python-side checks)."""
    values = list(loans.terms().params())
    for name, value in changes.items():
        values[FIELDS.index(name)] = value
    return tuple(values)


def issue_raw(loans: LoanSystem, sender: int = LENDER, **changes):
    fn = loans.factory.functions.issueLoan(params(loans, **changes), NO_ACCEPTANCE)
    return raw(loans, sender, fn)


def test_issue_creates_an_initialized_clone_at_the_predicted_address(loans: LoanSystem):
    terms = loans.terms()
    predicted = loans.desk.predict_escrow(terms)
    loan = loans.desk.issue(terms, loans.sender(LENDER), loans.accept(terms), fund=False)
    assert loan.escrow == predicted and loan.loan_id == 1
    f = loans.factory.functions
    assert f.escrowOf(1).call() == predicted and f.loanCount().call() == 1
    assert f.activeLoanOf(FARMER_ID).call() == predicted == f.latestLoanOf(FARMER_ID).call()
    code = loans.client.w3.eth.get_code(predicted)
    implementation = f.implementation().call()
    assert len(code) == 45 and bytes.fromhex(implementation[2:]) in code  # an EIP-1167 proxy
    state = loans.desk.state(loan.escrow)
    assert state.status == LoanStatus.ISSUED and state.funded_fen == 0
    assert (state.lender, state.farmer, state.agent) == (
        loans.addr(LENDER),
        loans.addr(FARMER),
        loans.addr(COOP),
    )
    escrow = loans.escrow(loan.escrow)
    assert escrow.functions.budgetOf(FERTILIZER).call() == (500_000, 0)
    assert list(escrow.functions.bindings().call()) == [
        loans.factory.address,
        loans.token.address,
        loans.registry.address,
    ]


def test_issue_events_record_terms_hashes_and_budgets(loans: LoanSystem):
    terms = loans.terms()
    accepted = loans.accept(terms)
    fn = loans.factory.functions.issueAndFundLoan(terms.params(), accepted.as_tuple())
    receipt = raw(loans, LENDER, fn)
    issued = events_of(loans.factory, "LoanIssued", receipt)[0]["args"]
    assert issued["farmerId"] == FARMER_ID and issued["principal"] == 1_000_000
    assert issued["lender"] == loans.addr(LENDER) and issued["agent"] == loans.addr(COOP)
    escrow = loans.escrow(issued["escrow"])
    recorded = events_of(escrow, "LoanTermsRecorded", receipt)[0]["args"]
    assert recorded["scheduleHash"] == terms.schedule_hash
    assert recorded["disclosureHash"] == terms.disclosure_hash
    assert recorded["totalDue"] == 1_080_000 and recorded["dueDate"] == terms.due_date
    budgets = events_of(escrow, "LoanBudgetSet", receipt)
    assert {b["args"]["category"]: b["args"]["amount"] for b in budgets} == {
        FERTILIZER: 500_000,
        SEEDLINGS: 300_000,
        EQUIPMENT: 200_000,
    }
    statuses = [
        (e["args"]["previous"], e["args"]["current"])
        for e in events_of(escrow, "LoanStatusChanged", receipt)
    ]
    assert statuses == [
        (LoanStatus.NONE, LoanStatus.ISSUED),
        (LoanStatus.ISSUED, LoanStatus.ACTIVE),
    ]
    funded = events_of(escrow, "LoanFunded", receipt)[0]["args"]
    assert funded["amount"] == 1_000_000 and funded["lender"] == loans.addr(LENDER)


def test_issue_and_fund_moves_the_principal_in_one_transaction(loans: LoanSystem):
    before = loans.balance(LENDER)
    loan = loans.issue(fund=True)
    assert loans.balance(loan.escrow) == 1_000_000
    assert loans.balance(LENDER) == before - 1_000_000
    assert loans.desk.state(loan.escrow).status == LoanStatus.ACTIVE


def test_issue_and_fund_needs_the_lenders_allowance(loans: LoanSystem):
    raw(loans, LENDER, loans.token.functions.approve(loans.factory.address, 10))
    with pytest.raises(loan_errors.TokenError) as info:
        loans.issue(fund=True)
    assert info.value.name == "ERC20InsufficientAllowance"
    assert info.value.needed == 1_000_000 and info.value.spender == loans.factory.address


def test_one_open_loan_per_farmer(loans: LoanSystem):
    first = loans.issue(fund=False)
    with pytest.raises(loan_errors.LoanFactoryError) as info:
        loans.issue(fund=False, schedule_hash=keccak(text="another schedule"))
    assert info.value.name == "LoanFactoryActiveLoanExists"
    assert info.value.farmerId == FARMER_ID and info.value.escrow == first.escrow
    other = loans.issue(fund=False, farmer_id=FARMER2_ID, farmer=loans.addr(FARMER2))
    assert loans.desk.active_loan_of(FARMER2_ID) == other.escrow
    loans.desk.cancel_loan(first.escrow, loans.sender(LENDER))  # closed: a new loan may follow
    assert loans.desk.active_loan_of(FARMER_ID) is None
    assert loans.factory.functions.latestLoanOf(FARMER_ID).call() == first.escrow
    second = loans.issue(fund=False, schedule_hash=keccak(text="another schedule"))
    assert loans.desk.active_loan_of(FARMER_ID) == second.escrow


def test_the_same_schedule_cannot_be_issued_twice(loans: LoanSystem):
    terms = loans.terms()
    first = loans.desk.issue(terms, loans.sender(LENDER), loans.accept(terms), fund=False)
    loans.desk.cancel_loan(first.escrow, loans.sender(LENDER))
    again = loans.accept(terms).as_tuple()  # the farmer signs the same terms again (nonce 1)
    with reverts("LoanFactoryDuplicateLoan", escrow=first.escrow):
        raw(loans, LENDER, loans.factory.functions.issueLoan(terms.params(), again))


@pytest.mark.parametrize(
    ("changes", "error", "values"),
    [
        ({"farmerId": bytes(32)}, "LoanFactoryZeroFarmerId", {}),
        ({"farmer": ZERO}, "LoanFactoryZeroAddress", {}),
        ({"principal": 0, "budgets": [0, 0, 0]}, "LoanFactoryZeroPrincipal", {}),
        ({"totalDue": MAX_AMOUNT + 1}, "LoanFactoryAmountTooLarge", {"max": MAX_AMOUNT}),
        ({"totalDue": 999_999}, "LoanFactoryDueBelowPrincipal", {"totalDue": 999_999}),
        ({"drawDeadline": 1}, "LoanFactoryDrawDeadlinePassed", {"drawDeadline": 1}),
        ({"budgets": [1, 2]}, "LoanFactoryLengthMismatch", {"categories": 3, "budgets": 2}),
        ({"categories": [], "budgets": []}, "LoanFactoryCategoryCount", {"count": 0, "max": 16}),
        (
            {"categories": [FERTILIZER, EQUIPMENT, SEEDLINGS]},
            "LoanFactoryCategoryOrder",
            {"previous": FERTILIZER, "category": EQUIPMENT},
        ),
        ({"budgets": [0, 500_000, 500_000]}, "LoanFactoryZeroBudget", {"category": EQUIPMENT}),
        (
            {"budgets": [200_000, 500_000, 299_999]},
            "LoanFactoryBudgetSumMismatch",
            {"principal": 1_000_000, "budgetSum": 999_999},
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_factory_validation_errors(loans: LoanSystem, changes, error, values):
    with reverts(error, **values):
        issue_raw(loans, **changes)


def test_factory_refuses_unknown_categories_and_bad_dates_and_parties(loans: LoanSystem):
    cash = keccak(text="cash")
    categories = sorted([FERTILIZER, SEEDLINGS, cash])
    with reverts("LoanFactoryUnknownCategory", category=cash):
        issue_raw(loans, categories=categories)
    terms = loans.terms()
    with reverts("LoanFactoryDueBeforeDrawDeadline", dueDate=terms.draw_deadline - 1):
        issue_raw(loans, dueDate=terms.draw_deadline - 1)
    with reverts("LoanFactoryLenderIsBorrower", lender=loans.addr(LENDER)):
        issue_raw(loans, farmer=loans.addr(LENDER))
    with reverts("LoanFactoryLenderIsBorrower", lender=loans.addr(LENDER)):
        issue_raw(loans, agent=loans.addr(LENDER))
    with reverts("LoanFactoryAgentIsFarmer", agent=loans.addr(FARMER)):
        issue_raw(loans, agent=loans.addr(FARMER))


@pytest.mark.parametrize("function", ["issueLoan", "issueAndFundLoan"])
def test_only_lenders_issue(loans: LoanSystem, function):
    fn = getattr(loans.factory.functions, function)(loans.terms().params(), NO_ACCEPTANCE)
    with reverts(
        "AccessControlUnauthorizedAccount", account=loans.addr(OUTSIDER), neededRole=LENDER_ROLE
    ):
        raw(loans, OUTSIDER, fn)


def test_roles_are_granted_by_the_admin_and_never_to_oneself(loans: LoanSystem):
    f = loans.factory.functions
    with reverts("AccessControlUnauthorizedAccount", account=loans.addr(LENDER)):
        raw(loans, LENDER, f.grantRole(LENDER_ROLE, loans.addr(OUTSIDER)))
    with reverts("LoanFactorySelfGrant", role=LENDER_ROLE, account=loans.addr(ADMIN)):
        raw(loans, ADMIN, f.grantRole(LENDER_ROLE, loans.addr(ADMIN)))


def _bare_clone(loans: LoanSystem) -> str:
    """An EIP-1167 clone of the implementation deployed outside the factory (uninitialized)."""
    implementation = loans.factory.functions.implementation().call()
    code = (
        "0x3d602d80600a3d3981f3363d3d373d3d3d363d73"
        + implementation[2:].lower()
        + "5af43d82803e903d91602b57fd5bf3"
    )
    receipt = loans.sender(OUTSIDER).transact({"data": code})
    return receipt["contractAddress"]


def test_only_the_factory_initializes_and_only_once(loans: LoanSystem):
    p = loans.terms().params()
    clone = loans.escrow(_bare_clone(loans))
    with reverts("EscrowNotFactory", caller=loans.addr(OUTSIDER)):
        raw(
            loans, OUTSIDER, clone.functions.initialize(1, loans.addr(OUTSIDER), p, True, bytes(32))
        )
    implementation = loans.escrow(loans.factory.functions.implementation().call())
    with reverts("InvalidInitialization"):
        raw(
            loans,
            OUTSIDER,
            implementation.functions.initialize(1, loans.addr(OUTSIDER), p, False, bytes(32)),
        )
    loan = loans.issue(fund=True)
    with reverts("InvalidInitialization"):
        raw(
            loans,
            OUTSIDER,
            loans.escrow(loan.escrow).functions.initialize(
                1, loans.addr(OUTSIDER), p, True, bytes(32)
            ),
        )


def test_constructor_refuses_zero_addresses(loans: LoanSystem):
    client = loans.client
    artifact = client.artifacts["LoanFactory"]
    contract = client.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    with reverts("LoanFactoryZeroAddress"):
        loans.sender(OUTSIDER).transact(
            contract.constructor(ZERO, loans.registry.address, loans.trace.address, ZERO)
        )
    with reverts("LoanFactoryZeroAddress"):
        loans.sender(OUTSIDER).transact(
            contract.constructor(loans.token.address, loans.registry.address, ZERO, ZERO)
        )
    assert list(loans.factory.functions.bindings().call()) == [
        loans.token.address,
        loans.registry.address,
    ]
    assert loans.factory.functions.MAX_CATEGORIES().call() == 16
    assert DAY == 86_400
