"""SaleSettlement: committed shares, largest-remainder split, repay-first distribution, held
proceeds, roles, re-entry, and shares computed from real TeaTrace lineage."""

from __future__ import annotations

import pytest
from eth_utils import function_signature_to_4byte_selector, keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lending.loans import errors as loan_errors
from lending.loans.disbursement import LoanStatus, events_of
from lending.loans.settlement import FarmerShare, normalize_shares, shares_hash, split_amount
from tests._fixtures import client_for
from tests.contracts import conftest_loans
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
    OUTSIDER,
    LoanSystem,
    deploy_loan_system,
    raw,
    reverts,
    trace_loan_system,
    view,
)
from traceability.lineage import LineageReader

loans_module, loans = conftest_loans.loans_module, conftest_loans.loans  # shared fixtures

COMMITTER_ROLE = keccak(text="SHARE_COMMITTER_ROLE")
DISTRIBUTOR_ROLE = keccak(text="DISTRIBUTOR_ROLE")
REENTRANT = function_signature_to_4byte_selector("ReentrancyGuardReentrantCall()")
ZERO = "0x" + "00" * 20
SHARES = (FarmerShare(FARMER_ID, 600), FarmerShare(FARMER2_ID, 300), FarmerShare(FARMER3_ID, 100))


def ordered(shares=SHARES) -> tuple[FarmerShare, ...]:
    return tuple(sorted(shares))


def commit(loans: LoanSystem, shares=SHARES, lot=LOT, data=LOT_DATA):
    return loans.sales.commit_shares(lot, data, shares, loans.sender(COOP))


# ---------------------------------------------------------------- the split


def test_largest_remainder_examples():
    assert split_amount(100, [1, 1, 1]) == [34, 33, 33]  # ties go to the earlier farmer
    assert split_amount(10, [1, 2, 2]) == [2, 4, 4]
    assert split_amount(7, [5, 3]) == [4, 3]  # 4.375 and 2.625: the larger remainder wins
    assert split_amount(0, [3, 4]) == [0, 0]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amount=st.integers(0, 10**15),
    weights=st.lists(st.integers(1, 2**64 - 1), min_size=1, max_size=12),
)
def test_contract_split_equals_python_split_and_sums_to_the_amount(loans, amount, weights):
    on_chain = loans.settlement.functions.splitAmount(amount, weights).call()
    assert list(on_chain) == split_amount(amount, weights)
    assert sum(on_chain) == amount
    total = sum(weights)
    for share, weight in zip(on_chain, weights, strict=True):
        assert abs(share * total - amount * weight) < total  # within one fen of pro rata


def test_split_of_the_largest_lot(loans: LoanSystem):
    weights = [(i * 7919) % 1000 + 1 for i in range(100)]
    on_chain = loans.settlement.functions.splitAmount(1_000_003, weights).call()
    assert list(on_chain) == split_amount(1_000_003, weights) and sum(on_chain) == 1_000_003
    with reverts("SettlementFarmerCount", count=101, max=100):
        view(loans, loans.settlement.functions.splitAmount(1, [1] * 101))


# ---------------------------------------------------------------- commitment


def test_commit_records_the_shares(loans: LoanSystem):
    committed = commit(loans)
    assert committed == ordered()
    stored = loans.settlement.functions.lotShares(LOT).call()
    assert stored == (shares_hash(committed), 1000, 3, 0)
    assert loans.sales.committed_shares(LOT) == committed
    assert loans.settlement.functions.sharesHash(
        [s.farmer_id for s in committed], [s.weight for s in committed]
    ).call() == shares_hash(committed)


