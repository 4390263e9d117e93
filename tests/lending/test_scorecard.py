"""The points scorecard: frozen model file, monotonicity, reproducible calibration, features."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lending.credit.features import (
    FEATURE_SPECS,
    MAX_CV_BPS,
    PROTECTED_ATTRIBUTES,
    CreditFeatures,
    Direction,
    features_from_profile,
    income_cv_bps,
    months_between,
    snapshot_from_profile,
)
from lending.credit.scorecard import (
    DEFAULT_MODEL_FILE,
    Scorecard,
    fit_scorecard,
    load_model,
    main,
    model_by_version,
)
from lending.credit.simulation import simulate_population
from lending.errors import ModelError, ProfileDataError
from tests.lending.strategies import features_st

MODEL = load_model()
SHIPPED_SEED = MODEL.calibration["simulation"]["seed"]

# Every raw feature and the direction in which it makes a farmer more creditworthy.
BETTER_UP = {
    "trailing_sale_income_fen": True,
    "sale_income_cv_bps": False,
    "trailing_fresh_leaf_kg": True,
    "fresh_leaf_trend_bps": True,
    "premium_grade_share_bps": True,
    "fresh_leaf_kg_per_mu_x100": True,
    "tenure_months": True,
    "quality_failures_24m": False,
    "recalled_lots_24m": False,
    "loans_repaid_on_time": True,
    "max_days_past_due_24m": False,
    "current_exposure_fen": False,
}


def _limit(name):
    """The field's upper bound from the model (None if unbounded)."""
    meta = CreditFeatures.model_fields[name].metadata
    return next((m.le for m in meta if hasattr(m, "le")), None)


def _floor(name):
    meta = CreditFeatures.model_fields[name].metadata
    return next((m.ge for m in meta if hasattr(m, "ge")), 0)


# ----------------------------------------------------------------------------- model file


def test_shipped_model_verifies_and_names_its_version():
    assert MODEL.version == MODEL.compute_version()
    assert len(MODEL.version) == 64
    assert model_by_version(MODEL.version) is MODEL
    assert main(["verify", str(DEFAULT_MODEL_FILE)]) == 0


def test_shipped_model_holdout_figures():
    hold = MODEL.calibration["holdout"]
    assert float(hold["auc"]) >= 0.75
    assert float(hold["ks"]) >= 0.35
    assert int(hold["n"]) == MODEL.calibration["simulation"]["n_holdout"]


def test_refit_with_the_same_seed_gives_the_same_version():
    sim = MODEL.calibration["simulation"]
    refit = fit_scorecard(SHIPPED_SEED, sim["n_train"], sim["n_holdout"])
    assert refit.version == MODEL.version
    assert refit.features == MODEL.features
    assert refit.calibration["holdout"] == MODEL.calibration["holdout"]


def test_edited_points_are_refused(tmp_path):
    doc = json.loads(DEFAULT_MODEL_FILE.read_text())
    doc["features"][0]["points"][-1] += 5
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="edited after fitting"):
        load_model(path)
    assert main(["verify", str(path)]) == 1


def test_non_monotone_points_are_refused(tmp_path):
    doc = json.loads(DEFAULT_MODEL_FILE.read_text())
    income = next(f for f in doc["features"] if f["name"] == "trailing_sale_income_fen")
    income["points"][0], income["points"][-1] = income["points"][-1], income["points"][0]
    doc["version"] = ""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="not monotone"):
        load_model(path)


@pytest.mark.parametrize("name", ["gender", "ethnicity", "village", "age_band"])
def test_a_protected_attribute_cannot_be_a_model_feature(name):
    doc = json.loads(DEFAULT_MODEL_FILE.read_text())
    doc["features"].append({
        "name": name, "direction": "higher_is_better", "edges": [1], "points": [0, 10],
    })  # fmt: skip
    doc["version"] = ""
    with pytest.raises(ValueError, match="unknown feature"):
        Scorecard.model_validate(doc)


def test_protected_attributes_are_never_features():
    names = set(CreditFeatures.model_fields) | {s.name for s in FEATURE_SPECS}
    assert not names & set(PROTECTED_ATTRIBUTES)
    assert not {f.name for f in MODEL.features} & set(PROTECTED_ATTRIBUTES)


def test_unknown_model_version_is_a_clear_error():
    with pytest.raises(ModelError, match="no scorecard with version"):
        model_by_version("0" * 64)


# ----------------------------------------------------------------------------- monotonicity


@settings(max_examples=300, deadline=None)
@given(features_st, st.integers(1, 50_000_000))
def test_more_verified_income_never_lowers_the_score(features, extra):
    richer = features.model_copy(
        update={"trailing_sale_income_fen": features.trailing_sale_income_fen + extra}
    )
    assert MODEL.score(richer).score >= MODEL.score(features).score


