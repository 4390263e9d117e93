"""Fairness on real decisions: stored decisions in a migrated SQLite database, indexed farmers
and loans inserted as the indexer writes them, and `tealedger credit fairness --from-store`."""

import json
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from sqlmodel import Session
from typer.testing import CliRunner

from indexer.models import Farmer, Loan, LoanEvent
from lending.credit.cli import register
from lending.credit.decision import DecisionRecord, evaluate
from lending.credit.features import snapshot_from_profile
from lending.credit.observed import (
    COOPERATIVE,
    LoanState,
    ObservedDecision,
    ObservedThresholds,
    Verdict,
    income_edges,
    katz_interval,
    loan_state,
    mean_interval,
    observed_fairness,
    observed_report,
    parse_groups,
    read_groups_file,
    wilson,
)
from lending.credit.policy import Outcome
from lending.credit.scorecard import load_model
from lending.credit.simulation import simulate_population
from lending.credit.store import store_for_url
from lending.errors import ExitCode, FairnessThresholdError, GroupsFileError
from tests.lending.cli_root import cli_root

LENDER = "0x" + "3c" * 20
OTHER_LENDER = "0x" + "4d" * 20
COOP_A = "0x" + "aa" * 20
COOP_B = "0x" + "bb" * 20
COOP_C = "0x" + "cc" * 20
DECIDED = datetime(2025, 12, 1, 1, 0, tzinfo=UTC)
DEFAULTED, REPAID, CANCELLED, ACTIVE = 4, 5, 7, 2


@pytest.fixture(scope="module")
def base() -> DecisionRecord:
    """One real evaluated decision; the population varies its outcome, band, limit, income."""
    farmer = simulate_population(6, 1, "fairness").farmers[0]
    decision = evaluate(
        snapshot_from_profile(farmer.profile), model=load_model(), contract_date=date(2025, 12, 1)
    )
    return DecisionRecord(
        decision_id="0" * 32, lender=LENDER, decided_at=DECIDED, decision=decision
    )


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'tealedger.db'}"


@pytest.fixture
def world(url, base):
    return World(url, base)


def fid(i: int) -> str:
    return f"0x{i:064x}"


class World:
    """A migrated database (credit store and indexer tables) and helpers to fill it."""

    def __init__(self, url: str, base: DecisionRecord) -> None:
        self.store = store_for_url(url, create=True)
        self.engine = self.store.engine
        self.base = base
        self.next_farmer = 1
        self.next_loan = 1
        self.block = 100

    def decide(
        self,
        farmer: str,
        outcome: Outcome,
        *,
        lender: str = LENDER,
        band: str = "A",
        limit: int = 1_000_000,
        income: int = 5_000_000,
        at: datetime = DECIDED,
    ) -> str:
        d = self.base.decision
        features = d.features.model_copy(update={"trailing_sale_income_fen": income})
        decision = d.model_copy(
            update={
                "farmer_id": farmer,
                "outcome": outcome,
                "band": band,
                "features": features,
                "limit_fen": limit if outcome is not Outcome.DECLINE else 0,
            }
        )
        record = DecisionRecord(
            decision_id=uuid.uuid4().hex, lender=lender, decided_at=at, decision=decision
        )
        return self.store.insert_decision(record)

    def farmers(self, coop: str, approved: int, total: int, **kw) -> list[str]:
        """`total` members of `coop` with decisions, the first `approved` approved."""
        ids = []
        rows = []
        for k in range(total):
            farmer = fid(self.next_farmer)
            self.next_farmer += 1
            outcome = (
                Outcome.APPROVE if k < approved else (Outcome.REFER if k % 2 else Outcome.DECLINE)
            )
            self.decide(farmer, outcome, **kw)
            rows.append(
                Farmer(
                    farmer=bytes.fromhex(farmer[2:]),
                    cooperative=bytes.fromhex(coop[2:]),
                    wallet=None,
                    block_number=1,
                    log_index=k,
                    block_timestamp=0,
                )
            )
            ids.append(farmer)
        with Session(self.engine) as session:
            session.add_all(rows)
            session.commit()
        return ids

    def loan(
        self,
        farmer: str,
        *,
        lender: str = LENDER,
        at: datetime = DECIDED,
        statuses: tuple[int, ...] = (),
    ) -> int:
        loan_id = self.next_loan
        self.next_loan += 1
        self.block += 1
        ts = int(at.timestamp())
        rows: list = [
            Loan(
                loan_id=loan_id,
                escrow=bytes(20),
                farmer=bytes.fromhex(farmer[2:]),
                lender=bytes.fromhex(lender[2:]),
                borrower=bytes(20),
                agent=bytes(20),
                principal_fen=1_000_000,
                block_number=self.block,
                log_index=0,
                block_timestamp=ts,
            )
        ]
        rows += [
            LoanEvent(
                block_number=self.block,
                log_index=i + 1,
                loan_id=loan_id,
                kind="status",
                status=s,
                block_timestamp=ts + i + 1,
            )
            for i, s in enumerate(statuses)
        ]
        with Session(self.engine) as session:
            session.add_all(rows)
            session.commit()
        return loan_id

    def report(self, groups=None, **thresholds):
        return observed_fairness(self.engine, self.engine, groups, ObservedThresholds(**thresholds))