def test_commit_validation(loans: LoanSystem):
    s = loans.settlement.functions
    ids = [s_.farmer_id for s_ in ordered()]
    with reverts("SettlementUnknownLot", lot=keccak(text="nope")):
        raw(loans, COOP, s.commitShares(keccak(text="nope"), LOT_DATA, ids, [1, 1, 1]))
    with reverts("SettlementLengthMismatch", farmers=3, weights=2):
        raw(loans, COOP, s.commitShares(LOT, LOT_DATA, ids, [1, 1]))
    with reverts("SettlementFarmerCount", count=0, max=100):
        raw(loans, COOP, s.commitShares(LOT, LOT_DATA, [], []))
    with reverts("SettlementFarmerOrder", previous=ids[1], farmerId=ids[0]):
        raw(loans, COOP, s.commitShares(LOT, LOT_DATA, [ids[1], ids[0]], [1, 1]))
    with reverts("SettlementInvalidWeight", farmerId=ids[0], weight=0):
        raw(loans, COOP, s.commitShares(LOT, LOT_DATA, ids, [0, 1, 1]))
    with reverts("SettlementInvalidWeight", farmerId=ids[1], weight=2**64):
        raw(loans, COOP, s.commitShares(LOT, LOT_DATA, ids, [1, 2**64, 1]))
    stranger = keccak(text="unregistered farmer")
    with reverts("SettlementUnknownFarmer", farmerId=stranger):
        raw(loans, COOP, s.commitShares(LOT, LOT_DATA, [stranger], [1]))
    with reverts(
        "AccessControlUnauthorizedAccount", account=loans.addr(OUTSIDER), neededRole=COMMITTER_ROLE
    ):
        raw(loans, OUTSIDER, s.commitShares(LOT, LOT_DATA, ids, [1, 1, 1]))


def test_a_committer_cannot_commit_shares_of_a_lot_it_did_not_make(loans: LoanSystem):
    """The old code let any SHARE_COMMITTER overwrite any lot's shares until its first sale: a
    second cooperative gave one farmer 1,000,000 of 1,000,000 on this cooperative's lot."""
    commit(loans)
    rival = loans.addr(OUTSIDER)
    raw(loans, ADMIN, loans.settlement.functions.grantRole(COMMITTER_ROLE, rival))
    grab = loans.settlement.functions.commitShares(LOT, LOT_DATA, [FARMER2_ID], [1_000_000])
    with reverts("SettlementNotLotMaker", lot=LOT, dataHash=LOT_DATA, caller=rival):
        raw(loans, OUTSIDER, grab)
    forged = keccak(text="a data hash the rival made up")
    with reverts("SettlementNotLotMaker", lot=LOT, dataHash=forged, caller=rival):
        raw(
            loans, OUTSIDER, loans.settlement.functions.commitShares(LOT, forged, [FARMER2_ID], [1])
        )
    assert loans.sales.committed_shares(LOT) == ordered()  # the maker's list stands


def test_shares_may_be_corrected_until_the_first_sale(loans: LoanSystem):
    commit(loans)
    corrected = commit(loans, (FarmerShare(FARMER_ID, 7), FarmerShare(FARMER2_ID, 3)))
    assert loans.sales.committed_shares(LOT) == corrected
    loans.sales.settle_sale(LOT, 1_000, loans.sender(DISTRIBUTOR))
    with pytest.raises(loan_errors.SettlementError) as info:
        commit(loans)
    assert info.value.name == "SettlementSharesFrozen"
    assert info.value.sales == 1


# ---------------------------------------------------------------- settling


def test_each_share_repays_the_farmers_loan_first_then_pays_the_farmer(loans: LoanSystem):
    loan = loans.issue()  # FARMER's loan
    loans.pay(loan.escrow, 100_000)  # owes 108,000: 100,000 drawn x 1.08 (pro rata)
    commit(loans)
    lender_before = loans.balance(LENDER)
    result = loans.sales.settle_sale(LOT, 1_000_001, loans.sender(DISTRIBUTOR))
    rows = {r.farmer_id: r for r in result.farmers}
    assert sum(r.share_fen for r in result.farmers) == 1_000_001
    first = rows[FARMER_ID]
    assert first.share_fen == 600_001 and first.escrow == loan.escrow
    assert (first.repaid_fen, first.paid_out_fen, first.held_fen) == (108_000, 492_001, 0)
    assert loans.balance(LENDER) == lender_before + 108_000
    assert loans.balance(FARMER) == 492_001
    second = rows[FARMER2_ID]  # no loan: all to the wallet
    assert (second.escrow, second.repaid_fen, second.paid_out_fen) == (None, 0, 300_000)
    third = rows[FARMER3_ID]  # no wallet: held
    assert (third.paid_out_fen, third.held_fen) == (0, 100_000)
    assert loans.sales.held_for(FARMER3_ID) == 100_000
    assert loans.balance(loans.settlement.address) == 100_000  # = total held
    assert loans.settlement.functions.totalHeld().call() == 100_000
    state = loans.desk.state(loan.escrow)
    assert state.outstanding_fen == 0 and state.repaid_fen == 108_000
    assert state.status == LoanStatus.ACTIVE  # draw window still open


