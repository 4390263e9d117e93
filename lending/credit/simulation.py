"""Seeded simulation of farmer profiles, protected attributes and default outcomes.

Used to calibrate the scorecard and to run the fairness report; no real farmer is involved.
The generating process (``PROCESS_VERSION``) is stated here and in docs/model-card.md:

Population (per farmer, independent draws unless stated):
  village ~ uniform 0..11; cooperative = village // 2 (six cooperatives of two villages);
  villages 10-11 are high-altitude.
  ethnicity depends on village (Enshi is a Tujia and Miao prefecture):
    villages 0-5 Han/Tujia/Miao 50/45/5 %, 6-9 30/60/10 %, 10-11 10/30/60 %.
  gender: 35 % of borrowing household heads are women ("F").
  age ~ uniform 22..70; age band <35, 35-49, 50+.
  diligence d ~ N(0, 1): latent, never in the profile (it caps the achievable AUC).

Profile (what the chain records), conditional on the above:
  plot area (0.01 mu) = lognormal(median 300, sigma 0.55), x0.90 for women, clipped 30..5000
    (the one documented structural correlation between gender and a feature).
  tenure (months) ~ uniform 3 .. min(240, 12 x (age - 20)): older farmers have joined longer.
  fresh leaf kg/mu = lognormal(median 280, sigma 0.25) x exp(0.12 d) x 0.92 at high altitude.
  premium (grade 1-2) share = logistic(-1.1 + 0.35 d + 0.4 high-altitude + 0.5 N).
  yearly fresh leaf = area x yield, pro rata in the first year; prior-year leaf only after 24
    months of tenure, = current / (1 + true trend), trend ~ N(0.03 + 0.04 d, 0.15).
  verified sale income = leaf x price (premium 48 yuan/kg, other grades 9 yuan/kg) x the share
    sold through the platform ~ Beta(8, 1.5); spread over the 4 seasons to as_of (the
    indexer's flushes: winter Dec-Feb, spring Mar-May, summer Jun-Aug, autumn Sep-Nov; seasons
    before the farmer joined get nothing) by a Dirichlet around the seasons' shares of tea
    sales (spring heaviest) whose concentration rises with d.
  quality failures ~ Poisson(0.35 e^(-0.5 d)); recalls ~ Poisson(0.06 e^(-0.5 d)).
  earlier loans ~ Poisson(tenure / 30), each late with probability logistic(-2.2 - 0.9 d);
    the worst delay of a late farmer is 7/15/30/60/95 days (35/25/20/12/8 %).
  35 % carry a current loan of 5-70 % of their yearly income.

Default in the next season ~ Bernoulli(logistic(z)), with
  z = -3.05 - 0.75 ln((income_yuan + 500) / 15000) + 0.45 (cv - 1.3) - 0.6 trend
      - 0.5 ln(yield / 280) - 1.0 (premium share - 0.27) - 0.25 ln(1 + tenure / 12)
      + 0.35 quality failures + 0.6 recalls - 0.12 min(loans on time, 5)
      + 0.012 worst days past due + 1.0 exposure / income - 0.45 d
where cv is the coefficient of variation of the 4 seasonal incomes and CV_CENTER = 0.95 (its
typical value; process 1 used the 12 monthly incomes, centred on 1.3).
Protected attributes never enter z: any gap between groups comes only through the correlated
features above (and through a deliberately biased model, which the fairness report must catch).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from lending.credit.features import SEASONS_PER_YEAR

PROCESS_VERSION = "tealedger.sim/2"
AS_OF = date(2025, 11, 30)
AS_OF_BLOCK = 4_200_000
STREAMS = {"train": 1, "holdout": 2, "fairness": 3, "bench": 4}
VILLAGES = 12
HIGH_ALTITUDE_FROM = 10
FEMALE_SHARE = 0.35
ETHNICITIES = ("han", "tujia", "miao")
_ETHNICITY_BY_VILLAGE = np.array(
    [[0.50, 0.45, 0.05]] * 6 + [[0.30, 0.60, 0.10]] * 4 + [[0.10, 0.30, 0.60]] * 2
)
MONTH_WEIGHTS = np.array([0.01, 0.01, 0.14, 0.25, 0.20, 0.10, 0.08, 0.04, 0.08, 0.07, 0.01, 0.01])
"""Share of a year's tea sales by calendar month, January first."""
SEASON_WEIGHTS = np.array([
    MONTH_WEIGHTS[2:5].sum(), MONTH_WEIGHTS[5:8].sum(), MONTH_WEIGHTS[8:11].sum(),
    MONTH_WEIGHTS[[11, 0, 1]].sum(),
])  # fmt: skip
"""Share of a year's tea sales by season, in features.SEASON_NAMES order (spring first)."""
CV_CENTER = 0.95
PREMIUM_FEN_PER_GRAM = 4.8
OTHER_FEN_PER_GRAM = 0.9
INTERCEPT = -3.05


