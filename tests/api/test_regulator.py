"""Regulator routes and pages on a real SQLite or PostgreSQL database: a real scan over a small
indexed world (rows as the indexer writes them), alerts kept by risk.alerts, their review
through HTTP, the pages, the metrics and hostile input.

No chain is needed: the regulator reads the indexed tables and the alerts, and writes only the
review trail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from api.core.db import open_database
from api.core.models import Organisation, OrganisationCreate, Role
from api.core.organisations import create_organisation
from api.core.settings import ApiSettings
from api.main import create_app
from api.regulator.graph import money_graph
from api.regulator.pages import evidence_label, subject_label
from indexer.db import MIGRATIONS, migrate
from indexer.models import Farmer, Loan, TokenTransfer
from risk.alerts import record_findings
from risk.rules import Evidence, Finding, Hop
from tests.api.conftest import DATABASES, PASSWORD, database_for
from tests.api.test_cooperatives import Org

DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01 08:00 China time
ESCROW = bytes.fromhex("e5" * 20)
FRONT = bytes.fromhex("f7" * 20)  # an unknown wallet between the merchant and the farmer
BORROWER = bytes.fromhex("b0" * 20)
FARMER_ID = bytes.fromhex("fa" * 32)
LOCAL = ("127.0.0.1", 50000)
REGULATOR_NAME = "恩施金融监管分局"


@dataclass
class Reg:
    """The module's app, its client and organisations."""

    app: object
    http: TestClient
    regulator: Org
    lender: Org
    merchant: Org

    @property
    def engine(self):
        return self.app.state.engine  # type: ignore[attr-defined]


def _org(app, settings: ApiSettings, role: Role, name: str) -> Org:
    """An organisation made as `tealedger admin create-org` makes one (no chain needed)."""
    with Session(app.state.engine) as session:
        org, key = create_organisation(
            session, OrganisationCreate(name=name, role=role), settings.keystore_dir, PASSWORD
        )
    assert org.id is not None
    return Org(org.id, role, key.secret, org.chain_address, org.name)


@pytest.fixture(scope="module")
def reg(tmp_path_factory, world_database_url) -> Iterator[Reg]:
    """The app on SQLite and on PostgreSQL (its `role` enum learns REGULATOR in 0011)."""
    tmp = tmp_path_factory.mktemp("regulator-api")
    settings = ApiSettings(
        environment="test", database_url=world_database_url, data_dir=tmp,
        org_keystore_password=PASSWORD, rate_limit_per_minute=100_000,
    )  # fmt: skip
    app = create_app(settings)
    with TestClient(app, client=LOCAL) as http:
        yield Reg(
            app, http,
            _org(app, settings, Role.REGULATOR, REGULATOR_NAME),
            _org(app, settings, Role.LENDER, "Enshi Rural Credit Union"),
            _org(app, settings, Role.MERCHANT, "Green Leaf Fertilizer"),
        )  # fmt: skip


def _raw(address: str) -> bytes:
    return bytes.fromhex(address[2:])


def index_cash_out(engine: Engine, lender: bytes, merchant: bytes) -> None:
    """A loan whose merchant payment came back to the borrower through a front wallet, as the
    indexer writes it."""
    moves = [
        (lender, ESCROW, 500_000, T0 + 100),
        (ESCROW, merchant, 300_000, T0 + 2 * DAY),
        (merchant, FRONT, 280_000, T0 + 3 * DAY),
        (FRONT, BORROWER, 270_000, T0 + 4 * DAY),
    ]
    with Session(engine) as session:
        session.add(Farmer(farmer=FARMER_ID, cooperative=bytes(20), wallet=BORROWER,
                           block_number=5, log_index=0, block_timestamp=T0 - 90 * DAY))  # fmt: skip
        session.add(Loan(
            loan_id=7, escrow=ESCROW, farmer=FARMER_ID, lender=lender, borrower=BORROWER,
            agent=bytes(20), principal_fen=500_000, block_number=10, log_index=0,
            block_timestamp=T0,
        ))  # fmt: skip
        for i, (sender, recipient, fen, at) in enumerate(moves):
            session.add(TokenTransfer(
                block_number=11 + i, log_index=0, token=bytes(20), sender=sender,
                recipient=recipient, amount_fen=fen, tx_hash=bytes([i + 1]) * 32,
                block_timestamp=at,
            ))  # fmt: skip
        session.commit()