def test_a_share_smaller_than_the_debt_goes_entirely_to_the_loan(loans: LoanSystem):
    loan = loans.issue()
    loans.pay(loan.escrow, 400_000)
    loans.travel(31 * DAY)
    loans.desk.return_unspent(loan.escrow, loans.sender(OUTSIDER))
    commit(loans)
    result = loans.sales.settle_sale(LOT, 500_000, loans.sender(DISTRIBUTOR))
    row = next(r for r in result.farmers if r.farmer_id == FARMER_ID)
    assert (row.share_fen, row.repaid_fen, row.paid_out_fen) == (300_000, 300_000, 0)
    assert loans.desk.state(loan.escrow).outstanding_fen == 132_000  # 432,000 - 300,000
    result = loans.sales.settle_sale(LOT, 1_000_000, loans.sender(DISTRIBUTOR))
    row = next(r for r in result.farmers if r.farmer_id == FARMER_ID)
    assert (row.repaid_fen, row.paid_out_fen) == (132_000, 468_000)
    assert loans.desk.state(loan.escrow).status == LoanStatus.REPAID  # closed by the sale
    result = loans.sales.settle_sale(LOT, 1_000, loans.sender(DISTRIBUTOR))
    row = next(r for r in result.farmers if r.farmer_id == FARMER_ID)
    assert row.escrow is None and row.paid_out_fen == 600  # closed loans are not repaid


def test_held_proceeds_are_claimed_to_the_wallet_once_set(loans: LoanSystem):
    commit(loans)
    loans.sales.settle_sale(LOT, 10_000, loans.sender(DISTRIBUTOR))
    with pytest.raises(loan_errors.SettlementError) as raised:
        loans.sales.claim_held(FARMER3_ID, loans.sender(OUTSIDER))
    assert raised.value.name == "SettlementNoWallet"
    wallet = loans.addr(OUTSIDER)
    raw(loans, ADMIN, loans.trace.functions.setFarmer(FARMER3_ID, loans.addr(COOP), wallet))
    before = loans.balance(wallet)
    assert loans.sales.claim_held(FARMER3_ID, loans.sender(FARMER2)) == 1_000  # anyone triggers
    assert loans.balance(wallet) == before + 1_000
    assert loans.balance(loans.settlement.address) == 0
    with reverts("SettlementNothingHeld", farmerId=FARMER3_ID):
        loans.sales.claim_held(FARMER3_ID, loans.sender(OUTSIDER))


def test_settle_validation_and_roles(loans: LoanSystem):
    s = loans.settlement.functions
    ids, weights = [x.farmer_id for x in ordered()], [x.weight for x in ordered()]
    with reverts("SettlementNoShares", lot=LOT):
        raw(loans, DISTRIBUTOR, s.settleSale(LOT, 1, ids, weights))
    commit(loans)
    with reverts(
        "SettlementSharesMismatch",
        lot=LOT,
        committed=shares_hash(ordered()),
        given=shares_hash(ordered()[:2]),
    ):
        raw(loans, DISTRIBUTOR, s.settleSale(LOT, 1, ids[:2], weights[:2]))
    with reverts("SettlementZeroAmount", lot=LOT):
        raw(loans, DISTRIBUTOR, s.settleSale(LOT, 0, ids, weights))
    outsider = loans.addr(OUTSIDER)
    with reverts("AccessControlUnauthorizedAccount", account=outsider, neededRole=DISTRIBUTOR_ROLE):
        raw(loans, OUTSIDER, s.settleSale(LOT, 1, ids, weights))
    with reverts(
        "ERC20InsufficientAllowance",
        spender=loans.settlement.address,
        allowance=0,
        needed=1,
    ):
        raw(loans, DISTRIBUTOR, s.settleSale(LOT, 1, ids, weights))
    admin = loans.addr(ADMIN)
    with reverts("SettlementSelfGrant", role=DISTRIBUTOR_ROLE, account=admin):
        raw(loans, ADMIN, s.grantRole(DISTRIBUTOR_ROLE, admin))
    with reverts(
        "AccessControlUnauthorizedAccount", account=loans.addr(COOP), neededRole=bytes(32)
    ):
        raw(loans, COOP, s.grantRole(DISTRIBUTOR_ROLE, outsider))


