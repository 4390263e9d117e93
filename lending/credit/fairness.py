"""Fairness report over a simulated population: approval rates and limits across groups.

Protected attributes (gender, ethnicity, age band, village) are never model inputs; they are
simulated alongside the profiles (lending/simulation.py states how they correlate with the
features) and used only here. Two checks per attribute, computed exactly from the counts
(fractions, so a ratio of 0.79996 fails a threshold of 0.80; reports round only for display):

* approval-rate ratio: lowest group approval rate / highest (the four-fifths rule, >= 0.80);
  `refer` is not counted as approved;
* limit ratio within each score band: among approved farmers of a band, lowest group mean
  limit / highest, so groups with the same score get comparable limits.

Groups (or band cells) smaller than `min_group_size` are left out and listed, since their
ratios are noise. A ratio below its threshold fails the report with FairnessThresholdError;
an attribute without two groups large enough to compare (or fewer than MIN_N simulated
farmers) is FairnessPopulationTooSmallError: no verdict is better than a vacuous one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field

from lending.credit.decision import assess
from lending.credit.features import CreditFeatures, snapshot_from_profile
from lending.credit.policy import DEFAULT_POLICY, CapAction, CreditPolicy, Outcome, ScoreBand
from lending.credit.price import price_offer
from lending.credit.scorecard import Scorecard, load_model
from lending.credit.simulation import AS_OF, Population, SimulatedFarmer, simulate_population
from lending.errors import FairnessPopulationTooSmallError, FairnessThresholdError
from lending.pricing.lpr import LprTable

ATTRIBUTES: tuple[str, ...] = ("gender", "ethnicity", "age_band", "village")
DEFAULT_SEED = 6
DEFAULT_N = 20_000
MIN_N = 1_000
"""Fewer simulated farmers leave groups too small to compare (docs/model-card.md)."""
CONTRACT_DATE = date(2025, 10, 20)
"""Within the shipped LPR table's validity, so the report runs without a user table."""

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
    thresholds = thresholds or FairnessThresholds()
    checks: list[RatioCheck] = []
    skipped: list[str] = []
    approved = [o for o in outcomes if o.outcome is Outcome.APPROVE]
    for attribute in ATTRIBUTES:
        checks.append(_approval_check(attribute, outcomes, thresholds))
        for band in sorted({o.band for o in approved}):
            cell = [o for o in approved if o.band == band]
            check = _limit_check(attribute, band, cell, thresholds)
            if check is None:
                skipped.append(f"{attribute} in band {band}")
            else:
                checks.append(check)
    rate = Fraction(len(approved), len(outcomes)) if outcomes else Fraction(0)
    return FairnessReport(
        model_version=model_version,
        policy_hash=policy_hash,
        variant=variant,
        seed=seed,
        population=len(outcomes),
        approval_rate=_display(rate),
        thresholds=thresholds,
        checks=tuple(checks),
        skipped=tuple(skipped),
    )


def _approval_check(
    attribute: str, outcomes: Sequence[PopulationOutcome], thresholds: FairnessThresholds
) -> RatioCheck:
    """Four-fifths check of approval (selection) rates: lowest group rate / highest."""
    groups = _by_group(attribute, outcomes)
    big, left_out = _large_groups(groups, thresholds.min_group_size)
    if len(big) < 2:
        raise FairnessPopulationTooSmallError(
            f"{len(outcomes):,} outcomes have {len(big)} {attribute} group(s) of at least "
            f"{thresholds.min_group_size} farmers; the approval ratio needs two: simulate more "
            "farmers (--n) or lower --min-group-size"
        )
    rates = {
        g: Fraction(sum(o.outcome is Outcome.APPROVE for o in groups[g]), len(groups[g]))
        for g in big
    }
    counts = {g: len(groups[g]) for g in big}
    return _check("approval_rate", attribute, None, rates, counts,
                  thresholds.approval_ratio_min, left_out)  # fmt: skip


def _limit_check(
    attribute: str,
    band: str,
    approved: Sequence[PopulationOutcome],
    thresholds: FairnessThresholds,
) -> RatioCheck | None:
    """Ratio of mean approved limits across groups within one band, or None if not comparable."""
    groups = _by_group(attribute, approved)
    big, left_out = _large_groups(groups, thresholds.min_group_size)
    if len(big) < 2:
        return None
    means = {g: Fraction(sum(o.limit_fen for o in groups[g]), len(groups[g])) for g in big}
    counts = {g: len(groups[g]) for g in big}
    return _check("mean_limit_fen", attribute, band, means, counts,
                  thresholds.limit_ratio_min, left_out, places=0)  # fmt: skip


def _by_group(
    attribute: str, outcomes: Sequence[PopulationOutcome]
) -> dict[str, list[PopulationOutcome]]:
    """Outcomes by their value of a protected attribute."""
    groups: dict[str, list[PopulationOutcome]] = {}
    for o in outcomes:
        groups.setdefault(str(o.protected[attribute]), []).append(o)
    return groups


def _large_groups(
    groups: Mapping[str, Sequence[PopulationOutcome]], min_size: int
) -> tuple[list[str], tuple[str, ...]]:
    """(groups with at least min_size members, the others), each sorted by name."""
    big = sorted(g for g, members in groups.items() if len(members) >= min_size)
    small = tuple(sorted(g for g, members in groups.items() if len(members) < min_size))
    return big, small


def _check(
    metric: str,
    attribute: str,
    band: str | None,
    values: Mapping[str, Fraction],
    counts: Mapping[str, int],
    threshold: Decimal,
    left_out: tuple[str, ...],
    places: int = 4,
) -> RatioCheck:
    """A RatioCheck of exact group values: compared exactly, rounded only for display."""
    high = max(values.values())
    ratio = min(values.values()) / high if high else Fraction(1)
    return RatioCheck(
        metric=metric,
        attribute=attribute,
        band=band,
        ratio=_display(ratio),
        threshold=threshold,
        passed=ratio >= Fraction(threshold),
        by_group={g: _display(v, places, ROUND_HALF_EVEN) for g, v in values.items()},
        counts=dict(counts),
        left_out=left_out,
    )


def _display(value: Fraction, places: int = 4, rounding: str = ROUND_FLOOR) -> Decimal:
    """An exact metric as a Decimal with `places` decimals, for display only.

    Ratios are rounded down, so a ratio just under its threshold never shows as equal to it.
    """
    with localcontext() as ctx:
        ctx.prec = 50
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(Decimal(1).scaleb(-places), rounding=rounding)


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
    if n < MIN_N:
        raise FairnessPopulationTooSmallError(
            f"--n {n:,} simulated farmers is too small: the minimum is {MIN_N:,} (the default "
            f"is {DEFAULT_N:,}); smaller populations leave groups too small to compare"
        )
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