# ---------------------------------------------------------------------------- statistics


def test_wilson_bounds_are_exact_at_none_and_all():
    assert wilson(0, 40).low == 0 and 0 < wilson(0, 40).high < Decimal("0.1")
    assert wilson(40, 40).high == 1 and Decimal("0.9") < wilson(40, 40).low < 1
    ci = wilson(5, 10)  # textbook value: 0.2366 - 0.7634
    assert (ci.low, ci.high) == (Decimal("0.2365"), Decimal("0.7635"))
    assert wilson(1, 1).low > 0 and wilson(0, 1).high < 1
    with pytest.raises(ValueError):
        wilson(1, 0)


def test_katz_interval_of_a_ratio_of_proportions():
    ci = katz_interval(20, 40, 36, 40)  # RR 0.5556, se 1/6: exp(ln RR -+ 1.96/6)
    assert (ci.low, ci.high) == (Decimal("0.4007"), Decimal("0.7702"))  # 0.40074, 0.77018
    zero = katz_interval(0, 40, 36, 40)  # a zero count: 0.5 added to every cell
    assert zero.low > 0 and zero.high < Decimal("0.3")  # RR (0.5/41) / (36.5/41) = 0.0137
    assert katz_interval(0, 40, 0, 40) is None
    assert katz_interval(40, 40, 40, 40).low == katz_interval(40, 40, 40, 40).high == 1


def test_mean_interval_in_whole_fen():
    ci = mean_interval([100, 200, 300])
    assert (ci.low_fen, ci.high_fen) == (86, 314)  # 200 -+ 1.96 * 100 / sqrt(3): 86.8, 313.2
    assert mean_interval([5]) is None


def test_income_edges_keep_equal_incomes_in_one_bucket():
    assert income_edges([1, 2, 3, 4, 5, 6], 3) == [3, 5]
    assert income_edges([7] * 10, 3) == []
    assert income_edges([1, 1, 1, 1, 9, 9], 3) == [9]
    assert income_edges([], 3) == []


def test_loan_state_from_status_reports():
    assert loan_state([ACTIVE, 3, DEFAULTED, REPAID]) is LoanState.DEFAULTED
    assert loan_state([ACTIVE, 6]) is LoanState.DEFAULTED  # written off after a default
    assert loan_state([ACTIVE, REPAID]) is LoanState.REPAID
    assert loan_state([CANCELLED]) is LoanState.CANCELLED
    assert loan_state([ACTIVE]) is loan_state([]) is LoanState.OPEN


# ---------------------------------------------------------------------------- approval ratio


def test_exact_approval_ratio_on_a_hand_built_population(world):
    world.farmers(COOP_A, approved=30, total=40)
    world.farmers(COOP_B, approved=36, total=40)
    report = world.report()
    (check,) = report.approval
    assert check.attribute == COOPERATIVE
    assert check.verdict is Verdict.PASSED and report.verdict is Verdict.PASSED
    assert check.ratio == Decimal("0.8333")  # 30/40 over 36/40 = 5/6, rounded down
    assert (check.lowest, check.highest) == (COOP_A, COOP_B)
    groups = {g.group: g for g in check.groups}
    assert (groups[COOP_A].approved, groups[COOP_A].decisions) == (30, 40)
    assert groups[COOP_A].approval_rate == Decimal("0.7500")
    assert groups[COOP_A].ci.low < Decimal("0.75") < groups[COOP_A].ci.high
    assert check.ratio_ci.low < check.ratio < check.ratio_ci.high
    assert check.ci_contains_threshold  # 80 decisions cannot tell 0.83 from 0.80
    assert (report.decisions, report.approved) == (80, 66)
    assert report.referred + report.declined == 14
    assert report.raise_if_failed() is report


