"""Fairness report over a simulated population: approval rates and limits across groups.

Protected attributes (gender, ethnicity, age band, village) are never model inputs; they are
simulated alongside the profiles (lending/simulation.py states how they correlate with the
features) and used only here. Two checks per attribute, with fairlearn's MetricFrame:

* approval-rate ratio: lowest group approval rate / highest (the four-fifths rule, >= 0.80);
  `refer` is not counted as approved;
* limit ratio within each score band: among approved farmers of a band, lowest group mean
  limit / highest, so groups with the same score get comparable limits.

Groups (or band cells) smaller than `min_group_size` are left out and listed, since their
ratios are noise. A ratio below its threshold fails the report with FairnessThresholdError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import BaseModel, ConfigDict, Field

from lending.credit.decision import assess
from lending.credit.features import CreditFeatures, snapshot_from_profile
from lending.credit.policy import DEFAULT_POLICY, CapAction, CreditPolicy, Outcome, ScoreBand
from lending.credit.price import price_offer
from lending.credit.scorecard import Scorecard, load_model
from lending.credit.simulation import AS_OF, Population, SimulatedFarmer, simulate_population
from lending.errors import FairnessThresholdError
from lending.pricing.lpr import LprTable

ATTRIBUTES: tuple[str, ...] = ("gender", "ethnicity", "age_band", "village")
DEFAULT_SEED = 6
DEFAULT_N = 20_000
CONTRACT_DATE = date(2025, 12, 1)

Scorer = Callable[[SimulatedFarmer, CreditFeatures], int]
"""Score of one simulated farmer; the production scorer sees only the features."""


class FairnessThresholds(BaseModel):
    """The lowest acceptable ratios and the smallest group that is compared."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    approval_ratio_min: Decimal = Decimal("0.80")
    limit_ratio_min: Decimal = Decimal("0.80")
    min_group_size: int = Field(default=50, gt=0)


class RatioCheck(BaseModel):
    """One ratio across the groups of one attribute (within one band for limits)."""

    model_config = ConfigDict(frozen=True)

    metric: str
    """approval_rate or mean_limit_fen."""
    attribute: str
    band: str | None
    ratio: Decimal
    threshold: Decimal
    passed: bool
    by_group: dict[str, Decimal]
    counts: dict[str, int]
    left_out: tuple[str, ...]
    """Groups smaller than min_group_size."""

    def describe(self) -> str:
        """One line, e.g. 'approval_rate ratio for ethnicity 0.41 < 0.80 (lowest miao ...)'."""
        where = f" in band {self.band}" if self.band else ""
        low = min(self.by_group, key=lambda g: self.by_group[g])
        high = max(self.by_group, key=lambda g: self.by_group[g])
        sign = ">=" if self.passed else "<"
        return (
            f"{self.metric} ratio for {self.attribute}{where} {self.ratio} {sign} "
            f"{self.threshold} (lowest {low} {self.by_group[low]}, highest {high} "
            f"{self.by_group[high]})"
        )


class FairnessReport(BaseModel):
    """Every ratio check of one model and policy on one simulated population."""

    model_config = ConfigDict(frozen=True)

    model_version: str
    policy_hash: str
    variant: str
    seed: int
    population: int
    approval_rate: Decimal
    thresholds: FairnessThresholds
    checks: tuple[RatioCheck, ...]
    skipped: tuple[str, ...]
    """Bands with approvals but fewer than two groups of min_group_size approved farmers."""

    @property
    def failures(self) -> tuple[RatioCheck, ...]:
        """Checks below their threshold."""
        return tuple(c for c in self.checks if not c.passed)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return not self.failures

    def raise_if_failed(self) -> FairnessReport:
        """Raise FairnessThresholdError naming every failed check."""
        if self.failures:
            raise FairnessThresholdError(self.failures)
        return self


@dataclass(frozen=True)
class PopulationOutcome:
    """One simulated farmer's decision, with the attributes the report groups by."""

    farmer_id: str
    score: int
    band: str
    outcome: Outcome
    limit_fen: int
    protected: dict[str, str]


