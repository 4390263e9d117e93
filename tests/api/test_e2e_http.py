"""Issue #19's "done means": a whole loan through nothing but HTTP on a real `tealedger serve`.

Outside HTTP only the outside world acts: the operator deploys (`tealedger deploy`) and creates
the platform admin (as `tealedger admin create-org`), the digital-yuan operator (the token
admin, dev account 0) mints eCNY, and the node's clock moves; the published LPR fixings are
the suite's table (tests/conftest.py), which the service inherits. Every eCNY balance is read
from the chain with plain web3 (`balanceOf` on the PaymentToken of the deployment registry),
never through the service.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from web3 import HTTPProvider, Web3

from api.core.models import Role
from chain.nodes import ProcessNode
from tests._fixtures import needs_node, start_node
from tests.api.served import admin_key, cli_env, served
from tests.api.test_cooperatives import resident_id

pytestmark = needs_node()

CHINA = timezone(timedelta(hours=8))
DAY = 86_400
ERC20 = [
    {"name": "balanceOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "who", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "mint", "type": "function", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
     "outputs": []},
]  # fmt: skip

# The member's history: one 4.00 mu garden and, in each of the three seasons before the current
# one, the flush the cooperative weighed in (grams, grade) and sold on (fen).
PLOT_CENTI_MU = 400
FLUSHES = (  # oldest first
    (600_000, 1, 1_800_000),  # 600 kg of special grade at 30 yuan/kg
    (500_000, 3, 400_000),  # 500 kg of second grade at 8 yuan/kg
    (400_000, 2, 800_000),  # 400 kg of first grade at 20 yuan/kg
)
INCOME_FEN = sum(f[2] for f in FLUSHES)  # 30,000 yuan verified in the last 12 months
# The loan: fertilizer for the garden, repaid from this season's leaf and then by the farmer.
FERTILIZER_FEN = 400_000
SALE_FEN = 300_000  # this season's 150 kg of first grade at 20 yuan/kg
DISTRIBUTOR_MINT_FEN = 500_000
FARMER_MINT_FEN = 200_000


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[ProcessNode]:
    """An anvil of this test's own (free loopback port), stopped afterwards."""
    node = start_node("anvil", tmp_path / "anvil")
    yield node
    node.stop()


def _previous_seasons(now: datetime, count: int) -> list[int]:
    """Noon in China on the 15th of the middle month of each of the `count` seasons before the
    current one, oldest first (seasons: Mar-May, Jun-Aug, Sep-Nov, Dec-Feb, China time)."""
    china = now.astimezone(CHINA)
    start = china.year * 12 + china.month - 1 - (china.month - 3) % 3  # current season's start
    days = []
    for back in range(count, 0, -1):
        year, month = divmod(start - 3 * back + 1, 12)
        days.append(int(datetime(year, month + 1, 15, 12, tzinfo=CHINA).timestamp()))
    return days


class Ledger:
    """eCNY balances read straight from the chain, against what each one should be (fen)."""

    def __init__(self, w3: Web3, token: str) -> None:
        self.w3 = w3
        self.token = w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20)
        self.who: dict[str, str] = {}
        self.expected: dict[str, int] = {}

    def watch(self, name: str, address: str, fen: int = 0) -> None:
        """Follow `address` from now on; it should hold `fen`."""
        self.who[name] = Web3.to_checksum_address(address)
        self.expected[name] = fen

    def move(self, fen: int, source: str | None, to: str | None) -> None:
        """Expect `fen` to have gone from `source` to `to` (None: minted or not followed)."""
        if source is not None:
            self.expected[source] -= fen
        if to is not None:
            self.expected[to] += fen

    def check(self, step: str) -> None:
        """Every followed balance on chain is exactly what it should be."""
        actual = {n: int(self.token.functions.balanceOf(a).call()) for n, a in self.who.items()}
        assert actual == self.expected, f"after {step}"

    def mint(self, name: str, fen: int) -> None:
        """The digital-yuan operator (the token admin, dev account 0) issues eCNY."""
        admin = self.w3.eth.accounts[0]
        tx = self.token.functions.mint(self.who[name], fen).transact({"from": admin})
        assert self.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        self.move(fen, None, name)


