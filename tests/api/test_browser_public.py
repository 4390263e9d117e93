"""End to end in headless Chromium: a consumer opens the trace page of a package."""

from api.main import create_app
from tests.api.browser import browser_page, screenshot, serve
from tests.api.test_public import traced  # noqa: F401 - shared module fixture


def test_consumer_traces_a_lot_in_the_browser(traced, api_settings):  # noqa: F811
    system, blend, _ = traced
    lot = "0x" + blend.hex()
    app = create_app(api_settings, chain=system.client)
    with serve(app) as base, browser_page() as page:
        page.goto(base + "/")
        page.fill("#lot", lot)
        page.click("button[type=submit]")
        page.wait_for_selector("#lineage")
        assert page.url.endswith(f"/trace/{lot}")
        assert page.inner_text("#farmer-count") == "2"
        assert page.locator("#lineage li").count() == 4  # blend <- made <- 2 harvests
        assert page.locator("#qr svg").is_visible()
        assert "合格" in page.inner_text("#attestations")
        shot = screenshot(page, "public-trace")
    assert shot.stat().st_size > 10_000
