"""Fairness report: the production model passes, a proxy-biased variant is caught."""

from decimal import Decimal

import numpy as np
import pytest

from lending.credit.fairness import (
    ATTRIBUTES,
    FairnessReport,
    FairnessThresholds,
    PopulationOutcome,
    fairness_report,
    population_outcomes,
    production_scorer,
    proxy_biased_scorer,
    run_fairness,
)
from lending.credit.policy import DEFAULT_POLICY, Outcome
from lending.credit.scorecard import load_model
from lending.credit.simulation import simulate_population
from lending.errors import FairnessPopulationTooSmallError, FairnessThresholdError

N = 20_000  # the CLI default: 12 villages need ~1,700 farmers each for stable ratios
MODEL = load_model()


@pytest.fixture(scope="module")
def population():
    return simulate_population(6, N, "fairness")


@pytest.fixture(scope="module")
def production(population):
    outcomes = population_outcomes(population, scorer=production_scorer(MODEL))
    return outcomes, _report(outcomes)


@pytest.fixture(scope="module")
def biased(population):
    outcomes = population_outcomes(population, scorer=proxy_biased_scorer(MODEL))
    return outcomes, _report(outcomes, variant="proxy")


def _report(outcomes, thresholds=None, variant="production"):
    return fairness_report(
        outcomes, model_version=MODEL.version, policy_hash=DEFAULT_POLICY.policy_hash, seed=6,
        variant=variant, thresholds=thresholds,
    )  # fmt: skip


def test_production_model_passes_the_four_fifths_rule(production):
    _, report = production
    assert report.passed, [c.describe() for c in report.failures]
    approval = [c for c in report.checks if c.metric == "approval_rate"]
    assert {c.attribute for c in approval} == set(ATTRIBUTES)
    assert all(c.ratio >= Decimal("0.80") for c in approval)
    assert report.raise_if_failed() is report


def test_limits_are_compared_within_every_band_with_approvals(production):
    outcomes, report = production
    approved_bands = {o.band for o in outcomes if o.outcome is Outcome.APPROVE}
    limit_checks = [c for c in report.checks if c.metric == "mean_limit_fen"]
    assert {c.band for c in limit_checks} == approved_bands
    assert all(c.ratio >= Decimal("0.80") for c in limit_checks)


def test_ratios_match_a_direct_count(production):
    outcomes, report = production
    check = next(
        c for c in report.checks if c.metric == "approval_rate" and c.attribute == "gender"
    )
    rates = {}
    for g in ("F", "M"):
        members = [o for o in outcomes if o.protected["gender"] == g]
        rates[g] = sum(o.outcome is Outcome.APPROVE for o in members) / len(members)
        assert check.counts[g] == len(members)
    assert abs(float(check.ratio) - min(rates.values()) / max(rates.values())) < 1e-4


def test_a_proxy_biased_model_is_caught(biased):
    _, report = biased
    assert not report.passed
    failed = {(c.metric, c.attribute) for c in report.failures}
    assert ("approval_rate", "ethnicity") in failed
    assert ("approval_rate", "village") in failed
    with pytest.raises(FairnessThresholdError, match="approval_rate ratio for ethnicity") as info:
        report.raise_if_failed()
    assert "miao" in str(info.value)


def test_the_biased_variant_only_differs_by_the_proxy(population):
    farmer = next(f for f in population.farmers if f.cooperative == "coop-05")
    other = next(f for f in population.farmers if f.cooperative != "coop-05")
    from lending.credit.features import features_from_profile

    for f, docked in ((farmer, 60), (other, 0)):
        features = features_from_profile(f.profile)
        plain = production_scorer(MODEL)(f, features)
        assert plain - proxy_biased_scorer(MODEL)(f, features) == docked


def test_thresholds_are_configurable(production):
    outcomes, _ = production
    strict = _report(outcomes, FairnessThresholds(approval_ratio_min=Decimal("0.99")))
    assert not strict.passed
    assert all(c.metric == "approval_rate" or c.passed for c in strict.failures)