def production_scorer(model: Scorecard) -> Scorer:
    """The model's own score: features only, nothing else about the farmer."""
    return lambda _farmer, features: model.score(features).score


def proxy_biased_scorer(
    model: Scorecard, cooperatives: Sequence[str] = ("coop-05",), penalty: int = 60
) -> Scorer:
    """A deliberately biased variant (a canary): it docks points by cooperative.

    Cooperative coop-05 is the two high-altitude villages where 60 % of farmers are Miao, so
    its membership is a proxy of ethnicity and village; the fairness report must catch this.
    """
    docked = frozenset(cooperatives)

    def score(farmer: SimulatedFarmer, features: CreditFeatures) -> int:
        return model.score(features).score - (penalty if farmer.cooperative in docked else 0)

    return score


def population_outcomes(
    population: Population,
    *,
    scorer: Scorer,
    policy: CreditPolicy = DEFAULT_POLICY,
    contract_date: date = CONTRACT_DATE,
    lpr_table: LprTable | None = None,
) -> list[PopulationOutcome]:
    """Outcome and limit of every farmer (pricing checked once per band at the product max)."""
    cap_declines: dict[str, bool] = {}
    out = []
    for farmer in population.farmers:
        features = snapshot_from_profile(farmer.profile).features
        score = scorer(farmer, features)
        verdict = assess(features, score, policy)
        outcome, limit = verdict.outcome, verdict.limit_fen
        if outcome is not Outcome.DECLINE and _declined_over_cap(
            verdict.band, policy, contract_date, lpr_table, cap_declines
        ):
            outcome, limit = Outcome.DECLINE, 0
        out.append(PopulationOutcome(farmer.farmer_id, score, verdict.band.name, outcome, limit,
                                     farmer.protected))  # fmt: skip
    return out


def _declined_over_cap(
    band: ScoreBand,
    policy: CreditPolicy,
    contract_date: date,
    table: LprTable | None,
    cache: dict[str, bool],
) -> bool:
    """Whether offers in `band` are declined for the rate cap (cached per band)."""
    if band.name not in cache:
        pricing, _ = price_offer(policy.product.max_limit_fen, band, policy, contract_date, table)
        cache[band.name] = pricing.cap_action is CapAction.DECLINED_OVER_CAP
    return cache[band.name]


def fairness_report(
    outcomes: Sequence[PopulationOutcome],
    *,
    model_version: str,
    policy_hash: str,
    seed: int,
    variant: str = "production",
    thresholds: FairnessThresholds | None = None,
) -> FairnessReport:
    """Approval-rate and within-band limit ratios for every protected attribute."""
    import numpy as np

    thresholds = thresholds or FairnessThresholds()
    approved = np.array([o.outcome is Outcome.APPROVE for o in outcomes], dtype=int)
    checks: list[RatioCheck] = []
    skipped: list[str] = []
    for attribute in ATTRIBUTES:
        groups = np.array([o.protected[attribute] for o in outcomes])
        checks.append(_approval_check(attribute, groups, approved, thresholds))
        for band in sorted({o.band for o in outcomes if o.outcome is Outcome.APPROVE}):
            keep = np.array([o.band == band and o.outcome is Outcome.APPROVE for o in outcomes])
            limits = np.array([o.limit_fen for o in outcomes], dtype=float)[keep]
            check = _limit_check(attribute, band, groups[keep], limits, thresholds)
            if check is None:
                skipped.append(f"{attribute} in band {band}")
            else:
                checks.append(check)
    return FairnessReport(
        model_version=model_version,
        policy_hash=policy_hash,
        variant=variant,
        seed=seed,
        population=len(outcomes),
        approval_rate=_dec(float(approved.mean()) if len(approved) else 0.0),
        thresholds=thresholds,
        checks=tuple(checks),
        skipped=tuple(skipped),
    )