@settings(max_examples=400, deadline=None)
@given(features_st, st.sampled_from(sorted(BETTER_UP)), st.integers(1, 10_000))
def test_every_feature_is_monotone_in_its_direction(features, name, step):
    value = getattr(features, name)
    moved = value + step if BETTER_UP[name] else value - step
    high, low = _limit(name), _floor(name)
    moved = max(low, moved if high is None else min(high, moved))
    better = features.model_copy(update={name: moved})
    assert MODEL.score(better).score >= MODEL.score(features).score


def test_points_are_ints_and_bins_monotone():
    for fb in MODEL.features:
        assert all(isinstance(p, int) for p in fb.points)
        assert all(isinstance(e, int) for e in fb.edges)
        steps = np.diff(fb.points)
        assert (
            (steps >= 0).all() if fb.direction is Direction.HIGHER_IS_BETTER else (steps <= 0).all()
        )


@given(features_st)
@settings(max_examples=100, deadline=None)
def test_score_is_sum_of_points_within_range(features):
    result = MODEL.score(features)
    assert result.score == sum(p.points for p in result.by_feature)
    low, high = MODEL.score_range
    assert low <= result.score <= high


def test_scores_are_calibrated_600_at_30_to_1_and_20_points_double_the_odds():
    from sklearn.linear_model import LogisticRegression

    population = simulate_population(SHIPPED_SEED, 20_000, "holdout")
    scores = [MODEL.score(features_from_profile(f.profile)).score for f in population.farmers]
    bad = [f.defaulted for f in population.farmers]
    fit = LogisticRegression(C=1e6).fit(np.array(scores)[:, None] - 600, bad)
    points_to_double = -math.log(2) / fit.coef_[0][0]
    odds_at_600 = math.exp(-fit.intercept_[0])
    assert MODEL.scaling.pdo == 20 and MODEL.scaling.base_odds == 30
    assert 15 <= points_to_double <= 25
    assert 20 <= odds_at_600 <= 45


# ----------------------------------------------------------------------------- features


def test_features_from_a_simulated_profile():
    farmer = simulate_population(1, 1, "holdout").farmers[0]
    p = farmer.profile
    f = features_from_profile(p)
    grams = sum(p["harvest_grams_by_grade"].values())
    assert f.trailing_sale_income_fen == sum(p["seasonal_sale_income_fen"])
    assert f.trailing_fresh_leaf_kg == grams // 1000
    assert f.fresh_leaf_kg_per_mu_x100 == 10 * grams // p["plot_area_centi_mu"]
    assert f.current_exposure_fen == p["outstanding_principal_fen"]


def test_profile_object_with_attributes_works_like_a_mapping():
    farmer = simulate_population(1, 1, "holdout").farmers[0]

    class Profile:
        pass

    obj = Profile()
    obj.__dict__.update(farmer.profile)
    assert features_from_profile(obj) == features_from_profile(farmer.profile)


def test_protected_attributes_in_a_profile_are_ignored():
    farmer = simulate_population(1, 1, "holdout").farmers[0]
    tagged = {**farmer.profile, **farmer.protected, "gender": "F", "ethnicity": "miao"}
    assert snapshot_from_profile(tagged) == snapshot_from_profile(farmer.profile)


@given(st.lists(st.integers(0, 10**9), min_size=4, max_size=4))
def test_income_cv_matches_numpy(seasonal):
    cv = income_cv_bps(seasonal)
    if sum(seasonal) == 0:
        assert cv == MAX_CV_BPS
    else:
        expected = np.std(seasonal) / np.mean(seasonal) * 10_000
        assert abs(cv - expected) <= 1


def test_months_between():
    from datetime import date

    assert months_between(date(2024, 5, 1), date(2025, 11, 30)) == 18
    assert months_between(date(2024, 5, 31), date(2024, 6, 30)) == 0
    assert months_between(date(2025, 1, 1), date(2025, 1, 1)) == 0


def test_credit_features_refuse_floats_for_money():
    farmer = simulate_population(1, 1, "holdout").farmers[0]
    f = features_from_profile(farmer.profile)
    with pytest.raises(ValueError):
        CreditFeatures(**{**f.model_dump(), "trailing_sale_income_fen": 12.5})


def test_a_float_amount_in_the_profile_is_refused():
    farmer = simulate_population(1, 1, "holdout").farmers[0]
    p = {**farmer.profile, "outstanding_principal_fen": 1000.0}
    with pytest.raises(ProfileDataError, match="outstanding_principal_fen"):
        features_from_profile(p)
