"""A lender's portfolio, CSV export, disbursement report and servicing actions (#19).

The `lending` world of test_lenders on an anvil of this module's own (the servicing test moves
its clock). Each route: success, 401 without a key, 403 for the wrong role or another lender's
loan, 404 for an escrow the factory never issued, 409 with the contract's reason, 422.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.core.sessions import COOKIE, csrf_token
from api.lenders.service import credit_store
from chain.nodes import ProcessNode
from lending.loans.contracts import DEV_REGISTRAR
from lending.loans.disbursement import LoanDesk, document_hash
from lending.loans.merchants import MerchantDesk
from tests._fixtures import needs_node, start_node
from tests.api.test_lenders import Lending, _issued_escrow, lending  # noqa: F401

pytestmark = needs_node()

DAY = 86_400


@pytest.fixture(scope="module")
def anvil_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessNode]:
    """This module's own anvil: the servicing test moves its clock."""
    node = start_node("anvil", tmp_path_factory.mktemp("anvil-portfolio"))
    yield node
    node.stop()


@pytest.fixture(scope="module")
def spent(lending: Lending) -> str:  # noqa: F811
    """A loan to demo farmer 0 that paid the fertilizer merchant 150,000 fen; its escrow."""
    chain = lending.world.chain
    expires = int(time.time()) + 365 * 86_400
    MerchantDesk(chain).approve(
        lending.merchant.address, "fertilizer", expires, chain.sender(DEV_REGISTRAR)
    )
    escrow = lending.demo_loan(0, {"fertilizer": 400_000, "seedlings": 100_000}, "immediate")
    paid = LoanDesk(chain).order_payment(
        escrow,
        lending.merchant.address,
        "fertilizer",
        150_000,
        document_hash("FP-2026-0001"),
        lending.wallet(0),
    )
    assert paid.paid
    return escrow


def _advance(lending: Lending, seconds: int) -> None:  # noqa: F811
    """Move the node's clock forward (evm_increaseTime + evm_mine)."""
    w3 = lending.world.chain.w3
    for method, params in (("evm_increaseTime", [seconds]), ("evm_mine", [])):
        reply = w3.provider.make_request(method, params)  # type: ignore[arg-type]
        assert "error" not in reply, reply