@dataclass(frozen=True)
class SimulatedFarmer:
    """One simulated farmer: the profile a lender may read, and what it may not."""

    farmer_id: str
    profile: dict[str, Any]
    protected: dict[str, str]
    """gender, ethnicity, age_band, village: for the fairness report only."""
    cooperative: str
    """Not protected and not a feature, but a proxy of village and ethnicity."""
    defaulted: bool
    default_probability: float


@dataclass(frozen=True)
class Population:
    """A simulated population drawn from one seed and stream."""

    seed: int
    stream: str
    as_of: date
    farmers: tuple[SimulatedFarmer, ...]

    @property
    def default_rate(self) -> float:
        """Share of farmers who defaulted."""
        return sum(f.defaulted for f in self.farmers) / max(len(self.farmers), 1)


def simulate_population(
    seed: int, n: int, stream: str = "train", as_of: date = AS_OF
) -> Population:
    """Draw `n` farmers from the stated process; same (seed, stream, n) -> same population."""
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; use one of {', '.join(STREAMS)}")
    rng = np.random.default_rng([seed, STREAMS[stream]])
    draws = _draw(rng, n, as_of)
    block_hash = "0x" + hashlib.sha256(f"{PROCESS_VERSION}:{seed}:{stream}".encode()).hexdigest()
    farmers = tuple(_farmer(draws, i, seed, stream, block_hash, as_of) for i in range(n))
    return Population(seed, stream, as_of, farmers)


