"""In headless Chromium at 390 px: a member who keeps their own wallet reads a loan offer at
the cooperative's desk; a wrong signature is refused with the reason, the member's wallet app
signs the typed data the page shows, and the offer is signed and leaves the waiting list."""

from __future__ import annotations

import json

from eth_account import Account
from eth_account.messages import encode_typed_data

from tests._fixtures import needs_node
from tests.api.browser import browser_page, screenshot, serve
from tests.api.test_lenders import lending  # noqa: F401

pytestmark = needs_node()


def test_member_signs_an_offer_at_the_cooperative(lending):  # noqa: F811
    coop, http = lending.coop, lending.http
    wallet = Account.create()  # the member's wallet app
    fid = lending.world.farmer(coop, name="向春兰", wallet=wallet.address)["farmer_id"]
    body = {"budgets_fen": {"fertilizer": 150_000, "seedlings": 50_000}}
    url = f"/lenders/decisions/{lending.decision_for(fid).decision_id}/offers"
    made = http.post(url, json=body, headers=lending.lender.headers)
    assert made.status_code == 201, made.text
    offer_id = made.json()["offer_id"]
    with serve(lending.world.app) as base, browser_page() as page:
        page.goto(base + "/login")
        page.fill("#api_key", coop.key)
        page.click("#login")
        page.wait_for_selector("#nav")
        page.click("#nav >> text=社员报价")
        page.wait_for_selector("#waiting")
        card = page.locator(f"#waiting a[data-offer='{offer_id}']")
        assert "向春兰" in card.inner_text() and "待社员签字" in card.inner_text()
        assert "0x" not in page.inner_text("main")  # names, not hex
        screenshot(page, "coop-offers")

        card.click()
        page.wait_for_selector("#sign-form")
        terms = page.inner_text("#terms")
        assert "¥2,000.00" in terms and "化肥" in terms and "本社" in terms
        typed = json.loads(page.locator("#typed-data").text_content() or "{}")
        assert typed["message"]["farmer"] == wallet.address
        screenshot(page, "coop-offer-sign")
        clerk = Account.create().sign_message(encode_typed_data(full_message=typed))
        page.fill("#signature", "0x" + clerk.signature.hex())
        page.click("#submit-signature")
        page.wait_for_selector("#error")
        assert "not by the farmer's wallet" in page.inner_text("#error")

        signed = wallet.sign_message(encode_typed_data(full_message=typed))
        page.fill("#signature", "0x" + signed.signature.hex())
        page.click("#submit-signature")
        page.wait_for_selector("#done")
        assert "已签字" in page.inner_text("#offer-status")
        assert page.locator("#sign-form").count() == 0
        screenshot(page, "coop-offer-signed")
        page.goto(base + "/coop/offers")
        assert page.locator(f"#waiting a[data-offer='{offer_id}']").count() == 0
        assert page.locator(f"#done a[data-offer='{offer_id}']").count() == 1
    issued = http.post(f"/lenders/offers/{offer_id}/loan", headers=lending.lender.headers)
    assert issued.status_code == 201, issued.text
