"""`tealedger risk scan`: the regulator's scan from the command line, on the service's database."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from api.core.db import open_database
from risk.alerts import list_alerts
from tealedger.cli import app
from tests.api.test_regulator import index_cash_out

LENDER, MERCHANT = bytes.fromhex("1e" * 20), bytes.fromhex("3e" * 20)


@pytest.fixture
def database(tmp_path, monkeypatch) -> str:
    """An indexed database with one cash-out, found through $DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'tealedger.db'}"
    index_cash_out(open_database(url), LENDER, MERCHANT)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TEALEDGER_DATA_DIR", str(tmp_path))
    return url


def test_scan_prints_the_summary_and_keeps_the_alerts(database):
    runner = CliRunner()
    first = runner.invoke(app, ["risk", "scan"])
    assert first.exit_code == 0, first.output
    assert "1 finding(s), 1 new alert(s), 0 seen again" in first.output
    assert "cash_out" in first.output
    again = runner.invoke(app, ["risk", "scan", "--rule", "cash_out", "--json"])
    assert again.exit_code == 0, again.output
    report = json.loads(again.output)
    assert report["new"] == 0 and report["seen_again"] == 1
    assert report["by_rule"] == {"cash_out": 1} and report["rules"] == ["cash_out"]
    alerts, total = list_alerts(open_database(database))
    assert total == 1 and alerts[0].subject == "loan:7" and alerts[0].status == "open"


def test_an_unknown_rule_is_a_usage_error(database):
    result = CliRunner().invoke(app, ["risk", "scan", "--rule", "cash_out", "--rule", "nope"])
    assert result.exit_code == 2
    assert "unknown rule nope" in result.output and "cash_out" in result.output
    _, total = list_alerts(open_database(database))
    assert total == 0  # nothing was scanned


def test_the_admin_creates_a_regulator_from_the_command_line(database):
    result = CliRunner().invoke(
        app, ["admin", "create-org", "--name", "恩施金融监管分局", "--role", "regulator"]
    )
    assert result.exit_code == 0, result.output
    assert "(regulator)" in result.output and "API key (shown once)" in result.output