def _deploy(data_dir: Path, node: ProcessNode, chain_id: int) -> dict[str, str]:
    """`tealedger deploy` as an operator runs it; the registry's addresses by contract name."""
    cmd = [sys.executable, "-m", "tealedger.cli", "deploy"]
    done = subprocess.run(cmd, env=cli_env(data_dir, node), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    registry = json.loads((data_dir / "deployments" / f"{chain_id}.json").read_text())
    return {name: entry["address"] for name, entry in registry["contracts"].items()}


def test_a_whole_loan_over_http(anvil, tmp_path):
    """Score, lend, spend, settle and repay one member's loan through the HTTP API only.

    The history: one 4.00 mu garden and, in each of the three seasons before the current one,
    the flush the cooperative weighed in and sold on to the distributor on chain: 600 kg of
    special grade for 18,000 yuan, 500 kg of second grade for 4,000 yuan, 400 kg of first grade
    for 8,000 yuan. The pickings are backdated (a cooperative enters its weighing books when it
    joins), so one harvest batch and three sales build a year and the node's clock need not
    move for the profile. Scorecard v2 on the indexed profile: verified income 30,000 yuan
    >= 25,000 (65 points), 1,500 kg of leaf >= 1,400 (58), premium grades 67% >= 40% (65),
    375 kg/mu >= 360 (61), seasonal income spread 0.89 (52); a new member with no loans, no
    incidents and no prior year gets the fixed rest (tenure 45, loans repaid 37, trend 47,
    quality 56, recalls 50, days past due 54, exposure 54): 644, band A (>= 630), limit 40% of
    the verified income, 12,000 yuan. Why this one: it is the least on chain that is still a
    plausible year (100-150 kg/mu a flush) and approves with a margin. The same leaf in a
    single flush is 631 (the concentrated income loses 13 points, one point above A) and needs
    375 kg/mu picked at once; the first two flushes alone are 609 (band B, limit 7,000 yuan);
    the same leaf from 6 mu (250 kg/mu) loses 12 yield points (632).

    The clock moves once, for the loan: an escrow closes as repaid by a repayment after its
    draw window (1 day), so anvil moves a day on before this season's leaf is sold.
    """
    data_dir = tmp_path / "svc"
    data_dir.mkdir()
    w3 = Web3(HTTPProvider(anvil.url))
    addresses = _deploy(data_dir, anvil, w3.eth.chain_id)
    ledger = Ledger(w3, addresses["PaymentToken"])
    url = f"sqlite:///{data_dir / 'svc.db'}"
    admin = admin_key(data_dir, url)

    with served(data_dir, anvil, url) as api:
        # The platform admin: organisations on chain, the merchant approved for fertilizer.
        coop = api.org(admin, Role.COOPERATIVE, "恩施玉露茶叶专业合作社 Enshi Yulu Cooperative")
        lender = api.org(admin, Role.LENDER, "恩施农商银行 Enshi Rural Commercial Bank")
        farmer = api.org(admin, Role.FARMER, "周九 Zhou Jiu")
        merchant = api.org(admin, Role.MERCHANT, "绿源农资 Lvyuan Farm Supplies")
        distributor = api.org(admin, Role.DISTRIBUTOR, "鄂西茶叶贸易 West Hubei Tea Trading")
        approval = {"categories": ["fertilizer"], "valid_until": int(time.time()) + 180 * DAY}
        approved = api.post(f"/admin/organisations/{merchant.id}/merchant-approvals", admin,
                            approval)  # fmt: skip
        assert [a["category"] for a in approved["approvals"]] == ["fertilizer"]
        for name, org in (("lender", lender), ("merchant", merchant), ("distributor", distributor),
                          ("farmer", farmer)):  # fmt: skip
            ledger.watch(name, org.address)
        ledger.watch("settlement", addresses["SaleSettlement"])  # holds nothing for anyone
        ledger.check("the organisations were made")

        # The cooperative: the member, their garden, three seasons' flushes weighed in and sold.
        member = {"national_id": resident_id(), "name": "周九", "farmer_org_id": farmer.id}
        registered = api.post("/cooperatives/farmers", coop.key, member)
        fid = registered["farmer_id"]
        assert registered["wallet"] == farmer.address
        plot = api.post("/cooperatives/plots", coop.key, {
            "farmer_id": fid, "land_reference": "鄂恩施-芭蕉-0107", "area_centi_mu": PLOT_CENTI_MU,
            "label": "芭蕉 upper terrace"})["plot_id"]  # fmt: skip
        # Seasons before the one of a quarter of an hour from now: should a season turn while
        # the test runs, the flushes are still the last three before the profile's season.
        picked = _previous_seasons(datetime.now(UTC) + timedelta(minutes=15), len(FLUSHES))
        records = [
            {"farmer": fid, "plot": plot, "grams": grams, "grade": grade, "picked_at": at,
             "record_ref": f"weigh-in {n}"}
            for n, ((grams, grade, _), at) in enumerate(zip(FLUSHES, picked, strict=True), 1)
        ]  # fmt: skip
        recorded = api.post("/cooperatives/harvests", coop.key, records)
        assert recorded["recorded"] == len(FLUSHES), recorded
        lots = [o["lot"] for o in recorded["outcomes"]]
        for lot, (_, _, price) in zip(lots, FLUSHES, strict=True):
            sale = {"lot": lot, "buyer_org_id": distributor.id, "price_fen": price}
            api.post("/cooperatives/sales", coop.key, sale)

        # The farmer lets the lender read the profile; the follower indexes all of it.
        api.post("/farmers/me/consents", farmer.key, {"lender_org_id": lender.id})
        head = w3.eth.block_number
        api.indexed(head)

        # The lender: the real indexed profile, then a decision on it.
        profile = api.read(f"/lenders/farmers/{fid}/profile", lender.key)
        assert profile["valid_at"]["block_number"] >= head and profile["credit"]["available"]
        sold = {s["season"]: s["sale_income_fen"] for s in profile["seasons"]}
        assert sorted(sold.values()) == sorted(f[2] for f in FLUSHES) and len(sold) == 3
        assert profile["total"]["fresh_leaf_grams"] == sum(f[0] for f in FLUSHES)
        made = api.post(f"/lenders/farmers/{fid}/decisions", lender.key)
        decision = made["decision"]
        features = decision["features"]
        assert features["trailing_sale_income_fen"] == INCOME_FEN
        assert features["trailing_fresh_leaf_kg"] == 1_500
        assert features["premium_grade_share_bps"] == 6_666  # 1,000 of 1,500 kg in grades 1-2
        assert features["fresh_leaf_kg_per_mu_x100"] == 37_500
        assert (decision["outcome"], decision["band"]) == ("approve", "A"), decision
        assert decision["score"] >= 630
        assert decision["limit_fen"] == INCOME_FEN * 40 // 100  # band A: 100% of 40% of income

        # The offer: fertilizer only, the merchant confirms delivery, a one-day draw window.
        terms = {"budgets_fen": {"fertilizer": FERTILIZER_FEN}, "draw_days": 1,
                 "confirmation": "merchant"}  # fmt: skip
        offer = api.post(f"/lenders/decisions/{made['decision_id']}/offers", lender.key, terms)
        assert offer["principal_fen"] == FERTILIZER_FEN and offer["status"] == "offered"
        total_due = offer["total_due_fen"]
        assert total_due > FERTILIZER_FEN and total_due > SALE_FEN  # interest; the sale is part

        # The farmer reads the offer and accepts it (the service signs with the farmer's key).
        mine = api.read("/farmers/me/offers", farmer.key)
        assert [o["offer_id"] for o in mine] == [offer["offer_id"]]
        seen = api.read(f"/farmers/me/offers/{offer['offer_id']}/detail", farmer.key)
        assert (seen["principal_fen"], seen["total_due_fen"]) == (FERTILIZER_FEN, total_due)
        assert seen["explanation"] is not None and not seen["declined"]
        api.post(f"/farmers/me/offers/{offer['offer_id']}/accept", farmer.key)

        # The lender issues and funds the escrow (development: the service mints the principal).
        issued = api.post(f"/lenders/offers/{offer['offer_id']}/loan", lender.key)
        escrow = issued["escrow"]
        assert issued["total_due_fen"] == total_due
        ledger.watch("escrow", escrow, FERTILIZER_FEN)
        ledger.check("the loan was issued and funded")

        # The cooperative orders the fertilizer on the merchant's invoice: reserved, not paid.
        order = {"merchant": str(merchant.id), "category": "fertilizer",
                 "amount_fen": FERTILIZER_FEN, "invoice": "LY-2026-0417"}  # fmt: skip
        placed = api.post(f"/cooperatives/loans/{escrow}/orders", coop.key, order)
        assert placed["created"] and not placed["paid"]
        order_id = placed["order"]["order_id"]
        ledger.check("the order was placed")

        # The merchant takes the order, delivers and confirms: the escrow pays the merchant.
        waiting = api.read("/merchants/orders", merchant.key)["items"]
        assert [(o["escrow"], o["order_id"]) for o in waiting] == [(escrow, order_id)]
        api.post(f"/merchants/orders/{escrow}/{order_id}/accept", merchant.key)
        ledger.check("the merchant accepted")
        confirmed = api.post(f"/merchants/orders/{escrow}/{order_id}/confirm", merchant.key)
        assert confirmed["amount_fen"] == FERTILIZER_FEN
        ledger.move(FERTILIZER_FEN, "escrow", "merchant")
        ledger.check("the merchant confirmed delivery")

        # A day on, the draw window has closed (what is repaid now can close the loan); this
        # season's leaf is weighed in, shipped to the distributor and received.
        w3.provider.make_request("evm_increaseTime", [DAY + 60])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        fresh = {"farmer": fid, "plot": plot, "grams": 150_000, "grade": 2,
                 "picked_at": int(time.time()) - 3_600, "record_ref": "weigh-in 4"}  # fmt: skip
        (lot,) = [
            o["lot"] for o in api.post("/cooperatives/harvests", coop.key, [fresh])["outcomes"]
        ]
        api.post("/cooperatives/shipments", coop.key, {"lots": [lot], "to_org_id": distributor.id})
        api.post("/cooperatives/receipts", distributor.key, {"lots": [lot]})

        # The lot's maker commits its shares; the distributor pays, which repays part of the loan.
        shares = api.post(f"/cooperatives/lots/{lot}/shares", coop.key)
        assert [(f["farmer_id"], f["weight_grams"]) for f in shares["farmers"]] == [(fid, 150_000)]
        preview = api.read(
            f"/cooperatives/lots/{lot}/shares?amount_fen={SALE_FEN}", distributor.key
        )
        assert preview["committed_matches"] and preview["farmers"][0]["share_fen"] == SALE_FEN
        ledger.mint("distributor", DISTRIBUTOR_MINT_FEN)
        ledger.check("the distributor was paid in eCNY")
        settled = api.post(f"/cooperatives/lots/{lot}/settlements", distributor.key,
                           {"amount_fen": SALE_FEN})  # fmt: skip
        (share,) = settled["farmers"]
        assert (share["farmer_id"], share["loan_escrow"]) == (fid, escrow)
        assert (share["repaid_to_loan_fen"], share["paid_to_farmer_fen"]) == (SALE_FEN, 0)
        ledger.move(SALE_FEN, "distributor", "lender")  # through the escrow to the lender
        ledger.check("the sale was settled")
        loan = api.read(f"/lenders/loans/{escrow}", lender.key)
        assert (loan["status"], loan["repaid_fen"]) == ("active", SALE_FEN)
        assert loan["outstanding_fen"] == total_due - SALE_FEN

        # The farmer repays the rest from their wallet.
        rest = total_due - SALE_FEN
        ledger.mint("farmer", FARMER_MINT_FEN)
        ledger.check("the farmer was paid in eCNY")
        repaid = api.post(f"/farmers/me/loans/{escrow}/repayments", farmer.key,
                          {"amount_fen": rest})  # fmt: skip
        assert (repaid["outstanding_fen"], repaid["wallet_balance_fen"]) == (
            0,
            FARMER_MINT_FEN - rest,
        )
        ledger.move(rest, "farmer", "lender")
        ledger.check("the farmer repaid")
        assert ledger.expected["lender"] == total_due  # principal and interest, all back

        # The last repayment after the draw window closed the loan: the portfolio shows it repaid.
        book = api.read("/lenders/loans", lender.key)
        (loan,) = book["items"]
        assert (loan["escrow"], loan["status"]) == (escrow, "repaid"), loan
        assert (loan["drawn_fen"], loan["repaid_fen"], loan["outstanding_fen"]) == (
            FERTILIZER_FEN, total_due, 0)  # fmt: skip
        assert book["outstanding_fen"] == 0
        ledger.check("the loan closed")

        # The indexed credit history has the loan, repaid on time; the next decision counts it.
        api.indexed(w3.eth.block_number)
        credit = api.read(f"/lenders/farmers/{fid}/profile", lender.key)["credit"]
        assert (credit["loans"], credit["open_loans"], credit["outstanding_fen"]) == (1, 0, 0)
        assert (credit["repaid_fen"], credit["late_repayments"]) == (total_due, 0)
        assert credit["sale_proceeds_to_loans_fen"] == SALE_FEN
        again = api.post(f"/lenders/farmers/{fid}/decisions", lender.key)["decision"]
        assert again["features"]["loans_repaid_on_time"] == 1
        assert again["features"]["current_exposure_fen"] == 0
        assert again["score"] > decision["score"]