def test_exactly_four_fifths_passes_and_just_below_fails(world):
    world.farmers(COOP_A, approved=32, total=40)
    world.farmers(COOP_B, approved=40, total=40)
    assert world.report().approval[0].ratio == Decimal("0.8000")
    assert world.report().passed
    world.farmers(COOP_C, approved=31, total=40)  # 31/40 = 0.775
    report = world.report()
    assert report.verdict is Verdict.FAILED
    assert report.approval[0].ratio == Decimal("0.7750")
    with pytest.raises(FairnessThresholdError, match=r"approval_rate ratio for cooperative 0\.775"):
        report.raise_if_failed()


def test_a_clear_four_fifths_failure_is_conclusive(world):
    world.farmers(COOP_A, approved=20, total=40)
    world.farmers(COOP_B, approved=36, total=40)
    check = world.report().approval[0]
    assert check.verdict is Verdict.FAILED and check.ratio == Decimal("0.5555")
    assert check.ratio_ci.high < Decimal("0.80") and check.ci_contains_threshold is False


def test_small_groups_are_listed_with_counts_never_dropped(world):
    world.farmers(COOP_A, approved=30, total=40)
    world.farmers(COOP_B, approved=36, total=40)
    world.farmers(COOP_C, approved=0, total=5)  # would fail the ratio if it were judged
    check = world.report().approval[0]
    small = next(g for g in check.groups if g.group == COOP_C)
    assert (small.judged, small.decisions, small.approved) == (False, 5, 0)
    assert small.ci.low == 0
    assert check.verdict is Verdict.PASSED


def test_farmers_the_indexer_does_not_know_have_no_cooperative(world):
    world.farmers(COOP_A, approved=30, total=40)
    world.decide(fid(999), Outcome.APPROVE)
    check = world.report().approval[0]
    assert check.unassigned == 1 and sum(g.decisions for g in check.groups) == 40


def test_one_judgeable_group_is_not_enough_data_not_a_pass(world):
    world.farmers(COOP_A, approved=30, total=40)
    world.farmers(COOP_B, approved=0, total=10)
    report = world.report()
    assert report.approval[0].verdict is Verdict.NOT_ENOUGH_DATA
    assert report.approval[0].ratio is None
    assert report.verdict is Verdict.NOT_ENOUGH_DATA and report.passed
    assert world.report(min_group_size=10).verdict is Verdict.FAILED


def test_only_the_latest_decision_per_farmer_and_lender_counts(world):
    farmers = world.farmers(COOP_A, approved=0, total=40)  # all declined or referred at first
    world.farmers(COOP_B, approved=40, total=40)
    later = DECIDED + timedelta(days=30)
    for farmer in farmers:
        world.decide(farmer, Outcome.APPROVE, at=later)
    world.decide(farmers[0], Outcome.DECLINE, lender=OTHER_LENDER)  # another pair: counted
    world.decide(farmers[1], Outcome.DECLINE, lender=OTHER_LENDER, at=later)
    world.decide(
        farmers[1], Outcome.APPROVE, lender=OTHER_LENDER, at=later
    )  # same time: stored last
    report = world.report()
    assert report.decisions_stored == 123 and report.decisions == 82
    assert report.approval[0].ratio == Decimal("0.9761")  # 41/42 over 40/40
    assert "latest decision per (farmer, lender)" in report.selection


# ---------------------------------------------------------------------------- groups


def _groups_csv(farmers_a, farmers_b) -> str:
    lines = ["farmer_id,gender"]
    lines += [f"{f},{'f' if i % 2 else 'm'}" for i, f in enumerate(farmers_a + farmers_b)]
    return "\n".join(lines) + "\n"