def _hop(sender: str, recipient: str, fen: int, at: int, n: int) -> Hop:
    return Hop(tx="0x" + f"{n:02x}" * 32, block=n, at=at, sender=sender,
               sender_name="0x" + sender[2:], recipient=recipient,
               recipient_name="0x" + recipient[2:], amount_fen=fen)  # fmt: skip


def _finding(key: str, rule: str = "cash_out", severity: str = "medium") -> Finding:
    """A finding as a detector reports one (kept through risk.alerts.record_findings)."""
    a, b, c = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20
    return Finding(
        rule=rule, key=key, subject="wallet:" + a, severity=severity,
        explanation_zh="测试用的发现。", explanation_en="A finding made by the test.",
        evidence=Evidence(path=(_hop(a, b, 12_345, T0, 1), _hop(b, c, 10_000, T0 + DAY, 2),
                                _hop(c, a, 9_000, T0 + 2 * DAY, 3)),  # a circle
                          amounts_fen={"moved": 12_345}, figures={"share": "0.73"}),
        observed_at=T0 + 2 * DAY,
    )  # fmt: skip


def _alert_id(reg: Reg, key: str) -> int:
    record_findings(reg.engine, [_finding(key)])
    listed = reg.http.get("/regulator/alerts?limit=500", headers=reg.regulator.headers).json()
    (found,) = [a for a in listed["items"] if a["key"] == key]
    return found["id"]


def _status(reg: Reg, alert_id: int, status: str, reason: str | None):
    body = {"status": status} | ({"reason": reason} if reason is not None else {})
    return reg.http.post(f"/regulator/alerts/{alert_id}/status", json=body,
                         headers=reg.regulator.headers)  # fmt: skip


# ------------------------------------------------------------------------------------ tests


