"""A cooperative as its members' agent, on SQLite and the session anvil (test_lenders' world).

Members' loans and what is due; payment orders one at a time and from a CSV (per-row errors,
idempotent by invoice); cancelling a reserved order; 401, 403 (wrong role, another
cooperative's member), 404 (no escrow, unknown order), 409 (the contract's reasons), 422.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from sqlmodel import select

from api.core.models import Farmer, Role
from lending.loans.contracts import DEV_REGISTRAR
from lending.loans.invoices import invoice_hash
from lending.loans.merchants import MerchantDesk
from tests._fixtures import needs_node
from tests.api.test_cooperatives import Org
from tests.api.test_lenders import Lending, _member_farmer, _sign, lending  # noqa: F401
from traceability.consent import ConsentService

pytestmark = needs_node()


@dataclass
class MemberLoan:
    """A member of the cooperative with a funded loan, its wallet kept by the service."""

    farmer: Org
    fid: str
    number: int
    escrow: str


def _provision(lending: Lending, org: Org) -> None:  # noqa: F811
    """Gas for a farmer's wallet (development chains): the service signs orders with it."""
    url = f"/admin/organisations/{org.id}/provision"
    assert lending.http.post(url, headers=lending.world.admin.headers).status_code == 200


def _member_loan(lending: Lending, confirmation: str, agent: bool) -> MemberLoan:  # noqa: F811
    """Offered by the lender (naming the cooperative as agent or not), accepted by the farmer's
    own signature, issued and funded."""
    http = lending.http
    farmer, fid = _member_farmer(lending)
    if confirmation == "merchant":  # the other wallet gets its gas from the service (dev)
        _provision(lending, farmer)
    decision_id = lending.decision_for(fid).decision_id
    body = {"budgets_fen": {"fertilizer": 300_000, "seedlings": 200_000},
            "confirmation": confirmation, "cooperative_agent": agent}  # fmt: skip
    made = http.post(f"/lenders/decisions/{decision_id}/offers", json=body,
                     headers=lending.lender.headers)  # fmt: skip
    assert made.status_code == 201, made.text
    offer_id = made.json()["offer_id"]
    view = http.get(f"/farmers/me/offers/{offer_id}", headers=farmer.headers).json()
    typed = view["typed_data"]
    signed = {"nonce": typed["message"]["nonce"], "deadline": typed["message"]["deadline"],
              "signature": _sign(lending, farmer, typed)}  # fmt: skip
    accepted = http.post(f"/farmers/me/offers/{offer_id}/acceptance", json=signed,
                         headers=farmer.headers)  # fmt: skip
    assert accepted.status_code == 200, accepted.text
    assert view["agent"] == (lending.coop.address if agent else None)
    issued = http.post(f"/lenders/offers/{offer_id}/loan", headers=lending.lender.headers)
    assert issued.status_code == 201, issued.text
    with lending.world.session() as session:
        row = session.exec(select(Farmer).where(Farmer.farmer_id == fid)).one()
    assert row.id is not None
    return MemberLoan(farmer, fid, row.id, issued.json()["escrow"])


@pytest.fixture(scope="module")
def agent(lending) -> tuple[MemberLoan, MemberLoan]:  # noqa: F811
    """Two member loans: one paid at order (Immediate) naming the cooperative as agent, one the
    merchant confirms naming no agent (the service signs with the member's kept wallet)."""
    registry = MerchantDesk(lending.world.chain)
    expires = int(time.time()) + 365 * 86_400
    registrar = lending.world.chain.sender(DEV_REGISTRAR)
    registry.approve(lending.merchant.address, "fertilizer", expires, registrar)
    return _member_loan(lending, "immediate", True), _member_loan(lending, "merchant", False)


def _order(lending: Lending, escrow: str, invoice: str, amount: int = 50_000,  # noqa: F811
           merchant: str | None = None, headers: dict | None = None):  # fmt: skip
    body = {"merchant": merchant or lending.merchant.name, "category": "fertilizer",
            "amount_fen": amount, "invoice": invoice}  # fmt: skip
    url = f"/cooperatives/loans/{escrow}/orders"
    return lending.http.post(url, json=body, headers=headers or lending.coop.headers)


def _balance(lending: Lending, address: str) -> int:  # noqa: F811
    token = lending.world.chain.contract("PaymentToken").functions
    return int(token.balanceOf(address).call())