def test_operator_attributes_and_intersections(world):
    a = world.farmers(COOP_A, approved=60, total=80)
    b = world.farmers(COOP_B, approved=72, total=80)
    report = world.report(parse_groups(_groups_csv(a, b)))
    assert report.attributes == (COOPERATIVE, "gender")
    assert report.intersections == ("cooperative×gender",)
    checks = {c.attribute: c for c in report.approval}
    # approvals come first in each coop, alternating genders: equal rates by gender
    assert checks["gender"].ratio == Decimal("1.0000")
    cross = checks["cooperative×gender"]
    assert {g.group for g in cross.groups} == {f"{c}×{s}" for c in (COOP_A, COOP_B) for s in "fm"}
    assert all(g.decisions == 40 for g in cross.groups)
    assert cross.verdict is Verdict.PASSED and cross.ratio == Decimal("0.8333")


def test_farmers_missing_from_the_groups_file_are_counted_as_unassigned(world):
    a = world.farmers(COOP_A, approved=30, total=40)
    b = world.farmers(COOP_B, approved=30, total=40)
    groups = parse_groups(_groups_csv(a[:10], b))
    check = next(c for c in world.report(groups).approval if c.attribute == "gender")
    assert check.unassigned == 30
    assert sum(g.decisions for g in check.groups) == 50