def _draw(rng: np.random.Generator, n: int, as_of: date) -> dict[str, np.ndarray]:
    """Every per-farmer quantity, vectorized, in a fixed draw order."""
    d: dict[str, np.ndarray] = {}
    d["village"] = rng.integers(0, VILLAGES, n)
    cum = np.cumsum(_ETHNICITY_BY_VILLAGE[d["village"]], axis=1)
    d["ethnicity"] = (rng.random(n)[:, None] > cum[:, :-1]).sum(axis=1)
    d["female"] = rng.random(n) < FEMALE_SHARE
    d["age"] = rng.integers(22, 71, n)
    dil = rng.standard_normal(n)
    d["diligence"] = dil
    high = d["village"] >= HIGH_ALTITUDE_FROM
    area = np.exp(np.log(300) + 0.55 * rng.standard_normal(n)) * np.where(d["female"], 0.9, 1.0)
    d["area"] = np.clip(np.rint(area), 30, 5000).astype(np.int64)
    max_tenure = np.clip((d["age"] - 20) * 12, 6, 240)
    d["tenure"] = rng.integers(3, max_tenure + 1)
    yield_kg = np.exp(np.log(280) + 0.12 * dil + 0.25 * rng.standard_normal(n))
    d["yield"] = yield_kg * np.where(high, 0.92, 1.0)
    premium = _logistic(-1.1 + 0.35 * dil + 0.4 * high + 0.5 * rng.standard_normal(n))
    d["premium"] = premium
    part_year = np.minimum(d["tenure"], 12) / 12
    grams = np.rint(d["area"] / 100 * d["yield"] * 1000 * part_year).astype(np.int64)
    d["grams"] = grams
    trend = np.clip(0.03 + 0.04 * dil + 0.15 * rng.standard_normal(n), -0.6, 1.0)
    d["trend"] = np.where(d["tenure"] >= 24, trend, 0.0)
    d["prior"] = np.where(d["tenure"] >= 24, np.rint(grams / (1 + trend)), 0).astype(np.int64)
    d["grades"] = _grades(rng, grams, premium)
    sold = rng.beta(8, 1.5, n)
    prem_g = d["grades"][:, 0] + d["grades"][:, 1]
    value = prem_g * PREMIUM_FEN_PER_GRAM + (grams - prem_g) * OTHER_FEN_PER_GRAM
    income = np.rint(value * sold).astype(np.int64)
    d["seasonal"] = _seasonal(rng, income, d["tenure"], dil, as_of)
    d["income"] = d["seasonal"].sum(axis=1)
    d["quality"] = rng.poisson(0.35 * np.exp(-0.5 * dil))
    d["recalls"] = rng.poisson(0.06 * np.exp(-0.5 * dil))
    _loans(rng, d, dil)
    has_loan = rng.random(n) < 0.35
    share = rng.uniform(0.05, 0.70, n)
    d["exposure"] = np.where(has_loan, np.rint(d["income"] * share / 10_000) * 10_000, 0).astype(
        np.int64
    )
    z = _default_logit(d)
    d["p_default"] = _logistic(z)
    d["defaulted"] = rng.random(n) < d["p_default"]
    return d


def _grades(rng: np.random.Generator, grams: np.ndarray, premium: np.ndarray) -> np.ndarray:
    """Grams per grade 1..5: premium split into grades 1-2, the rest into 3-5; exact total."""
    n = len(grams)
    g1 = premium * rng.uniform(0.2, 0.5, n)
    g3 = (1 - premium) * rng.uniform(0.4, 0.6, n)
    rest = 1 - premium - g3
    shares = np.stack([g1, premium - g1, g3, rest * 0.65, rest * 0.35], axis=1)
    out = np.floor(shares * grams[:, None]).astype(np.int64)
    out[:, 2] += grams - out.sum(axis=1)
    return out


def _season_of(day: date) -> int:
    """Index in features.SEASON_NAMES of the season (indexer.seasons) holding `day`."""
    return 3 if day.month in (12, 1, 2) else (day.month - 3) // 3


