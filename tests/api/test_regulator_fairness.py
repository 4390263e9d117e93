"""The regulator's fairness report and page over real stored decisions (lending.credit.observed):
decisions stored as the credit store keeps them, farmers and loans as the indexer writes them."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.core.models import Role
from api.core.settings import ApiSettings
from api.main import create_app
from indexer.models import Farmer, Loan, LoanEvent
from lending.credit.decision import DecisionRecord, evaluate
from lending.credit.features import snapshot_from_profile
from lending.credit.policy import Outcome
from lending.credit.scorecard import load_model
from lending.credit.simulation import simulate_population
from lending.credit.store import CreditStore
from tests.api.browser import browser_page, screenshot, serve
from tests.api.conftest import PASSWORD
from tests.api.test_regulator import LOCAL, _org

DECIDED = datetime(2025, 12, 1, 1, 0, tzinfo=UTC)
LENDER = "0x" + "3c" * 20
DEFAULTED, REPAID = 4, 5


def _base() -> DecisionRecord:
    """One real evaluated decision; the members' decisions vary its farmer and outcome."""
    farmer = simulate_population(6, 1, "fairness").farmers[0]
    decision = evaluate(
        snapshot_from_profile(farmer.profile), model=load_model(), contract_date=date(2025, 12, 1)
    )
    return DecisionRecord(decision_id="0" * 32, lender=LENDER, decided_at=DECIDED,
                          decision=decision)  # fmt: skip


def _members(engine, coop: str, approved: int, total: int, start: int) -> list[str]:
    """`total` members of the cooperative at `coop` with decisions, the first `approved`
    approved."""
    base, store, ids = _base(), CreditStore(engine), []
    rows = []
    for k in range(total):
        farmer = f"0x{start + k:064x}"
        outcome = Outcome.APPROVE if k < approved else Outcome.DECLINE
        decision = base.decision.model_copy(update={
            "farmer_id": farmer, "outcome": outcome,
            "limit_fen": 1_000_000 if outcome is Outcome.APPROVE else 0,
        })  # fmt: skip
        store.insert_decision(DecisionRecord(decision_id=uuid.uuid4().hex, lender=LENDER,
                                             decided_at=DECIDED, decision=decision))  # fmt: skip
        rows.append(Farmer(farmer=bytes.fromhex(farmer[2:]), wallet=None, block_number=1,
                           cooperative=bytes.fromhex(coop[2:]), log_index=start + k,
                           block_timestamp=0))  # fmt: skip
        ids.append(farmer)
    with Session(engine) as session:
        session.add_all(rows)
        session.commit()
    return ids


def _loan(engine, loan_id: int, farmer: str, status: int) -> None:
    at = int(DECIDED.timestamp()) + 3600
    with Session(engine) as session:
        session.add(Loan(loan_id=loan_id, escrow=bytes(20), farmer=bytes.fromhex(farmer[2:]),
                         lender=bytes.fromhex(LENDER[2:]), borrower=bytes(20), agent=bytes(20),
                         principal_fen=1_000_000, block_number=50 + loan_id, log_index=0,
                         block_timestamp=at))  # fmt: skip
        session.add(LoanEvent(block_number=50 + loan_id, log_index=1, loan_id=loan_id,
                              kind="status", status=status, block_timestamp=at + 1))  # fmt: skip
        session.commit()


@pytest.fixture(scope="module")
def fair(tmp_path_factory):
    """Two cooperatives: 30 of 40 members approved in one, 12 of 40 in the other."""
    tmp = tmp_path_factory.mktemp("regulator-fairness")
    settings = ApiSettings(environment="test", database_url=f"sqlite:///{tmp / 'api.db'}",
                           data_dir=tmp, org_keystore_password=PASSWORD,
                           rate_limit_per_minute=100_000)  # fmt: skip
    app = create_app(settings)
    regulator = _org(app, settings, Role.REGULATOR, "恩施金融监管分局")
    lender = _org(app, settings, Role.LENDER, "Enshi Rural Credit Union")
    yulu = _org(app, settings, Role.COOPERATIVE, "Yulu Cooperative")
    wufeng = _org(app, settings, Role.COOPERATIVE, "Wufeng Cooperative")
    engine = app.state.engine
    first = _members(engine, yulu.address.lower(), 30, 40, 1)
    _members(engine, wufeng.address.lower(), 12, 40, 1000)
    _loan(engine, 1, first[0], DEFAULTED)
    _loan(engine, 2, first[1], REPAID)
    with TestClient(app, client=LOCAL) as http:
        yield app, http, regulator, lender


