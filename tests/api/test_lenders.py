"""Lender routes on a real SQLite database and the session anvil, with a demo season indexed.

Each route: success, 401 without a key, 403 for the wrong role, another lender's record or a
farmer without consent, 404 for an unknown id, 422 for a bad request. One chain, one app and
one indexed season per module (`lending`, also used by test_merchants).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from fastapi.testclient import TestClient
from rich.console import Console

from api.core.chain import org_account
from api.core.models import Organisation, Role
from api.lenders.service import credit_store
from chain.sender import Sender
from indexer.runner import index_once
from lending.credit.access import MappingProfileReader, MemoryAccessLog, StaticConsent
from lending.credit.decision import DecisionRecord, decide
from lending.credit.policy import Outcome
from lending.credit.scorecard import load_model
from lending.loans.disbursement import LoanDesk
from lending.loans.offers import OfferStore
from tealedger.demo.season import Region, farmer_wallet, run_season
from tealedger.system import deploy_system
from tests._fixtures import client_for, demo_wallet, needs_node
from tests.api.test_cooperatives import Org, World, served_world
from traceability.consent import ConsentService

pytestmark = needs_node()

UNKNOWN = "0x" + "ab" * 32


@dataclass
class Lending:
    """The module's world: app, chain, season, two lenders and the consents given."""

    world: World
    region: Region
    lender: Org
    other_lender: Org
    coop: Org
    merchant: Org

    @property
    def http(self) -> TestClient:
        return self.world.http

    def fid(self, index: int) -> str:
        return "0x" + self.region.farmer_ids[index].hex()

    def wallet(self, index: int) -> Sender:
        """Demo farmer `index`'s own wallet (with gas), as a sender."""
        chain = self.world.chain
        return chain.sender_for(demo_wallet(chain, self.region.farmer_ids[index]))

    def index(self) -> None:
        index_once(self.world.chain, self.world.settings.database_url)  # type: ignore[arg-type]

    def decision_for(self, fid: str) -> DecisionRecord:
        """An approved decision of `lender` about farmer `fid` (a strong synthetic profile)."""
        record = self._decide(fid, STRONG_PROFILE)
        assert record.decision.outcome is Outcome.APPROVE, record.decision.notes
        return record

    def demo_loan(self, index: int, budgets: dict, confirmation: str) -> str:
        """A loan to demo farmer `index` (its own demo wallet): offered through the API,
        accepted with that wallet's signature (kept as the farmer route keeps it), issued
        through the API; returns the escrow."""
        http, headers = self.http, self.lender.headers
        url = f"/lenders/decisions/{self.approved_decision(index)}/offers"
        body = {"budgets_fen": budgets, "confirmation": confirmation}
        made = http.post(url, json=body, headers=headers)
        assert made.status_code == 201, made.text
        offer_id = made.json()["offer_id"]
        store = OfferStore(self.world.app.state.engine)  # type: ignore[attr-defined]
        offer = store.get(offer_id)
        assert offer is not None
        chain = self.world.chain
        signed = LoanDesk(chain).sign_acceptance(
            offer.terms, farmer_wallet(self.region.farmer_ids[index])
        )
        store.record_acceptance(offer_id, signed)
        issued = http.post(f"/lenders/offers/{offer_id}/loan", headers=headers)
        assert issued.status_code == 201, issued.text
        return str(issued.json()["escrow"])

    def approved_decision(self, index: int = 0) -> str:
        """An approved decision of `lender` about farmer `index` on a strong synthetic profile
        (the demo season lies outside the 12-month scoring window), stored like the route's."""
        record = self.stored_decision(index, STRONG_PROFILE)
        assert record.decision.outcome is Outcome.APPROVE, record.decision.notes
        return record.decision_id

    def declined_decision(self, index: int = 0) -> str:
        """A declined decision on a weak synthetic profile (new, small, failing quality)."""
        record = self.stored_decision(index, WEAK_PROFILE)
        assert record.decision.outcome is Outcome.DECLINE, record.decision.notes
        return record.decision_id

    def stored_decision(self, index: int, fields: dict) -> DecisionRecord:
        """Score a synthetic profile for farmer `index` and store it like the route does."""
        return self._decide(self.fid(index), fields)

    def _decide(self, fid: str, fields: dict) -> DecisionRecord:
        """Score a synthetic profile for farmer `fid` and store it like the route does."""
        profile = {
            "farmer_id": fid,
            "block_number": 1,
            "block_hash": "0x" + "11" * 32,
            "as_of": date.today(),
            **fields,
        }
        store = credit_store(self.world.app.state.engine)  # type: ignore[attr-defined]
        return decide(
            fid,
            self.lender.address,
            profiles=MappingProfileReader({fid: profile}),
            consent=StaticConsent(everyone=True),
            access_log=MemoryAccessLog(),
            model=load_model(),
            store=store,
        )