def _seasonal(
    rng: np.random.Generator, income: np.ndarray, tenure: np.ndarray, dil: np.ndarray, as_of: date
) -> np.ndarray:
    """Income per season (oldest first, ending with as_of's season), whole fen, exact total."""
    n = len(income)
    k = SEASONS_PER_YEAR
    calendar = [(_season_of(as_of) - k + j) % k for j in range(1, k + 1)]
    weights = SEASON_WEIGHTS[calendar][None, :].repeat(n, axis=0)
    seasons = -(-np.minimum(tenure, 12) // 3)
    member = np.arange(k)[None, :] >= (k - seasons)[:, None]
    concentration = np.exp(2.0 + 0.3 * dil + 0.6 * rng.standard_normal(n))
    alpha = np.maximum(weights * concentration[:, None], 1e-3)
    gam = rng.gamma(alpha) * member
    gam = np.where(gam.sum(axis=1, keepdims=True) > 0, gam, member * weights)
    share = gam / gam.sum(axis=1, keepdims=True)
    out = np.floor(share * income[:, None]).astype(np.int64)
    out[np.arange(n), np.argmax(share, axis=1)] += income - out.sum(axis=1)
    return out


def _loans(rng: np.random.Generator, d: dict[str, np.ndarray], dil: np.ndarray) -> None:
    """Earlier loans repaid on time and the worst delay, into `d`."""
    n = len(dil)
    past = rng.poisson(d["tenure"] / 30)
    late = rng.binomial(past, _logistic(-2.2 - 0.9 * dil))
    worst = rng.choice(np.array([7, 15, 30, 60, 95]), size=n, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    d["on_time"] = past - late
    d["max_dpd"] = np.where(late > 0, worst, 0)


def _cv(incomes: np.ndarray) -> np.ndarray:
    """Coefficient of variation of each row (sqrt(3) for no income)."""
    mean = incomes.mean(axis=1)
    std = incomes.std(axis=1)
    return np.where(mean > 0, std / np.maximum(mean, 1e-9), np.sqrt(SEASONS_PER_YEAR - 1))


def _default_logit(d: dict[str, np.ndarray]) -> np.ndarray:
    """The stated log-odds of default (see the module docstring)."""
    income_yuan = d["income"] / 100
    exposure_ratio = np.minimum(d["exposure"] / np.maximum(d["income"], 1), 10)
    return (
        INTERCEPT
        - 0.75 * np.log((income_yuan + 500) / 15_000)
        + 0.45 * (_cv(d["seasonal"]) - CV_CENTER)
        - 0.6 * d["trend"]
        - 0.5 * np.log(d["yield"] / 280)
        - 1.0 * (d["premium"] - 0.27)
        - 0.25 * np.log1p(d["tenure"] / 12)
        + 0.35 * d["quality"]
        + 0.6 * d["recalls"]
        - 0.12 * np.minimum(d["on_time"], 5)
        + 0.012 * d["max_dpd"]
        + 1.0 * exposure_ratio
        - 0.45 * d["diligence"]
    )


def _logistic(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z)."""
    return 1 / (1 + np.exp(-z))


def _registered(as_of: date, tenure: int) -> date:
    """First day of the month `tenure` months before as_of."""
    k = as_of.year * 12 + as_of.month - 1 - tenure
    return date(k // 12, k % 12 + 1, 1)


def _age_band(age: int) -> str:
    """Age band used by the fairness report."""
    return "<35" if age < 35 else "35-49" if age < 50 else "50+"


def _farmer(
    d: dict[str, np.ndarray], i: int, seed: int, stream: str, block_hash: str, as_of: date
) -> SimulatedFarmer:
    """Row `i` as a profile mapping plus its protected attributes and outcome."""
    farmer_id = "0x" + hashlib.sha256(f"sim:{seed}:{stream}:{i}".encode()).hexdigest()
    village = int(d["village"][i])
    profile = {
        "farmer_id": farmer_id,
        "block_number": AS_OF_BLOCK,
        "block_hash": block_hash,
        "as_of": as_of.isoformat(),
        "registered_at": _registered(as_of, int(d["tenure"][i])).isoformat(),
        "plot_area_centi_mu": int(d["area"][i]),
        "harvest_grams_by_grade": {g + 1: int(v) for g, v in enumerate(d["grades"][i])},
        "harvest_grams_prior_12m": int(d["prior"][i]),
        "seasonal_sale_income_fen": [int(v) for v in d["seasonal"][i]],
        "quality_failures_24m": int(d["quality"][i]),
        "recalled_lots_24m": int(d["recalls"][i]),
        "loans_repaid_on_time": int(d["on_time"][i]),
        "max_days_past_due_24m": int(d["max_dpd"][i]),
        "outstanding_principal_fen": int(d["exposure"][i]),
    }
    protected = {
        "gender": "F" if d["female"][i] else "M",
        "ethnicity": ETHNICITIES[int(d["ethnicity"][i])],
        "age_band": _age_band(int(d["age"][i])),
        "village": f"village-{village:02d}",
    }
    return SimulatedFarmer(
        farmer_id=farmer_id,
        profile=profile,
        protected=protected,
        cooperative=f"coop-{village // 2:02d}",
        defaulted=bool(d["defaulted"][i]),
        default_probability=float(d["p_default"][i]),
    )