def test_members_loans_and_what_is_due(lending, agent):  # noqa: F811
    http, coop = lending.http, lending.coop
    immediate, _ = agent
    listed = http.get("/cooperatives/loans", headers=coop.headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    mine = {loan["escrow"]: loan for loan in page["items"]}
    assert immediate.escrow in mine and page["total"] >= 2
    loan = mine[immediate.escrow]
    assert loan["member_number"] == immediate.number and loan["member_name"] == "周九"
    assert loan["status"] == "active" and loan["principal_fen"] == 500_000
    assert loan["total_due_fen"] > 500_000 and loan["outstanding_fen"] >= 0
    assert loan["agent_is_you"]  # the offer named the farmer's cooperative
    one = http.get("/cooperatives/loans?limit=1&offset=1", headers=coop.headers).json()
    assert len(one["items"]) == 1 and one["total"] == page["total"]
    detail = http.get(f"/cooperatives/loans/{immediate.escrow}", headers=coop.headers)
    assert detail.status_code == 200 and detail.json()["farmer_id"] == immediate.fid
    assert http.get("/cooperatives/loans").status_code == 401
    assert http.get("/cooperatives/loans", headers=lending.lender.headers).status_code == 403


def test_another_cooperatives_member_loan_is_refused(lending, agent):  # noqa: F811
    http = lending.http
    immediate, _ = agent
    other = lending.world.org(Role.COOPERATIVE, "Another Cooperative")
    url = f"/cooperatives/loans/{immediate.escrow}"
    assert http.get(url, headers=other.headers).status_code == 403
    refused = _order(lending, immediate.escrow, "FP-X-1", headers=other.headers)
    assert refused.status_code == 403
    assert immediate.escrow not in {
        loan["escrow"]
        for loan in http.get("/cooperatives/loans", headers=other.headers).json()["items"]
    }
    nowhere = "0x" + "12" * 20
    assert http.get(f"/cooperatives/loans/{nowhere}", headers=lending.coop.headers).status_code == (
        404
    )
    assert http.get("/cooperatives/loans/0x12", headers=lending.coop.headers).status_code == 422


def test_order_pays_the_merchant_once_per_invoice(lending, agent):  # noqa: F811
    immediate, _ = agent
    before = _balance(lending, lending.merchant.address)
    placed = _order(lending, immediate.escrow, "FP-2026-0101", 70_000)
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["created"] and body["paid"] and body["signed_as"] == "agent"
    assert body["order"]["merchant_name"] == lending.merchant.name, body
    assert body["order"]["category"] == "fertilizer" and body["order"]["status"] == "released"
    key = invoice_hash(lending.merchant.address, "FP-2026-0101")
    assert body["order"]["invoice_hash"] == "0x" + key.hex()
    assert _balance(lending, lending.merchant.address) == before + 70_000
    # the same invoice again (a retry, even with another amount): the same order, nothing paid
    again = _order(lending, immediate.escrow, " FP-2026-0101 ", 90_000)
    assert again.status_code == 200, again.text
    assert (
        not again.json()["created"]
        and again.json()["order"]["order_id"] == (body["order"]["order_id"])
    )
    assert _balance(lending, lending.merchant.address) == before + 70_000
    # the contract's refusals, with its reason
    over = _order(lending, immediate.escrow, "FP-2026-0102", 10**9)
    assert over.status_code == 409, over.text
    unapproved = _order(lending, immediate.escrow, "FP-2026-0103",
                        merchant=lending.coop.address)  # fmt: skip
    assert unapproved.status_code == 409, unapproved.text
    assert _order(lending, immediate.escrow, "FP-4", merchant="no such shop").status_code == 422
    assert _order(lending, immediate.escrow, "FP-4", amount=0).status_code == 422


def test_cancel_a_reserved_order(lending, agent):  # noqa: F811
    http, coop = lending.http, lending.coop
    _, two_sided = agent
    placed = _order(lending, two_sided.escrow, "FP-2026-0201", 40_000)
    assert placed.status_code == 201, placed.text
    assert not placed.json()["paid"] and placed.json()["order"]["status"] == "pending"
    assert placed.json()["signed_as"] == "farmer"  # no agent named: the member's kept wallet
    order_id = placed.json()["order"]["order_id"]
    url = f"/cooperatives/loans/{two_sided.escrow}/orders/{order_id}/cancel"
    other = lending.world.org(Role.COOPERATIVE, "Another Cooperative")
    assert http.post(url, headers=other.headers).status_code == 403
    cancelled = http.post(url, headers=coop.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    twice = http.post(url, headers=coop.headers)
    assert twice.status_code == 409, twice.text
    missing = f"/cooperatives/loans/{two_sided.escrow}/orders/999/cancel"
    assert http.post(missing, headers=coop.headers).status_code == 404


def test_order_file_rows_by_member_number_idempotent(lending, agent):  # noqa: F811
    http, coop = lending.http, lending.coop
    immediate, two_sided = agent
    before = _balance(lending, lending.merchant.address)
    name = lending.merchant.name
    text = (
        "member,merchant,category,amount_yuan,invoice\n"
        f"{immediate.number},{name},fertilizer,120.50,FP-CSV-1\n"
        f"{two_sided.fid},{lending.merchant.id},fertilizer,30,FP-CSV-2\n"
        f"999999,{name},fertilizer,10,FP-CSV-3\n"
        f"{immediate.number},{name},fertilizer,1.234,FP-CSV-4\n"
        f"{immediate.number},{name},fertilizer,999999,FP-CSV-5\n"
    )
    files = {"file": ("orders.csv", text.encode(), "text/csv")}
    sent = http.post("/cooperatives/orders/upload", files=files, headers=coop.headers)
    assert sent.status_code == 200, sent.text
    batch = sent.json()
    assert (batch["ordered"], batch["duplicates"], batch["errors"]) == (2, 0, 3), batch
    rows = {r["row"]: r for r in batch["rows"]}
    assert rows[2]["amount_fen"] == 12_050 and rows[2]["escrow"] == immediate.escrow
    assert rows[3]["escrow"] == two_sided.escrow
    assert "not a member" in rows[4]["reason"]
    assert "two decimals" in rows[5]["reason"]
    assert rows[6]["outcome"] == "error" and rows[6]["reason"]
    assert _balance(lending, lending.merchant.address) == before + 12_050  # row 3 is reserved
    again = http.post("/cooperatives/orders/upload", files=files, headers=coop.headers).json()
    assert (again["ordered"], again["duplicates"]) == (0, 2)
    assert _balance(lending, lending.merchant.address) == before + 12_050
    bad = {"file": ("orders.csv", b"member,amount\n1,2\n", "text/csv")}
    lacking = http.post("/cooperatives/orders/upload", files=bad, headers=coop.headers)
    assert lacking.status_code == 422 and "lacks columns" in lacking.text


def _left(lending: Lending, escrow: str, category: str) -> int:  # noqa: F811
    detail = lending.http.get(f"/cooperatives/loans/{escrow}", headers=lending.coop.headers)
    return next(b["left_fen"] for b in detail.json()["budgets"] if b["category"] == category)


def test_order_file_rows_are_checked_against_the_files_earlier_rows(lending, agent):  # noqa: F811
    http, coop = lending.http, lending.coop
    immediate, _ = agent
    left = _left(lending, immediate.escrow, "fertilizer")
    share = left // 2 + 100  # each row alone fits what is left; the two together do not
    yuan = f"{share // 100}.{share % 100:02d}"
    name = lending.merchant.name
    text = (
        "member,merchant,category,amount_yuan,invoice\n"
        f"{immediate.number},{name},fertilizer,{yuan},FP-TWO-1\n"
        f"{immediate.number},{name},fertilizer,1,FP-TWO-1\n"
        f"{immediate.number},{name},fertilizer,{yuan},FP-TWO-2\n"
        f"{immediate.number},{name},fertilizer,2,FP-TWO-3\n"
    )
    files = {"file": ("orders.csv", text.encode(), "text/csv")}
    batch = http.post("/cooperatives/orders/upload", files=files, headers=coop.headers).json()
    rows = {r["row"]: r for r in batch["rows"]}
    assert [rows[n]["outcome"] for n in (2, 3, 4, 5)] == ["ordered", "error", "error", "ordered"]
    assert "row 2 of this file orders the same invoice" in rows[3]["reason"]
    assert f"more than the {left} fen it has left" in rows[4]["reason"]
    assert rows[5]["order_id"] == rows[2]["order_id"] + 1  # sent back to back, in file order
    assert _left(lending, immediate.escrow, "fertilizer") == left - share - 200


def test_a_member_with_their_own_wallet_signs_an_offer_at_the_cooperative(lending):  # noqa: F811
    http, coop = lending.http, lending.coop
    wallet = Account.create()  # the member's wallet app: the service never sees this key
    record = lending.world.farmer(coop, name="吴十", wallet=wallet.address)
    fid = record["farmer_id"]
    decision_id = lending.decision_for(fid).decision_id
    body = {"budgets_fen": {"fertilizer": 200_000}}
    made = http.post(f"/lenders/decisions/{decision_id}/offers", json=body,
                     headers=lending.lender.headers)  # fmt: skip
    assert made.status_code == 201, made.text
    offer_id = made.json()["offer_id"]

    waiting = http.get("/cooperatives/offers?waiting=true", headers=coop.headers).json()
    mine = {o["offer_id"]: o for o in waiting["items"]}
    assert mine[offer_id]["member_name"] == "吴十" and mine[offer_id]["status"] == "offered"
    assert mine[offer_id]["lender_name"] == lending.lender.name and mine[offer_id]["agent_is_you"]
    view = http.get(f"/cooperatives/offers/{offer_id}", headers=coop.headers)
    assert view.status_code == 200, view.text
    typed = view.json()["typed_data"]
    assert typed["message"]["farmer"] == wallet.address
    signed = {"nonce": typed["message"]["nonce"], "deadline": typed["message"]["deadline"]}
    url = f"/cooperatives/offers/{offer_id}/acceptance"
    # a signature by anyone but the member's wallet (the clerk's, say) accepts nothing
    forged = Account.create().sign_message(encode_typed_data(full_message=typed))
    refused = http.post(url, json={**signed, "signature": "0x" + forged.signature.hex()},
                        headers=coop.headers)  # fmt: skip
    assert refused.status_code == 422 and "not by the farmer's wallet" in refused.text
    other = lending.world.org(Role.COOPERATIVE, "Another Cooperative")
    assert http.get(f"/cooperatives/offers/{offer_id}", headers=other.headers).status_code == 403
    own = wallet.sign_message(encode_typed_data(full_message=typed))
    body = {**signed, "signature": "0x" + own.signature.hex()}
    assert http.post(url, json=body, headers=other.headers).status_code == 403
    accepted = http.post(url, json=body, headers=coop.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    waiting = http.get("/cooperatives/offers?waiting=true", headers=coop.headers).json()
    assert offer_id not in {o["offer_id"] for o in waiting["items"]}
    issued = http.post(f"/lenders/offers/{offer_id}/loan", headers=lending.lender.headers)
    assert issued.status_code == 201, issued.text
    again = http.post(url, json=body, headers=coop.headers)
    assert again.status_code == 409
    assert http.get("/cooperatives/offers/" + "0" * 32, headers=coop.headers).status_code == 404
    assert http.get("/cooperatives/offers", headers=lending.lender.headers).status_code == 403


def test_a_member_with_their_own_wallet_consents_at_the_cooperative(lending):  # noqa: F811
    http, coop = lending.http, lending.coop
    wallet = Account.create()
    fid = lending.world.farmer(coop, name="彭桂英", wallet=wallet.address)["farmer_id"]
    url = f"/cooperatives/farmers/{fid}/consent-request"
    params = {"lender_org_id": lending.lender.id, "days": 90}
    asked = http.get(url, params=params, headers=coop.headers)
    assert asked.status_code == 200, asked.text
    request = asked.json()
    assert request["wallet"] == wallet.address and request["lender_name"] == lending.lender.name
    typed = request["typed_data"]
    signed = {"lender_org_id": lending.lender.id, "expires_at": request["expires_at"],
              "deadline": request["deadline"]}  # fmt: skip
    relay = f"/cooperatives/farmers/{fid}/consents"
    forged = Account.create().sign_message(encode_typed_data(full_message=typed))
    refused = http.post(relay, json={**signed, "signature": "0x" + forged.signature.hex()},
                        headers=coop.headers)  # fmt: skip
    assert refused.status_code == 409, refused.text  # checked by eth_call: nothing was sent
    consent = ConsentService(lending.world.chain)
    lender = lending.lender.address
    assert not consent.has_consent(bytes.fromhex(fid[2:]), lender)
    own = wallet.sign_message(encode_typed_data(full_message=typed))
    body = {**signed, "signature": "0x" + own.signature.hex()}
    other = lending.world.org(Role.COOPERATIVE, "Another Cooperative")
    assert http.post(relay, json=body, headers=other.headers).status_code == 403
    granted = http.post(relay, json=body, headers=coop.headers)
    assert granted.status_code == 201, granted.text
    assert granted.json()["expires_at"] == request["expires_at"]
    assert consent.expiry(bytes.fromhex(fid[2:]), lender) == request["expires_at"]
    again = http.post(relay, json=body, headers=coop.headers)
    assert again.status_code == 409  # the nonce is spent: a signature relays once
    nobody = {**params, "lender_org_id": coop.id}
    assert http.get(url, params=nobody, headers=coop.headers).status_code == 422
    bare = lending.world.farmer(coop, name="无钱包")["farmer_id"]
    assert http.get(f"/cooperatives/farmers/{bare}/consent-request", params=params,
                    headers=coop.headers).status_code == 409  # fmt: skip


def _signed_consent(lending: Lending, fid: str, wallet) -> dict:  # noqa: F811
    """A member's consent for the lender, asked for at the desk and signed by `wallet`."""
    url = f"/cooperatives/farmers/{fid}/consent-request"
    params = {"lender_org_id": lending.lender.id, "days": 90}
    request = lending.http.get(url, params=params, headers=lending.coop.headers).json()
    signed = wallet.sign_message(encode_typed_data(full_message=request["typed_data"]))
    return {"farmer_id": fid, "lender_org_id": lending.lender.id,
            "expires_at": request["expires_at"], "deadline": request["deadline"],
            "signature": "0x" + signed.signature.hex()}  # fmt: skip


def test_a_desk_relays_a_days_signed_consents_in_one_request(lending):  # noqa: F811
    """Each consent checked as the single relay checks it (refused ones send nothing and say
    why), the rest relayed back to back: on anvil, in one block."""
    http, coop, world = lending.http, lending.coop, lending.world
    wallets = [Account.create() for _ in range(4)]
    fids = [world.farmer(coop, name="批量", wallet=w.address)["farmer_id"] for w in wallets]
    other = world.org(Role.COOPERATIVE, "Batch Other Cooperative")
    stranger = Account.create()
    theirs = world.farmer(other, name="外社", wallet=stranger.address)["farmer_id"]
    items = [
        _signed_consent(lending, fids[0], wallets[0]),
        _signed_consent(lending, fids[1], Account.create()),  # not the member's wallet
        _signed_consent(lending, fids[2], wallets[2]),
        _signed_consent(lending, fids[0], wallets[0]),  # the same wallet's nonce again
        _signed_consent(lending, fids[3], wallets[3]),
        {**_signed_consent(lending, fids[3], wallets[3]), "farmer_id": theirs},
    ]
    url = "/cooperatives/consents/batch"
    before = world.chain.w3.eth.block_number
    out = http.post(url, json={"consents": items}, headers=coop.headers)
    assert out.status_code == 200, out.text
    granted, refused = out.json()["granted"], out.json()["refused"]
    assert [g["farmer_id"] for g in granted] == [fids[0], fids[2], fids[3]]
    reasons = {r["item"]: r["reason"] for r in refused}
    assert sorted(reasons) == [1, 3, 5]
    assert reasons[1].startswith("reverted with ConsentInvalidSignature")
    assert "item 0 of this batch" in reasons[3] and "member of another cooperative" in reasons[5]
    registry = ConsentService(world.chain)
    for i, fid in enumerate(fids):
        has = registry.has_consent(bytes.fromhex(fid[2:]), lending.lender.address)
        assert has == (i != 1), i
    blocks = {world.chain.w3.eth.get_transaction_receipt(g["transaction"])["blockNumber"]
              for g in granted}  # fmt: skip
    assert len(blocks) == 1 and blocks.pop() > before  # anvil: mined together
    mined = world.chain.w3.eth.block_number
    again = http.post(url, json={"consents": items[:1]}, headers=coop.headers).json()
    assert again["granted"] == [] and "ConsentInvalidSignature" in again["refused"][0]["reason"]
    assert world.chain.w3.eth.block_number == mined  # refused by eth_call: nothing sent
    for bad in ({"consents": []}, {"consents": items[:1] * 201}, {"consents": items, "x": 1},
                {"consents": [{**items[0], "farmer_id": "0x12"}]}):  # fmt: skip
        assert http.post(url, json=bad, headers=coop.headers).status_code == 422, bad
    as_lender = http.post(url, json={"consents": items}, headers=lending.lender.headers)
    assert as_lender.status_code == 403