STRONG_PROFILE = {
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
WEAK_PROFILE = {
    **STRONG_PROFILE,
    "registered_at": date.today(),
    "plot_area_centi_mu": 100,
    "harvest_grams_by_grade": {5: 20_000},
    "harvest_grams_prior_12m": 200_000,
    "seasonal_sale_income_fen": [0, 5_000, 0, 90_000],
    "quality_failures_24m": 4,
    "recalled_lots_24m": 2,
    "loans_repaid_on_time": 0,
    "max_days_past_due_24m": 120,
}


@pytest.fixture(scope="module")
def lending(anvil_node, tmp_path_factory) -> Lending:
    """The lending contracts and a 4-farmer demo season on anvil, the API on SQLite, indexed;
    farmer 0 consents to `lender`, farmer 1 to nobody."""
    tmp = tmp_path_factory.mktemp("lender-api")
    chain = client_for(anvil_node, tmp / "chain")
    chain.settings.data_dir.mkdir(parents=True, exist_ok=True)
    deploy_system(chain)
    region, _ = run_season(chain, farmers=4, seed=3, console=Console(quiet=True))
    with served_world(chain, tmp, f"sqlite:///{tmp / 'api.core.db'}") as world:
        made = Lending(
            world,
            region,
            world.org(Role.LENDER, "Enshi Rural Credit Union"),
            world.org(Role.LENDER, "Postal Savings Bank"),
            world.org(Role.COOPERATIVE, "Yulu Cooperative"),
            world.org(Role.MERCHANT, "Green Leaf Fertilizer"),
        )
        wallet = demo_wallet(chain, region.farmer_ids[0])  # the demo farmer's own wallet
        expires = int(time.time()) + 90 * 86_400
        ConsentService(chain).grant(wallet, region.farmer_ids[0], made.lender.address, expires)
        made.index()
        yield made


# ------------------------------------------------------------------------------ farmers


def test_consenting_farmers(lending):
    http = lending.http
    mine = http.get("/lenders/farmers", headers=lending.lender.headers)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["total"] == 1 and body["block_number"] > 0
    (item,) = body["items"]
    assert item["farmer_id"] == lending.fid(0) and item["consent_expires_at"] > time.time()
    assert item["cooperative"].startswith("0x")
    other = http.get("/lenders/farmers", headers=lending.other_lender.headers).json()
    assert other["total"] == 0 and other["items"] == []
    assert http.get("/lenders/farmers").status_code == 401
    assert http.get("/lenders/farmers", headers=lending.coop.headers).status_code == 403
    bad = http.get("/lenders/farmers?limit=0", headers=lending.lender.headers)
    assert bad.status_code == 422


def test_profile_needs_consent_and_every_read_is_logged(lending):
    http, fid = lending.http, lending.fid(0)
    url = f"/lenders/farmers/{fid}/profile"
    read = http.get(url, headers=lending.lender.headers)
    assert read.status_code == 200, read.text
    profile = read.json()
    assert profile["farmer"] == fid and profile["valid_at"]["block_number"] > 0
    assert profile["total"]["harvests"] > 0 and profile["seasons"]
    refused = http.get(url, headers=lending.other_lender.headers)
    assert refused.status_code == 403 and "consent" in refused.json()["detail"]
    no_consent = f"/lenders/farmers/{lending.fid(1)}/profile"
    assert http.get(no_consent, headers=lending.lender.headers).status_code == 403
    log = credit_store(lending.world.app.state.engine).access_log(fid)
    outcomes = [(e.lender, e.outcome.value, e.purpose) for e in log[-2:]]
    assert outcomes == [
        (lending.lender.address.lower(), "read", "profile_view"),
        (lending.other_lender.address.lower(), "refused_no_consent", "profile_view"),
    ]
    assert log[-2].block_number == profile["valid_at"]["block_number"]
    # consent is checked first: a farmer who never consented is refused whether or not it exists
    unknown = f"/lenders/farmers/{UNKNOWN}/profile"
    assert http.get(unknown, headers=lending.lender.headers).status_code == 403
    assert (
        http.get("/lenders/farmers/0x12/profile", headers=lending.lender.headers).status_code == 422
    )
    assert http.get(url).status_code == 401
    assert http.get(url, headers=lending.merchant.headers).status_code == 403


# ------------------------------------------------------------------------------ decisions


def test_decision_is_made_stored_and_shown_to_its_lender_only(lending):
    http, fid = lending.http, lending.fid(0)
    made = http.post(f"/lenders/farmers/{fid}/decisions", headers=lending.lender.headers)
    assert made.status_code == 201, made.text
    record = made.json()
    decision = record["decision"]
    assert record["lender"] == lending.lender.address.lower() and decision["farmer_id"] == fid
    assert decision["outcome"] in {"approve", "refer", "decline"}
    assert isinstance(decision["score"], int) and decision["reasons"]
    assert decision["profile_block_number"] > 0
    log = credit_store(lending.world.app.state.engine).access_log(fid)
    assert log[-1].purpose == "credit_decision" and log[-1].decision_id == record["decision_id"]
    url = f"/lenders/decisions/{record['decision_id']}"
    shown = http.get(url, headers=lending.lender.headers)
    assert shown.status_code == 200 and shown.json() == record
    assert http.get(url, headers=lending.other_lender.headers).status_code == 403
    assert http.get(url, headers=lending.coop.headers).status_code == 403
    assert http.get(url).status_code == 401
    assert (
        http.get("/lenders/decisions/" + "0" * 32, headers=lending.lender.headers).status_code
        == 404
    )
    assert http.get("/lenders/decisions/short", headers=lending.lender.headers).status_code == 404


def test_decision_refused_without_consent_or_profile(lending):
    http = lending.http
    url = f"/lenders/farmers/{lending.fid(1)}/decisions"
    refused = http.post(url, headers=lending.lender.headers)
    assert refused.status_code == 403 and "consent" in refused.json()["detail"]
    log = credit_store(lending.world.app.state.engine).access_log(lending.fid(1))
    assert log[-1].outcome.value == "refused_no_consent" and log[-1].purpose == "credit_decision"
    own = f"/lenders/farmers/{lending.fid(0)}/decisions"
    assert http.post(own, headers=lending.other_lender.headers).status_code == 403
    assert http.post(own, headers=lending.merchant.headers).status_code == 403
    assert http.post(own).status_code == 401
    unknown = f"/lenders/farmers/{UNKNOWN}/decisions"
    assert http.post(unknown, headers=lending.lender.headers).status_code == 403
    bad = "/lenders/farmers/not-an-id/decisions"
    assert http.post(bad, headers=lending.lender.headers).status_code == 422


# ------------------------------------------------------------------------------ loans


def _member_farmer(lending: Lending) -> tuple[Org, str]:
    """A new farmer organisation and the member farmer whose TeaTrace wallet it is."""
    org = lending.world.org(Role.FARMER, f"farmer {time.time_ns()}")
    record = lending.world.farmer(lending.coop, farmer_org_id=org.id, name="周九")
    return org, record["farmer_id"]


def _sign(lending: Lending, farmer: Org, typed_data: dict) -> str:
    """The farmer's wallet signs the offer's typed data (what a wallet app does for them)."""
    with lending.world.session() as session:
        row = session.get(Organisation, farmer.id)
    account = org_account(lending.world.settings, row)
    return "0x" + account.sign_message(encode_typed_data(full_message=typed_data)).signature.hex()


def _nothing_sent(lending: Lending) -> tuple[int, int]:
    """The lender's eCNY balance and allowance to the factory (what an early write changes)."""
    chain = lending.world.chain
    token = chain.contract("PaymentToken").functions
    factory = chain.contract("LoanFactory").address
    lender = lending.lender.address
    return token.balanceOf(lender).call(), token.allowance(lender, factory).call()


def test_offer_accepted_by_the_farmers_signature_becomes_a_loan(lending):
    http, headers = lending.http, lending.lender.headers
    farmer, fid = _member_farmer(lending)
    decision_id = lending.decision_for(fid).decision_id
    limit = http.get(f"/lenders/decisions/{decision_id}", headers=headers).json()["decision"][
        "limit_fen"
    ]
    url = f"/lenders/decisions/{decision_id}/offers"
    body = {
        "budgets_fen": {"fertilizer": 300_000, "seedlings": 200_000},
        "confirmation": "merchant",
        # server-side fields: ignored
        "principal_fen": 10**12,
        "lender": lending.other_lender.address,
        "rate_bps": 1,
    }
    assert limit >= 500_000
    for bad in (
        {"budgets_fen": {"fertilizer": limit + 10_000}},
        {"budgets_fen": {}},
        {"budgets_fen": {"fertilizer": -5}},
    ):
        assert http.post(url, json=bad, headers=headers).status_code == 422, bad
    assert http.post(url, json=body).status_code == 401
    assert http.post(url, json=body, headers=lending.coop.headers).status_code == 403
    assert http.post(url, json=body, headers=lending.other_lender.headers).status_code == 403
    unknown = "/lenders/decisions/" + "0" * 32 + "/offers"
    assert http.post(unknown, json=body, headers=headers).status_code == 404
    made = http.post(url, json=body, headers=headers)
    assert made.status_code == 201, made.text
    offer = made.json()
    assert offer["status"] == "offered" and offer["principal_fen"] == 500_000
    assert offer["farmer_id"] == fid and offer["farmer_wallet"] == farmer.address
    assert offer["apr_bps"] > 0 and offer["confirmation"] == "merchant"
    # one decision, one loan: a second offer from the same decision is refused
    again = http.post(url, json={"budgets_fen": {"fertilizer": 100_000}}, headers=headers)
    assert again.status_code == 409 and "one decision gives one loan" in again.json()["detail"]
    # the lender cannot issue before the farmer accepts, and nothing is sent trying
    before = _nothing_sent(lending)
    issue = f"/lenders/offers/{offer['offer_id']}/loan"
    early = http.post(issue, headers=headers)
    assert early.status_code == 409 and "not accepted" in early.json()["detail"]
    assert _nothing_sent(lending) == before
    # the farmer sees the terms and the typed data, and signs in their own wallet
    listed = http.get("/farmers/me/offers", headers=farmer.headers).json()
    assert [o["offer_id"] for o in listed] == [offer["offer_id"]]
    shown = http.get(f"/farmers/me/offers/{offer['offer_id']}", headers=farmer.headers)
    assert shown.status_code == 200, shown.text
    view = shown.json()
    assert view["apr_pct"] and view["max_annual_rate_pct"] and view["schedule"]
    assert view["typed_data"]["message"]["totalDue"] == offer["total_due_fen"]
    stranger, _ = _member_farmer(lending)
    other_url = f"/farmers/me/offers/{offer['offer_id']}"
    assert http.get(other_url, headers=stranger.headers).status_code == 403
    accept = f"/farmers/me/offers/{offer['offer_id']}/acceptance"
    typed = view["typed_data"]
    message = typed["message"]
    forged = _sign(lending, stranger, typed)
    signed = {"nonce": message["nonce"], "deadline": message["deadline"], "signature": forged}
    refused = http.post(accept, json=signed, headers=farmer.headers)
    assert refused.status_code == 422 and "not by the farmer's wallet" in refused.text
    assert (
        http.post(accept, json={**signed, "signature": "0x12"}, headers=farmer.headers).status_code
        == 422
    )
    signed["signature"] = _sign(lending, farmer, typed)
    assert http.post(accept, json=signed, headers=stranger.headers).status_code == 403
    accepted = http.post(accept, json=signed, headers=farmer.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert lending.world.chain.w3.eth.get_balance(farmer.address) == 0  # no gas, none needed
    # the lender issues: accepted, funded, the escrow keeps the digest the farmer signed
    assert http.post(issue, headers=lending.other_lender.headers).status_code == 403
    issued = http.post(issue, headers=headers)
    assert issued.status_code == 201, issued.text
    loan = issued.json()
    assert loan["principal_fen"] == 500_000 and loan["total_due_fen"] > 500_000
    assert loan["farmer_id"] == fid and loan["confirmation"] == "merchant"
    assert loan["farmer_wallet"] == farmer.address
    signable = encode_typed_data(full_message=typed)
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert loan["acceptance_digest"] == "0x" + digest.hex()
    state = http.get(f"/lenders/loans/{loan['escrow']}", headers=headers)
    assert state.status_code == 200, state.text
    s = state.json()
    assert s["status"] == "active" and s["lender"] == lending.lender.address
    assert s["principal_fen"] == 500_000 and s["funded_fen"] == 500_000
    assert s["amount_due_fen"] == 0  # nothing drawn yet: nothing owed
    assert s["total_due_fen"] == loan["total_due_fen"] and s["confirmation"] == "merchant_confirms"
    assert _nothing_sent(lending)[1] == 0  # exactly the principal was approved, and pulled
    twice = http.post(issue, headers=headers)
    assert twice.status_code == 409 and "one decision gives one loan" in twice.json()["detail"]
    assert http.get(f"/lenders/offers/{offer['offer_id']}", headers=headers).json()["status"] == (
        "issued"
    )


def test_loan_state_is_only_the_lenders_own(lending):
    http = lending.http
    escrow = _issued_escrow(lending)
    url = f"/lenders/loans/{escrow}"
    assert http.get(url, headers=lending.other_lender.headers).status_code == 403
    assert http.get(url, headers=lending.merchant.headers).status_code == 403
    assert http.get(url).status_code == 401
    nobody = "/lenders/loans/0x" + "12" * 20
    assert http.get(nobody, headers=lending.lender.headers).status_code == 404
    token = lending.world.chain.contract("PaymentToken").address
    assert http.get(f"/lenders/loans/{token}", headers=lending.lender.headers).status_code == 404
    assert http.get("/lenders/loans/0x12", headers=lending.lender.headers).status_code == 422


def test_declined_decision_cannot_become_a_loan(lending):
    http = lending.http
    url = f"/lenders/decisions/{lending.declined_decision()}/offers"
    refused = http.post(
        url, json={"budgets_fen": {"fertilizer": 100_000}}, headers=lending.lender.headers
    )
    assert refused.status_code == 409


# ------------------------------------------------------------------------------ pages


def test_profile_page_shows_charts_score_and_offer(lending):
    page = TestClient(lending.world.app)
    fid = lending.fid(0)
    url = f"/lender/farmers/{fid}"
    assert page.get(url, follow_redirects=False).status_code == 303
    login = page.post("/login", data={"api_key": lending.lender.key}, follow_redirects=False)
    assert login.status_code == 303
    shown = page.get(url)
    assert shown.status_code == 200, shown.text
    html = shown.text
    for marker in ('id="chart-harvest"', 'id="chart-income"', 'id="chart-grades"', "<svg", "<rect"):
        assert marker in html
    assert 'id="score"' in html and 'id="reasons"' in html
    assert page.get(f"/lender/farmers/{lending.fid(1)}").status_code == 403
    assert page.get(f"/lender/farmers/{UNKNOWN}").status_code == 403
    other = TestClient(lending.world.app)
    other.post("/login", data={"api_key": lending.coop.key}, follow_redirects=False)
    assert other.get(url).status_code == 403


def test_profile_page_shows_disclosure_schedule_of_an_offer(lending):
    lending.approved_decision(0)
    page = TestClient(lending.world.app)
    page.post("/login", data={"api_key": lending.lender.key}, follow_redirects=False)
    html = page.get(f"/lender/farmers/{lending.fid(0)}").text
    assert 'id="disclosure"' in html and 'id="schedule"' in html and "APR" in html


def _issued_escrow(lending: Lending) -> str:
    """A new escrow of `lender`: offered, accepted by a new farmer, issued."""
    offer_id = _offer(lending)
    issued_loan = lending.http.post(
        f"/lenders/offers/{offer_id}/loan", headers=lending.lender.headers
    )
    assert issued_loan.status_code == 201, issued_loan.text
    return issued_loan.json()["escrow"]


def _offer(lending: Lending, accepted: bool = True, fen: int = 100_000) -> str:
    """A new offer of `lender` to a new member farmer, accepted in its wallet unless not."""
    farmer, fid = _member_farmer(lending)
    http, headers = lending.http, lending.lender.headers
    url = f"/lenders/decisions/{lending.decision_for(fid).decision_id}/offers"
    offer = http.post(url, json={"budgets_fen": {"fertilizer": fen}}, headers=headers).json()
    if accepted:
        view = http.get(f"/farmers/me/offers/{offer['offer_id']}", headers=farmer.headers).json()
        m = view["typed_data"]["message"]
        body = {"nonce": m["nonce"], "deadline": m["deadline"],
                "signature": _sign(lending, farmer, view["typed_data"])}  # fmt: skip
        accept = f"/farmers/me/offers/{offer['offer_id']}/acceptance"
        assert http.post(accept, json=body, headers=farmer.headers).status_code == 200
    return offer["offer_id"]


def test_a_batch_issues_the_accepted_offers_and_lists_the_rest(lending):
    http, headers = lending.http, lending.lender.headers
    first, second = _offer(lending, fen=120_000), _offer(lending, fen=80_000)
    unsigned, unknown = _offer(lending, accepted=False), "f" * 32
    body = {"offer_ids": [first, unsigned, second, first, unknown]}
    out = http.post("/lenders/loans/batch", json=body, headers=headers)
    assert out.status_code == 200, out.text
    issued, refused = out.json()["issued"], out.json()["refused"]
    assert [(i["offer_id"], i["principal_fen"]) for i in issued] == [
        (first, 120_000),
        (second, 80_000),
    ]
    reasons = {r["offer_id"]: r["reason"] for r in refused}
    assert set(reasons) == {unsigned, unknown}  # the repeated id is issued once
    assert "not accepted" in reasons[unsigned] and "no loan offer" in reasons[unknown]
    desk = LoanDesk(lending.world.chain)
    for loan in issued:
        state = desk.state(loan["escrow"])
        assert state.funded_fen == loan["principal_fen"] and state.status.name == "ACTIVE"
        assert http.get(f"/lenders/offers/{loan['offer_id']}", headers=headers).json()["escrow"]
    assert _nothing_sent(lending)[1] == 0  # the approval of the sum was pulled to the last fen
    w3 = lending.world.chain.w3
    blocks = {w3.eth.get_transaction_receipt(i["transaction"])["blockNumber"] for i in issued}
    assert len(blocks) == 1  # anvil: the issues mined together, below the gas target
    # ... with the approval of their sum first in the same block (the lender's lowest nonce)
    mined = w3.eth.get_block(blocks.pop(), full_transactions=True)["transactions"]
    approvals = [t for t in mined if t["to"] == desk.token.address]
    assert len(approvals) == 1 and bytes(approvals[0]["input"])[:4].hex() == "095ea7b3"
    assert mined[0]["hash"] == approvals[0]["hash"] and len(mined) == 1 + len(issued)
    again = http.post("/lenders/loans/batch", json={"offer_ids": [first]}, headers=headers)
    assert again.json()["issued"] == [] and "already loan" in again.json()["refused"][0]["reason"]
    for bad in ({"offer_ids": []}, {"offer_ids": ["a" * 32] * 201}, {"offer_ids": [first], "x": 1},
                {"offer_ids": "nope"}):  # fmt: skip
        assert http.post("/lenders/loans/batch", json=bad, headers=headers).status_code == 422
    assert (
        http.post("/lenders/loans/batch", json=body, headers=lending.coop.headers).status_code
        == 403
    )


def test_access_log_times_are_recent(lending):
    log = credit_store(lending.world.app.state.engine).access_log()
    assert log and all(abs((datetime.now(UTC) - e.at).total_seconds()) < 600 for e in log)


def test_the_issue_all_button_confirms_then_issues_every_signed_offer(lending):
    import re

    offers = [_offer(lending, fen=60_000), _offer(lending, fen=70_000)]
    page = TestClient(lending.world.app)
    page.post("/login", data={"api_key": lending.lender.key}, follow_redirects=False)
    home = page.get("/lender").text
    assert 'id="waiting"' in home and "全部发放（2 笔）" in home and "¥" in home
    token = re.search(r'name="csrf" value="([^"]+)"', home).group(1)
    asked = page.post("/lender/offers/issue-all", data={"csrf": token}, follow_redirects=False)
    assert asked.status_code == 200 and "发放并注资 2 笔" in asked.text  # nothing sent yet
    store = OfferStore(lending.world.app.state.engine)  # type: ignore[attr-defined]
    assert all(store.get(o).escrow is None for o in offers)
    done = page.post("/lender/offers/issue-all", data={"csrf": token, "confirm": "yes"},
                     follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/lender?issued=2&refused=0"
    after = page.get(done.headers["location"]).text
    assert "已发放 2 笔" in after and 'id="waiting"' not in after
    assert all(store.get(o).escrow for o in offers)
    assert page.post("/lender/offers/issue-all", data={"csrf": "x"}).status_code == 403
    for query in ("issued=&refused=1", "issued=1&refused=", "serviced=refresh&done=&refused=2"):
        assert page.get(f"/lender?{query}").status_code == 200, query  # a hand-edited link
