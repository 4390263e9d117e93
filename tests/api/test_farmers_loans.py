"""Farmer loan routes on SQLite and the session anvil (the `lending` world of test_lenders).

The farmer's journey through JSON: the offer with its reasons and limit, the APR calculator,
accept (signed server-side with the farmer organisation's key) or decline, the loan with its
budgets, payments, schedule and repayments, repaying from the wallet, and who read the profile.
Each route also: 401, 403 (wrong role, another farmer's offer or loan), 404, 409, 422.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from api.core.chain import org_sender
from api.core.models import Organisation, Role
from api.farmers.loans import fund_gas
from lending.credit.access import AccessOutcome, ProfileAccess
from lending.credit.store import CreditStore
from lending.loans.contracts import DEV_REGISTRAR
from lending.loans.disbursement import LoanDesk, document_hash
from lending.loans.merchants import MerchantDesk
from tests._fixtures import needs_node
from tests.api.test_cooperatives import Org
from tests.api.test_lenders import Lending, lending  # noqa: F401

pytestmark = needs_node()


def _farmer(lending: Lending) -> tuple[Org, str]:  # noqa: F811
    """A new farmer organisation and the member farmer whose wallet it is."""
    org = lending.world.org(Role.FARMER, f"farmer {time.time_ns()}")
    record = lending.world.farmer(lending.coop, farmer_org_id=org.id, name="周九")
    return org, record["farmer_id"]


def _offer(lending: Lending, fid: str, budgets: dict | None = None) -> str:  # noqa: F811
    """An offer of `lender` to farmer `fid`; returns its id."""
    url = f"/lenders/decisions/{lending.decision_for(fid).decision_id}/offers"
    body = {"budgets_fen": budgets or {"fertilizer": 300_000, "seedlings": 200_000}}
    made = lending.http.post(url, json=body, headers=lending.lender.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["offer_id"])


def test_offer_quote_accept_loan_repay(lending):  # noqa: F811
    http, chain = lending.http, lending.world.chain
    farmer, fid = _farmer(lending)
    offer_id = _offer(lending, fid)
    h = farmer.headers

    offers = http.get("/farmers/me/offer-details", headers=h)
    assert offers.status_code == 200, offers.text
    (shown,) = offers.json()
    assert shown["offer_id"] == offer_id and shown["status"] == "offered"
    assert shown["lender_name"] == "Enshi Rural Credit Union" and not shown["declined"]
    why = shown["explanation"]
    assert why["limit_fen"] >= shown["principal_fen"] and why["base_limit_fen"] > 0
    assert why["score"] > 0 and isinstance(why["reasons"], list) and why["outcome"] == "approve"

    quote_url = f"/farmers/me/offers/{offer_id}/quote"
    q = http.get(quote_url, params={"amount_fen": 200_000, "term_months": 6}, headers=h)
    assert q.status_code == 200, q.text
    quote = q.json()
    assert quote["amount_fen"] == 200_000 and quote["term_months"] == 6
    assert quote["total_repayment_fen"] > quote["amount_financed_fen"]
    assert sum(i["total_fen"] for i in quote["schedule"]) == quote["total_repayment_fen"]
    assert isinstance(quote["apr_pct"], str) and "." in quote["apr_pct"]  # a Decimal, not float
    longer = http.get(quote_url, params={"amount_fen": 200_000, "term_months": 12}, headers=h)
    assert longer.json()["finance_charge_fen"] > quote["finance_charge_fen"]
    over = http.get(quote_url, params={"amount_fen": why["limit_fen"] + 1, "term_months": 6},
                    headers=h)  # fmt: skip
    assert over.status_code == 422 and "limit" in str(over.json()["detail"])
    for bad in ({"amount_fen": 0, "term_months": 6}, {"amount_fen": 1, "term_months": 0},
                {"amount_fen": "x", "term_months": 6}, {"term_months": 6}):  # fmt: skip
        assert http.get(quote_url, params=bad, headers=h).status_code == 422, bad

    accepted = http.post(f"/farmers/me/offers/{offer_id}/accept", headers=h)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    issued = http.post(f"/lenders/offers/{offer_id}/loan", headers=lending.lender.headers)
    assert issued.status_code == 201, issued.text
    escrow = issued.json()["escrow"]
    again = http.post(f"/farmers/me/offers/{offer_id}/accept", headers=h)
    assert again.status_code == 409
    assert http.post(f"/farmers/me/offers/{offer_id}/decline", headers=h).status_code == 409

    # the farmer's wallet pays a merchant from the loan (the cooperative's ordering: its routes)
    expires = int(time.time()) + 365 * 86_400
    MerchantDesk(chain).approve(
        lending.merchant.address, "fertilizer", expires, chain.sender(DEV_REGISTRAR)
    )
    desk = LoanDesk(chain)
    invoice = document_hash("FP-farmer-1")
    with lending.world.session() as session:
        row = session.get(Organisation, farmer.id)
        borrower = org_sender(chain, lending.world.settings, row)
    fund_gas(chain, farmer.address, 400_000)
    desk.order_payment(escrow, lending.merchant.address, "fertilizer", 100_000, invoice, borrower)

    listed = http.get("/farmers/me/loans", headers=h)
    assert listed.status_code == 200 and listed.json()["total"] == 1
    assert listed.json()["items"][0]["escrow"] == escrow
    loan = http.get(f"/farmers/me/loans/{escrow}", headers=h).json()
    assert loan["status"] == "active" and loan["drawn_fen"] == 100_000
    assert loan["lender_name"] == "Enshi Rural Credit Union" and loan["offer_id"] == offer_id
    budgets = {b["category_name"]: b for b in loan["budgets"]}
    assert budgets["fertilizer"]["spent_fen"] == 100_000
    assert budgets["fertilizer"]["left_fen"] == 200_000 and budgets["seedlings"]["left_fen"]
    (order,) = loan["orders"]
    assert order["merchant_name"] == "Green Leaf Fertilizer" and order["status"] == "released"
    assert order["invoice_hash"] == "0x" + invoice.hex() and order["amount_fen"] == 100_000
    assert loan["schedule"] and loan["next_due"]["amount_fen"] > 0
    owed = loan["outstanding_fen"]
    assert owed == loan["amount_due_fen"] > 100_000

    # repay from the wallet: first more than the wallet holds, then part, then too much
    repay_url = f"/farmers/me/loans/{escrow}/repayments"
    poor = http.post(repay_url, json={"amount_fen": 1_000}, headers=h)
    assert poor.status_code == 409 and "wallet" in poor.json()["detail"]
    admin = chain.sender(0)
    admin.transact(desk.mint_call(farmer.address, owed))
    paid = http.post(repay_url, json={"amount_fen": 40_000}, headers=h)
    assert paid.status_code == 200, paid.text
    assert paid.json()["outstanding_fen"] == owed - 40_000
    assert desk.balance_of(farmer.address) == owed - 40_000  # read from the chain itself
    too_much = http.post(repay_url, json={"amount_fen": owed}, headers=h)
    assert too_much.status_code == 409
    after = http.get(f"/farmers/me/loans/{escrow}", headers=h).json()
    assert [r["amount_fen"] for r in after["repayments"]] == [40_000]
    assert after["repayments"][0]["payer"].lower() == farmer.address.lower()
    rest = http.post(repay_url, json={"amount_fen": owed - 40_000}, headers=h)
    assert rest.status_code == 200 and rest.json()["outstanding_fen"] == 0

    # another farmer sees none of it
    stranger, _ = _farmer(lending)
    sh = stranger.headers
    assert http.get(f"/farmers/me/loans/{escrow}", headers=sh).status_code == 403
    assert http.post(repay_url, json={"amount_fen": 1}, headers=sh).status_code == 403
    assert http.get(quote_url, params={"amount_fen": 1, "term_months": 6},
                    headers=sh).status_code == 403  # fmt: skip
    assert http.get("/farmers/me/loans", headers=sh).json()["total"] == 0


def test_decline_voids_a_given_signature(lending):  # noqa: F811
    http = lending.http
    farmer, fid = _farmer(lending)
    offer_id = _offer(lending, fid, {"fertilizer": 100_000})
    h = farmer.headers
    assert http.post(f"/farmers/me/offers/{offer_id}/accept", headers=h).status_code == 200
    nonce = LoanDesk(lending.world.chain).acceptance_nonce(bytes.fromhex(fid[2:]))
    declined = http.post(f"/farmers/me/offers/{offer_id}/decline", headers=h)
    assert declined.status_code == 200, declined.text
    body = declined.json()
    assert body["status"] == "declined" and body["declined"] and body["declined_at"]
    assert LoanDesk(lending.world.chain).acceptance_nonce(bytes.fromhex(fid[2:])) == nonce + 1
    # the lender can no longer turn it into a loan: the farmer's signature is void on chain
    issued = http.post(f"/lenders/offers/{offer_id}/loan", headers=lending.lender.headers)
    assert issued.status_code in (409, 422), issued.text
    assert http.post(f"/farmers/me/offers/{offer_id}/accept", headers=h).status_code == 409
    again = http.post(f"/farmers/me/offers/{offer_id}/decline", headers=h)
    assert again.status_code == 200 and again.json()["status"] == "declined"


def test_profile_reads_are_shown_to_the_farmer_only(lending):  # noqa: F811
    http = lending.http
    farmer, fid = _farmer(lending)
    store = CreditStore(lending.world.app.state.engine)  # type: ignore[attr-defined]
    for outcome in (AccessOutcome.READ, AccessOutcome.REFUSED_NO_CONSENT):
        store.record_access(
            ProfileAccess(
                farmer_id=fid,
                lender=lending.lender.address.lower(),
                purpose="profile_view",
                outcome=outcome,
                at=datetime.now(UTC),
            )
        )
    reads = http.get("/farmers/me/profile-reads", headers=farmer.headers)
    assert reads.status_code == 200, reads.text
    body = reads.json()
    assert body["total"] == 2
    assert [i["outcome"] for i in body["items"]] == ["refused_no_consent", "read"]
    assert body["items"][0]["lender_name"] == "Enshi Rural Credit Union"
    limited = http.get("/farmers/me/profile-reads?limit=1&offset=1", headers=farmer.headers)
    assert [i["outcome"] for i in limited.json()["items"]] == ["read"]
    stranger, _ = _farmer(lending)
    assert http.get("/farmers/me/profile-reads", headers=stranger.headers).json()["total"] == 0


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/farmers/me/offer-details"),
        ("get", "/farmers/me/loans"),
        ("get", "/farmers/me/profile-reads"),
        ("post", "/farmers/me/offers/" + "0" * 32 + "/accept"),
        ("post", "/farmers/me/offers/" + "0" * 32 + "/decline"),
        ("get", "/farmers/me/offers/" + "0" * 32 + "/detail"),
    ],
)
def test_routes_need_a_farmer(lending, method, path):  # noqa: F811
    http = lending.http
    assert getattr(http, method)(path).status_code == 401
    assert getattr(http, method)(path, headers=lending.coop.headers).status_code == 403


def test_unknown_offers_and_loans_are_404_and_bad_ids_422(lending):  # noqa: F811
    http = lending.http
    farmer, _ = _farmer(lending)
    h = farmer.headers
    unknown = "/farmers/me/offers/" + "0" * 32
    assert http.post(f"{unknown}/accept", headers=h).status_code == 404
    assert http.post(f"{unknown}/decline", headers=h).status_code == 404
    assert http.get(f"{unknown}/detail", headers=h).status_code == 404
    q = {"amount_fen": 1, "term_months": 6}
    assert http.get(f"{unknown}/quote", params=q, headers=h).status_code == 404
    nobody = "/farmers/me/loans/0x" + "12" * 20
    assert http.get(nobody, headers=h).status_code == 404
    assert http.get("/farmers/me/loans/0x12", headers=h).status_code == 422
    token = lending.world.chain.contract("PaymentToken").address
    assert http.get(f"/farmers/me/loans/{token}", headers=h).status_code == 404
    repay = f"{nobody}/repayments"
    for bad in ({}, {"amount_fen": 0}, {"amount_fen": "1"}, {"amount_fen": 2**88}):
        assert http.post(repay, json=bad, headers=h).status_code == 422, bad
    assert http.get("/farmers/me/loans?limit=0", headers=h).status_code == 422
