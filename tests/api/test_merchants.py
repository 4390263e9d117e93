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
from lending.loans.contracts import DEV_REGISTRAR
from lending.loans.disbursement import LoanDesk, document_hash
from lending.loans.merchants import MerchantDesk
from tests._fixtures import needs_node
from tests.api.test_cooperatives import Org
from tests.api.test_lenders import Lending, lending  # noqa: F401

pytestmark = needs_node()

FARMER_WALLET = 5  # the demo's wallet of farmers 0 and 2


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
    farmer = chain.sender(FARMER_WALLET)
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
        immediate, lending.merchant.address, "fertilizer", 70_000, document_hash("FP-3"), farmer
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
    assert orders.immediate in shown.text
    lender = TestClient(lending.world.app)
    lender.post("/login", data={"api_key": lending.lender.key}, follow_redirects=False)
    assert lender.get("/merchant/payments").status_code == 403
