"""The gas limits the lending desks give their calls instead of eth_estimateGas cover them.

ganache re-runs a transaction for every eth_estimateGas, which made estimating most of the
demo's settlement time. Each scenario measures the worst case of its path on fresh state:
wallets with no balance yet, first sales of new lots, loans that the sale closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from lending.loans.disbursement import ORDER_GAS, EscrowTerms
from lending.loans.gas import (
    RETURN_UNSPENT_GAS,
    STATUS_GAS,
    commit_gas,
    issue_gas,
    settle_bound,
    settle_gas,
)
from lending.loans.settlement import FarmerShare
from tests.contracts.conftest_loans import (
    ADMIN,
    COOP,
    DAY,
    DISTRIBUTOR,
    LENDER,
    MERCHANT,
    LoanSystem,
    trace_loan_system,
)

GAS = 25_000_000  # measure with room, then compare with the desk's bound
ZERO = "0x" + "00" * 20
AMOUNT_PER_SHARE = 5_000_000  # fen: more than any test loan owes, so every sale closes it


@dataclass(frozen=True)
class Measured:
    """Gas one scenario used at 1 and at 100 farmers."""

    one: int
    hundred: int


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> LoanSystem:
    """Loan contracts with the real TeaTrace behind SaleSettlement."""
    return trace_loan_system(tmp_path_factory.mktemp("settlement-gas"))


def _account(tag: str, i: int) -> LocalAccount:
    """A fresh key whose address holds no tokens yet (it signs its farmer's loan acceptance)."""
    return Account.from_key(keccak(text=f"wallet-{tag}-{i}"))


def _wallet(tag: str, i: int) -> str:
    """A fresh address that holds no tokens yet."""
    return to_checksum_address(_account(tag, i).address)


def _farmers(system: LoanSystem, tag: str, n: int, *, wallets: bool) -> list[FarmerShare]:
    """Register `n` new farmers (with or without wallets); their shares, sorted by id."""
    ids = [keccak(text=f"gas-{tag}-{i}") for i in range(n)]
    rows = [(f, _wallet(tag, i) if wallets else ZERO) for i, f in enumerate(ids)]
    system.sender(COOP).transact(system.trace.functions.registerFarmers(rows), gas=GAS)
    return sorted(FarmerShare(f, 1_000 + i) for i, f in enumerate(ids))


def _lot(system: LoanSystem, tag: str, farmer: bytes) -> tuple[bytes, bytes]:
    """A new harvest lot (and its data hash), so that commit and settle see a lot with no sales
    yet; the cooperative sells it to the distributor, who then pays for it."""
    trace, coop = system.trace.functions, system.sender(COOP)
    plot = keccak(text=f"plot-{tag}")
    coop.transact(trace.registerPlot((plot, farmer, 100, 1, keccak(text="loc"))), gas=GAS)
    data = keccak(text=f"harvest-{tag}")
    picked = system.now() - 3600
    coop.transact(trace.recordHarvests([(farmer, plot, 1_000, 1, picked, data)]), gas=GAS)
    lot = bytes(trace.lotId(system.addr(COOP), data).call())
    coop.transact(trace.sell(lot, system.addr(DISTRIBUTOR), 1_000), gas=GAS)
    return lot, data


def _terms(system: LoanSystem, share: FarmerShare, wallet: str, categories: int) -> EscrowTerms:
    """Terms for one test loan over `categories` budget categories."""
    names = ("fertilizer", "seedlings", "equipment", "labour service")[:categories]
    return system.terms(
        farmer_id=share.farmer_id,
        farmer=wallet,
        principal_fen=100_000 * categories,
        budgets_fen=dict.fromkeys(names, 100_000),
        total_due_fen=108_000 * categories,
        draw_deadline=system.now() + DAY,
    )


def _issue(system: LoanSystem, shares: list[FarmerShare], tag: str) -> list[int]:
    """A funded, partly drawn loan for each farmer (4 categories: the largest), accepted by the
    farmer's wallet; gas of each issue. Drawn, so that a sale repays it (undrawn owes nothing)."""
    lender = system.sender(LENDER)
    index = {keccak(text=f"gas-{tag}-{i}"): i for i in range(len(shares))}  # as _farmers made them
    accounts = [_account(tag, index[s.farmer_id]) for s in shares]
    terms = [_terms(system, s, a.address, 4) for s, a in zip(shares, accounts, strict=True)]
    fn = system.factory.functions.issueAndFundLoan
    signed = [
        system.desk.sign_acceptance(t, a).as_tuple() for t, a in zip(terms, accounts, strict=True)
    ]
    pending = [lender.send(fn(t.params(), a), gas=GAS) for t, a in zip(terms, signed, strict=True)]
    gas = [r["gasUsed"] for r in lender.wait(pending)]
    coop, merchant = system.sender(COOP), system.addr(MERCHANT)
    escrows = [system.desk.predict_escrow(t) for t in terms]
    orders = [
        system.desk.send_order(
            e, merchant, "fertilizer", 50_000, keccak(text=e), coop, gas=ORDER_GAS
        )
        for e in escrows
    ]
    coop.wait(orders)
    return gas


def _commit_and_settle(system: LoanSystem, tag: str, shares: list[FarmerShare]) -> tuple[int, int]:
    """Gas of the first commit and the first sale of a new lot shared by `shares`."""
    lot, data = _lot(system, tag, shares[0].farmer_id)
    ids, weights = [s.farmer_id for s in shares], [s.weight for s in shares]
    fn = system.settlement.functions
    committed = system.sender(COOP).transact(fn.commitShares(lot, data, ids, weights), gas=GAS)
    amount = AMOUNT_PER_SHARE * len(shares)
    distributor = system.sender(DISTRIBUTOR)
    distributor.transact(system.token.functions.approve(system.settlement.address, amount))
    settled = distributor.transact(fn.settleSale(lot, amount, ids, weights), gas=GAS)
    return committed["gasUsed"], settled["gasUsed"]


@pytest.fixture(scope="module")
def measured(system: LoanSystem) -> dict[str, Measured]:
    """Every scenario at 1 and 100 farmers."""
    gas: dict[str, list[int]] = {}
    for n in (1, 100):
        paid = _farmers(system, f"paid-{n}", n, wallets=True)
        held = _farmers(system, f"held-{n}", n, wallets=False)
        owing = _farmers(system, f"loan-{n}", n, wallets=True)
        issued = _issue(system, owing, f"loan-{n}")
        system.travel(2 * DAY)  # past the draw deadline: a sale that repays in full closes
        for tag, shares in (("paid", paid), ("held", held), ("loan", owing)):
            commit, settle = _commit_and_settle(system, f"{tag}-{n}", shares)
            gas.setdefault(f"commit-{tag}", []).append(commit)
            gas.setdefault(f"settle-{tag}", []).append(settle)
        gas.setdefault("issue", []).append(max(issued))
    return {name: Measured(*pair) for name, pair in gas.items()}


def test_commit_bound_covers_1_and_100_farmers_without_waste(measured: dict[str, Measured]):
    """commitShares: enough for 1 and for 100 farmers, at most 1.6x what 100 use."""
    for tag in ("paid", "held", "loan"):
        m = measured[f"commit-{tag}"]
        assert m.one <= commit_gas(1), (tag, m)
        assert m.hundred <= commit_gas(100) <= m.hundred * 16 // 10, (tag, m)


def test_settle_bound_covers_every_path_without_waste(measured: dict[str, Measured]):
    """settleSale: paid to wallets, held, or repaying loans that close; 1 and 100 farmers."""
    for tag, loans in (("paid", 0), ("held", 0), ("loan", 1)):
        m = measured[f"settle-{tag}"]
        assert m.one <= settle_bound(1, loans) == settle_gas(1, loans), (tag, m)
        bound = settle_bound(100, 100 * loans)  # 100 closing loans pass the cap: see below
        assert m.hundred <= bound <= m.hundred * 16 // 10, (tag, m, bound)


def test_issue_bound_covers_the_largest_loan(measured: dict[str, Measured]):
    """issueAndFundLoan with four budget categories fits its bound with at most 1.6x to spare."""
    m = measured["issue"]
    assert max(m.one, m.hundred) <= issue_gas(4) <= min(m.one, m.hundred) * 16 // 10, m


def test_order_and_return_bounds_cover_a_loans_first_payment_and_its_return(
    system: LoanSystem,
):
    """The first (costliest) immediate payment of a loan and the return of what is left."""
    share = _farmers(system, "order", 1, wallets=True)[0]
    terms = _terms(system, share, _wallet("order", 0), 4)
    accepted = system.desk.sign_acceptance(terms, _account("order", 0))
    loan = system.desk.issue(terms, system.sender(LENDER), accepted)
    order = system.pay(loan.escrow, 10_000, by=COOP)  # the cooperative orders as the agent
    system.travel(2 * DAY)
    lender, token = system.sender(LENDER), system.token.functions
    # The costliest return lands in an empty balance, as when the lender lent all it had.
    lender.transact(token.transfer(system.addr(DISTRIBUTOR), system.balance(LENDER)))
    unspent = system.escrow(loan.escrow).functions.returnUnspent()
    returned = lender.transact(unspent, gas=GAS)["gasUsed"]
    assert order.gas_used <= ORDER_GAS
    assert returned <= RETURN_UNSPENT_GAS


def test_return_bound_covers_a_loan_nothing_was_drawn_from(system: LoanSystem):
    """Returning all of an undrawn loan closes it (nothing is owed), the costliest return: the
    bound once missed it, and a batch of such returns ran out of gas."""
    lender, token = system.sender(LENDER), system.token.functions
    system.sender(ADMIN).transact(token.mint(system.addr(LENDER), 10**9))  # earlier tests spent it
    share = _farmers(system, "undrawn", 1, wallets=True)[0]
    terms = _terms(system, share, _wallet("undrawn", 0), 4)
    accepted = system.desk.sign_acceptance(terms, _account("undrawn", 0))
    loan = system.desk.issue(terms, lender, accepted)
    system.travel(2 * DAY)
    lender.transact(token.transfer(system.addr(DISTRIBUTOR), system.balance(LENDER)))
    unspent = system.escrow(loan.escrow).functions.returnUnspent()
    returned = lender.transact(unspent, gas=GAS)["gasUsed"]
    assert system.desk.state(loan.escrow).outstanding_fen == 0
    assert returned <= RETURN_UNSPENT_GAS <= returned * 16 // 10


def test_bounds_past_the_cap_are_estimated_instead():
    """A settlement whose bound could pass a block's gas limit is left to eth_estimateGas."""
    assert settle_gas(100, 100) is None
    assert settle_gas(100, 0) == settle_bound(100, 0)
    assert commit_gas(1_000) is None


def test_status_bound_covers_refresh_default_and_write_off(system: LoanSystem):
    """refreshStatus (Active to Overdue), declareDefault straight from Active (it refreshes
    first) and writeOff fit STATUS_GAS, with at most twice the costliest to spare."""
    lender, token = system.sender(LENDER), system.token.functions
    system.sender(ADMIN).transact(token.mint(system.addr(LENDER), 10**9))
    used: dict[str, int] = {}
    for tag in ("refresh", "default"):
        share = _farmers(system, f"status-{tag}", 1, wallets=True)[0]
        terms = _terms(system, share, _wallet(f"status-{tag}", 0), 4)
        accepted = system.desk.sign_acceptance(terms, _account(f"status-{tag}", 0))
        loan = system.desk.issue(terms, lender, accepted)
        system.pay(loan.escrow, 10_000, by=COOP)
        escrow = system.escrow(loan.escrow).functions
        state = system.desk.state(loan.escrow)
        if tag == "refresh":
            system.travel(state.due_date - system.now() + (terms.grace_days + 1) * DAY)
            used["refresh"] = lender.transact(escrow.refreshStatus(), gas=GAS)["gasUsed"]
            assert system.desk.state(loan.escrow).status.name == "OVERDUE"
        else:
            past = terms.grace_days + terms.default_days + 1
            system.travel(state.due_date - system.now() + past * DAY)
            used["default"] = lender.transact(escrow.declareDefault(), gas=GAS)["gasUsed"]
            used["write-off"] = lender.transact(escrow.writeOff(), gas=GAS)["gasUsed"]
    assert max(used.values()) <= STATUS_GAS <= 2 * max(used.values()), used