def test_groups_file_in_gbk(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_bytes(
        f"farmer_id,性别,民族\n{fid(1).upper()[2:].join(['0x', ''])},女,苗族\n"
        f"{fid(2)},男,\n".encode("gbk")
    )
    groups = read_groups_file(path)
    assert groups.attributes == ("性别", "民族")
    assert groups.values[fid(1)] == {"性别": "女", "民族": "苗族"}
    assert groups.values[fid(2)] == {"性别": "男"}


def test_spreadsheet_padding_is_tolerated():
    groups = parse_groups(f"farmer_id,gender,,\n{fid(4)},f,,\n\n{fid(5)},,\n")
    assert groups.attributes == ("gender",)
    assert groups.values == {fid(4): {"gender": "f"}, fid(5): {}}


def test_groups_file_with_a_bom(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_bytes(f"farmer_id,village\r\n{fid(3)},v1\r\n".encode("utf-8-sig"))
    assert read_groups_file(path).values == {fid(3): {"village": "v1"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"farmer,gender\n{fid(1)},f\n", "no farmer_id column"),
        (f"gender,farmer_id\nf,{fid(1)}\n", "must be the first column"),
        ("farmer_id,gender\nZhang San,f\n", "is not 0x + 64 hex digits"),
        ("farmer_id,gender\n0x1234,f\n", "is not 0x + 64 hex digits"),
        (f"farmer_id,gender\n{fid(1)},f\n{fid(1)},m\n", "already on line 2"),
        (f"farmer_id,gender\n{fid(1)},f,extra\n", "3 cells, the header has 2"),
        (f"farmer_id,cooperative\n{fid(1)},x\n", "reserved"),
        (f"farmer_id,gender,gender\n{fid(1)},f,f\n", "'gender' is repeated"),
        (f"farmer_id,farmer_id\n{fid(1)},{fid(1)}\n", "farmer_id is repeated"),
        (f"farmer_id,a×b\n{fid(1)},x\n", "must not contain"),
        (f"farmer_id,,gender\n{fid(1)},x,f\n", "has no name"),
        (f"farmer_id\n{fid(1)}\n", "no attribute columns"),
        ("farmer_id,gender\n", "no farmers"),
        ("", "is empty"),
    ],
)
def test_bad_groups_files_are_clear_errors(text, message):
    with pytest.raises(GroupsFileError, match=re.escape(message)):
        parse_groups(text, "groups.csv")


def test_binary_groups_file_is_refused(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(GroupsFileError, match=r"not a text file.*GBK"):
        read_groups_file(path)
    with pytest.raises(GroupsFileError, match="cannot read groups file"):
        read_groups_file(tmp_path / "missing.csv")


# ---------------------------------------------------------------------------- limits


def _cell(group: str, band: str, income: int, limit: int) -> ObservedDecision:
    return ObservedDecision(
        decision_id=uuid.uuid4().hex,
        outcome=Outcome.APPROVE,
        band=band,
        limit_fen=limit,
        income_fen=income,
        model_version="m",
        groups={COOPERATIVE: group},
    )


def test_limits_are_compared_within_band_and_income_bucket():
    # coop a earns less, so it gets lower limits; within an income bucket both are alike
    low = [_cell(g, "A", 1_000_000 + i, 400_000 + 100 * (i % 3)) for g in "ab" for i in range(10)]
    high = [_cell("b", "A", 9_000_000 + i, 2_000_000) for i in range(20)]
    report = observed_report(
        low + high, [COOPERATIVE], ObservedThresholds(min_group_size=10, income_buckets=2)
    )
    cells = {(c.band, c.income_bucket): c for c in report.limits}
    assert set(cells) == {("A", 1), ("A", 2)}
    poor, rich = cells[("A", 1)], cells[("A", 2)]
    assert poor.verdict is Verdict.PASSED and poor.ratio == Decimal("1.0000")
    assert (poor.income_low_fen, poor.income_high_fen) == (1_000_000, 1_000_009)
    assert {g.group: g.mean_limit_fen for g in poor.groups} == {"a": 400_090, "b": 400_090}
    assert rich.verdict is Verdict.NOT_ENOUGH_DATA  # only coop b earns that much
    assert report.verdict is Verdict.NOT_ENOUGH_DATA or report.passed


def test_unequal_limits_in_one_cell_fail_with_an_interval():
    cell = [_cell("a", "B", 3_000_000, 300_000 + 1_000 * i) for i in range(30)]
    cell += [_cell("b", "B", 3_000_000, 500_000 + 1_000 * i) for i in range(30)]
    report = observed_report(cell, [COOPERATIVE], ObservedThresholds(income_buckets=1))
    (check,) = report.limits
    assert check.verdict is Verdict.FAILED
    assert check.ratio == Decimal("0.6112")  # 314,500 / 514,500 = 0.61127
    assert check.ratio_ci.low < Decimal("0.6112") < check.ratio_ci.high < Decimal("0.80")
    groups = {g.group: g for g in check.groups}
    assert groups["a"].mean_limit_fen == 314_500
    assert groups["a"].ci.low_fen < 314_500 < groups["a"].ci.high_fen
    assert report.verdict is Verdict.FAILED


# ---------------------------------------------------------------------------- default rates


def test_default_rates_join_the_first_loan_after_the_decision(world):
    a = world.farmers(COOP_A, approved=4, total=4)
    b = world.farmers(COOP_B, approved=3, total=3)
    day = timedelta(days=1)
    world.loan(a[0], at=DECIDED + day, statuses=(ACTIVE, DEFAULTED))
    world.loan(a[0], at=DECIDED + 9 * day, statuses=(ACTIVE, REPAID))  # second loan: not joined
    world.loan(a[1], at=DECIDED + day, statuses=(ACTIVE, REPAID))
    world.loan(a[2], at=DECIDED + day, statuses=(ACTIVE,))  # still open
    world.loan(a[3], at=DECIDED - day, statuses=(ACTIVE, DEFAULTED))  # before the decision
    world.loan(b[0], at=DECIDED, statuses=(ACTIVE, REPAID))  # at the decision time
    world.loan(b[1], lender=OTHER_LENDER, at=DECIDED + day, statuses=(DEFAULTED,))  # other lender
    world.loan(b[2], at=DECIDED + day, statuses=(CANCELLED,))
    report = world.report(min_group_size=2)
    lo = report.loans
    assert (lo.approved_decisions, lo.loans) == (7, 5)
    assert (lo.defaulted, lo.repaid, lo.open, lo.cancelled) == (1, 2, 1, 1)
    rates = {g.group: g for g in report.defaults[0].groups}
    ga, gb = rates[COOP_A], rates[COOP_B]
    assert (ga.loans, ga.defaulted, ga.repaid, ga.open) == (3, 1, 1, 1)
    assert ga.default_rate == Decimal("0.5000") and ga.judged
    assert ga.ci.low < Decimal("0.5") < ga.ci.high
    assert (gb.loans, gb.repaid, gb.cancelled, gb.default_rate) == (2, 1, 1, Decimal("0.0000"))
    assert gb.ci.low == 0 and not gb.judged


def test_a_group_without_finished_loans_has_no_rate(world):
    (farmer,) = world.farmers(COOP_A, approved=1, total=1)
    world.loan(farmer, at=DECIDED + timedelta(days=1), statuses=(ACTIVE,))
    (group,) = world.report().defaults[0].groups
    assert (group.open, group.default_rate, group.ci, group.judged) == (1, None, None, False)


def test_report_is_json_for_the_web(world):
    world.farmers(COOP_A, approved=30, total=40)
    world.farmers(COOP_B, approved=36, total=40)
    body = json.loads(world.report().model_dump_json())
    assert body["approval"][0]["ratio"] == "0.8333"
    assert body["verdict"] == "passed"
    assert isinstance(body["limits"][0]["groups"][0]["mean_limit_fen"], int)


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def app() -> typer.Typer:
    return cli_root(register)


def run(app, *args):
    return CliRunner().invoke(app, ["credit", "fairness", *args])


def test_cli_from_store_passes(app, world, url):
    world.farmers(COOP_A, approved=30, total=40)
    world.farmers(COOP_B, approved=36, total=40)
    result = run(app, "--from-store", "--database", url)
    assert result.exit_code == ExitCode.OK, result.output
    assert "Fairness on real decisions" in result.output
    assert "0.8333" in result.output and "PASSED" in result.output
    as_json = run(app, "--from-store", "--db", url, "--json", "--indexer-db", url)
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["decisions"] == 80


def test_cli_from_store_fails_with_exit_3(app, world, url):
    world.farmers(COOP_A, approved=20, total=40)
    world.farmers(COOP_B, approved=36, total=40)
    result = run(app, "--from-store", "--db", url)
    assert result.exit_code == ExitCode.FAIRNESS_FAILED
    assert "FairnessThresholdError" in result.output and "FAIL" in result.output


def test_cli_small_groups_and_min_group(app, world, url, tmp_path):
    a = world.farmers(COOP_A, approved=30, total=40)
    b = world.farmers(COOP_B, approved=2, total=10)
    result = run(app, "--from-store", "--db", url)
    assert result.exit_code == 0 and "NOT ENOUGH DATA" in result.output
    assert "too small" in result.output
    assert run(app, "--from-store", "--db", url, "--min-group", "10").exit_code == 3
    groups = tmp_path / "groups.csv"
    groups.write_bytes(_groups_csv(a, b).replace("gender", "性别").encode("gbk"))
    result = run(app, "--from-store", "--db", url, "--groups", str(groups))
    assert result.exit_code == 0 and "cooperative×性别" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--groups", "GROUPS"],  # a bad groups file
        ["--groups", "MISSING"],
        ["--proxy-bias"],
        ["--min-group", "0"],
        ["--income-buckets", "0"],
    ],
)
def test_cli_from_store_bad_input_exits_2(app, world, url, tmp_path, args):
    bad = tmp_path / "groups.csv"
    bad.write_text("farmer_id,gender\nfarmer-1,f\n")
    args = [
        str(bad) if a == "GROUPS" else str(tmp_path / "no.csv") if a == "MISSING" else a
        for a in args
    ]
    result = run(app, "--from-store", "--db", url, *args)
    assert result.exit_code == ExitCode.USAGE, result.output


