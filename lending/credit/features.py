"""Credit features from a farmer's on-chain profile.

"Lend on data, not on the person": every feature is computed from the indexed chain events of
the farmer's profile (harvests, grades, plots, sales, quality attestations, recalls, loans).
Protected attributes (gender, ethnicity, age, village) are never read here; they exist only in
the fairness report (lending/fairness.py) over simulated populations.

`features_from_profile` accepts the indexer's `FarmerProfile` (indexer/profiles.py; also as its
JSON mapping, recognised by its `valid_at` key), which is first flattened by
`profile_fields`, or a flat Mapping / object with these fields (simulations and tests):

========================== ============================================================
field                      meaning (from FarmerProfile)
========================== ============================================================
farmer_id                  bytes32 pseudonymous id, 0x-hex (`farmer`)
block_number               block the profile was built at (`valid_at.block_number`)
block_hash                 hash of that block, 0x-hex (`valid_at.block_hash`)
as_of                      date of that block in China time (`valid_at.timestamp`)
registered_at              date the cooperative registered the farmer (`first_activity`,
                           the timestamp of `registered_block`)
plot_area_centi_mu         total area of the farmer's plots, 0.01 mu, > 0
                           (`total_area_mu` x 100, must be whole)
harvest_grams_by_grade     {grade 1..5: fresh-leaf grams} of the 4 seasons ending with the
                           season of as_of (`grade_mix` of those seasons)
harvest_grams_prior_12m    fresh-leaf grams of the 4 seasons before those (5-8 back)
seasonal_sale_income_fen   4 ints: verified sale income per season, oldest first, ending
                           with the season of as_of (`sale_income_fen` of each season)
quality_failures_24m       failed quality attestations, the 8 seasons to as_of
recalled_lots_24m          recalls of lots with the farmer's leaf, the 8 seasons to as_of
loans_repaid_on_time       closed loans with no late repayment, a lower bound from the
                           credit history: min(on-time repayments, loans - open - defaulted
                           - late repayments); lifetime
max_days_past_due_24m      worst days past due on any loan (`credit.max_days_past_due`,
                           lifetime despite the name, kept for the model files: the profile
                           has no 24-month window; reasons say "all your loans")
outstanding_principal_fen  owed on the platform now (`credit.outstanding_fen`: what the
                           escrows say is due on open loans, interest included)
========================== ============================================================

Seasons are the indexer's calendar flushes in China time (indexer.seasons: spring, summer,
autumn, winter), counted back from the season of as_of whether or not the farmer was active
in them; "12 months" is 4 seasons and "24 months" 8 seasons. A profile whose credit history
is not available (no LoanFactory indexed) is refused: current loans would be unknown.

Every missing or invalid field is refused with a `ProfileDataError` naming the field and what
to fix; no value is ever guessed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lending.errors import ProfileDataError

if TYPE_CHECKING:
    from indexer.profiles import FarmerProfile

PROTECTED_ATTRIBUTES: tuple[str, ...] = ("gender", "ethnicity", "age", "age_band", "village")
"""Never inputs of a credit decision; only the fairness report groups by them."""

PREMIUM_GRADES: frozenset[int] = frozenset({1, 2})
"""TeaTrace grade codes 1 (special grade, 特级) and 2 (first grade, 一级)."""

MAX_GRADE = 5
SEASONS_PER_YEAR = 4
"""Spring, summer, autumn and winter flushes (indexer.seasons)."""
SEASON_NAMES: tuple[str, ...] = ("spring", "summer", "autumn", "winter")
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_TREND_BPS = 20_000
MIN_TREND_BPS = -10_000
MAX_EXPOSURE_RATIO_BPS = 100_000
MAX_CV_BPS = round(math.sqrt(SEASONS_PER_YEAR - 1) * 10_000)
"""Coefficient of variation of 4 seasons with all income in one season (and of no income)."""
MAX_V1_CV_BPS = round(math.sqrt(12 - 1) * 10_000)
"""The same for the 12 monthly incomes of scorecard v1: the bound of stored v1 decisions."""

_HEX32 = re.compile(r"^0x[0-9a-f]{64}$")


# ----------------------------------------------------------------------------- hashing


def canonical_json(value: object) -> str:
    """Canonical JSON text for hashing: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    """sha256 of UTF-8 text, as 64 lowercase hex digits."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- models


class CreditFeatures(BaseModel):
    """The scored facts about one farmer; ints with their unit in the name, never floats."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    trailing_sale_income_fen: int = Field(ge=0)
    """Verified sale income in the 12 months to as_of."""
    sale_income_cv_bps: int = Field(ge=0, le=MAX_V1_CV_BPS)
    """Coefficient of variation of the 4 seasonal incomes (x10,000): how concentrated sales are."""
    trailing_fresh_leaf_kg: int = Field(ge=0)
    """Fresh leaf picked in the 12 months to as_of."""
    fresh_leaf_trend_bps: int = Field(ge=MIN_TREND_BPS, le=MAX_TREND_BPS)
    """Change of fresh leaf against the prior 12 months (0 when there is no prior year)."""
    premium_grade_share_bps: int = Field(ge=0, le=10_000)
    """Share of fresh leaf (by weight) in grades 1-2."""
    fresh_leaf_kg_per_mu_x100: int = Field(ge=0)
    """Fresh leaf per mu of registered plot area, x100."""
    plot_area_centi_mu: int = Field(gt=0)
    """Registered plot area, 0.01 mu (context; not scored)."""
    tenure_months: int = Field(ge=0)
    """Whole months since the cooperative registered the farmer."""
    quality_failures_24m: int = Field(ge=0)
    recalled_lots_24m: int = Field(ge=0)
    loans_repaid_on_time: int = Field(ge=0)
    max_days_past_due_24m: int = Field(ge=0)
    current_exposure_fen: int = Field(ge=0)
    """Principal currently owed on the platform."""

    @property
    def exposure_to_income_bps(self) -> int:
        """Current exposure over trailing verified income (x10,000), capped at 10x."""
        if self.current_exposure_fen == 0:
            return 0
        if self.trailing_sale_income_fen == 0:
            return MAX_EXPOSURE_RATIO_BPS
        ratio = self.current_exposure_fen * 10_000 // self.trailing_sale_income_fen
        return min(ratio, MAX_EXPOSURE_RATIO_BPS)


