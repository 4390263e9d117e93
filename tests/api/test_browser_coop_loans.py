"""In headless Chromium at 390 px: a cooperative clerk pays a member's fertilizer invoice from
the member's loan (with a confirmation step), cancels a reserved order, and pays a CSV of
invoices by member number after checking the preview; uploading it again pays nothing twice;
registers a member and a plot, then a member roll from a GBK spreadsheet."""

from __future__ import annotations

from api.core.models import Role
from tests._fixtures import needs_node
from tests.api.browser import browser_page, screenshot, serve
from tests.api.test_cooperatives import resident_id
from tests.api.test_cooperatives_loans import _balance, agent  # noqa: F401
from tests.api.test_lenders import lending  # noqa: F401

pytestmark = needs_node()


def test_clerk_pays_invoices_from_members_loans(lending, agent):  # noqa: F811
    immediate, two_sided = agent
    coop = lending.coop
    merchant = lending.merchant
    before = _balance(lending, merchant.address)
    with serve(lending.world.app) as base, browser_page() as page:
        page.goto(base + "/login")
        page.fill("#api_key", coop.key)
        page.click("#login")
        page.wait_for_selector("#harvest-form, #no-plots")
        assert int(page.inner_text("#work-loans")) >= 2  # the home shows the loans' work
        screenshot(page, "coop-home-work")
        page.click("#nav >> text=社员贷款")
        page.wait_for_selector("#loans")
        card = page.locator(f"a[data-escrow='{immediate.escrow}']")
        assert "周九" in card.inner_text() and "使用中" in card.inner_text()
        assert "0x" not in page.inner_text("#loans")  # names and numbers, not hex
        screenshot(page, "coop-loans")

        card.click()
        page.wait_for_selector("#order-form")
        assert "化肥" in page.inner_text("#budgets")
        page.select_option("#merchant", str(merchant.id))
        page.select_option("#category", "fertilizer")
        page.fill("#amount_yuan", "256.80")
        page.fill("#invoice", "FP-浏览器-001")
        page.click("#order-next")
        page.wait_for_selector("#confirm")
        assert merchant.name in page.inner_text("#confirm-merchant")
        assert page.inner_text("#confirm-amount") == "¥256.80"
        assert _balance(lending, merchant.address) == before  # nothing sent before confirming
        screenshot(page, "coop-order-confirm")
        page.click("#confirm-yes")
        page.wait_for_selector("#order-result")
        assert "已下单" in page.inner_text("#order-result")
        assert _balance(lending, merchant.address) == before + 25_680
        row = page.locator("#orders tr[data-order]").last
        assert merchant.name in row.inner_text() and "已付款" in row.inner_text()
        screenshot(page, "coop-loan-paid")

        page.goto(f"{base}/coop/loans/{two_sided.escrow}")
        page.select_option("#merchant", str(merchant.id))
        page.fill("#amount_yuan", "50")
        page.fill("#invoice", "FP-浏览器-002")
        page.click("#order-next")
        page.click("#confirm-yes")
        page.wait_for_selector("#order-result")
        assert "待商户确认" in page.inner_text("#orders")
        page.locator(".cancel-order").last.click()
        page.wait_for_selector("#confirm")
        page.click("#confirm-yes")
        page.wait_for_selector("#cancel-result")
        assert "已取消" in page.locator("#orders tr[data-order]").last.inner_text()

        page.goto(base + "/coop/loans")
        csv = (
            "member,merchant,category,amount_yuan,invoice\n"
            f"{immediate.number},{merchant.name},fertilizer,88.00,FP-CSV-B1\n"
            f"{immediate.number},{merchant.name},fertilizer,abc,FP-CSV-B2\n"
        )
        files = [{"name": "orders.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
        page.set_input_files("#orders-file", files=files)
        page.click("#orders-preview")
        page.wait_for_selector("#orders-preview-table")
        preview = page.inner_text("#orders-preview-table")
        assert "周九" in preview and merchant.name in preview and "¥88.00" in preview
        assert "not a number" in preview
        screenshot(page, "coop-orders-preview")
        paid = _balance(lending, merchant.address)
        page.click("#orders-confirm")
        page.wait_for_selector("#orders-result")
        assert page.inner_text("#orders-ordered") == "1"
        assert page.inner_text("#orders-errors") == "1"
        assert _balance(lending, merchant.address) == paid + 8_800
        screenshot(page, "coop-orders-result")
        page.set_input_files("#orders-file", files=files)
        page.click("#orders-preview")
        page.click("#orders-confirm")
        page.wait_for_selector("#orders-result")
        assert page.inner_text("#orders-duplicates") == "1"
        assert _balance(lending, merchant.address) == paid + 8_800

        other = lending.world.org(Role.COOPERATIVE, "Another Cooperative")
        page.click("#logout")
        page.goto(base + "/login")
        page.fill("#api_key", other.key)
        page.click("#login")
        page.wait_for_load_state()
        response = page.goto(f"{base}/coop/loans/{immediate.escrow}")
        assert response is not None and response.status == 403


def test_clerk_registers_a_member_and_a_plot(lending):  # noqa: F811
    coop = lending.world.org(Role.COOPERATIVE, "茶园新村合作社")
    wallet = lending.world.org(Role.FARMER, "刘小梅的钱包")
    national_id = resident_id()
    with serve(lending.world.app) as base, browser_page() as page:
        page.goto(base + "/login")
        page.fill("#api_key", coop.key)
        page.click("#login")
        page.wait_for_selector("#no-plots")
        page.click("#no-plots a")
        page.wait_for_selector("#member-form")
        assert page.locator("#no-members").is_visible()
        page.fill("#name", "刘小梅")
        page.fill("#national_id", national_id)
        page.select_option("#farmer_org_id", str(wallet.id))
        page.click("#member-next")
        page.wait_for_selector("#confirm")
        assert page.inner_text("#confirm-name") == "刘小梅"
        assert national_id not in page.inner_text("#confirm")  # masked on screen
        screenshot(page, "coop-member-confirm")
        page.click("#confirm-yes")
        page.wait_for_selector("#member-registered")
        number = page.locator("#members .member").first.get_attribute("data-member")
        assert number and number in page.inner_text("#member-registered")
        page.fill("#land_reference", "鄂恩施-合同-0042")
        page.fill("#area_mu", "3.5")
        page.fill("#label", "后山茶园")
        page.click("#plot-next")
        page.wait_for_selector("#confirm")
        assert page.inner_text("#confirm-member") == "刘小梅"
        page.click("#confirm-yes")
        page.wait_for_selector("#plot-registered")
        member = page.inner_text("#members")
        assert "后山茶园" in member and "3.5 亩" in member and "0x" not in member
        screenshot(page, "coop-members")
        page.goto(base + "/coop")
        page.wait_for_selector("#harvest-form")
        assert "刘小梅 · 后山茶园" in page.inner_text("#plot_id")
        # the same person twice: refused with the reason, on the page
        page.goto(base + "/coop/members")
        page.fill("#name", "刘小梅")
        page.fill("#national_id", national_id)
        page.click("#member-next")
        page.click("#confirm-yes")
        page.wait_for_selector("#errors")
        assert "already registered" in page.inner_text("#errors")
        # a member roll from the cooperative's spreadsheet (GBK, Chinese headers)
        first, second = resident_id(), resident_id()
        roll = (
            "身份证号,姓名,承包合同号,面积（亩）,地块名称\n"
            f"{first},陈大山,R-合同-1,2.5,老屋场\n{first},,R-合同-2,1,河边\n"
            f"{second},陈小溪,,,\n{national_id},刘小梅,,,\n"
        )
        files = [{"name": "名册.csv", "mimeType": "text/csv", "buffer": roll.encode("gbk")}]
        page.set_input_files("#roll-file", files=files)
        page.click("#roll-upload")
        page.wait_for_selector("#roll-result")
        assert page.inner_text("#roll-registered") == "2"
        assert page.inner_text("#roll-plots") == "2"
        assert f"already registered as member no. {number}" in page.inner_text("#roll-refusals")
        assert "0x" not in page.inner_text("#roll-result")
        members = page.inner_text("#members")
        assert "陈大山" in members and "老屋场" in members and "陈小溪" in members
        screenshot(page, "coop-members-roll")
        # a hundred more: the list goes to a second page, and the box finds a member's page
        many = "身份证号,姓名\n" + "".join(f"{resident_id()},社员{i}\n" for i in range(100))
        files = [{"name": "名册2.csv", "mimeType": "text/csv", "buffer": many.encode("gbk")}]
        page.set_input_files("#roll-file", files=files)
        page.click("#roll-upload")
        page.wait_for_selector("#roll-result")
        assert page.inner_text("#roll-registered") == "100"
        assert "page 1 of 2" in page.inner_text("#members-count")
        page.click("#next-page")
        page.wait_for_selector("#prev-page")
        assert page.locator("#members .member").count() == 3
        screenshot(page, "coop-members-page-2")
        assert "陈大山" not in page.inner_text("#members")  # on the first page
        page.fill("#find-no", str(int(number) + 1))  # 陈大山, entered right after 刘小梅
        page.click("#find")
        page.wait_for_selector("#found-member")
        assert "陈大山" in page.inner_text("#found-member")
        screenshot(page, "coop-members-found")
        # the same at a desktop's width: the roll's refusals and the second page
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(base + "/coop/members?page=2")
        page.wait_for_selector("#prev-page")
        screenshot(page, "coop-members-page-2-1280")
        files = [{"name": "名册.csv", "mimeType": "text/csv", "buffer": roll.encode("gbk")}]
        page.set_input_files("#roll-file", files=files)
        page.click("#roll-upload")
        page.wait_for_selector("#roll-result")
        assert page.inner_text("#roll-refused") == "3"  # all three registered already
        screenshot(page, "coop-members-roll-1280")