def test_the_report_over_stored_decisions(fair):
    _, http, regulator, lender = fair
    found = http.get("/regulator/fairness", headers=regulator.headers)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["decisions"] == 80 and body["approved"] == 42
    (approval,) = [c for c in body["approval"] if c["attribute"] == "cooperative"]
    assert approval["verdict"] == "failed"  # 0.30 / 0.75 = 0.40 < 0.80
    assert body["loans"]["defaulted"] == 1 and body["loans"]["repaid"] == 1
    assert http.get("/regulator/fairness", headers=lender.headers).status_code == 403
    assert http.get("/regulator/fairness").status_code == 401


def test_the_page_draws_rates_intervals_and_the_four_fifths_line(fair):
    app, _, regulator, _ = fair
    with TestClient(app, client=LOCAL) as browser:
        browser.post("/login", data={"api_key": regulator.key})
        page = browser.get("/reg/fairness")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'id="approval-chart-0"' in html and 'class="threshold"' in html
    assert "Yulu Cooperative" in html and "Wufeng Cooperative" in html  # names, not hex
    assert "75.0%" in html and "30.0%" in html and "未通过 failed" in html
    assert 'id="default-chart-0"' in html and 'id="limit-chart"' in html
    assert len(re.findall(r"<svg ", html)) >= 3


def test_the_page_fits_a_phone(fair):
    app, _, regulator, _ = fair
    with serve(app) as base, browser_page() as page:
        page.goto(base + "/login")
        page.fill("#api_key", regulator.key)
        page.click("#login")
        page.wait_for_selector("#logout")
        page.click("#nav a[href='/reg/fairness']")
        page.wait_for_selector("#approval-chart-0")
        assert "未通过" in page.inner_text("#overall")
        box = page.locator("#approval-chart-0").bounding_box()
        assert box is not None and box["width"] <= 390
        screenshot(page, "regulator-fairness")
        page.set_viewport_size({"width": 1280, "height": 900})
        screenshot(page, "regulator-fairness-desktop")


def test_an_operators_groups_file_adds_its_attributes(fair):
    app, _, regulator, _ = fair
    rows = ["farmer_id,性别"] + [
        f"0x{k:064x},{'女' if k % 2 else '男'}" for k in (*range(1, 41), *range(1000, 1040))
    ]
    gbk = ("\n".join(rows) + "\n").encode("gbk")  # what a Chinese spreadsheet saves
    with TestClient(app, client=LOCAL) as browser:
        browser.post("/login", data={"api_key": regulator.key})
        token = re.search(
            r'name="csrf" value="([0-9a-f]+)"', browser.get("/reg/fairness").text
        ).group(1)  # type: ignore[union-attr]
        page = browser.post("/reg/fairness", data={"csrf": token},
                            files={"groups": ("性别.csv", gbk, "text/csv")})  # fmt: skip
        assert page.status_code == 200, page.text
        assert 'id="groups-used"' in page.text and "性别" in page.text
        assert "性别 × cooperative" in page.text or "cooperative × 性别" in page.text
        binary = {"groups": ("x.csv", b"\x00\x01\x02" * 50, "text/csv")}
        bad = browser.post("/reg/fairness", data={"csrf": token}, files=binary)
        assert bad.status_code == 422 and 'id="error"' in bad.text
        forged = browser.post("/reg/fairness", data={"csrf": "0" * 64},
                              files={"groups": ("性别.csv", gbk, "text/csv")})  # fmt: skip
        assert forged.status_code == 403


def test_the_api_takes_a_groups_file_too(fair):
    _, http, regulator, _ = fair
    csv = "farmer_id,village\n" + "".join(f"0x{k:064x},{'A' if k < 20 else 'B'}\n"
                                          for k in range(1, 41))  # fmt: skip
    found = http.post("/regulator/fairness", headers=regulator.headers,
                      files={"groups": ("villages.csv", csv.encode(), "text/csv")})  # fmt: skip
    assert found.status_code == 200, found.text
    attributes = {c["attribute"] for c in found.json()["approval"]}
    assert {"cooperative", "village"} <= attributes
    bad = http.post("/regulator/fairness", headers=regulator.headers,
                    files={"groups": ("x.csv", b"id,village\n1,A\n", "text/csv")})  # fmt: skip
    assert bad.status_code == 422 and "farmer_id" in bad.text
