"""End to end in headless Chromium: a cooperative logs in, records a harvest, traces its lot."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from api.core.models import Role
from tests.api.browser import browser_page, screenshot, serve
from tests.api.test_cooperatives import world  # noqa: F401 - shared module fixture

CHINA = timezone(timedelta(hours=8))


def test_cooperative_records_a_harvest_and_traces_it(world):  # noqa: F811
    coop = world.org(Role.COOPERATIVE, "恩施玉露茶叶专业合作社")
    farmer = world.farmer(coop, name="黄大姐")["farmer_id"]
    plot = world.plot(coop, farmer, label="后山茶园")["plot_id"]
    picked = (datetime.now(CHINA) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    with serve(world.app) as base, browser_page() as page:
        page.goto(base + "/coop")
        page.wait_for_selector("#api_key")  # not logged in: sent to the login form
        assert page.url.endswith("/login")
        page.fill("#api_key", coop.key)
        page.click("#login")
        page.wait_for_selector("#harvest-form")
        assert page.url.endswith("/coop")
        assert "恩施玉露茶叶专业合作社" in page.inner_text("#logged-in")
        assert "合作社" in page.inner_text("#logged-in") and page.locator("#logout").is_visible()
        assert page.locator("#no-lots").is_visible()
        screenshot(page, "coop-home")

        page.select_option("#plot_id", plot)
        assert "黄大姐" in page.inner_text("#plot_id")
        page.fill("#grams_kg", "12.5")
        page.select_option("#grade", "1")
        page.fill("#picked_at", picked)
        page.fill("#record_ref", "收购单-0001")
        page.click("#record")
        page.wait_for_selector("#result")
        assert "已上链" in page.inner_text("#result")
        world.index()  # the lot list shows what is indexed (in `serve`, the follower's work)
        page.goto(base + "/coop")
        row = page.locator("#lots tr[data-lot]")
        assert row.count() == 1
        lot = row.first.get_attribute("data-lot")
        assert "12.50 kg" in row.first.inner_text() and "特级" in row.first.inner_text()
        assert "黄大姐 · 后山茶园" in row.first.inner_text()  # names, not pseudonyms
        shot = screenshot(page, "coop-harvest-recorded")

        csv = (
            "farmer,plot,grams,grade,picked_at,record_ref\n"
            f"{farmer},{plot},8000,2,2026-01-06T08:00:00,U-1\n"
            f"{farmer},{plot},-5,2,yesterday,U-2\n"
        )
        page.set_input_files(
            "#file", files=[{"name": "day.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
        )
        page.click("#upload")
        page.wait_for_selector("#upload-result")
        assert page.inner_text("#upload-recorded") == "1"
        assert "line 3" in page.inner_text("#row-errors")
        world.index()
        page.goto(base + "/coop")
        assert page.locator("#lots tr[data-lot]").count() == 2
        screenshot(page, "coop-upload-row-errors")

        page.click(f'#lots a[href="/trace/{lot}"]')
        page.wait_for_selector("#lineage")
        assert page.url.endswith(f"/trace/{lot}")
        assert page.inner_text("#lot-id") == lot
        assert page.inner_text("#farmer-count") == "1"
        assert "黄大姐" not in page.content() and farmer not in page.content()
        screenshot(page, "coop-lot-trace")
        assert "恩施玉露茶叶专业合作社" in page.inner_text("#logged-in"), "every page says who"
        page.click("#logout")
        page.wait_for_selector("#api_key")
        assert page.locator("#login-link").is_visible()
        page.goto(base + "/coop")
        page.wait_for_selector("#api_key")  # the session ended on the server
    assert shot.stat().st_size > 10_000
