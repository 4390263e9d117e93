"""Every page in each audience's navigation, in headless Chromium at a phone's width (390 px)
and a desktop's (1280 px): it opens without an error and never scrolls sideways."""

from __future__ import annotations

import time

from api.core.models import Role
from api.core.sessions import NAV_LINKS
from tests._fixtures import needs_node
from tests.api.browser import browser_page, screenshot, serve
from tests.api.test_cooperatives import Org
from tests.api.test_lenders import lending  # noqa: F401

pytestmark = needs_node()

WIDTHS = (390, 1280)


def _farmer(lending) -> Org:  # noqa: F811
    """A farmer organisation that is a member's wallet (so its pages have a farmer)."""
    org = lending.world.org(Role.FARMER, f"farmer {time.time_ns()}")
    lending.world.farmer(lending.coop, farmer_org_id=org.id, name="田秋菊")
    return org


def test_every_navigation_page_fits_a_phone_and_a_desktop(lending):  # noqa: F811
    world = lending.world
    people = [lending.coop, lending.lender, lending.merchant, _farmer(lending),
              world.org(Role.PROCESSOR, "恩施玉露茶厂"),
              world.org(Role.REGULATOR, "恩施金融监管分局")]  # fmt: skip
    opened = 0
    with serve(world.app) as base, browser_page() as page:
        for org in people:
            page.set_viewport_size({"width": WIDTHS[0], "height": 900})
            page.goto(base + "/login")
            page.fill("#api_key", org.key)
            page.click("#login")
            page.wait_for_selector("#logout")
            for path, zh, _ in NAV_LINKS[org.role]:
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 900})
                    answer = page.goto(base + path)
                    assert answer is not None and answer.status == 200, (org.role, path)
                    assert zh in page.inner_text("#nav"), (org.role, path)
                    name = f"size-{org.role.value}-{path.strip('/').replace('/', '-')}-{width}"
                    screenshot(page, name)  # fails if the page scrolls sideways
                    opened += 1
            page.click("#logout")
            page.wait_for_selector("#api_key")
    assert opened == 2 * sum(len(NAV_LINKS[o.role]) for o in people)
