"""The demo's lending stage on an anvil of this module's own (it moves the chain's clock).

One season and one lending run per module; every figure of the summary is checked against the
escrows, the merchants' balances and the events, and a second run must send nothing.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from rich.console import Console

from api.core.settings import ApiSettings
from chain.client import ChainClient
from indexer.db import make_engine
from lending.credit.store import CreditStore
from lending.loans.contracts import DEV_LENDER
from lending.loans.disbursement import LoanDesk, LoanState, LoanStatus
from lending.loans.merchants import escrows_of, payments_received
from lending.loans.offers import OfferStore
from lending.loans.settlement import SettlementDesk
from tealedger.demo.lending import (
    MERCHANTS,
    LendingSummary,
    chain_now,
    farmer_wallet,
    merchant_address,
    run_lending,
)
from tealedger.demo.season import Region, SeasonSummary, run_season
from tealedger.demo.summary import summary_table
from tealedger.system import deploy_system
from tests._fixtures import client_for, needs_node, start_node
from traceability import contracts

pytestmark = [needs_node(), pytest.mark.node]

FARMERS, SEED = 8, 34
DAY = 86_400


@dataclass
class Lent:
    """The module's chain after one season and one lending run."""

    client: ChainClient
    region: Region
    season: SeasonSummary
    settings: ApiSettings
    first: LendingSummary
    blocks: range  # the blocks the lending run mined

    def states(self) -> list[LoanState]:
        desk = LoanDesk(self.client)
        return [desk.state(e) for e in escrows_of(self.client)]

    def balance(self, address: str) -> int:
        return int(LoanDesk(self.client).token.functions.balanceOf(address).call())


@pytest.fixture(scope="module")
def lent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lent]:
    tmp = tmp_path_factory.mktemp("demo-lending")
    node = start_node("anvil", tmp)
    try:
        client = client_for(node, tmp / "chain")
        client.settings.data_dir.mkdir(parents=True, exist_ok=True)
        deploy_system(client)
        quiet = Console(quiet=True)
        settings = ApiSettings(
            environment="test", data_dir=tmp, database_url=f"sqlite:///{tmp / 'api.core.db'}"
        )
        region, season = run_season(client, FARMERS, SEED, quiet, settings)
        start = client.w3.eth.block_number
        first = run_lending(client, region, season, settings, quiet)
        blocks = range(start + 1, client.w3.eth.block_number + 1)
        yield Lent(client, region, season, settings, first, blocks)
    finally:
        node.stop()


def test_loans_pay_merchants_only_and_the_summary_matches_the_escrows(lent: Lent):
    s, states = lent.first, lent.states()
    assert s.loans == len(states) >= 2 and s.applicants >= s.approved >= s.loans
    assert s.approved + s.referred + s.declined == s.applicants
    assert s.lent_fen == sum(x.funded_fen for x in states) == sum(x.principal_fen for x in states)
    assert s.paid_to_merchants_fen == sum(x.paid_fen for x in states) > 0
    assert s.returned_fen == sum(x.returned_fen for x in states)
    assert s.repaid_fen == sum(x.repaid_fen for x in states) > 0
    for x in states:  # invariant 1 of docs/invariants.md, on every escrow
        assert lent.balance(x.escrow) == x.funded_fen - x.paid_fen - x.returned_fen == 0
        assert x.farmer not in {merchant_address(lent.client, m) for m in MERCHANTS}
    merchants = {merchant_address(lent.client, m) for m in MERCHANTS}
    paid = 0
    for merchant in merchants:  # merchants hold exactly what loans paid them
        received = sum(p.amount_fen for p in payments_received(lent.client, merchant))
        assert lent.balance(merchant) == received
        paid += received
    assert paid == s.paid_to_merchants_fen


def test_sale_proceeds_repay_loans_first(lent: Lent):
    s = lent.first
    sales = SettlementDesk(lent.client).contract
    settled = sales.events.FarmerShareSettled().get_logs(from_block=0)
    escrows = {x.escrow for x in lent.states()}
    to_loans = [e["args"] for e in settled if e["args"]["escrow"] in escrows]
    assert to_loans and s.repaid_from_sales_fen == sum(a["repaid"] for a in to_loans) > 0
    for a in to_loans:  # a share reaches the farmer only after the loan is repaid
        assert a["share"] == a["repaid"] + a["paidOut"] and a["held"] == 0
    assert s.lots_settled == sales.functions.saleCount().call() > 0
    assert s.sales_settled_fen == sum(
        e["args"]["amount"] for e in sales.events.SaleSettled().get_logs(from_block=0)
    )
    wallets = {farmer_wallet(f).address for f in lent.region.farmer_ids}
    tea = contracts.tea_trace(lent.client).functions
    assert {str(tea.farmer(f).call()[1]) for f in lent.region.farmer_ids} == wallets


def test_late_payers_and_a_default_follow_the_escrow_clock(lent: Lent):
    s, states = lent.first, lent.states()
    overdue = LoanDesk(lent.client).went_overdue([x.escrow for x in states], 0)
    late = [x for x in states if x.escrow in overdue and x.status is LoanStatus.REPAID]
    defaulted = [x for x in states if x.status is LoanStatus.DEFAULTED]
    assert s.late_payers == len(late) >= 1 and s.defaults == len(defaulted) >= 1
    assert {x.status for x in states} <= {LoanStatus.REPAID, LoanStatus.DEFAULTED}
    assert s.outstanding_fen == sum(x.outstanding_fen for x in defaulted) > 0
    offers = OfferStore(make_engine(lent.settings.database_url))
    terms = {o.escrow: o.terms for f in lent.region.farmer_ids
             for o in offers.for_farmer("0x" + f.hex()) if o.escrow}  # fmt: skip
    assert chain_now(lent.client) > max(
        x.due_date + (terms[x.escrow].grace_days + terms[x.escrow].default_days) * DAY
        for x in defaulted
    )
    assert s.default_rate == (Decimal(100 * len(defaulted)) / len(states)).quantize(Decimal("0.01"))