def test_cli_empty_store_is_not_enough_data(app, world, url):
    result = run(app, "--from-store", "--db", url)
    assert result.exit_code == 0, result.output
    assert "0 decisions counted of 0 stored" in result.output
    assert "NOT ENOUGH DATA to judge: cooperative" in result.output


def test_cli_tampered_decision_exits_2(app, world, url, tmp_path):
    world.farmers(COOP_A, approved=1, total=1)
    with sqlite3.connect(tmp_path / "tealedger.db") as conn:  # behind tealedger's back
        conn.execute("DROP TRIGGER credit_decision_no_update")
        conn.execute("UPDATE credit_decision SET record_json = record_json || ' '")
    result = run(app, "--from-store", "--db", url)
    assert result.exit_code == ExitCode.USAGE
    assert "RecordTamperedError" in result.output


def test_cli_unreadable_database_exits_2(app, tmp_path):
    result = run(app, "--from-store", "--db", f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.exit_code == ExitCode.USAGE
    assert "cannot read decisions" in result.output


def test_the_tealedger_command_exits_3_on_a_failed_ratio(world, url):
    world.farmers(COOP_A, approved=20, total=40)
    world.farmers(COOP_B, approved=36, total=40)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "tealedger.cli", "credit", "fairness", "--from-store", "--db", url],
        capture_output=True, text=True, env=env, cwd=root, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == ExitCode.FAIRNESS_FAILED, done.stderr
    assert "FAILED: 1 ratio(s)" in done.stdout and "FairnessThresholdError" in done.stderr


def test_cli_store_options_need_from_store(app, tmp_path):
    result = run(app, "--groups", str(tmp_path / "g.csv"))
    assert result.exit_code == ExitCode.USAGE and "only with --from-store" in result.output
