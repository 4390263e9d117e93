"""End to end in headless Chromium at 390 px: a farmer logs in, reads an offer and why, tries
the APR calculator, accepts after a confirmation, sees the loan's payments and repays from the
wallet; switches to English; sees who read the profile. Plus the pages' refusals (TestClient).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from api.core.chain import org_sender
from api.core.models import Organisation, Role
from api.farmers.loans import fund_gas
from lending.credit.access import AccessOutcome, ProfileAccess
from lending.credit.store import CreditStore
from lending.loans.contracts import DEV_REGISTRAR
from lending.loans.disbursement import LoanDesk, document_hash
from lending.loans.merchants import MerchantDesk
from tests._fixtures import needs_node
from tests.api.browser import browser_page, screenshot, serve
from tests.api.test_cooperatives import Org
from tests.api.test_lenders import Lending, lending  # noqa: F401
from traceability.consent import ConsentService

pytestmark = needs_node()


def _farmer_with_offer(lending: Lending) -> tuple[Org, str, str]:  # noqa: F811
    """A farmer organisation (a named member), an offer to it; (org, farmer id, offer id)."""
    org = lending.world.org(Role.FARMER, f"farmer {time.time_ns()}")
    fid = lending.world.farmer(lending.coop, farmer_org_id=org.id, name="黄大姐")["farmer_id"]
    url = f"/lenders/decisions/{lending.decision_for(fid).decision_id}/offers"
    body = {"budgets_fen": {"fertilizer": 300_000, "seedlings": 200_000}}
    made = lending.http.post(url, json=body, headers=lending.lender.headers)
    assert made.status_code == 201, made.text
    return org, fid, made.json()["offer_id"]


def _pay_merchant(lending: Lending, farmer: Org, escrow: str, fen: int) -> None:  # noqa: F811
    """The farmer's wallet pays an approved fertilizer shop from the loan."""
    chain = lending.world.chain
    expires = int(time.time()) + 365 * 86_400
    MerchantDesk(chain).approve(
        lending.merchant.address, "fertilizer", expires, chain.sender(DEV_REGISTRAR)
    )
    with lending.world.session() as session:
        row = session.get(Organisation, farmer.id)
        sender = org_sender(chain, lending.world.settings, row)
    fund_gas(chain, farmer.address, 400_000)
    LoanDesk(chain).order_payment(
        escrow, lending.merchant.address, "fertilizer", fen, document_hash("FP-0001"), sender
    )