def test_portfolio_lists_the_lenders_own_loans_with_filters(lending, spent):  # noqa: F811
    http, headers = lending.http, lending.lender.headers
    named = _issued_escrow(lending)  # a member farmer the cooperative registered as 周九
    got = http.get("/lenders/loans", headers=headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["total"] == 2 and body["chain_time"] > 0
    newest, loan = body["items"]
    assert newest["escrow"] == named and newest["farmer_name"] == "周九"
    assert loan["escrow"] == spent and loan["status"] == "active"
    assert loan["farmer_id"] == lending.fid(0) and loan["farmer_name"] is None
    assert loan["principal_fen"] == 500_000 and loan["drawn_fen"] == 150_000
    assert loan["available_fen"] == 350_000 and loan["days_past_due"] == 0
    assert 150_000 < loan["outstanding_fen"] < loan["total_due_fen"]
    assert body["principal_fen"] == 600_000 and body["drawn_fen"] == 150_000
    paged = http.get("/lenders/loans?limit=1&offset=1", headers=headers).json()
    assert paged["total"] == 2 and [i["escrow"] for i in paged["items"]] == [spent]
    assert http.get("/lenders/loans?status=open", headers=headers).json()["total"] == 2
    assert http.get("/lenders/loans?status=repaid", headers=headers).json()["total"] == 0
    assert http.get("/lenders/loans?status=nonsense", headers=headers).status_code == 422
    assert http.get("/lenders/loans?limit=0", headers=headers).status_code == 422
    other = http.get("/lenders/loans", headers=lending.other_lender.headers).json()
    assert other["total"] == 0 and other["items"] == []
    assert http.get("/lenders/loans").status_code == 401
    assert http.get("/lenders/loans", headers=lending.coop.headers).status_code == 403


def test_portfolio_csv(lending, spent):  # noqa: F811
    http, headers = lending.http, lending.lender.headers
    got = http.get("/lenders/portfolio.csv?status=active", headers=headers)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    mine = [r for r in rows if r["escrow"] == spent]
    assert len(mine) == 1 and mine[0]["drawn_fen"] == "150000" and mine[0]["status"] == "active"
    other = http.get("/lenders/portfolio.csv", headers=lending.other_lender.headers)
    assert other.status_code == 200 and other.text.count("\n") == 1  # the header only
    assert http.get("/lenders/portfolio.csv").status_code == 401
    typo = http.get("/lenders/portfolio.csv?stauts=repaid", headers=headers)  # not everything
    assert typo.status_code == 422 and "stauts" in typo.text
    assert http.get("/lenders/portfolio.csv", headers=lending.merchant.headers).status_code == 403


def test_disbursement_report_by_category_and_merchant(lending, spent):  # noqa: F811
    http = lending.http
    got = http.get("/lenders/disbursements", headers=lending.lender.headers)
    assert got.status_code == 200, got.text
    report = got.json()
    assert report["lines"] == [
        {
            "category": "fertilizer",
            "merchant": lending.merchant.address,
            "merchant_name": "Green Leaf Fertilizer",
            "payments": 1,
            "amount_fen": 150_000,
        }
    ]
    assert report["by_category_fen"] == {"fertilizer": 150_000} and report["total_fen"] == 150_000
    none = http.get("/lenders/disbursements", headers=lending.other_lender.headers).json()
    assert none == {"lines": [], "by_category_fen": {}, "total_fen": 0}
    assert http.get("/lenders/disbursements").status_code == 401
    assert http.get("/lenders/disbursements", headers=lending.coop.headers).status_code == 403


def test_a_loans_full_history_is_its_lenders_only(lending, spent):  # noqa: F811
    http, headers = lending.http, lending.lender.headers
    url = f"/lenders/loans/{spent}/history"
    got = http.get(url, headers=headers)
    assert got.status_code == 200, got.text
    h = got.json()
    assert h["loan"]["escrow"] == spent and h["loan"]["drawn_fen"] == 150_000
    assert h["apr_bps"] > 0 and h["schedule"] and h["schedule_verified"] is True
    (order,) = h["orders"]
    assert order["merchant_name"] == "Green Leaf Fertilizer" and order["status"] == "released"
    assert order["category_name"] == "fertilizer" and order["amount_fen"] == 150_000
    budgets = {b["category_name"]: b for b in h["budgets"]}
    assert budgets["fertilizer"]["spent_fen"] == 150_000
    assert budgets["fertilizer"]["left_fen"] == 250_000
    assert h["repayments"] == []
    assert http.get(url, headers=lending.other_lender.headers).status_code == 403
    assert http.get(url, headers=lending.merchant.headers).status_code == 403
    assert http.get(url).status_code == 401
    nobody = "/lenders/loans/0x" + "12" * 20 + "/history"
    assert http.get(nobody, headers=headers).status_code == 404
    factory = LoanDesk(lending.world.chain).factory.address  # a contract, not an escrow
    assert http.get(f"/lenders/loans/{factory}/history", headers=headers).status_code == 404


def _login(lending: Lending, key: str) -> TestClient:  # noqa: F811
    """A browser-like client logged in with `key`."""
    page = TestClient(lending.world.app)
    assert page.post("/login", data={"api_key": key}, follow_redirects=False).status_code == 303
    return page


def _csrf(html: str) -> str:
    """The form token of a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no form on the page"
    return found.group(1)


def test_desk_pages_show_the_portfolio_and_confirm_before_acting(lending, spent):  # noqa: F811
    page = _login(lending, lending.lender.key)
    home = page.get("/lender")
    assert home.status_code == 200, home.text
    assert f'data-escrow="{spent}"' in home.text and "周九" in home.text
    assert "正常 active" in home.text and "¥1,500.00" in home.text
    assert 'id="csv"' in home.text and "0x" + "0" * 64 not in home.text
    assert "周九" not in page.get("/lender?status=repaid").text
    assert page.get("/lender?status=nonsense").status_code == 422
    exported = page.get("/lender/portfolio.csv")
    assert exported.status_code == 200 and spent in exported.text
    report = page.get("/lender/disbursements")
    assert report.status_code == 200 and "Green Leaf Fertilizer" in report.text
    assert "肥料 fertilizer" in report.text
    loan = page.get(f"/lender/loans/{spent}")
    assert loan.status_code == 200, loan.text
    assert "Green Leaf Fertilizer" in loan.text and 'id="action-refresh"' in loan.text
    assert "肥料 fertilizer" in loan.text and 'id="schedule"' in loan.text
    token = _csrf(loan.text)
    url = f"/lender/loans/{spent}/refresh"
    asked = page.post(url, data={"csrf": token}, follow_redirects=False)
    assert asked.status_code == 200 and 'id="confirm"' in asked.text  # nothing sent yet
    done = page.post(url, data={"csrf": token, "confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith("?done=refresh")
    refused = page.post(f"/lender/loans/{spent}/return-unspent",
                        data={"csrf": token, "confirm": "yes"})  # fmt: skip
    assert refused.status_code == 409 and 'id="error"' in refused.text
    assert "提款期到" in refused.text and "EscrowDrawWindowOpen" in refused.text
    assert page.post(url, data={"csrf": "forged", "confirm": "yes"}).status_code == 403
    other = _login(lending, lending.other_lender.key)
    assert other.get(f"/lender/loans/{spent}").status_code == 403
    assert "周九" not in other.get("/lender").text
    coop = _login(lending, lending.coop.key)
    assert coop.get("/lender").status_code == 403
    assert TestClient(lending.world.app).get("/lender", follow_redirects=False).status_code == 303


def test_farmer_page_scores_and_offers_with_a_confirmation_step(lending):  # noqa: F811
    page = _login(lending, lending.lender.key)
    fid = lending.fid(0)
    profile = page.get(f"/lender/farmers/{fid}")
    assert profile.status_code == 200 and 'id="decide"' in profile.text
    assert "POST /lenders" not in profile.text  # buttons, not instructions for developers
    token = _csrf(profile.text)
    url = f"/lender/farmers/{fid}/decision"
    before = len(credit_store(lending.world.app.state.engine).decisions_for(fid))
    asked = page.post(url, data={"csrf": token}, follow_redirects=False)
    assert asked.status_code == 200 and 'id="confirm"' in asked.text
    assert len(credit_store(lending.world.app.state.engine).decisions_for(fid)) == before
    done = page.post(url, data={"csrf": token, "confirm": "yes"}, follow_redirects=False)
    assert done.status_code in (303, 409), done.text  # 409: the demo profile cannot be scored
    decision = lending.approved_decision(0)
    offer = f"/lender/decisions/{decision}/offer"
    bad = page.post(offer, data={"csrf": token, "budget:fertilizer": "12.345"})
    assert bad.status_code == 422 and 'id="error"' in bad.text
    none = page.post(offer, data={"csrf": token, "budget:fertilizer": ""})
    assert none.status_code == 422
    other = _login(lending, lending.other_lender.key)
    their_token = csrf_token(lending.world.settings, other.cookies[COOKIE])
    theirs = other.post(offer, data={"csrf": their_token, "budget:fertilizer": "100"})
    assert theirs.status_code == 403 and "another lender" in theirs.text


def test_servicing_a_loan_through_its_life(lending, spent):  # noqa: F811
    http, headers = lending.http, lending.lender.headers
    url = f"/lenders/loans/{spent}"
    early = http.post(f"{url}/return-unspent", headers=headers)
    assert early.status_code == 409, early.text
    assert http.post(f"{url}/default", headers=headers).status_code == 409
    assert http.post(f"{url}/refresh", headers=lending.other_lender.headers).status_code == 403
    assert http.post(f"{url}/refresh", headers=lending.coop.headers).status_code == 403
    assert http.post(f"{url}/refresh").status_code == 401
    assert http.post(f"{url}/explode", headers=headers).status_code == 422
    nobody = "/lenders/loans/0x" + "12" * 20 + "/refresh"
    assert http.post(nobody, headers=headers).status_code == 404
    state = http.get(url, headers=headers).json()
    now = int(lending.world.chain.w3.eth.get_block("latest")["timestamp"])
    _advance(lending, state["draw_deadline"] - now + 60)
    returned = http.post(f"{url}/return-unspent", headers=headers)
    assert returned.status_code == 200, returned.text
    assert returned.json()["returned_fen"] == 350_000
    _advance(lending, state["due_date"] - state["draw_deadline"] + 31 * DAY)
    refreshed = http.post(f"{url}/refresh", headers=headers)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["status"] == "overdue"
    row = http.get("/lenders/loans?status=overdue", headers=headers).json()["items"][0]
    assert row["escrow"] == spent and row["days_past_due"] >= 31
    assert http.post(f"{url}/write-off", headers=headers).status_code == 409  # not defaulted
    defaulted = http.post(f"{url}/default", headers=headers)
    assert defaulted.status_code == 200, defaulted.text
    assert defaulted.json()["status"] == "defaulted"
    written = http.post(f"{url}/write-off", headers=headers)
    assert written.status_code == 200 and written.json()["status"] == "written_off"
    assert http.get("/lenders/loans?status=open", headers=headers).json()["total"] == 1
    assert http.get("/lenders/loans?status=written_off", headers=headers).json()["total"] == 1


def _chain_now(lending: Lending) -> int:  # noqa: F811
    return int(lending.world.chain.w3.eth.get_block("latest")["timestamp"])


def test_servicing_many_loans_at_once_from_the_api_and_the_desk(lending):  # noqa: F811
    """The due list and the batch: refused loans say why and send nothing; the rest are sent
    together (on anvil, one block); the desk's buttons confirm first and act on what is due."""
    http, headers, w3 = lending.http, lending.lender.headers, lending.world.chain.w3
    chain = lending.world.chain
    expires = int(time.time()) + 365 * 86_400
    registrar = chain.sender(DEV_REGISTRAR)
    MerchantDesk(chain).approve(lending.merchant.address, "fertilizer", expires, registrar)
    budgets = {"fertilizer": 200_000, "seedlings": 100_000}
    loans = [lending.demo_loan(i, budgets, "immediate") for i in (1, 2, 3)]
    desk = LoanDesk(chain)
    for i, escrow in zip((1, 2, 3), loans, strict=True):  # drawn from: a return leaves it owing
        invoice = document_hash(f"FP-BATCH-{i}")
        merchant = lending.merchant.address
        desk.order_payment(escrow, merchant, "fertilizer", 50_000, invoice, lending.wallet(i))
    batch, due = "/lenders/servicing", "/lenders/servicing/due"
    early = http.post(batch, json={"action": "return-unspent", "escrows": loans[:2]},
                      headers=headers)  # fmt: skip
    assert early.status_code == 200, early.text
    assert early.json()["serviced"] == [] and len(early.json()["refused"]) == 2
    assert "EscrowDrawWindowOpen" in early.json()["refused"][0]["reason"]
    listed = http.get(due, params={"action": "return-unspent"}, headers=headers).json()
    assert not {x["escrow"] for x in listed["items"]} & set(loans)
    state = http.get(f"/lenders/loans/{loans[0]}", headers=headers).json()
    _advance(lending, state["draw_deadline"] - _chain_now(lending) + 60)
    listed = http.get(due, params={"action": "return-unspent"}, headers=headers).json()
    returnable = {x["escrow"] for x in listed["items"]}
    assert set(loans) <= returnable
    unknown = "0x" + "12" * 20
    body = {"action": "return-unspent", "escrows": [loans[0], loans[1], loans[0], unknown]}
    before = w3.eth.block_number
    out = http.post(batch, json=body, headers=headers)
    assert out.status_code == 200, out.text
    assert [x["escrow"] for x in out.json()["serviced"]] == loans[:2], out.text
    assert all(x["returned_fen"] == 250_000 for x in out.json()["serviced"])
    assert w3.eth.block_number == before + 1  # anvil: the two returns mined together
    reasons = {x["escrow"].lower(): x["reason"] for x in out.json()["refused"]}
    assert len(reasons) == 2 and "listed twice" in reasons[loans[0].lower()]
    assert reasons[unknown] == f"no loan escrow at {unknown}"
    nothing = http.post(batch, json={**body, "escrows": loans[1:2]}, headers=headers).json()
    assert "EscrowNothingToReturn" in nothing["refused"][0]["reason"]
    _advance(lending, state["due_date"] - _chain_now(lending) + 31 * DAY)
    overdue = http.get(due, params={"action": "refresh"}, headers=headers).json()["items"]
    assert set(loans) <= {x["escrow"] for x in overdue}
    page = _login(lending, lending.lender.key)
    home = page.get("/lender")
    assert 'id="service-return-unspent"' in home.text and 'id="service-refresh"' in home.text
    token = _csrf(home.text)
    mined = w3.eth.block_number
    asked = page.post("/lender/servicing/refresh", data={"csrf": token}, follow_redirects=False)
    assert asked.status_code == 200 and 'id="confirm"' in asked.text
    assert f"{len(overdue)} 笔贷款" in asked.text and w3.eth.block_number == mined  # nothing sent
    done = page.post("/lender/servicing/refresh", data={"csrf": token, "confirm": "yes"},
                     follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    assert done.headers["location"].endswith(f"?serviced=refresh&done={len(overdue)}&refused=0")
    shown = page.get(done.headers["location"]).text
    assert 'id="service-outcome"' in shown and f"已处理 {len(overdue)} 笔" in shown
    assert 'id="service-refresh"' not in shown  # nothing left to refresh
    statuses = {http.get(f"/lenders/loans/{e}", headers=headers).json()["status"] for e in loans}
    assert statuses == {"overdue"}
    again = http.post(batch, json={"action": "refresh", "escrows": loans[:1]}, headers=headers)
    assert "nothing to refresh" in again.json()["refused"][0]["reason"]
    assert page.post("/lender/servicing/write-off", data={"csrf": token}).status_code == 422
    for bad in ({"action": "refresh", "escrows": []}, {"action": "explode", "escrows": loans},
                {"action": "refresh", "escrows": loans[:1] * 201},
                {"action": "refresh", "escrows": ["0x12"]},
                {"action": "refresh", "escrows": loans, "x": 1}):  # fmt: skip
        assert http.post(batch, json=bad, headers=headers).status_code == 422, bad
    assert http.post(batch, json=body, headers=lending.coop.headers).status_code == 403
    assert http.post(batch, json=body).status_code == 401
    assert http.get(due, params={"action": "explode"}, headers=headers).status_code == 422
    theirs = http.post(batch, json={"action": "refresh", "escrows": loans[:1]},
                       headers=lending.other_lender.headers).json()  # fmt: skip
    assert "another lender" in theirs["refused"][0]["reason"]