def test_only_the_admin_revokes_roles(loans: LoanSystem):
    s = loans.settlement.functions
    for role, holder in ((DISTRIBUTOR_ROLE, DISTRIBUTOR), (COMMITTER_ROLE, COOP)):
        for who in (OUTSIDER, DISTRIBUTOR, COOP):
            with reverts(
                "AccessControlUnauthorizedAccount", account=loans.addr(who), neededRole=bytes(32)
            ):
                raw(loans, who, s.revokeRole(role, loans.addr(holder)))
        assert s.hasRole(role, loans.addr(holder)).call()


def test_only_the_holder_or_first_buyer_pays_for_a_lot(loans: LoanSystem):
    """The old code let any distributor "sell" any lot for 1 fen, which froze its shares."""
    commit(loans)
    s = loans.settlement.functions
    ids, weights = [x.farmer_id for x in ordered()], [x.weight for x in ordered()]
    rival = loans.addr(OUTSIDER)
    raw(loans, ADMIN, s.grantRole(DISTRIBUTOR_ROLE, rival))
    raw(loans, OUTSIDER, loans.token.functions.approve(loans.settlement.address, 1))
    raw(loans, ADMIN, loans.token.functions.mint(rival, 1))
    holder = loans.addr(DISTRIBUTOR)
    with reverts("SettlementNotHolderOrBuyer", lot=LOT, holder=holder, buyer=ZERO, caller=rival):
        raw(loans, OUTSIDER, s.settleSale(LOT, 1, ids, weights))
    assert loans.sales.commitment(LOT).sales == 0  # the shares are not frozen
    # Once the holder has sold the lot on, its first buyer still pays for it; the new holder too.
    raw(loans, ADMIN, loans.trace.functions.setLot(LOT, rival, 1000))
    raw(loans, ADMIN, loans.trace.functions.setBuyer(LOT, holder))
    loans.sales.settle_sale(LOT, 10_000, loans.sender(DISTRIBUTOR))
    loans.sales.settle_sale(LOT, 1, loans.sender(OUTSIDER))
    assert loans.sales.commitment(LOT).sales == 2


def test_a_recalled_lot_is_not_settled(loans: LoanSystem):
    """The old code settled a recalled lot like any other."""
    commit(loans)
    raw(loans, ADMIN, loans.trace.functions.setRecalled(LOT))
    raw(loans, DISTRIBUTOR, loans.token.functions.approve(loans.settlement.address, 10_000))
    ids, weights = [x.farmer_id for x in ordered()], [x.weight for x in ordered()]
    with reverts("SettlementLotRecalled", lot=LOT):
        raw(loans, DISTRIBUTOR, loans.settlement.functions.settleSale(LOT, 10_000, ids, weights))
    with pytest.raises(loan_errors.SettlementError) as info:
        loans.sales.settle_sale(LOT, 10_000, loans.sender(DISTRIBUTOR))
    assert (info.value.name, info.value.lot) == ("SettlementLotRecalled", LOT)


def test_sale_events(loans: LoanSystem):
    commit(loans)
    raw(loans, DISTRIBUTOR, loans.token.functions.approve(loans.settlement.address, 999))
    ids, weights = [x.farmer_id for x in ordered()], [x.weight for x in ordered()]
    receipt = raw(loans, DISTRIBUTOR, loans.settlement.functions.settleSale(LOT, 999, ids, weights))
    sale = events_of(loans.settlement, "SaleSettled", receipt)[0]["args"]
    assert (sale["lot"], sale["distributor"], sale["saleId"], sale["amount"]) == (
        LOT,
        loans.addr(DISTRIBUTOR),
        1,
        999,
    )
    rows = events_of(loans.settlement, "FarmerShareSettled", receipt)
    assert [r["args"]["share"] for r in rows] == split_amount(999, weights)


# ---------------------------------------------------------------- re-entry and odd tokens