def test_a_scan_finds_the_cash_out_and_names_the_wallets(reg):
    index_cash_out(reg.engine, _raw(reg.lender.address), _raw(reg.merchant.address))
    headers = reg.regulator.headers
    first = reg.http.post("/regulator/scans", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["new"] == 1 and first.json()["by_rule"] == {"cash_out": 1}
    again = reg.http.post("/regulator/scans", json={"rules": ["cash_out"]}, headers=headers)
    assert again.json()["new"] == 0 and again.json()["seen_again"] == 1
    listed = reg.http.get("/regulator/alerts?rule=cash_out", headers=headers).json()
    (alert,) = listed["items"]
    assert alert["subject"] == "loan:7" and alert["status"] == "open"
    assert alert["rule_title_zh"] == "经商户套现"
    detail = reg.http.get(f"/regulator/alerts/{alert['id']}", headers=headers).json()
    path = detail["evidence"]["path"]
    assert [h["amount_fen"] for h in path] == [300_000, 280_000, 270_000]
    assert path[0]["recipient_name"] == "Green Leaf Fertilizer"  # the organisation's name
    assert detail["allowed"] == ["confirmed", "dismissed", "reviewed"]
    assert detail["changes"] == []


def test_an_unknown_rule_is_refused_by_the_api_and_the_cli_service(reg):
    refused = reg.http.post("/regulator/scans", json={"rules": ["no_such_rule"]},
                            headers=reg.regulator.headers)  # fmt: skip
    assert refused.status_code == 422 and "no_such_rule" in refused.text
    assert "cash_out" in refused.text  # names the rules there are


def test_the_review_workflow_through_http(reg):
    alert_id = _alert_id(reg, "test:workflow")
    reviewed = _status(reg, alert_id, "reviewed", "looked at the path")
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["alert"]["status"] == "reviewed"
    assert reviewed.json()["allowed"] == ["confirmed", "dismissed"]
    for blank in (None, "", "   "):
        refused = _status(reg, alert_id, "dismissed", blank)
        assert refused.status_code == 422, (blank, refused.text)
    dismissed = _status(reg, alert_id, "dismissed", "the merchant refunded a returned order")
    assert dismissed.status_code == 200 and dismissed.json()["alert"]["status"] == "dismissed"
    wrong = _status(reg, alert_id, "confirmed", "changed my mind")
    assert wrong.status_code == 409
    assert "dismissed cannot become confirmed" in wrong.json()["detail"]
    assert _status(reg, alert_id, "reviewed", "reopened: a second refund").status_code == 200
    confirmed = _status(reg, alert_id, "confirmed", "the refunds were kickbacks")
    assert confirmed.status_code == 200
    detail = confirmed.json()
    trail = [(c["from_status"], c["to_status"], c["by"]) for c in detail["changes"]]
    assert trail == [
        ("open", "reviewed", REGULATOR_NAME), ("reviewed", "dismissed", REGULATOR_NAME),
        ("dismissed", "reviewed", REGULATOR_NAME), ("reviewed", "confirmed", REGULATOR_NAME),
    ]  # fmt: skip
    assert detail["changes"][1]["reason"] == "the merchant refunded a returned order"
    confirmed_only = reg.http.get("/regulator/alerts?status=confirmed",
                                  headers=reg.regulator.headers).json()  # fmt: skip
    assert alert_id in [a["id"] for a in confirmed_only["items"]]


def test_only_regulators(reg):
    for path in ("/regulator/alerts", "/regulator/rules", "/regulator/counts"):
        assert reg.http.get(path, headers=reg.lender.headers).status_code == 403
        assert reg.http.get(path).status_code == 401
    assert reg.http.post("/regulator/scans", headers=reg.merchant.headers).status_code == 403
    forbidden = reg.http.post("/regulator/alerts/1/status", headers=reg.lender.headers,
                              json={"status": "reviewed", "reason": "x"})  # fmt: skip
    assert forbidden.status_code == 403


def test_rules_and_counts(reg):
    rules = reg.http.get("/regulator/rules", headers=reg.regulator.headers).json()
    cash = next(r for r in rules if r["name"] == "cash_out")
    assert cash["title_en"] == "Cash-out through a merchant" and "blind" not in cash["name"]
    counts = reg.http.get("/regulator/counts", headers=reg.regulator.headers).json()
    assert counts["total"] == sum(counts["by_status"].values()) >= 1


def test_unknown_alert_is_404(reg):
    for path in ("/regulator/alerts/999999", "/regulator/alerts/999999/status"):
        if path.endswith("status"):
            answer = reg.http.post(path, json={"status": "reviewed", "reason": "x"},
                                   headers=reg.regulator.headers)  # fmt: skip
        else:
            answer = reg.http.get(path, headers=reg.regulator.headers)
        assert answer.status_code == 404 and "no alert 999999" in answer.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/regulator/alerts/" + "9" * 40, None),
        ("GET", "/regulator/alerts/NaN", None),
        ("GET", "/regulator/alerts/-1", None),
        ("GET", "/regulator/alerts?limit=NaN", None),
        ("GET", "/regulator/alerts?offset=" + "9" * 30, None),
        ("GET", "/regulator/alerts?status=bogus", None),
        ("GET", "/regulator/alerts?rule=cash%00out", None),
        ("GET", "/regulator/alerts?rule=" + "a" * 500, None),
        ("GET", "/regulator/alerts?stauts=open", None),
        ("POST", "/regulator/alerts/1/status", {"status": "reviewed", "reason": "bad\x00reason"}),
        ("POST", "/regulator/alerts/1/status", {"status": "reviewed", "reason": "\u202eevil"}),
        ("POST", "/regulator/alerts/1/status", {"status": "reviewed", "reason": "x" * 2001}),
        ("POST", "/regulator/alerts/1/status", {"status": "closed", "reason": "x"}),
        ("POST", "/regulator/alerts/1/status", '{"status": NaN, "reason": "x"}'),
        ("POST", "/regulator/alerts/1/status", '{"status": "reviewed", "reason": "x"'),
        ("POST", "/regulator/alerts/1/status", {"status": "reviewed", "reason": 12}),
        ("POST", "/regulator/alerts/1/status", ["reviewed"]),
        ("POST", "/regulator/scans", {"rules": ["cash_out\x00"]}),
        ("POST", "/regulator/scans", {"rules": "cash_out"}),
        ("POST", "/regulator/scans", {"rules": ["x"] * 51}),
    ],
)
def test_hostile_input_is_a_4xx_never_a_500(reg, method, path, body):
    headers = reg.regulator.headers | {"Content-Type": "application/json"}
    if isinstance(body, str):  # JSON no encoder writes: NaN, cut off
        answer = reg.http.request(method, path, content=body, headers=headers)
    else:
        answer = reg.http.request(method, path, json=body, headers=headers)
    assert 400 <= answer.status_code < 500, answer.text
    answer.json()  # always a JSON body