def test_decisions_are_stored_once_per_applicant(lent: Lent):
    store = CreditStore(make_engine(lent.settings.database_url))
    lender = lent.client.accounts[DEV_LENDER].address.lower()
    decided = [r for f in lent.region.farmer_ids for r in store.decisions_for("0x" + f.hex())]
    assert len(decided) == lent.first.applicants and {r.lender for r in decided} == {lender}


def test_the_summary_counts_what_the_lending_mined(lent: Lent):
    # counted as sent (a node keeping only its latest blocks lists no transactions in the
    # others), gas from the headers: both what the blocks hold
    blocks = [lent.client.w3.eth.get_block(n) for n in lent.blocks]
    assert lent.first.new_transactions == sum(len(b["transactions"]) for b in blocks) > 0
    assert lent.first.gas_used == sum(b["gasUsed"] for b in blocks)


def test_a_second_run_sends_nothing_and_changes_nothing(lent: Lent):
    block = lent.client.w3.eth.block_number
    again = run_lending(lent.client, lent.region, lent.season, lent.settings, Console(quiet=True))
    assert lent.client.w3.eth.block_number == block
    assert (again.new_transactions, again.gas_used, again.days_advanced) == (0, 0, 0)
    volatile = {"new_transactions", "gas_used", "days_advanced", "seconds"}
    first = {k: v for k, v in dataclasses.asdict(lent.first).items() if k not in volatile}
    assert {k: v for k, v in dataclasses.asdict(again).items() if k not in volatile} == first
    table = summary_table(lent.season, again)  # the season's rows, the lending's, the totals
    assert table.row_count == 10 + len(again.rows()) + 3


def test_what_the_demo_did_is_in_the_service_for_each_audience(lent: Lent):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from tealedger.demo.service import demo_logins

    keys = {x.name: {"X-API-Key": x.api_key} for x in demo_logins(lent.client, lent.settings)}
    coop = keys["Enshi tea cooperative 恩施茶叶合作社"]
    states = lent.states()
    with TestClient(create_app(lent.settings, chain=lent.client)) as http:
        members = http.get("/cooperatives/farmers?limit=200", headers=coop).json()
        season = lent.region.season
        assert {m["name"] for m in members["items"]} == {
            f.name for f in season.farmers if f.cooperative == 0
        }
        offers = http.get("/cooperatives/offers?limit=200", headers=coop).json()["items"]
        mine = {m["farmer_id"] for m in members["items"]}
        issued = [x for x in states if "0x" + x.farmer_id.hex() in mine]
        assert {o["escrow"] for o in offers if o["status"] == "issued"} == {
            x.escrow for x in issued
        }
        assert all(o["agent_is_you"] for o in offers)  # the cooperative orders as agent
        books = http.get("/cooperatives/loans?closed=true&limit=200", headers=coop).json()
        assert {x["escrow"] for x in books["items"]} == {x.escrow for x in issued}
        assert {x["member_name"] for x in books["items"]} <= {m["name"] for m in members["items"]}
        open_now = http.get("/cooperatives/loans?limit=200", headers=coop).json()["items"]
        assert {x["status"] for x in open_now} <= {"active", "overdue", "defaulted"}
        lender = keys["Rural commercial bank 农商银行"]
        book = http.get("/lenders/loans?limit=200", headers=lender).json()
        assert book["total"] == lent.first.loans == len(states)
        assert {r["escrow"] for r in book["items"]} == {x.escrow for x in states}
        report = http.get("/lenders/disbursements", headers=lender).json()
        assert report["total_fen"] == lent.first.paid_to_merchants_fen
        shop = keys["Fertilizer supplier 农资店"]
        received = http.get("/merchants/received?limit=200", headers=shop)
        assert received.status_code == 200, received.text
        address = merchant_address(lent.client, MERCHANTS[0])
        assert sum(p["amount_fen"] for p in received.json()["items"]) == lent.balance(address)


def test_the_distributor_and_processor_see_their_lots(lent: Lent):
    from api.supply_chain.lots import my_lots
    from tealedger.demo.season import DISTRIBUTOR, PROCESSOR
    from tealedger.demo.service import demo_organisations

    orgs = demo_organisations(lent.client, lent.settings)
    bought = my_lots(lent.settings, orgs[DISTRIBUTOR], limit=10_000).bought
    made = my_lots(lent.settings, orgs[PROCESSOR], limit=10_000).made
    assert (
        len(made) == lent.season.made_tea_lots
        and not my_lots(lent.settings, orgs[PROCESSOR]).bought
    )
    assert (
        len(bought) == lent.season.lots_sold
        and sum(b.price_fen for b in bought) == lent.season.sales_fen
    )


def test_every_payment_of_the_season_has_its_reason_and_no_rule_fires(lent: Lent):
    from risk.flows import load_transfers, why_moved
    from risk.scan import context, find
    from tealedger.demo.service import index_chain

    index_chain(lent.client, lent.settings.database_url)
    engine = make_engine(lent.settings.database_url)
    with engine.connect() as conn:
        transfers = load_transfers(conn)
        kinds = Counter(w.kind for w in why_moved(conn, transfers).values())
        findings = find(context(conn, conn))
    assert kinds["disbursed"] > 0 and kinds["share_repaid"] > 0 and kinds["sale_in"] > 0
    assert kinds["direct"] == 0, kinds  # the honest season pays only through its contracts
    assert findings == []  # an honest season raises no alert
