"""End to end in headless Chromium at phone width: a loan officer logs in, offers a consenting
farmer a loan from an approved decision, issues it once the farmer signed, services it, and
finds it in the portfolio and the disbursement report."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chain.nodes import ProcessNode
from lending.loans.disbursement import LoanDesk
from lending.loans.offers import OfferStore
from tests._fixtures import demo_wallet, needs_node, start_node
from tests.api.browser import browser_page, screenshot, serve
from tests.api.test_lenders import Lending, lending  # noqa: F401

pytestmark = needs_node()


@pytest.fixture(scope="module")
def anvil_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessNode]:
    """This module's own anvil (its demo farmer 0 takes a loan nobody else expects)."""
    node = start_node("anvil", tmp_path_factory.mktemp("anvil-browser-lender"))
    yield node
    node.stop()


def _farmer_signs(lending: Lending) -> None:  # noqa: F811
    """Demo farmer 0's wallet signs the open offer (what the farmer's app does)."""
    store = OfferStore(lending.world.app.state.engine)  # type: ignore[attr-defined]
    (offer,) = [o for o in store.for_farmer(lending.fid(0)) if o.status == "offered"]
    chain = lending.world.chain
    signed = LoanDesk(chain).sign_acceptance(
        offer.terms, demo_wallet(chain, lending.region.farmer_ids[0])
    )
    store.record_acceptance(offer.offer_id, signed)


def test_loan_officer_offers_issues_and_services_a_loan(lending):  # noqa: F811
    lending.approved_decision(0)  # scored on a strong profile (the demo's is too old to score)
    fid = lending.fid(0)
    with serve(lending.world.app) as base, browser_page() as page:
        page.goto(base + "/lender")
        page.wait_for_selector("#api_key")
        page.fill("#api_key", lending.lender.key)
        page.click("#login")
        page.wait_for_selector("#portfolio")
        assert page.url.endswith("/lender")
        assert "Enshi Rural Credit Union" in page.inner_text("#logged-in")
        assert page.locator("#no-loans").is_visible()
        screenshot(page, "lender-home-empty")

        page.click(f"#consenting a[href='/lender/farmers/{fid}']")
        page.wait_for_selector("#offer-form")
        assert "农户 0x" in page.inner_text("#farmer-name")  # no registry name: short pseudonym
        assert page.locator("#no-active-loan").is_visible()
        screenshot(page, "lender-farmer-profile")
        page.fill("input[name='budget:fertilizer']", "3000")
        page.fill("input[name='budget:seedlings']", "1000.50")
        page.select_option("#confirmation", "immediate")
        page.click("#make-offer")
        page.wait_for_selector("#confirm")
        assert "¥4,000.50" in page.inner_text("#confirm-what")
        screenshot(page, "lender-confirm-offer")
        page.click("#confirm")
        page.wait_for_selector("#offers")
        assert "待农户确认" in page.inner_text("#offers")

        _farmer_signs(lending)
        page.goto(base + "/lender")  # the desk lists what waits to be issued, by name
        assert "全部发放（1 笔）" in page.inner_text("#waiting")
        screenshot(page, "lender-home-waiting")
        page.set_viewport_size({"width": 1280, "height": 900})
        screenshot(page, "lender-home-waiting-desktop")
        page.set_viewport_size({"width": 390, "height": 900})
        page.go_back()
        page.reload()
        assert "农户已签署" in page.inner_text("#offers")
        page.click("#offers button.issue")
        page.wait_for_selector("#confirm")
        assert "¥4,000.50" in page.inner_text("#confirm-what")
        page.click("#confirm")
        page.wait_for_selector("#servicing")
        assert "/lender/loans/0x" in page.url
        assert "正常" in page.inner_text("#loan-status")
        screenshot(page, "lender-loan")

        page.click("#action-refresh")
        page.wait_for_selector("#confirm")
        page.click("#confirm")
        page.wait_for_selector("#done")
        page.click("#action-return-unspent")
        page.wait_for_selector("#confirm")
        page.click("#confirm")
        page.wait_for_selector("#error")  # the draw window is still open: the contract says no
        assert "提款期到" in page.inner_text("#error")  # said for people, with the date
        assert "EscrowDrawWindowOpen" in page.inner_text("#error")  # and the contract's name
        screenshot(page, "lender-refused-action")

        page.goto(base + "/lender?status=active")
        row = page.locator("#loans tr[data-escrow]")
        assert row.count() == 1 and "¥4,000.50" in row.first.inner_text()
        screenshot(page, "lender-home-portfolio")
        page.goto(base + "/lender/disbursements")
        assert page.locator("#no-disbursements").is_visible()
        screenshot(page, "lender-disbursements")

        page.set_viewport_size({"width": 1280, "height": 900})  # the office's desktop
        page.goto(base + "/lender")
        assert page.locator("#loans thead").is_visible()  # a table with headings, not cards
        screenshot(page, "lender-home-desktop")
        page.goto(base + "/lender?status=open")
        page.click("#loans tr[data-escrow] a")
        page.wait_for_selector("#servicing")
        screenshot(page, "lender-loan-desktop")

        # After the draw window the desk proposes returning what was not spent, for all at once.
        page.set_viewport_size({"width": 390, "height": 900})
        escrow = page.url.rsplit("/", 1)[-1]
        deadline = LoanDesk(lending.world.chain).state(escrow).draw_deadline
        w3 = lending.world.chain.w3
        now = int(w3.eth.get_block("latest")["timestamp"])
        for method, params in (("evm_increaseTime", [deadline - now + 60]), ("evm_mine", [])):
            assert "error" not in w3.provider.make_request(method, params)  # type: ignore[arg-type]
        page.goto(base + "/lender")
        assert "退回未用资金（1 笔）" in page.inner_text("#due")
        screenshot(page, "lender-home-due")
        page.set_viewport_size({"width": 1280, "height": 900})
        screenshot(page, "lender-home-due-desktop")
        page.set_viewport_size({"width": 390, "height": 900})
        page.click("#service-return-unspent")
        page.wait_for_selector("#confirm")
        assert "贷款 #" in page.inner_text("#confirm-what")
        assert "农户 0x" in page.inner_text("#confirm-what")  # no registry name: short pseudonym
        screenshot(page, "lender-confirm-servicing")
        page.click("#confirm")
        page.wait_for_selector("#service-outcome")
        assert "已处理 1 笔" in page.inner_text("#service-outcome")
        assert page.locator("#due").count() == 0
        screenshot(page, "lender-home-serviced")