def test_metrics_count_alerts_by_rule_and_status(reg):
    _alert_id(reg, "test:metrics")
    text = reg.http.get("/metrics").text
    counts = reg.http.get("/regulator/counts", headers=reg.regulator.headers).json()
    for row in counts["rows"]:
        line = f'tealedger_risk_alerts{{rule="{row["rule"]}",status="{row["status"]}"}} '
        assert f"{line}{float(row['count'])}" in text, (line, text)


# ------------------------------------------------------------------------------------ pages


def _login(reg: Reg, org: Org) -> TestClient:
    """A browser-like client logged in as `org` (its own cookies)."""
    client = TestClient(reg.app, client=LOCAL)
    answer = client.post("/login", data={"api_key": org.key}, follow_redirects=False)
    assert answer.status_code == 303
    return client


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)  # type: ignore[union-attr]


def test_pages_overview_list_and_alert_with_its_graph(reg):
    alert_id = _alert_id(reg, "test:pages")
    with _login(reg, reg.regulator) as browser:
        home = browser.get("/reg")
        assert home.status_code == 200 and "风险总览" in home.text and "scan-now" in home.text
        assert REGULATOR_NAME in home.text and "监管机构" in home.text  # who is logged in
        listed = browser.get("/reg/alerts?status=open&rule=")
        assert listed.status_code == 200 and f"/reg/alerts/{alert_id}" in listed.text
        assert "待处理 open" in listed.text and "经商户套现" in listed.text
        assert browser.get("/reg/alerts?status=bogus").status_code == 422
        page = browser.get(f"/reg/alerts/{alert_id}")
        assert page.status_code == 200
        assert '<svg id="money-graph"' in page.text and "¥123.45" in page.text
        assert "2026-01-02" in page.text  # the second hop's China date on its edge
        assert browser.get("/reg/alerts/99999999").status_code == 404
        assert browser.get("/reg/alerts/" + "9" * 40).status_code == 422
        token = _csrf(page.text)
        url = f"/reg/alerts/{alert_id}/status"
        blank = browser.post(url, data={"csrf": token, "status": "dismissed", "reason": " "})
        assert blank.status_code == 422 and "reason" in unescape(blank.text)
        forged = browser.post(url, data={"csrf": "0" * 64, "status": "dismissed", "reason": "x"})
        assert forged.status_code == 403
        form = {"csrf": token, "status": "dismissed", "reason": "a supplier's refund"}
        done = browser.post(url, data=form, follow_redirects=False)
        assert done.status_code == 303
        after = browser.get(done.headers["location"])
        assert "已排除 dismissed" in after.text and "a supplier&#39;s refund" in after.text
        assert 'id="step-reviewed"' in after.text and "重新打开" in after.text  # reopen
        scanned = browser.post("/reg/scans", data={"csrf": token}, follow_redirects=True)
        assert scanned.status_code == 200 and 'id="scanned"' in scanned.text
    with _login(reg, reg.lender) as lender:
        assert lender.get("/reg").status_code == 403
        assert lender.get(f"/reg/alerts/{alert_id}").status_code == 403
    assert TestClient(reg.app).get("/reg", follow_redirects=False).status_code == 303


def test_the_graph_names_wallets_and_draws_each_transfer():
    svg = money_graph(_finding("graph").evidence, {"0x" + "b2" * 20: "Green Leaf Fertilizer"})
    assert svg is not None
    assert svg.count('class="edge"') == 3 and svg.count('class="node"') == 3
    assert "Green Leaf Fertilizer" in svg and "¥90.00 · 2026-01-03" in svg
    assert money_graph(Evidence()) is None
    hostile = _finding("graph")
    hop = hostile.evidence.path[0].model_copy(update={"sender_name": "<script>x</script>"})
    evil = Evidence(path=(hop,))
    assert "<script>" not in str(money_graph(evil))


