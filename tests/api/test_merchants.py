"""Merchant routes on SQLite and the session anvil (the `lending` world of test_lenders).

Payments received (by loan and category, with invoice hashes) and delivery confirmations of
two-sided loans: success, 401, 403 (wrong role, another merchant's order), 404 (escrow the
factory never issued, unknown order), 409 (not waiting for the merchant), 422.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from api.core.models import Role
from chain.client import ChainClient
from chain.config import ChainSettings
from chain.nodes import free_port
from lending.loans.contracts import DEV_REGISTRAR
from lending.loans.disbursement import LoanDesk, document_hash
from lending.loans.invoices import invoice_hash
from lending.loans.merchants import MerchantDesk
from tests._fixtures import needs_node
from tests.api.test_cooperatives import Org
from tests.api.test_lenders import Lending, lending  # noqa: F401

pytestmark = needs_node()



@dataclass
class Orders:
    """A merchant-confirmed loan with an order to each merchant, and an immediate loan."""

    two_sided: str
    mine: int
    theirs: int
    immediate: str
    paid_at_once: int
    invoice: str
    other: Org


def _loan(lending: Lending, farmer: int, confirmation: str) -> str:  # noqa: F811
    """Offered, accepted by the farmer's wallet, issued (Lending.demo_loan)."""
    budgets = {"fertilizer": 400_000, "seedlings": 100_000}
    return lending.demo_loan(farmer, budgets, confirmation)


@pytest.fixture(scope="module")
def orders(lending) -> Orders:  # noqa: F811
    chain = lending.world.chain
    other = lending.world.org(Role.MERCHANT, "Hubei Seedling Nursery")
    registry = MerchantDesk(chain)
    registrar = chain.sender(DEV_REGISTRAR)
    expires = int(time.time()) + 365 * 86_400
    for merchant in (lending.merchant, other):
        registry.approve(merchant.address, "fertilizer", expires, registrar)
    desk = LoanDesk(chain)
    farmer = lending.wallet(0)
    two_sided = _loan(lending, 0, "merchant")
    invoice = document_hash({"invoice": "FP-2026-0001", "items": "compound fertilizer 15-15-15"})
    mine = desk.order_payment(
        two_sided, lending.merchant.address, "fertilizer", 150_000, invoice, farmer
    )
    theirs = desk.order_payment(
        two_sided, other.address, "fertilizer", 50_000, document_hash("FP-2"), farmer
    )
    assert not mine.paid and not theirs.paid
    immediate = _loan(lending, 2, "immediate")
    paid = desk.order_payment(
        immediate, lending.merchant.address, "fertilizer", 70_000, document_hash("FP-3"),
        lending.wallet(2),
    )
    assert paid.paid
    return Orders(two_sided, mine.order_id, theirs.order_id, immediate, paid.order_id,
                  "0x" + invoice.hex(), other)  # fmt: skip


def test_confirm_delivery_releases_the_payment(lending, orders):  # noqa: F811
    http = lending.http
    url = f"/merchants/payments/{orders.two_sided}/{orders.mine}/confirm"
    assert http.post(url).status_code == 401
    assert http.post(url, headers=lending.lender.headers).status_code == 403
    assert http.post(url, headers=orders.other.headers).status_code == 403  # not their order
    confirmed = http.post(url, headers=lending.merchant.headers)
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["order_id"] == orders.mine and body["amount_fen"] == 150_000
    assert body["invoice_hash"] == orders.invoice and body["transaction"].startswith("0x")
    state = http.get(f"/lenders/loans/{orders.two_sided}", headers=lending.lender.headers).json()
    assert state["paid_fen"] == 150_000 and state["reserved_fen"] == 50_000
    twice = http.post(url, headers=lending.merchant.headers)
    assert twice.status_code == 409 and "released" in twice.json()["detail"]


def test_confirm_refuses_unknown_or_unsuitable_orders(lending, orders):  # noqa: F811
    http, headers = lending.http, lending.merchant.headers
    unknown_order = f"/merchants/payments/{orders.two_sided}/99/confirm"
    assert http.post(unknown_order, headers=headers).status_code == 404
    nobody = f"/merchants/payments/0x{'12' * 20}/1/confirm"
    assert http.post(nobody, headers=headers).status_code == 404
    token = lending.world.chain.contract("PaymentToken").address
    assert http.post(f"/merchants/payments/{token}/1/confirm", headers=headers).status_code == 404
    immediate = f"/merchants/payments/{orders.immediate}/{orders.paid_at_once}/confirm"
    assert http.post(immediate, headers=headers).status_code == 409
    assert (
        http.post(f"/merchants/payments/{orders.two_sided}/0/confirm", headers=headers).status_code
        == 422
    )
    assert http.post("/merchants/payments/0x12/1/confirm", headers=headers).status_code == 422
    assert (
        http.post(f"/merchants/payments/{orders.two_sided}/x/confirm", headers=headers).status_code
        == 422
    )