class ProfileSnapshot(BaseModel):
    """The features of one farmer and the chain state they were read at (for auditors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    farmer_id: str
    block_number: int = Field(ge=0)
    block_hash: str
    as_of: date
    features: CreditFeatures


class Direction(StrEnum):
    """How a feature relates to credit quality; scorecard points are monotone in it."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class Unit(StrEnum):
    """How a feature value is written in reasons."""

    FEN = "fen"
    BPS = "bps"
    KG = "kg"
    KG_PER_MU_X100 = "kg_per_mu_x100"
    MONTHS = "months"
    COUNT = "count"
    DAYS = "days"


class Window(StrEnum):
    """The span of history a feature's value is computed over (profile_fields)."""

    LAST_12_MONTHS = "last_12_months"
    """The 4 seasons ending with the season of as_of."""
    YEAR_ON_YEAR = "year_on_year"
    """Those 4 seasons against the 4 before them."""
    LAST_24_MONTHS = "last_24_months"
    """The 8 seasons ending with the season of as_of: older events stop counting."""
    SINCE_JOINING = "since_joining"
    """From the cooperative's registration of the farmer to as_of."""
    ALL_LOANS = "all_loans"
    """Every loan on the platform so far (lifetime: the profile has no shorter window)."""
    NOW = "now"
    """The state at as_of (current loans against yearly income, the last 12 months')."""


WINDOW_WORDS: dict[Window, tuple[str, str]] = {
    Window.LAST_12_MONTHS: ("in the last 12 months", "近12个月"),
    Window.YEAR_ON_YEAR: ("in the last 12 months against the 12 months before",
                          "近12个月与前12个月相比"),
    Window.LAST_24_MONTHS: ("in the last 24 months", "近24个月"),
    Window.SINCE_JOINING: ("since the cooperative registered you", "自合作社登记您以来"),
    Window.ALL_LOANS: ("over all your loans on the platform so far", "在平台上的全部贷款中"),
    Window.NOW: ("at present", "目前"),
}  # fmt: skip
"""How each window is said in reasons (English, Chinese)."""