def test_small_groups_are_left_out_and_named():
    outcomes = [
        PopulationOutcome(f"f{i}", 600, "A", Outcome.APPROVE if i % 2 else Outcome.DECLINE,
                          100_000 if i % 2 else 0,
                          {"gender": "M" if i < 150 else "X" if i < 200 else "F",
                           "ethnicity": "han" if i < 100 else "miao",
                           "age_band": "35-49" if i < 100 else "<35",
                           "village": "v" if i < 100 else "w"})
        for i in range(210)
    ]  # fmt: skip
    report = _report(outcomes)
    gender = next(c for c in report.checks if c.attribute == "gender" and c.band is None)
    assert gender.left_out == ("F",)
    assert "gender in band A" in report.skipped


def test_simulated_attributes_follow_the_documented_process(population):
    farmers = population.farmers
    area = {g: np.median([f.profile["plot_area_centi_mu"] for f in farmers
                          if f.protected["gender"] == g]) for g in ("F", "M")}  # fmt: skip
    assert 0.8 < area["F"] / area["M"] < 0.97  # women's plots ~10 % smaller
    miao_share = {
        c: np.mean([f.protected["ethnicity"] == "miao" for f in farmers if f.cooperative == c])
        for c in ("coop-00", "coop-05")
    }
    assert miao_share["coop-05"] > 0.5 > 0.1 > miao_share["coop-00"]


def test_run_fairness_end_to_end_is_reproducible():
    a = run_fairness(n=1_500)
    b = run_fairness(n=1_500)
    assert isinstance(a, FairnessReport) and a == b
    assert a.model_version == MODEL.version


def _outcome(i, group, approved, limit=100_000, band="A"):
    protected = {"gender": group, "ethnicity": group, "age_band": group, "village": group}
    outcome = Outcome.APPROVE if approved else Outcome.DECLINE
    return PopulationOutcome(f"f{i}", 600, band, outcome, limit if approved else 0, protected)


def test_the_approval_threshold_is_compared_exactly_not_after_rounding():
    # Group x approves 19,999 of 25,000 (0.79996), group y all: the ratio 0.79996 < 0.80.
    x = [_outcome(i, "x", i < 19_999) for i in range(25_000)]
    y = [_outcome(25_000 + i, "y", True) for i in range(50)]
    report = _report(x + y)
    approval = [c for c in report.checks if c.metric == "approval_rate"]
    assert approval and all(not c.passed for c in approval)
    assert all(c.ratio < c.threshold == Decimal("0.80") for c in approval)  # shown as 0.7999
    with pytest.raises(FairnessThresholdError, match=r"0\.7999 < 0\.80"):
        report.raise_if_failed()
    passing = _report(x + y, FairnessThresholds(approval_ratio_min=Decimal("0.79996")))
    assert all(c.passed for c in passing.checks if c.metric == "approval_rate")


def test_the_limit_threshold_is_compared_exactly_not_after_rounding():
    x = [_outcome(i, "x", True, limit=79_996) for i in range(50)]
    y = [_outcome(50 + i, "y", True, limit=100_000) for i in range(50)]
    limits = [c for c in _report(x + y).checks if c.metric == "mean_limit_fen"]
    assert limits and all(not c.passed and c.band == "A" for c in limits)


def test_exact_ratios_agree_with_fairlearn(production):
    from fairlearn.metrics import demographic_parity_ratio

    outcomes, report = production
    y = np.array([o.outcome is Outcome.APPROVE for o in outcomes], dtype=int)
    for check in (c for c in report.checks if c.metric == "approval_rate"):
        groups = np.array([o.protected[check.attribute] for o in outcomes])
        keep = ~np.isin(groups, check.left_out)
        theirs = demographic_parity_ratio(y[keep], y[keep], sensitive_features=groups[keep])
        assert abs(float(check.ratio) - theirs) < 1e-4


def test_a_population_without_two_comparable_groups_is_refused():
    outcomes = [_outcome(i, "only", i % 2 == 0) for i in range(500)]
    with pytest.raises(FairnessPopulationTooSmallError, match="1 gender group"):
        _report(outcomes)
    with pytest.raises(FairnessPopulationTooSmallError, match="minimum is 1,000"):
        run_fairness(n=999)
