"""End to end in headless Chromium at phone width: a regulator logs in, scans, opens the
cash-out alert, sees the money's path drawn, and dismisses it with a reason through the form.
No chain is needed: the indexed rows are written as the indexer writes them."""

from __future__ import annotations

from sqlmodel import Session

from api.core.models import OrganisationCreate, Role
from api.core.organisations import create_organisation
from api.main import create_app
from risk.alerts import record_findings
from tests.api.browser import PHONE_WIDTH, browser_page, screenshot, serve
from tests.api.conftest import PASSWORD
from tests.api.test_regulator import _finding, index_cash_out


def _org(app, settings, role: Role, name: str) -> tuple[str, bytes]:
    """An organisation: its API key and chain address."""
    with Session(app.state.engine) as session:
        org, key = create_organisation(
            session, OrganisationCreate(name=name, role=role), settings.keystore_dir, PASSWORD
        )
    return key.secret, bytes.fromhex(org.chain_address[2:])


def test_regulator_reviews_a_cash_out_in_the_browser(api_settings):
    app = create_app(api_settings)
    key, _ = _org(app, api_settings, Role.REGULATOR, "恩施金融监管分局")
    _, lender = _org(app, api_settings, Role.LENDER, "Enshi Rural Credit Union")
    _, merchant = _org(app, api_settings, Role.MERCHANT, "Green Leaf Fertilizer")
    index_cash_out(app.state.engine, lender, merchant)
    circle = _finding("browser:circle", rule="round_trip", severity="low")
    record_findings(app.state.engine, [circle])
    with serve(app) as base, browser_page() as page:
        page.goto(base + "/reg")
        page.wait_for_selector("#api_key")
        page.fill("#api_key", key)
        page.click("#login")
        page.wait_for_selector("#scan-now")
        assert page.url.endswith("/reg")
        assert "恩施金融监管分局" in page.inner_text("#logged-in")
        assert "风险总览" in page.inner_text("#nav")
        page.click("#scan-now")
        page.wait_for_selector("#scanned")
        assert "新预警 1 条" in page.inner_text("#scanned")
        assert page.inner_text("#count-open") == "2"
        screenshot(page, "regulator-home")

        page.click("#nav a[href='/reg/alerts']")
        page.wait_for_selector("#alerts")
        page.select_option("#rule-filter", "cash_out")
        page.click("#filter")
        page.wait_for_selector("#alerts .item")
        assert page.locator("#alerts .item").count() == 1
        assert "待处理 open" in page.inner_text("#alerts")
        screenshot(page, "regulator-alerts")

        page.click("#alerts .item h3 a")
        page.wait_for_selector("#money-graph")
        graph = page.locator("#money-graph")
        assert graph.is_visible()
        assert page.locator("#money-graph g.edge").count() == 3
        assert page.locator("#money-graph g.node").count() == 4
        assert "Green Leaf Fertilizer" in page.inner_text("#graph")
        assert "¥3,000.00" in page.inner_text("#graph")
        assert "Green Leaf Fertilizer" in page.inner_text("#evidence")  # names, not hex
        assert "茶农 farmer 0xfafafafa" in page.inner_text("#evidence")  # a pseudonym only
        box = graph.bounding_box()
        assert box is not None and box["width"] <= 390
        screenshot(page, "regulator-alert")

        page.click("#step-dismissed")  # no reason: refused, said on the page
        page.wait_for_selector("#error")
        assert "reason" in page.inner_text("#error")
        assert "待处理" in page.inner_text("#alert-status")
        page.fill("#reason", "发票与送货单一致 · invoice and delivery note agree")
        page.click("#step-dismissed")
        page.wait_for_selector("#done")
        assert "已排除 dismissed" in page.inner_text("#alert-status")
        assert "发票与送货单一致" in page.inner_text("#trail")
        assert page.locator("#step-reviewed").is_visible()  # reopen
        screenshot(page, "regulator-alert-dismissed")

        page.click("#evidence a:has-text('Green Leaf Fertilizer')")  # follow the merchant's money
        page.wait_for_selector("#flows")
        assert "Green Leaf Fertilizer" in page.inner_text("#wallet-name")
        assert "商户 merchant" in page.inner_text("#wallet-kind")
        assert page.locator("#flows tr.flow-in").count() >= 1
        assert page.locator("#flows tr.flow-out").count() >= 1
        screenshot(page, "regulator-wallet")
        page.set_viewport_size({"width": 1280, "height": 900})
        screenshot(page, "regulator-wallet-desktop")
        page.set_viewport_size({"width": PHONE_WIDTH, "height": 900})
        page.go_back()

        page.goto(base + "/reg/alerts?rule=round_trip")
        page.click("#alerts .item h3 a")  # money that went round in a circle
        page.wait_for_selector("#money-graph")
        assert page.locator("#money-graph g.edge").count() == 3
        screenshot(page, "regulator-alert-circle")

        page.goto(base + "/reg/alerts?rule=cash_out")
        page.click("#alerts .item h3 a")
        page.wait_for_selector("#money-graph")
        page.set_viewport_size({"width": 1280, "height": 900})
        page.reload()
        screenshot(page, "regulator-alert-desktop")
