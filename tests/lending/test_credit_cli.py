"""`tealedger credit explain|fairness` through typer's CliRunner on an app built here."""

import json
from datetime import UTC, date, datetime

import pytest
import typer
from typer.testing import CliRunner

from lending.credit.access import MappingProfileReader, StaticConsent
from lending.credit.cli import register
from lending.credit.decision import decide
from lending.credit.simulation import simulate_population
from lending.credit.store import CreditStore, store_for_url
from lending.errors import ExitCode
from tests.lending.cli_root import cli_root

LENDER = "0x" + "3c" * 20
FARMERS = simulate_population(6, 20, "fairness").farmers


@pytest.fixture
def app() -> typer.Typer:
    return cli_root(register)


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'credit.db'}"


@pytest.fixture
def store(db) -> CreditStore:
    return store_for_url(db, create=True)


def _decide(store, farmer):
    return decide(
        farmer.farmer_id, LENDER,
        profiles=MappingProfileReader({farmer.farmer_id: farmer.profile}),
        consent=StaticConsent([(farmer.farmer_id, LENDER)]),
        access_log=store, store=store, contract_date=date(2025, 12, 1),
        now=datetime(2025, 12, 1, 1, 0, tzinfo=UTC),
    )  # fmt: skip


def run(app, args):
    return CliRunner().invoke(app, args)


def test_explain_replays_and_matches(app, db, store):
    record = _decide(store, FARMERS[0])
    result = run(app, ["credit", "explain", record.decision_id, "--db", db])
    assert result.exit_code == 0, result.output
    d = record.decision
    assert "Replay: MATCH" in result.output
    assert d.model_version in result.output
    assert f"Score    {d.score} -> band {d.band}" in result.output
    for reason in d.reasons:
        assert reason.text_en in result.output and reason.text_zh in result.output


def test_explain_by_prefix_with_the_profile(app, db, store, tmp_path):
    record = _decide(store, FARMERS[1])
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(FARMERS[1].profile))
    result = run(app, ["credit", "explain", record.decision_id[:12], "--db", db,
                       "--profile", str(profile)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Replay: MATCH" in result.output


def test_explain_json(app, db, store):
    record = _decide(store, FARMERS[2])
    result = run(app, ["credit", "explain", record.decision_id, "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["replay"]["matches"] is True
    assert doc["content_hash"] == record.content_hash
    assert doc["record"]["decision"]["limit_fen"] == record.decision.limit_fen


def test_explain_mismatch_fails_with_a_named_error(app, db, store):
    record = _decide(store, FARMERS[3])
    wrong = record.decision.model_copy(update={"limit_fen": record.decision.limit_fen + 10_000})
    forged = record.model_copy(update={"decision_id": "f" * 32, "decision": wrong})
    store.insert_decision(forged)
    result = run(app, ["credit", "explain", forged.decision_id, "--db", db])
    assert result.exit_code == ExitCode.REPLAY_MISMATCH == 4
    assert "MISMATCH in limit_fen" in result.stdout
    assert "ReplayMismatchError" in result.stderr


def test_explain_unknown_decision(app, db, store):
    result = run(app, ["credit", "explain", "0123456789abcdef", "--db", db])
    assert result.exit_code == 2
    assert "DecisionNotFoundError" in result.stderr


def test_explain_unreadable_database(app, tmp_path):
    db = f"sqlite:///{tmp_path / 'missing' / 'x.db'}"
    result = run(app, ["credit", "explain", "0123456789abcdef", "--db", db])
    assert result.exit_code == 2
    assert "cannot read decision" in result.stderr


def test_fairness_passes(app):
    result = run(app, ["credit", "fairness"])  # default population: 20,000 farmers
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.stdout and "approval_rate" in result.stdout


def test_fairness_fails_loudly_on_the_proxy_biased_variant(app):
    result = run(app, ["credit", "fairness", "--n", "3000", "--proxy-bias"])
    assert result.exit_code == ExitCode.FAIRNESS_FAILED == 3
    assert "FAIL" in result.stdout
    assert result.stderr.startswith("FairnessThresholdError:")
    assert "ethnicity" in result.stderr


def test_fairness_json(app):
    result = run(app, ["credit", "fairness", "--n", "1500", "--json", "--approval-threshold",
                       "0.5", "--limit-threshold", "0.5"])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["thresholds"]["approval_ratio_min"] == "0.5"
    assert {c["attribute"] for c in doc["checks"]} == {"gender", "ethnicity", "age_band", "village"}


@pytest.mark.parametrize("value", ["abc", "0", "1.5"])
def test_fairness_bad_threshold(app, value):
    result = run(app, ["credit", "fairness", "--n", "500", "--approval-threshold", value])
    assert result.exit_code == 2
    assert "approval-threshold" in result.stderr


@pytest.mark.parametrize("n", ["100", "999"])
def test_fairness_on_too_few_farmers_is_a_usage_error_not_a_traceback(app, n):
    # Issue 17: --n 100 ended in a ValueError traceback, exit 1 like a real failure.
    result = run(app, ["credit", "fairness", "--n", n])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("FairnessPopulationTooSmallError:")
    assert "the minimum is 1,000" in result.stderr


def test_fairness_without_two_comparable_groups_is_a_usage_error(app):
    result = run(app, ["credit", "fairness", "--n", "1000", "--min-group-size", "900"])
    assert result.exit_code == ExitCode.USAGE
    assert "FairnessPopulationTooSmallError" in result.stderr and "--n" in result.stderr


def test_every_outcome_has_its_own_exit_code():
    codes = [c.value for c in ExitCode]
    assert len(set(codes)) == len(codes)
    # 1 is Python's exit on an unhandled exception: no deliberate outcome shares it.
    assert ExitCode.ERROR == 1 and ExitCode.USAGE == 2  # click's usage errors exit 2 too