def test_farmer_journey_on_a_phone(lending):  # noqa: F811
    http, chain = lending.http, lending.world.chain
    farmer, fid, offer_id = _farmer_with_offer(lending)
    CreditStore(lending.world.app.state.engine).record_access(  # type: ignore[attr-defined]
        ProfileAccess(
            farmer_id=fid,
            lender=lending.lender.address.lower(),
            purpose="credit_decision",
            outcome=AccessOutcome.READ,
            at=datetime.now(UTC),
        )
    )
    granted = http.post(
        "/farmers/me/consents", json={"lender_org_id": lending.lender.id}, headers=farmer.headers
    )
    assert granted.status_code == 201, granted.text
    with serve(lending.world.app) as base, browser_page() as page:
        page.goto(base + "/farmer")
        page.wait_for_selector("#api_key")
        page.fill("#api_key", farmer.key)
        page.click("#login")
        page.wait_for_selector("#my-offers")
        assert page.url.endswith("/farmer")
        assert "您好，黄大姐" in page.inner_text("#hello")
        assert "Yulu Cooperative" in page.inner_text("#my-coop")
        assert page.locator("#no-loan").is_visible()
        card = page.locator(f'.offer[data-offer="{offer_id}"]')
        assert "Enshi Rural Credit Union" in card.inner_text() and "¥5,000.00" in card.inner_text()
        assert "待您确认" in card.inner_text()
        assert "0x" not in page.inner_text("main")  # names, not hex
        screenshot(page, "farmer-home")

        card.locator("a").click()
        page.wait_for_selector("#why")
        assert re.search(r"\d+\.\d+%", page.inner_text("#apr"))
        assert "¥" in page.inner_text("#limit") and page.locator("#reasons, #score").count() >= 1
        assert "肥料" in page.inner_text("#budgets") and "茶苗" in page.inner_text("#budgets")
        assert "Yulu Cooperative" in page.inner_text("#agent")  # who may order, by name
        screenshot(page, "farmer-offer")

        page.fill("#amount_yuan", "2000")
        page.select_option("#term_months", "6")
        page.click("#calc")
        page.wait_for_selector("#quote")
        quote = page.inner_text("#quote")
        assert re.search(r"\d+\.\d+%", page.inner_text("#quote-apr"))
        assert "¥" in page.inner_text("#quote-total") and "1" in quote
        assert page.locator("#quote-schedule tr").count() >= 2
        screenshot(page, "farmer-offer-calculator")
        page.fill("#amount_yuan", "abc")
        page.click("#calc")
        page.wait_for_selector("#quote-error")

        page.click("#accept")
        page.wait_for_selector("#confirm-terms")
        assert "¥5,000.00" in page.inner_text("#confirm-terms")
        screenshot(page, "farmer-accept-confirm")
        page.click("#confirm")
        page.wait_for_selector("#done")
        assert "已接受" in page.inner_text("#offer-status")

        issued = http.post(f"/lenders/offers/{offer_id}/loan", headers=lending.lender.headers)
        assert issued.status_code == 201, issued.text
        escrow = issued.json()["escrow"]
        _pay_merchant(lending, farmer, escrow, 120_000)
        desk = LoanDesk(chain)
        chain.sender(0).transact(desk.mint_call(farmer.address, 500_000))

        page.goto(base + "/farmer")
        assert "使用中" in page.inner_text("#loan-status")
        page.click("#open-loan")
        page.wait_for_selector("#payments")
        payment = page.inner_text("#payments")
        assert "Green Leaf Fertilizer" in payment and "¥1,200.00" in payment
        assert "已付款" in payment and "肥料" in payment
        assert "¥1,200.00" in page.inner_text("#drawn")
        assert page.locator("#schedule-next").count() == 1
        owed = desk.state(escrow).outstanding_fen
        screenshot(page, "farmer-loan")

        page.fill("#amount_yuan", "100.50")
        page.click("#repay-next")
        page.wait_for_selector("#confirm-amount")
        assert page.inner_text("#confirm-amount") == "¥100.50"
        screenshot(page, "farmer-repay-confirm")
        page.click("#confirm")
        page.wait_for_selector("#done")
        assert desk.state(escrow).outstanding_fen == owed - 10_050  # as the chain says
        assert "¥100.50" in page.inner_text("#repayments")
        assert desk.balance_of(farmer.address) == 500_000 - 10_050

        page.click("#lang-en")
        page.wait_for_selector("#lang-zh")
        assert page.inner_text("h1").startswith("My loan")
        assert page.inner_text("#loan-status").startswith("active")
        screenshot(page, "farmer-loan-en")
        page.goto(base + "/farmer/privacy")  # the cookie keeps English
        assert page.inner_text("h1").startswith("My consents")
        reads = page.inner_text("#reads")
        assert "Enshi Rural Credit Union" in reads and "credit decision" in reads
        screenshot(page, "farmer-privacy-en")
        page.click("#lang-zh")
        page.wait_for_selector("#lang-en")
        assert "谁查看了我的档案" in page.inner_text("main")
        consent = page.locator(".consent")
        assert consent.count() == 1 and "Enshi Rural Credit Union" in consent.inner_text()
        consent.locator("a.revoke").click()
        page.wait_for_selector("#confirm-terms")
        assert "Enshi Rural Credit Union" in page.inner_text("#confirm-terms")
        screenshot(page, "farmer-revoke-confirm")
        page.click("#confirm")
        page.wait_for_selector("#done")
        assert page.locator("a.revoke").count() == 0
    lender = lending.lender.address
    assert ConsentService(chain).expiry(bytes.fromhex(fid[2:]), lender) == 0  # on chain


def _login(lending: Lending, org: Org) -> TestClient:  # noqa: F811
    """A browser-like client with a page session of `org`."""
    client = TestClient(lending.world.app)
    assert (
        client.post("/login", data={"api_key": org.key}, follow_redirects=False).status_code == 303
    )
    return client


def _csrf(html: str) -> str:
    """The form token on a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_pages_refuse_others_and_need_confirmation_and_token(lending):  # noqa: F811
    farmer, _, offer_id = _farmer_with_offer(lending)
    page = TestClient(lending.world.app)
    assert page.get("/farmer", follow_redirects=False).status_code == 303  # to /login
    assert _login(lending, lending.coop).get("/farmer").status_code == 403
    stranger, _, _ = _farmer_with_offer(lending)
    other = _login(lending, stranger)
    assert other.get(f"/farmer/offers/{offer_id}").status_code == 403
    assert other.get("/farmer/offers/" + "0" * 32).status_code == 404
    mine = _login(lending, farmer)
    confirm = mine.get(f"/farmer/offers/{offer_id}/confirm?action=decline")
    assert confirm.status_code == 200 and 'id="confirm-form"' in confirm.text
    bad = mine.post(f"/farmer/offers/{offer_id}/decline", data={"csrf": "forged"})
    assert bad.status_code == 403
    assert mine.get(f"/farmer/offers/{offer_id}").text.count("待您确认") >= 1
    done = mine.post(f"/farmer/offers/{offer_id}/decline", data={"csrf": _csrf(confirm.text)})
    assert done.status_code == 200 and "已拒绝" in done.text
    calc = mine.get(f"/farmer/offers/{offer_id}?amount_yuan=1.234&term_months=6")
    assert calc.status_code == 200 and 'id="quote-error"' in calc.text
    assert mine.get(f"/farmer/offers/{offer_id}?term_months=99").status_code == 422
    nobody = mine.get("/farmer/loans/0x" + "12" * 20)
    assert nobody.status_code == 404
    english = mine.get("/farmer?lang=en")
    assert english.status_code == 200 and "tealedger_lang=en" in english.headers["set-cookie"]
    assert ">Hello," in english.text