@dataclass(frozen=True)
class FeatureSpec:
    """A candidate scorecard feature: direction, unit, window and the words used to explain it."""

    name: str
    direction: Direction
    unit: Unit
    reason_code: str
    label_en: str
    label_zh: str
    window: Window
    action_en: str = ""
    """For past events (they cannot be undone): what the farmer can do from now on."""
    action_zh: str = ""

    @property
    def past_events(self) -> bool:
        """True when the value counts things that already happened (an action is given)."""
        return bool(self.action_en)


FEATURE_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "trailing_sale_income_fen", Direction.HIGHER_IS_BETTER, Unit.FEN,
        "LOW_VERIFIED_INCOME", "verified tea sale income", "经链上核实的茶叶销售收入",
        Window.LAST_12_MONTHS,
    ),
    FeatureSpec(
        "sale_income_cv_bps", Direction.LOWER_IS_BETTER, Unit.BPS,
        "CONCENTRATED_SALES", "season-to-season variability of sale income",
        "各茶季销售收入波动系数", Window.LAST_12_MONTHS,
    ),
    FeatureSpec(
        "trailing_fresh_leaf_kg", Direction.HIGHER_IS_BETTER, Unit.KG,
        "LOW_PRODUCTION", "fresh leaf recorded", "登记的鲜叶产量", Window.LAST_12_MONTHS,
    ),
    FeatureSpec(
        "fresh_leaf_trend_bps", Direction.HIGHER_IS_BETTER, Unit.BPS,
        "FALLING_PRODUCTION", "change in fresh leaf recorded", "鲜叶产量变化",
        Window.YEAR_ON_YEAR,
    ),
    FeatureSpec(
        "premium_grade_share_bps", Direction.HIGHER_IS_BETTER, Unit.BPS,
        "LOW_PREMIUM_GRADE_SHARE", "share of fresh leaf in grades 1-2",
        "特级和一级鲜叶占比", Window.LAST_12_MONTHS,
    ),
    FeatureSpec(
        "fresh_leaf_kg_per_mu_x100", Direction.HIGHER_IS_BETTER, Unit.KG_PER_MU_X100,
        "LOW_YIELD_PER_MU", "fresh leaf per mu of registered tea garden",
        "每亩登记茶园的鲜叶产量", Window.LAST_12_MONTHS,
    ),
    FeatureSpec(
        "tenure_months", Direction.HIGHER_IS_BETTER, Unit.MONTHS,
        "SHORT_TENURE", "months of membership", "入社月数",
        Window.SINCE_JOINING,
    ),
    FeatureSpec(
        "quality_failures_24m", Direction.LOWER_IS_BETTER, Unit.COUNT,
        "QUALITY_FAILURES", "failed quality inspections", "质量检验不合格次数",
        Window.LAST_24_MONTHS,
        "deliver leaf that passes every inspection from now on",
        "确保今后交售的鲜叶每次检验都合格",
    ),
    FeatureSpec(
        "recalled_lots_24m", Direction.LOWER_IS_BETTER, Unit.COUNT,
        "RECALLED_LOTS", "recalled lots with your leaf", "含您鲜叶的被召回批次数",
        Window.LAST_24_MONTHS,
        "follow the cooperative's picking, storage and pesticide rules from now on",
        "今后严格遵守合作社的采摘、储存和用药规范",
    ),
    FeatureSpec(
        "loans_repaid_on_time", Direction.HIGHER_IS_BETTER, Unit.COUNT,
        "THIN_REPAYMENT_HISTORY", "loans repaid on time", "按时还清的贷款笔数",
        Window.ALL_LOANS,
    ),
    FeatureSpec(
        "max_days_past_due_24m", Direction.LOWER_IS_BETTER, Unit.DAYS,
        "PAST_DUE_HISTORY", "longest delay of a repayment", "最长逾期天数",
        Window.ALL_LOANS,
        "repay every installment on time from now on",
        "今后每期都按时还款",
    ),
    FeatureSpec(
        "exposure_to_income_bps", Direction.LOWER_IS_BETTER, Unit.BPS,
        "HIGH_EXPOSURE", "loans outstanding as a share of verified yearly income",
        "未还贷款占年核实收入的比例", Window.NOW,
    ),
)  # fmt: skip

