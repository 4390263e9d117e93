"""End to end in headless Chromium: a cooperative registers a product, packs a lot as it, and
the package's Digital Link opens the lot's trace page."""

from __future__ import annotations

from api.core.models import Role
from tests.api.browser import PHONE_WIDTH, browser_page, screenshot, serve
from tests.api.test_cooperatives import world  # noqa: F401 - shared module fixture


def test_cooperative_packs_a_lot_as_a_product(world):  # noqa: F811
    coop = world.org(Role.COOPERATIVE, "恩施玉露茶叶专业合作社")
    farmer = world.farmer(coop, name="黄大姐")["farmer_id"]
    plot = world.plot(coop, farmer, label="后山茶园")["plot_id"]
    lot = world.harvest(coop, (farmer, plot), 12_500)
    world.index()
    with serve(world.app) as base, browser_page() as page:
        page.goto(base + "/login")
        page.fill("#api_key", coop.key)
        page.click("#login")
        page.wait_for_selector("#harvest-form")
        page.click('#nav a[href="/coop/products"]')
        page.wait_for_selector("#product-form")
        assert page.locator("#no-products").is_visible()
        screenshot(page, "coop-products-empty")

        page.fill("#gtin", "6901234567893")  # a wrong check digit
        page.fill("#name_zh", "恩施玉露 明前特级")
        page.fill("#name_en", "Enshi Yulu, pre-Qingming special")
        page.click("#create-product")
        page.wait_for_selector("#errors")
        assert "check digit" in page.inner_text("#errors")
        assert page.input_value("#name_zh") == "恩施玉露 明前特级", "what was typed stays"
        screenshot(page, "coop-products-bad-gtin")

        page.fill("#gtin", "6901234567892")
        page.select_option("#grade", "1")
        page.select_option("#flush", "spring")
        page.click("#create-product")
        page.wait_for_selector('.product[data-gtin="06901234567892"]')
        card = page.inner_text('.product[data-gtin="06901234567892"]')
        assert "恩施玉露 明前特级" in card and "特级" in card and "春茶" in card

        page.select_option("#lot", lot)
        assert "12.50 kg" in page.inner_text("#lot") and "特级" not in page.inner_text("#lot")
        page.fill("#lot_code", "2026SP-01")
        page.click("#pack")
        page.wait_for_selector(f'.packed[data-lot="{lot}"]')
        assert "2026SP-01" in page.inner_text(f'.packed[data-lot="{lot}"]')
        shot = screenshot(page, "coop-products-packed")
        _desktop(page, "coop-products-packed-desktop")

        page.goto(f"{base}/01/06901234567892/10/2026SP-01")  # what the package's QR code says
        page.wait_for_selector("#lineage")
        assert page.url == f"{base}/trace/{lot}"
        assert "/01/06901234567892/10/2026SP-01" in page.inner_text("body")
        screenshot(page, "digital-link-trace")
        _desktop(page, "digital-link-trace-desktop")

        page.goto(f"{base}/01/6901234567892")
        page.wait_for_selector("#gtin")
        assert "恩施玉露 明前特级" in page.inner_text("h1")
        assert "恩施玉露茶叶专业合作社" in page.inner_text("#cooperative")
        screenshot(page, "digital-link-product")
        _desktop(page, "digital-link-product-desktop")

        page.goto(f"{base}/coop/products")
        page.click("#retire-06901234567892")
        page.wait_for_selector('.product.retired[data-gtin="06901234567892"]')
        screenshot(page, "coop-products-retired")
    assert shot.stat().st_size > 10_000


def _desktop(page: object, name: str) -> None:
    """The same page at 1280 px, then back to the phone's width."""
    page.set_viewport_size({"width": 1280, "height": 900})  # type: ignore[attr-defined]
    screenshot(page, name)
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 900})  # type: ignore[attr-defined]