def _approval_check(
    attribute: str, groups: object, approved: object, thresholds: FairnessThresholds
) -> RatioCheck:
    """Four-fifths check of approval (selection) rates with fairlearn."""
    import numpy as np
    from fairlearn.metrics import MetricFrame, count, demographic_parity_ratio, selection_rate

    big, left_out = _large_groups(groups, thresholds.min_group_size)
    mask = np.isin(groups, big)
    y, g = np.asarray(approved)[mask], np.asarray(groups)[mask]
    frame = MetricFrame(
        metrics={"rate": selection_rate, "n": count}, y_true=y, y_pred=y, sensitive_features=g
    )
    ratio = float(demographic_parity_ratio(y, y, sensitive_features=g))
    return _check("approval_rate", attribute, None, frame, ratio, thresholds.approval_ratio_min,
                  left_out)  # fmt: skip


def _limit_check(
    attribute: str, band: str, groups: object, limits: object, thresholds: FairnessThresholds
) -> RatioCheck | None:
    """Ratio of mean approved limits across groups within one band, or None if not comparable."""
    import numpy as np
    from fairlearn.metrics import MetricFrame, count, mean_prediction

    big, left_out = _large_groups(groups, thresholds.min_group_size)
    if len(big) < 2:
        return None
    mask = np.isin(groups, big)
    y, g = np.asarray(limits)[mask], np.asarray(groups)[mask]
    frame = MetricFrame(
        metrics={"rate": mean_prediction, "n": count}, y_true=y, y_pred=y, sensitive_features=g
    )
    ratio = float(frame.ratio()["rate"])
    return _check("mean_limit_fen", attribute, band, frame, ratio, thresholds.limit_ratio_min,
                  left_out, places=0)  # fmt: skip


def _large_groups(groups: object, min_size: int) -> tuple[list[str], tuple[str, ...]]:
    """(groups with at least min_size members, the others)."""
    import numpy as np

    names, sizes = np.unique(np.asarray(groups), return_counts=True)
    big = [str(n) for n, s in zip(names, sizes, strict=True) if s >= min_size]
    small = tuple(str(n) for n, s in zip(names, sizes, strict=True) if s < min_size)
    return big, small


def _check(
    metric: str,
    attribute: str,
    band: str | None,
    frame: object,
    ratio: float,
    threshold: Decimal,
    left_out: tuple[str, ...],
    places: int = 4,
) -> RatioCheck:
    """A RatioCheck from a MetricFrame with `rate` and `n` columns (group values to `places`)."""
    by_group = frame.by_group  # type: ignore[attr-defined]
    value = _dec(ratio)
    return RatioCheck(
        metric=metric,
        attribute=attribute,
        band=band,
        ratio=value,
        threshold=threshold,
        passed=value >= threshold,
        by_group={str(k): _dec(float(v), places) for k, v in by_group["rate"].items()},
        counts={str(k): int(v) for k, v in by_group["n"].items()},
        left_out=left_out,
    )


def _dec(value: float, places: int = 4) -> Decimal:
    """A metric as a Decimal with `places` decimals (reports never carry binary floats)."""
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def run_fairness(
    *,
    seed: int = DEFAULT_SEED,
    n: int = DEFAULT_N,
    model: Scorecard | None = None,
    policy: CreditPolicy = DEFAULT_POLICY,
    thresholds: FairnessThresholds | None = None,
    proxy_bias: bool = False,
    contract_date: date = CONTRACT_DATE,
) -> FairnessReport:
    """Simulate, decide and report (the `tealedger credit fairness` command)."""
    model = model or load_model()
    population = simulate_population(seed, n, "fairness", AS_OF)
    scorer = proxy_biased_scorer(model) if proxy_bias else production_scorer(model)
    outcomes = population_outcomes(population, scorer=scorer, policy=policy,
                                   contract_date=contract_date)  # fmt: skip
    return fairness_report(
        outcomes,
        model_version=model.version,
        policy_hash=policy.policy_hash,
        seed=seed,
        variant="proxy-biased canary (coop-05 docked 60 points)" if proxy_bias else "production",
        thresholds=thresholds,
    )
