"""End to end in headless Chromium at 390 px: the processor commits a lot's farmer shares, the
distributor pays for the lot and sees where each farmer's part went."""

from __future__ import annotations

from indexer.runner import index_once
from tests._fixtures import needs_node
from tests.api.browser import browser_page, screenshot, serve
from tests.api.test_supply_chain_settlement import Sold, _mint, sold, world  # noqa: F401

pytestmark = needs_node()


def _login(page: object, base: str, key: str) -> None:
    """Log in with an organisation's key; lands on /supply."""
    page.goto(base + "/login")  # type: ignore[attr-defined]
    page.fill("#api_key", key)  # type: ignore[attr-defined]
    page.click("#login")  # type: ignore[attr-defined]
    page.wait_for_selector("#find")  # type: ignore[attr-defined]


def test_processor_commits_and_distributor_settles(sold: Sold) -> None:  # noqa: F811
    _mint(sold.world, sold.distributor.address, 128_000)
    index_once(sold.world.chain, sold.world.settings.database_url)
    with serve(sold.world.app) as base, browser_page() as page:
        _login(page, base, sold.processor.key)
        assert page.url.endswith("/supply")
        made = page.locator(f"#made a[data-lot='{sold.lot}']")  # its lots, not a hex box
        assert "13.0 公斤" in made.inner_text() and page.locator("#bought").count() == 0
        assert "待提交份额" in made.inner_text()  # its state in SaleSettlement
        screenshot(page, "supply-home-maker")
        made.click()
        page.wait_for_selector("#farmers")
        assert "未提交" in page.inner_text("#commitment")
        assert "40.00 kg" in page.inner_text("#farmers")
        screenshot(page, "supply-lot-maker")
        page.click("#commit")
        page.wait_for_selector("#yes")
        page.click("#yes")
        page.wait_for_selector("#done")
        assert "与溯源一致" in page.inner_text("#commitment")
        assert page.locator("#commit").count() == 0 and page.locator("#settle").count() == 0
        page.goto(base + "/supply")
        assert "待结算" in page.locator(f"#made a[data-lot='{sold.lot}']").inner_text()
        page.click("#logout")
        page.wait_for_selector("#api_key")

        _login(page, base, sold.distributor.key)
        page.fill("#lot", sold.lot)
        page.click("#find")
        page.wait_for_selector("#settle")
        assert page.inner_text("#maker") == sold.processor.name
        assert "本单位" in page.inner_text("#holder")
        page.fill("#amount", "1,280.00")
        page.click("#settle")
        page.wait_for_selector("#yes")
        assert "¥1,280.00" in page.inner_text("h1")
        shares = page.inner_text("#farmers")
        assert "¥787.69" in shares and "¥492.31" in shares  # 40 kg and 25 kg of 65 kg
        screenshot(page, "supply-confirm-settle")
        page.click("#yes")
        page.wait_for_selector("#done")
        assert "已结算" in page.inner_text("#done")
        assert "¥1,280.00" in page.inner_text("#sales")
        screenshot(page, "supply-lot-settled")