def test_payments_received_by_loan_and_category(lending, orders):  # noqa: F811
    http = lending.http
    # released payments only: the confirmed two-sided order (if confirmed) and the immediate one
    http.post(f"/merchants/payments/{orders.two_sided}/{orders.mine}/confirm",
              headers=lending.merchant.headers)  # fmt: skip
    listed = http.get("/merchants/payments", headers=lending.merchant.headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["total"] == 2
    by_escrow = {g["escrow"]: g for g in page["items"]}
    two_sided = by_escrow[orders.two_sided]
    assert two_sided["category_name"] == "fertilizer" and two_sided["total_fen"] == 150_000
    assert two_sided["invoice_hashes"] == [orders.invoice] and len(two_sided["transactions"]) == 1
    assert by_escrow[orders.immediate]["total_fen"] == 70_000
    assert [g["loan_id"] for g in page["items"]] == sorted(g["loan_id"] for g in page["items"])
    second = http.get("/merchants/payments?limit=1&offset=1", headers=lending.merchant.headers)
    assert second.json()["total"] == 2 and second.json()["items"] == page["items"][1:]
    theirs = http.get("/merchants/payments", headers=orders.other.headers).json()
    assert theirs["total"] == 0  # their order is still reserved, not paid
    assert http.get("/merchants/payments").status_code == 401
    assert http.get("/merchants/payments", headers=lending.lender.headers).status_code == 403
    assert (
        http.get("/merchants/payments?offset=-1", headers=lending.merchant.headers).status_code
        == 422
    )


def test_payments_page(lending, orders):  # noqa: F811
    page = TestClient(lending.world.app)
    assert page.get("/merchant/payments", follow_redirects=False).status_code == 303
    page.post("/login", data={"api_key": lending.merchant.key}, follow_redirects=False)
    shown = page.get("/merchant/payments")
    assert shown.status_code == 200 and 'id="payments"' in shown.text
    assert "¥700.00" in shown.text and "肥料 fertilizer" in shown.text
    assert orders.immediate not in shown.text  # no walls of addresses
    lender = TestClient(lending.world.app)
    lender.post("/login", data={"api_key": lending.lender.key}, follow_redirects=False)
    assert lender.get("/merchant/payments").status_code == 403
    assert lender.get("/merchant").status_code == 403


@dataclass
class Taken:
    """Two more orders to `lending.merchant` on the two-sided loan: one to take, one to decline."""

    take: int
    refuse: int


@pytest.fixture(scope="module")
def taken(lending, orders) -> Taken:  # noqa: F811
    desk, farmer = LoanDesk(lending.world.chain), lending.wallet(0)
    merchant = lending.merchant.address
    take = desk.order_payment(
        orders.two_sided, merchant, "fertilizer", 60_000, document_hash("FP-4"), farmer
    )
    refuse = desk.order_payment(
        orders.two_sided, merchant, "fertilizer", 40_000, document_hash("FP-5"), farmer
    )
    return Taken(take.order_id, refuse.order_id)


def test_orders_waiting_for_the_merchant(lending, orders, taken):  # noqa: F811
    http, headers = lending.http, lending.merchant.headers
    listed = http.get("/merchants/orders", headers=headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    ids = [(o["escrow"], o["order_id"]) for o in page["items"]]
    assert (orders.two_sided, taken.take) in ids and (orders.two_sided, taken.refuse) in ids
    assert all(o["status"] in ("pending", "accepted") for o in page["items"])
    first = next(o for o in page["items"] if o["order_id"] == taken.refuse)
    assert first["amount_fen"] == 40_000 and first["category_name"] == "fertilizer"
    assert first["farmer"] == lending.fid(0) and first["mode"] == "merchant_confirms"
    assert first["ordered_at"] > 1_700_000_000
    assert ids == sorted(ids, key=lambda i: -i[1])  # newest first within one loan
    theirs = http.get("/merchants/orders?status=all", headers=orders.other.headers).json()
    assert [o["order_id"] for o in theirs["items"]] == [orders.theirs]  # only their own
    assert http.get("/merchants/orders").status_code == 401
    assert http.get("/merchants/orders", headers=lending.lender.headers).status_code == 403
    assert http.get("/merchants/orders?status=nope", headers=headers).status_code == 422
    one = http.get("/merchants/orders?limit=1", headers=headers).json()
    assert one["total"] == page["total"] and len(one["items"]) == 1


def test_take_then_confirm_delivery(lending, orders, taken):  # noqa: F811
    http, headers = lending.http, lending.merchant.headers
    base = f"/merchants/orders/{orders.two_sided}/{taken.take}"
    assert http.post(f"{base}/accept", headers=orders.other.headers).status_code == 403
    assert http.post(f"{base}/accept", headers=lending.lender.headers).status_code == 403
    took = http.post(f"{base}/accept", headers=headers)
    assert took.status_code == 200, took.text
    assert took.json()["status"] == "accepted" and took.json()["amount_fen"] == 60_000
    again = http.post(f"{base}/accept", headers=headers)
    assert again.status_code == 409 and "accepted" in again.json()["detail"]
    accepted = http.get("/merchants/orders?status=accepted", headers=headers).json()
    assert [o["order_id"] for o in accepted["items"]] == [taken.take]
    done = http.post(f"{base}/confirm", headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "released"
    assert http.post(f"{base}/confirm", headers=headers).status_code == 409
    received = http.get("/merchants/received", headers=headers).json()
    mine = [p for p in received["items"] if p["order_id"] == taken.take]
    assert len(mine) == 1 and mine[0]["amount_fen"] == 60_000 and mine[0]["paid_at"] > 0
    assert mine[0]["farmer"] == lending.fid(0)


def test_decline_returns_the_amount(lending, orders, taken):  # noqa: F811
    http, headers = lending.http, lending.merchant.headers
    base = f"/merchants/orders/{orders.two_sided}/{taken.refuse}"
    before = http.get(f"/lenders/loans/{orders.two_sided}", headers=lending.lender.headers).json()
    assert http.post(f"{base}/decline", headers=orders.other.headers).status_code == 403
    refused = http.post(f"{base}/decline", headers=headers)
    assert refused.status_code == 200, refused.text
    assert refused.json()["status"] == "cancelled"
    after = http.get(f"/lenders/loans/{orders.two_sided}", headers=lending.lender.headers).json()
    assert after["reserved_fen"] == before["reserved_fen"] - 40_000
    assert http.post(f"{base}/decline", headers=headers).status_code == 409
    assert http.post(f"{base}/accept", headers=headers).status_code == 409
    unknown = f"/merchants/orders/{orders.two_sided}/999/decline"
    assert http.post(unknown, headers=headers).status_code == 404
    immediate = f"/merchants/orders/{orders.immediate}/{orders.paid_at_once}/accept"
    assert http.post(immediate, headers=headers).status_code == 409


def test_approvals_per_category(lending, orders):  # noqa: F811
    http = lending.http
    listed = http.get("/merchants/approvals", headers=orders.other.headers)
    assert listed.status_code == 200, listed.text
    by_name = {a["category_name"]: a for a in listed.json()}
    assert by_name["fertilizer"]["approved"] and by_name["fertilizer"]["expires_at"] > time.time()
    assert not by_name["seedlings"]["approved"] and by_name["seedlings"]["expires_at"] is None
    assert http.get("/merchants/approvals", headers=lending.lender.headers).status_code == 403


def test_home_and_confirmation_pages(lending, orders):  # noqa: F811
    desk, farmer = LoanDesk(lending.world.chain), lending.wallet(0)
    placed = desk.order_payment(
        orders.two_sided, lending.merchant.address, "fertilizer", 10_000,
        document_hash("FP-page"), farmer,
    )  # fmt: skip
    page = TestClient(lending.world.app)
    assert page.get("/merchant", follow_redirects=False).status_code == 303
    login = page.post("/login", data={"api_key": lending.merchant.key}, follow_redirects=False)
    assert login.headers["location"] == "/merchant"
    home = page.get("/merchant")
    assert home.status_code == 200 and "¥100.00" in home.text and 'id="approvals"' in home.text
    take = f"/merchant/orders/{orders.two_sided}/{placed.order_id}/accept"
    assert f'href="{take}"' in home.text
    asked = page.get(take)
    assert asked.status_code == 200 and "确认接单" in asked.text and 'name="csrf"' in asked.text
    csrf = asked.text.split('name="csrf" value="')[1].split('"')[0]
    assert page.post(take, data={"csrf": "x" * 64}).status_code == 403
    assert desk.order(orders.two_sided, placed.order_id).status.name == "PENDING"
    done = page.post(take, data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/merchant?done=accept"
    assert desk.order(orders.two_sided, placed.order_id).status.name == "ACCEPTED"
    again = page.post(take, data={"csrf": csrf})
    assert again.status_code == 409 and 'id="error"' in again.text
    decline = f"/merchant/orders/{orders.two_sided}/{placed.order_id}/decline"
    assert page.post(decline, data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert desk.order(orders.two_sided, placed.order_id).status.name == "CANCELLED"
    theirs = f"/merchant/orders/{orders.two_sided}/{orders.theirs}/decline"
    assert page.get(theirs).status_code == 403
    assert page.post(theirs, data={"csrf": csrf}).status_code == 403


def test_find_an_invoice_by_its_number(lending, orders):  # noqa: F811
    desk, farmer = LoanDesk(lending.world.chain), lending.wallet(0)
    shop = lending.merchant.address
    key = invoice_hash(shop, "FP-2026-0100")
    placed = desk.order_payment(orders.two_sided, shop, "fertilizer", 5_000, key, farmer)
    http, headers = lending.http, lending.merchant.headers
    found = http.get("/merchants/invoices?number= FP-2026-0100 ", headers=headers)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["number"] == "FP-2026-0100" and body["invoice_hash"] == "0x" + key.hex()
    assert [o["order_id"] for o in body["orders"]] == [placed.order_id] and body["payments"] == []
    confirm = f"/merchants/orders/{orders.two_sided}/{placed.order_id}/confirm"
    assert http.post(confirm, headers=headers).status_code == 200
    paid = http.get("/merchants/invoices?number=FP-2026-0100", headers=headers).json()
    assert [p["amount_fen"] for p in paid["payments"]] == [5_000]
    assert paid["payments"][0]["invoice_number"] == "FP-2026-0100"
    assert paid["orders"][0]["status"] == "released"
    # another shop's number FP-2026-0100 is another invoice: nothing of ours
    theirs = http.get("/merchants/invoices?number=FP-2026-0100", headers=orders.other.headers)
    assert theirs.json()["orders"] == [] and theirs.json()["payments"] == []
    assert http.get("/merchants/invoices?number=", headers=headers).status_code == 422
    assert http.get("/merchants/invoices?number=%00x", headers=headers).status_code == 422
    assert http.get("/merchants/invoices?number=x").status_code == 401


def test_invoice_page(lending, orders):  # noqa: F811
    page = TestClient(lending.world.app)
    page.post("/login", data={"api_key": lending.merchant.key}, follow_redirects=False)
    home = page.get("/merchant")
    assert 'id="invoice-search"' in home.text and "days left" in home.text
    found = page.get("/merchant/invoices?number=FP-2026-0100")
    assert found.status_code == 200 and "¥50.00" in found.text and "已付款" in found.text
    assert "发票 invoice FP-2026-0100" in found.text
    none = page.get("/merchant/invoices?number=NOPE-1")
    assert none.status_code == 200 and 'id="no-match"' in none.text
    assert page.get("/merchant/invoices?number=").status_code == 422


def test_node_down_is_503(lending, orders):  # noqa: F811
    dead = ChainSettings(backend="rpc", rpc_url=f"http://127.0.0.1:{free_port()}")
    app, headers = lending.world.app, lending.merchant.headers
    app.state.chain = ChainClient(dead)  # type: ignore[attr-defined]
    try:
        for url in ("/merchants/orders", "/merchants/received", "/merchants/approvals"):
            assert lending.http.get(url, headers=headers).status_code == 503, url
        act = f"/merchants/orders/{orders.two_sided}/{orders.theirs}/decline"
        assert lending.http.post(act, headers=headers).status_code == 503
    finally:
        app.state.chain = lending.world.chain  # type: ignore[attr-defined]


def test_a_revert_is_409_with_the_contracts_reason(lending, orders):  # noqa: F811
    # the other shop's approval is revoked after the order: the escrow refuses to pay it
    chain = lending.world.chain
    MerchantDesk(chain).revoke(orders.other.address, "fertilizer", chain.sender(DEV_REGISTRAR))
    url = f"/merchants/orders/{orders.two_sided}/{orders.theirs}/confirm"
    refused = lending.http.post(url, headers=orders.other.headers)
    assert refused.status_code == 409, refused.text
    assert "EscrowMerchantNotApproved" in refused.text
    approvals = lending.http.get("/merchants/approvals", headers=orders.other.headers).json()
    fertilizer = next(a for a in approvals if a["category_name"] == "fertilizer")
    assert fertilizer["revoked"] and not fertilizer["approved"]
    # declining still works: the amount goes back to the loan
    declined = lending.http.post(url.replace("/confirm", "/decline"), headers=orders.other.headers)
    assert declined.status_code == 200, declined.text


def test_home_pages_through_the_orders(lending, orders, taken):  # noqa: F811
    page = TestClient(lending.world.app)
    page.post("/login", data={"api_key": lending.merchant.key}, follow_redirects=False)
    assert page.get("/merchant?offset=-1").status_code == 422
    past = page.get("/merchant?offset=1000")
    assert past.status_code == 200 and 'id="no-orders"' in past.text and "newer" in past.text