SPECS_BY_NAME: dict[str, FeatureSpec] = {s.name: s for s in FEATURE_SPECS}


def feature_values(features: CreditFeatures) -> dict[str, int]:
    """Value of every candidate feature, derived ones included."""
    return {s.name: getattr(features, s.name) for s in FEATURE_SPECS}


# ----------------------------------------------------------------------------- adapter


def snapshot_from_profile(profile: Mapping[str, Any] | object) -> ProfileSnapshot:
    """Features and chain reference of a profile; ProfileDataError on missing/invalid data."""
    indexed = _as_farmer_profile(profile)
    reader = _Reader(profile_fields(indexed) if indexed is not None else profile)
    farmer = reader.hex32("farmer_id")
    reader.farmer_id = farmer
    as_of = reader.day("as_of")
    snapshot = ProfileSnapshot(
        farmer_id=farmer,
        block_number=reader.count("block_number"),
        block_hash=reader.hex32("block_hash"),
        as_of=as_of,
        features=_features(reader, as_of),
    )
    return snapshot


def features_from_profile(profile: Mapping[str, Any] | object) -> CreditFeatures:
    """The credit features of a profile (see the module docstring for the fields read)."""
    return snapshot_from_profile(profile).features


def _features(reader: _Reader, as_of: date) -> CreditFeatures:
    """Compute every feature from the raw profile aggregates."""
    grades = reader.grade_grams("harvest_grams_by_grade")
    grams = sum(grades.values())
    prior = reader.count("harvest_grams_prior_12m")
    area = reader.count("plot_area_centi_mu")
    if area == 0:
        raise ProfileDataError("plot_area_centi_mu", "is 0; register the plots", reader.farmer_id)
    seasonal = reader.seasonal("seasonal_sale_income_fen")
    registered = reader.day("registered_at")
    if registered > as_of:
        raise ProfileDataError(
            "registered_at", f"{registered} is after as_of {as_of}", reader.farmer_id
        )
    premium = sum(g for grade, g in grades.items() if grade in PREMIUM_GRADES)
    values = {
        "trailing_sale_income_fen": sum(seasonal),
        "sale_income_cv_bps": income_cv_bps(seasonal),
        "trailing_fresh_leaf_kg": grams // 1000,
        "fresh_leaf_trend_bps": trend_bps(grams, prior),
        "premium_grade_share_bps": premium * 10_000 // grams if grams else 0,
        "fresh_leaf_kg_per_mu_x100": 10 * grams // area,
        "plot_area_centi_mu": area,
        "tenure_months": months_between(registered, as_of),
        "quality_failures_24m": reader.count("quality_failures_24m"),
        "recalled_lots_24m": reader.count("recalled_lots_24m"),
        "loans_repaid_on_time": reader.count("loans_repaid_on_time"),
        "max_days_past_due_24m": reader.count("max_days_past_due_24m"),
        "current_exposure_fen": reader.count("outstanding_principal_fen"),
    }
    try:
        return CreditFeatures(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ProfileDataError(
            str(first["loc"][0]), f"gives an invalid feature: {first['msg']}", reader.farmer_id
        ) from None


def income_cv_bps(incomes: Sequence[int]) -> int:
    """Population coefficient of variation of per-period income, x10,000 (max when no income)."""
    total = sum(incomes)
    if total == 0:
        return MAX_CV_BPS
    n = len(incomes)
    # CV = sqrt(n * sum(x^2) - total^2) / total, exactly up to the final square root.
    spread = math.isqrt((n * sum(x * x for x in incomes) - total * total) * 10_000**2)
    return min(spread // total, MAX_CV_BPS)


def trend_bps(current: int, prior: int) -> int:
    """(current - prior) / prior in bps, clamped; 0 when there is no prior year."""
    if prior == 0:
        return 0
    change = (current - prior) * 10_000 // prior
    return max(MIN_TREND_BPS, min(MAX_TREND_BPS, change))


def months_between(start: date, end: date) -> int:
    """Whole calendar months from `start` to `end` (>= 0)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day:
        months -= 1
    return max(months, 0)


# ----------------------------------------------------------------------------- indexed profile


def _as_farmer_profile(profile: object) -> FarmerProfile | None:
    """The indexer's FarmerProfile if `profile` is one (or its JSON mapping), else None."""
    from indexer.profiles import FarmerProfile

    if isinstance(profile, FarmerProfile):
        return profile
    if isinstance(profile, Mapping) and "valid_at" in profile:
        try:
            return FarmerProfile.model_validate(profile)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(p) for p in first["loc"]) or "<profile>"
            farmer = profile.get("farmer")
            raise ProfileDataError(
                name, f"is invalid: {first['msg']}", farmer if isinstance(farmer, str) else None
            ) from None
    return None


def season_index(season: str) -> int:
    """A season name ('2026-spring') as a running count of seasons (consecutive seasons +1)."""
    year, _, name = season.partition("-")
    return int(year) * SEASONS_PER_YEAR + SEASON_NAMES.index(name)


def season_name(index: int) -> str:
    """Inverse of season_index."""
    year, k = divmod(index, SEASONS_PER_YEAR)
    return f"{year}-{SEASON_NAMES[k]}"


def profile_fields(profile: FarmerProfile) -> dict[str, Any]:
    """The flat fields of the module docstring from the indexer's FarmerProfile."""
    from indexer.seasons import season_of

    farmer = profile.farmer
    valid_at = profile.valid_at
    if valid_at.timestamp is None:
        raise ProfileDataError(
            "valid_at.timestamp",
            "is missing (the block is no longer in the indexer's window)",
            farmer,
        )
    if not profile.credit.available:
        raise ProfileDataError(
            "credit.available", "is false: no LoanFactory is indexed, so current loans are "
            "unknown", farmer,
        )  # fmt: skip
    area = profile.total_area_mu * 100
    if area != area.to_integral_value():
        raise ProfileDataError(
            "total_area_mu", f"{profile.total_area_mu} is not a whole number of 0.01 mu", farmer
        )
    current = season_index(season_of(int(valid_at.timestamp.timestamp())))
    by_season = {}
    for figures in profile.seasons:
        try:
            by_season[season_index(figures.season)] = figures
        except (ValueError, IndexError):
            raise ProfileDataError(
                "seasons",
                f"has season {figures.season!r}, not YEAR-spring/summer/autumn/winter",
                farmer,
            ) from None
    if max(by_season, default=current) > current:
        raise ProfileDataError(
            "seasons", f"has a season after {season_name(current)}, the season of valid_at", farmer
        )

    def back(first: int, last: int) -> list[Any]:
        """Figures of the seasons `first`..`last` back (1 = the season of as_of), oldest first."""
        found = (by_season.get(current + 1 - k) for k in range(last, first - 1, -1))
        return [f for f in found if f is not None]

    trailing = back(1, SEASONS_PER_YEAR)
    grades: dict[int, int] = {}
    for figures in trailing:
        for g in figures.grade_mix:
            grades[g.grade] = grades.get(g.grade, 0) + g.grams
    incomes = [
        by_season[i].sale_income_fen if i in by_season else 0
        for i in range(current + 1 - SEASONS_PER_YEAR, current + 1)
    ]
    two_years = back(1, 2 * SEASONS_PER_YEAR)
    credit = profile.credit
    closed = credit.loans - credit.open_loans - credit.defaults - credit.late_repayments
    return {
        "farmer_id": farmer,
        "block_number": valid_at.block_number,
        "block_hash": valid_at.block_hash,
        "as_of": valid_at.timestamp.astimezone(CHINA_TZ).date(),
        "registered_at": profile.first_activity.astimezone(CHINA_TZ).date(),
        "plot_area_centi_mu": int(area),
        "harvest_grams_by_grade": grades,
        "harvest_grams_prior_12m": sum(
            f.fresh_leaf_grams for f in back(SEASONS_PER_YEAR + 1, 2 * SEASONS_PER_YEAR)
        ),
        "seasonal_sale_income_fen": incomes,
        "quality_failures_24m": sum(f.quality_failures for f in two_years),
        "recalled_lots_24m": sum(f.recalls for f in two_years),
        "loans_repaid_on_time": max(0, min(credit.on_time_repayments, closed)),
        "max_days_past_due_24m": credit.max_days_past_due,
        "outstanding_principal_fen": credit.outstanding_fen,
    }


class _Reader:
    """Typed field access on a Mapping or an object, with errors that name the field."""

    def __init__(self, profile: object) -> None:
        if profile is None or isinstance(profile, str | bytes | int | float):
            raise ProfileDataError(
                "<profile>", f"is a {type(profile).__name__}, not a profile mapping or object"
            )
        self._profile = profile
        self.farmer_id: str | None = None

    def raw(self, name: str) -> object:
        """The field value; missing or None -> ProfileDataError."""
        if isinstance(self._profile, Mapping):
            value = self._profile.get(name)
        else:
            value = getattr(self._profile, name, None)
        if value is None:
            raise ProfileDataError(name, "is missing", self.farmer_id)
        return value

    def fail(self, name: str, problem: str) -> ProfileDataError:
        """An error about field `name`."""
        return ProfileDataError(name, problem, self.farmer_id)

    def count(self, name: str) -> int:
        """A non-negative int (bool, float and strings refused)."""
        return self._int(self.raw(name), name)

    def _int(self, value: object, name: str) -> int:
        """Check one non-negative int."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be a whole number, got {type(value).__name__} {value!r}")
        if value < 0:
            raise self.fail(name, f"is {value}; it must be >= 0")
        return value

    def hex32(self, name: str) -> str:
        """A 32-byte id or hash as lowercase 0x-hex."""
        value = self.raw(name)
        if isinstance(value, bytes | bytearray) and len(value) == 32:
            return "0x" + bytes(value).hex()
        text = str(value).lower() if isinstance(value, str) else ""
        if not _HEX32.match(text):
            raise self.fail(name, f"must be 32 bytes as 0x + 64 hex digits, got {value!r}")
        return text

    def day(self, name: str) -> date:
        """A date from a date, datetime or ISO string."""
        value = self.raw(name)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                pass
        raise self.fail(name, f"must be a date (YYYY-MM-DD), got {value!r}")

    def seasonal(self, name: str) -> list[int]:
        """Exactly 4 non-negative ints of fen."""
        value = self.raw(name)
        n = SEASONS_PER_YEAR
        if not isinstance(value, Sequence) or isinstance(value, str | bytes):
            raise self.fail(name, f"must be a list of {n} amounts in fen")
        if len(value) != n:
            raise self.fail(name, f"must hold {n} seasonal amounts, got {len(value)}")
        return [self._int(v, f"{name}[{i}]") for i, v in enumerate(value)]

    def grade_grams(self, name: str) -> dict[int, int]:
        """{grade 1..5: grams}; keys may be ints or digit strings (JSON)."""
        value = self.raw(name)
        if not isinstance(value, Mapping):
            raise self.fail(name, "must map grade codes 1..5 to grams")
        out: dict[int, int] = {}
        for key, grams in value.items():
            grade = int(key) if isinstance(key, str) and key.isdigit() else key
            if isinstance(grade, bool) or not isinstance(grade, int) or not 1 <= grade <= MAX_GRADE:
                raise self.fail(name, f"has grade {key!r}; grades are 1..{MAX_GRADE}")
            out[grade] = out.get(grade, 0) + self._int(grams, f"{name}[{key}]")
        return out
