"""The risk monitor's ground truth: a seeded plan that varies its cases, and one case of every
registered rule's pattern injected on a small demo world and found there (none on the clean
world)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from risk.flows import load_directory, load_transfers
from risk.rules import RULES
from simulation.risk_cases import DAY, HOUR, PATTERNS, VARIANTS, Case, plan, typical
from tealedger.demo.risk_injection import Label, ground_truth, registered
from tests._fixtures import needs_node

FARMERS, SEED = 50, 41


def _of(cases: list[Case], pattern: str) -> list[Case]:
    return [c for c in cases if c.pattern == pattern]


def test_the_plan_is_the_same_for_a_seed_and_differs_between_seeds():
    assert plan(7, 6) == plan(7, 6)
    assert plan(7, 6) != plan(8, 6)
    assert len(plan(7, 6)) == 6 * len(PATTERNS)
    assert len({c.case_id for c in plan(7, 6)}) == 6 * len(PATTERNS)


def test_a_pattern_s_cases_do_not_depend_on_the_other_patterns():
    alone = plan(7, 4, ("cash_out",))
    assert alone == _of(plan(7, 4), "cash_out")


def test_the_plan_varies_amounts_delays_hops_cycles_factors_and_aprs():
    cases = plan(11, 40)
    cash = _of(cases, "cash_out")
    assert {c.hops for c in cash} == {1, 2, 3, 4}
    assert all(Fraction(1, 5) <= c.share <= Fraction(9, 10) for c in cash)
    assert len({c.share for c in cash}) > 15 and len({c.principal_yuan for c in cash}) > 15
    assert all(2 * HOUR <= c.delay_s <= 20 * DAY for c in cash)
    assert min(c.delay_s for c in cash) < DAY < 5 * DAY < max(c.delay_s for c in cash)
    assert {c.hops for c in _of(cases, "circular")} == {2, 3, 4, 5}
    harvests = _of(cases, "harvest_implausible")
    assert {c.variant for c in harvests} == {"plot", "yields", "pledged"}
    factors = [c.factor for c in harvests if c.variant != "pledged"]
    assert min(factors) < 3 < 4 < max(factors) and all(2 <= f <= 5 for f in factors)
    pledged = [c for c in harvests if c.variant == "pledged"]
    assert all(5 <= c.factor <= 12 and Fraction(7, 10) <= c.share <= 1 for c in pledged)
    assert len({c.delay_s for c in pledged}) == len(pledged)
    assert {c.variant for c in _of(cases, "loan_stacking")} == {"applications", "identity"}
    excess = {c.apr_excess_bps for c in _of(cases, "apr_above_cap")}
    assert excess <= set(range(100, 1001, 100)) and len(excess) >= 6
    assert {c.variant for c in _of(cases, "shared_wallet")} == {
        "registered", "changed", "other_cooperative",
    }  # fmt: skip
    assert len({c.count for c in _of(cases, "new_merchant_surge")}) >= 3
    assert len({c.delay_s for c in _of(cases, "rapid_reborrow")}) == 40


def test_variants_are_taken_in_turn_so_every_one_is_played():
    for seed in (1, 2026):
        cases = plan(seed, 3)
        for pattern, kinds in VARIANTS.items():
            assert [c.variant for c in _of(cases, pattern)] == [kinds[k % len(kinds)] for k in
                                                                range(3)]  # fmt: skip


def test_unknown_patterns_are_refused():
    with pytest.raises(ValueError, match="unknown pattern"):
        plan(1, 1, ("cash_out", "laundering"))
    with pytest.raises(ValueError, match="unknown pattern"):
        typical("laundering")


@needs_node()
@pytest.mark.node
def test_each_registered_rule_finds_its_injected_case_and_nothing_on_the_clean_world(
    tmp_path: Path,
):
    rules = registered(PATTERNS)
    assert "cash_out" in rules and set(rules) <= set(RULES)
    cases = [typical(p) for p in PATTERNS]  # every pattern is played; registered ones scored
    variants = [
        replace(typical("harvest_implausible", "pinned-yields"), variant="yields", count=6,
                share=Fraction(997, 1000)),
        replace(typical("harvest_implausible", "over-pledged"), variant="pledged",
                factor=Fraction(6), share=Fraction(4, 5), delay_s=10 * DAY),
        replace(typical("loan_stacking", "second-identity"), variant="identity", delay_s=2 * DAY),
    ]  # fmt: skip
    gt = ground_truth(tmp_path, FARMERS, SEED, [*cases, *variants], rules)
    assert [x.skipped for x in gt.labels] == [None] * (len(cases) + len(variants))
    assert [f for f in gt.clean if f.rule in rules] == []
    played = {p: 1 + sum(v.pattern == p for v in variants) for p in PATTERNS}
    for s in gt.scores:
        assert (s.pattern, s.injected, s.detected) == (s.pattern, played[s.pattern],
                                                       played[s.pattern])  # fmt: skip
        assert s.true_findings >= 1 and s.true_findings == s.findings
    found = {f.key.split(":")[1] for f in gt.findings if f.rule in ("harvest_implausible",
                                                                    "loan_stacking")}  # fmt: skip
    assert {"plot", "processor", "lot", "overlap", "applications"} <= found
    _the_world_holds_what_the_labels_say(tmp_path / "service.db", gt.labels)


def _the_world_holds_what_the_labels_say(db: Path, labels: list[Label]) -> None:
    """What the executor claims to have injected is in the indexed chain and the service."""
    by: dict[str, Label] = {}
    for x in labels:
        by.setdefault(x.pattern, x)  # the typical case of each pattern (played first)
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        directory = load_directory(conn)
        (wallet,) = by["shared_wallet"].wallets
        assert len(directory.farmers_of[bytes.fromhex(wallet[2:])]) == 2
        (farmer,) = by["loan_stacking"].farmers
        deciders = conn.execute(
            text("SELECT DISTINCT lender FROM credit_decision WHERE farmer_id = :f"), {"f": farmer}
        ).all()
        assert len(deciders) == 2
        for pattern in ("merchant_concentration", "new_merchant_surge"):
            assert len(by[pattern].loans) == 12
        ring = {bytes.fromhex(w[2:]) for w in by["circular"].wallets}
        moves = [t for t in load_transfers(conn) if t.sender in ring and t.recipient in ring]
        assert len(moves) == 3
        (plant,) = next(x for x in labels if x.case.variant == "yields").wallets
        steps = conn.execute(
            text("SELECT COUNT(DISTINCT process_id) FROM lot_produced WHERE processor = :p"),
            {"p": bytes.fromhex(plant[2:])},
        ).scalar_one()
        assert steps == 6  # the new processor's six steps, each at the bound
        twins = next(x for x in labels if x.case.variant == "identity")
        borrowers = conn.execute(
            text("SELECT farmer, borrower FROM loan WHERE loan_id IN (:a, :b)"),
            dict(zip("ab", sorted(twins.loans), strict=True)),
        ).all()
        assert len({bytes(f) for f, _ in borrowers}) == 2  # two farmer ids ...
        assert len({bytes(w) for _, w in borrowers}) == 1  # ... borrowing into one wallet
    engine.dispose()