def test_a_farmer_wallet_reentering_settlement_is_stopped(tmp_path):
    client = client_for("embedded", tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    system = deploy_loan_system(client, "AttackCallbackToken")
    deployment, _ = client.deploy("AttackMerchant")
    attacker = client.contract("AttackMerchant", deployment.address)
    raw(
        system,
        ADMIN,
        system.trace.functions.setFarmer(FARMER2_ID, system.addr(COOP), attacker.address),
    )
    shares = commit(system)
    ids, weights = [x.farmer_id for x in shares], [x.weight for x in shares]
    s = system.settlement
    raw(system, DISTRIBUTOR, system.token.functions.approve(s.address, 10**9))
    again = s.encode_abi("claimHeld", [FARMER3_ID])
    raw(system, OUTSIDER, attacker.functions.arm(s.address, again, False))
    raw(system, DISTRIBUTOR, s.functions.settleSale(LOT, 10_000, ids, weights))
    assert attacker.functions.lastError().call() == REENTRANT
    assert system.balance(attacker.address) == 3_000
    assert s.functions.heldFor(FARMER3_ID).call() == 1_000  # nothing left early
    raw(system, OUTSIDER, attacker.functions.arm(s.address, again, True))
    with reverts("ReentrancyGuardReentrantCall"):
        raw(system, DISTRIBUTOR, s.functions.settleSale(LOT, 10_000, ids, weights))


def test_settlement_with_a_token_without_return_values(tmp_path):
    client = client_for("embedded", tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    system = deploy_loan_system(client, "NonStandardToken")
    loan = system.issue()
    system.pay(loan.escrow, 100_000)
    commit(system)
    for _ in range(2):  # USDT-style approve: the second forceApprove starts from zero again
        result = system.sales.settle_sale(LOT, 100_000, system.sender(DISTRIBUTOR))
        assert sum(r.share_fen for r in result.farmers) == 100_000
    assert system.desk.state(loan.escrow).repaid_fen == 108_000  # all that 100,000 drawn owes
    assert system.token.functions.allowance(system.settlement.address, loan.escrow).call() == 0


# ---------------------------------------------------------------- real TeaTrace lineage


def test_shares_from_real_teatrace_lineage_are_committed_and_settled(tmp_path):
    system = trace_loan_system(tmp_path)
    trace, coop = system.trace.functions, system.sender(COOP)
    start = system.client.w3.eth.block_number
    farmer_c = keccak(text="farmer-c")
    for fid, who in ((FARMER_ID, FARMER), (FARMER2_ID, FARMER2), (farmer_c, OUTSIDER)):
        coop.transact(trace.registerFarmer(fid, system.addr(who)))
        coop.transact(trace.registerPlot((keccak(fid), fid, 100, 1, keccak(text="loc"))))
    picked = system.now() - 3600
    harvests = [
        (FARMER_ID, 6_000, "h1"),
        (FARMER2_ID, 3_000, "h2"),
        (FARMER_ID, 1_000, "h3"),
        (farmer_c, 2_000, "h4"),
    ]
    records = [(f, keccak(f), g, 1, picked, keccak(text=d)) for f, g, d in harvests]
    coop.transact(trace.recordHarvests(records))
    lot = [trace.lotId(system.addr(COOP), keccak(text=d)).call() for _, _, d in harvests]
    split = [(1_500, keccak(text="made-1")), (500, keccak(text="made-2"))]
    coop.transact(trace.process(lot[:3], split))  # 10 kg leaf -> 1.5 kg + 0.5 kg made tea
    made = trace.lotId(system.addr(COOP), keccak(text="made-1")).call()
    coop.transact(trace.process([made, lot[3]], [(800, keccak(text="blend"))]))
    blend = trace.lotId(system.addr(COOP), keccak(text="blend")).call()
    coop.transact(trace.sell(blend, system.addr(DISTRIBUTOR), 2_000_000))
    assert trace.boughtBy(blend).call() == system.addr(DISTRIBUTOR)

    lineage = LineageReader.on(system.client, system.trace, from_block=start)
    shares = normalize_shares(lineage.farmer_weights(blend))
    assert {s.farmer_id: s.weight for s in shares} == {
        FARMER_ID: 5_250,  # 7 kg x 1.5/2.0
        FARMER2_ID: 2_250,  # 3 kg x 1.5/2.0
        farmer_c: 2_000,
    }
    system.sales.commit_shares(blend, keccak(text="blend"), shares, coop)
    assert system.sales.verify_committed(blend, lineage.farmer_weights(blend))
    result = system.sales.settle_sale(blend, 2_000_000, system.sender(DISTRIBUTOR))
    paid = {r.farmer_id: r.paid_out_fen for r in result.farmers}
    assert paid == {FARMER_ID: 1_105_263, FARMER2_ID: 473_684, farmer_c: 421_053}
    assert sum(paid.values()) == 2_000_000
    assert system.balance(FARMER) == 1_105_263


def test_a_lot_made_from_a_recalled_lot_is_not_settled(tmp_path):
    """Recalling a harvest recalls the tea made from it (the platform's recall walks lineage and
    marks every descendant in TeaTrace); the old code still settled that tea's sale."""
    from traceability.service import RecordingService

    system = trace_loan_system(tmp_path)
    trace, coop = system.trace.functions, system.sender(COOP)
    raw(system, ADMIN, trace.grantRole(keccak(text="INSPECTOR_ROLE"), system.addr(OUTSIDER)))
    start = system.client.w3.eth.block_number
    coop.transact(trace.registerFarmer(FARMER_ID, system.addr(FARMER)))
    coop.transact(trace.registerPlot((keccak(FARMER_ID), FARMER_ID, 100, 1, keccak(text="loc"))))
    leaf_data, made_data = keccak(text="leaf"), keccak(text="made")
    coop.transact(
        trace.recordHarvests(
            [(FARMER_ID, keccak(FARMER_ID), 5_000, 1, system.now() - 60, leaf_data)]
        )
    )
    leaf = trace.lotId(system.addr(COOP), leaf_data).call()
    coop.transact(trace.process([leaf], [(1_000, made_data)]))
    made = trace.lotId(system.addr(COOP), made_data).call()
    coop.transact(trace.sell(made, system.addr(DISTRIBUTOR), 100_000))
    system.sales.commit_shares(made, made_data, {FARMER_ID: 5_000}, coop)
    inspector = RecordingService(system.client, OUTSIDER, contract=system.trace)
    recalled = inspector.recall_with_descendants(leaf, keccak(text="pesticide"), start)
    assert recalled == [leaf, made]
    with reverts("SettlementLotRecalled", lot=made):
        system.sales.settle_sale(made, 100_000, system.sender(DISTRIBUTOR))


def test_on_teatrace_a_rival_neither_rewrites_the_shares_nor_settles_the_lot(tmp_path):
    """The audit's two attacks on the real TeaTrace: a second cooperative (a share committer
    too) gave one farmer 1,000,000 of 1,000,000 on the first one's lot, and a second distributor
    "sold" it for 1 fen, which froze its shares. Both are refused now."""
    system = trace_loan_system(tmp_path)
    trace, coop = system.trace.functions, system.sender(COOP)
    rival_coop, rival_dist = system.addr(FARMER2), system.addr(OUTSIDER)
    roles = [
        trace.grantRole(keccak(text="COOPERATIVE_ROLE"), rival_coop),
        system.settlement.functions.grantRole(COMMITTER_ROLE, rival_coop),
        system.settlement.functions.grantRole(DISTRIBUTOR_ROLE, rival_dist),
        system.token.functions.mint(rival_dist, 1),
    ]
    for call in roles:
        raw(system, ADMIN, call)
    coop.transact(trace.registerFarmer(FARMER_ID, system.addr(FARMER)))
    coop.transact(trace.registerPlot((keccak(FARMER_ID), FARMER_ID, 100, 1, keccak(text="loc"))))
    data = keccak(text="harvest")
    picked = system.now() - 60
    coop.transact(trace.recordHarvests([(FARMER_ID, keccak(FARMER_ID), 8_000, 1, picked, data)]))
    lot = trace.lotId(system.addr(COOP), data).call()
    coop.transact(trace.sell(lot, system.addr(DISTRIBUTOR), 100_000))
    system.sales.commit_shares(lot, data, {FARMER_ID: 8_000}, coop)
    rival_id = keccak(text="the rival's farmer")
    system.sender(FARMER2).transact(trace.registerFarmer(rival_id, rival_coop))
    grab = system.settlement.functions.commitShares(lot, data, [rival_id], [1_000_000])
    with reverts("SettlementNotLotMaker", lot=lot, dataHash=data, caller=rival_coop):
        raw(system, FARMER2, grab)
    raw(system, OUTSIDER, system.token.functions.approve(system.settlement.address, 1))
    distributor = system.addr(DISTRIBUTOR)
    with reverts(
        "SettlementNotHolderOrBuyer", lot=lot, holder=distributor, buyer=distributor,
        caller=rival_dist,
    ):  # fmt: skip
        system.sales.settle_sale(lot, 1, system.sender(OUTSIDER))
    result = system.sales.settle_sale(lot, 100_000, system.sender(DISTRIBUTOR))
    assert [(r.farmer_id, r.paid_out_fen) for r in result.farmers] == [(FARMER_ID, 100_000)]
