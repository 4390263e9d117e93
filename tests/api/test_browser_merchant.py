"""End to end in headless Chromium at 390 px: a shop takes a cooperative's order, confirms
delivery, declines another, and finds the payment among those received."""

from __future__ import annotations

import dataclasses
import time

from sqlmodel import Session

from api.core.chain import org_sender
from api.core.models import Organisation
from api.lenders.service import ensure_lender_role
from lending.loans.contracts import DEV_REGISTRAR
from lending.loans.disbursement import ConfirmationMode, LoanDesk
from lending.loans.invoices import invoice_hash
from lending.loans.merchants import MerchantDesk
from lending.loans.offers import OfferStore
from tests._fixtures import demo_wallet, needs_node
from tests.api.browser import browser_page, screenshot, serve
from tests.api.test_lenders import Lending, lending  # noqa: F401 - shared module fixture

pytestmark = needs_node()


def _organisation(lending: Lending, org_id: int) -> Organisation:  # noqa: F811
    """The stored organisation (for its signing key)."""
    with Session(lending.world.app.state.engine) as session:  # type: ignore[attr-defined]
        found = session.get(Organisation, org_id)
        assert found is not None
        return found


def _agent_loan(lending: Lending) -> str:  # noqa: F811
    """A merchant-confirmed loan to farmer 0 with the cooperative as its agent: offered through
    the API, the agent set in the terms the farmer's wallet signs, issued by the lender."""
    http, chain = lending.http, lending.world.chain
    url = f"/lenders/decisions/{lending.approved_decision(0)}/offers"
    body = {"budgets_fen": {"fertilizer": 400_000}, "confirmation": "merchant"}
    made = http.post(url, json=body, headers=lending.lender.headers)
    assert made.status_code == 201, made.text
    offer = OfferStore(lending.world.app.state.engine).get(made.json()["offer_id"])  # type: ignore[attr-defined]
    assert offer is not None
    terms = dataclasses.replace(
        offer.terms, agent=lending.coop.address, mode=ConfirmationMode.MERCHANT_CONFIRMS
    )
    desk = LoanDesk(chain)
    acceptance = desk.sign_acceptance(terms, demo_wallet(chain, lending.region.farmer_ids[0]))
    lender = _organisation(lending, lending.lender.id)
    ensure_lender_role(chain, lender, mint_fen=terms.principal_fen)
    sender = org_sender(chain, lending.world.settings, lender)
    desk.approve_factory(sender, terms.principal_fen)
    return desk.issue(terms, sender, acceptance).escrow


def test_shop_takes_confirms_and_declines_orders(lending):  # noqa: F811
    chain = lending.world.chain
    MerchantDesk(chain).approve(
        lending.merchant.address, "fertilizer", int(time.time()) + 200 * 86_400,
        chain.sender(DEV_REGISTRAR),
    )  # fmt: skip
    escrow = _agent_loan(lending)
    desk = LoanDesk(chain)
    coop = org_sender(chain, lending.world.settings, _organisation(lending, lending.coop.id))
    shop = lending.merchant.address
    loan = desk.state(escrow).loan_id
    first, second = invoice_hash(shop, "FP-2026-0001"), invoice_hash(shop, "FP-2026-0002")
    big = desk.order_payment(escrow, shop, "fertilizer", 120_000, first, coop)
    small = desk.order_payment(escrow, shop, "fertilizer", 30_000, second, coop)
    with serve(lending.world.app) as base, browser_page() as page:
        page.goto(base + "/merchant")
        page.wait_for_selector("#api_key")
        page.fill("#api_key", lending.merchant.key)
        page.click("#login")
        page.wait_for_selector("#waiting-count")
        assert page.url.endswith("/merchant")
        assert "Green Leaf Fertilizer" in page.inner_text("#logged-in")
        assert page.inner_text("#waiting-count") == "2"
        card = page.inner_text(f"#order-{loan}-{big.order_id}")
        assert "¥1,200.00" in card and "Yulu Cooperative" in card and "肥料 fertilizer" in card
        assert "待接单" in card and escrow not in page.inner_text("main")
        assert "有效" in page.inner_text("#approvals")
        screenshot(page, "merchant-home")

        page.click(f"#accept-{loan}-{big.order_id}")
        page.wait_for_selector("#yes")
        assert "确认接单" in page.inner_text("h1") and "¥1,200.00" in page.inner_text("#order")
        screenshot(page, "merchant-confirm-take")
        page.click("#yes")
        page.wait_for_selector("#done")
        assert "已接单" in page.inner_text("#done")
        assert "已接单，待送达" in page.inner_text(f"#order-{loan}-{big.order_id}")

        page.click(f"#confirm-{loan}-{big.order_id}")
        page.wait_for_selector("#yes")
        page.click("#yes")
        page.wait_for_selector("#done")
        assert "已确认送达" in page.inner_text("#done")
        assert "¥1,200.00" in page.inner_text("#payments")
        assert "Yulu Cooperative" in page.inner_text("#payments")

        page.click(f"#decline-{loan}-{small.order_id}")
        page.wait_for_selector("#yes")
        page.click("#back")  # changed their mind: nothing happens
        page.wait_for_selector("#waiting-count")
        assert page.inner_text("#waiting-count") == "1"
        page.click(f"#decline-{loan}-{small.order_id}")
        page.wait_for_selector("#yes")
        page.click("#yes")
        page.wait_for_selector("#done")
        assert page.inner_text("#waiting-count") == "0" and page.locator("#no-orders").is_visible()
        screenshot(page, "merchant-home-after")

        page.fill("#number", "FP-2026-0001")  # the shop matches its own invoice
        page.click("#find")
        page.wait_for_selector(f"#match-{loan}-{big.order_id}")
        assert "已付款" in page.inner_text(f"#match-{loan}-{big.order_id}")
        assert "¥1,200.00" in page.inner_text("#payments")
        screenshot(page, "merchant-invoice")
        page.goto(base + "/merchant/payments")
        page.wait_for_selector("#payments")
        shot = screenshot(page, "merchant-payments")
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(base + "/merchant")
        page.wait_for_selector("#waiting-count")
        screenshot(page, "merchant-home-desktop")
        page.click("#logout")
        page.wait_for_selector("#api_key")
    state = desk.state(escrow)
    assert state.paid_fen == 120_000 and state.reserved_fen == 0
    assert shot.stat().st_size > 10_000