def test_a_regulator_organisation_is_made_like_any_other(reg):
    with Session(reg.engine) as session:
        row = session.get(Organisation, reg.regulator.id)
    assert row is not None and row.role is Role.REGULATOR and row.role.label_zh == "监管机构"
    made = reg.http.post("/admin/organisations", json={"name": "央行恩施支行", "role": "regulator"},
                         headers=_admin(reg).headers)  # fmt: skip
    assert made.status_code == 201, made.text


def _admin(reg: Reg) -> Org:
    settings = reg.app.state.settings  # type: ignore[attr-defined]
    return _org(reg.app, settings, Role.ADMIN, "platform")


@pytest.mark.parametrize("kind", DATABASES)
def test_0011_teaches_the_role_enum_and_goes_back(kind, tmp_path, pg_databases):
    engine = open_database(database_for(kind, tmp_path, pg_databases))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
    regulator = Organisation(name="监管", role=Role.REGULATOR, chain_address="0x" + "11" * 20)
    if kind == "postgresql":  # SQLite keeps the name as text: nothing to teach it
        with Session(engine) as session, pytest.raises(DBAPIError):
            session.add(regulator.model_copy())
            session.commit()
    migrate(engine)
    with Session(engine) as session:
        session.add(regulator)
        session.commit()
        assert session.get(Organisation, regulator.id).role is Role.REGULATOR  # type: ignore[union-attr]


def test_subjects_and_evidence_names_are_read_in_chinese_first():
    assert subject_label("loan:7") == "贷款 loan #7"
    assert subject_label("farmer:0x" + "ab" * 32) == "茶农 farmer 0xababab…abab"
    assert subject_label("odd") == "odd"
    assert evidence_label("returned") == "回流 returned" and evidence_label("x_y") == "x_y"


def test_a_wallets_money_is_followed_with_names_and_reasons(reg):
    wallet, onward = bytes.fromhex("d1" * 20), bytes.fromhex("d2" * 20)
    shop = _raw(reg.merchant.address)
    with Session(reg.engine) as session:
        for i, (sender, recipient, fen) in enumerate(((shop, wallet, 50_000),
                                                      (wallet, onward, 45_000))):  # fmt: skip
            session.add(TokenTransfer(
                block_number=500 + i, log_index=0, token=bytes(20), sender=sender,
                recipient=recipient, amount_fen=fen, tx_hash=bytes([0xD0 + i]) * 32,
                block_timestamp=T0 + (10 + i) * DAY,
            ))  # fmt: skip
        session.commit()
    url = "/regulator/wallets/0x" + wallet.hex() + "/flows"
    flows = reg.http.get(url, headers=reg.regulator.headers)
    assert flows.status_code == 200, flows.text
    body = flows.json()
    assert (body["total"], body["in_fen"], body["out_fen"]) == (2, 50_000, 45_000)
    out, came = body["items"]  # newest first
    assert (out["direction"], out["counterparty"], out["amount_fen"]) == (
        "out",
        "0x" + onward.hex(),
        45_000,
    )
    assert came["counterparty_name"] == "Green Leaf Fertilizer" and came["why"] == "direct"
    assert came["why_zh"] == "直接转账"
    paged = reg.http.get(url + "?limit=1&offset=1", headers=reg.regulator.headers).json()
    assert [i["direction"] for i in paged["items"]] == ["in"] and paged["total"] == 2
    assert reg.http.get("/regulator/wallets/0x12/flows", headers=reg.regulator.headers
                        ).status_code == 422  # fmt: skip
    assert reg.http.get(url, headers=reg.lender.headers).status_code == 403
    with _login(reg, reg.regulator) as browser:
        page = browser.get("/reg/wallets/0x" + wallet.hex())
        assert page.status_code == 200
        assert "Green Leaf Fertilizer" in page.text and "直接转账" in page.text
        assert f'href="/reg/wallets/0x{shop.hex()}"' in page.text  # follow it onward
