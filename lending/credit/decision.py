"""Credit decisions: consent, score, reasons, limit, capped price and disclosure; and replay.

`decide` is the one way a lender scores a farmer: it refuses without the farmer's active
consent, logs every profile read, scores the profile with a frozen scorecard, and returns an
immutable `DecisionRecord` (stored by lending/credit_store.py). `evaluate` is the pure part
(same inputs, same decision), which `replay` runs again for an auditor.

Outcome rules, in order:
  1. The score band gives approve / refer / decline, a price and a share of the base limit.
  2. Limit = income share x verified trailing sale income x band share - current exposure,
     never above the product maximum, rounded down to whole `limit_step_fen`.
  3. Yield per mu above the plausibility ceiling -> at least refer (data to be checked).
  4. A limit under the product minimum -> decline.
  5. Price: the band rate, checked against the rate cap with the full disclosure of the offer
     (lending/disclosure.py, lending/caps.py). Above the cap the rate is lowered to the highest
     whole bps within it (`over_cap=cap`) or the offer is declined (`over_cap=decline`); either
     is stated in the decision. No offer above the cap can be made.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lending.credit.features import (
    SPECS_BY_NAME,
    CreditError,
    CreditFeatures,
    Direction,
    ProfileDataError,
    ProfileSnapshot,
    Unit,
    canonical_json,
    sha256_hex,
    snapshot_from_profile,
)
from lending.credit.scorecard import (
    FeatureBins,
    FeaturePoints,
    Scorecard,
    load_model,
    model_by_version,
)
from lending.pricing.caps import CapBasis, CapPolicy, check_penalty_rate_cap, check_rate_cap
from lending.pricing.disclosure import Disclosure, disclose
from lending.pricing.lpr import LprTable
from lending.pricing.schedule import LoanTerms, ScheduleKind
from lending.pricing.units import format_fen

if TYPE_CHECKING:
    from web3.contract import Contract

    from chain.client import ChainClient

SCHEMA = "tealedger.credit-decision/1"
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


# ----------------------------------------------------------------------------- errors


class ConsentRequiredError(CreditError):
    """The farmer has no active on-chain consent for this lender: no profile read, no score."""

    def __init__(self, farmer_id: str, lender: str) -> None:
        self.farmer_id = farmer_id
        self.lender = lender
        super().__init__(
            f"farmer {farmer_id} has not given lender {lender} an active consent in the "
            "ConsentRegistry; nothing was read or scored: ask the farmer to grant consent "
            "(grantConsent or a signed grantConsentBySig) and apply again"
        )


class ConsentCheckError(CreditError):
    """Consent could not be checked (chain unreachable): refused, since consent is unproven."""


class InvalidRequestError(CreditError):
    """A decision request with a malformed farmer id or lender address."""


class ProfileNotFoundError(CreditError):
    """No profile exists for the farmer."""


class ReplayMismatchError(CreditError):
    """Recomputing a stored decision gave a different result."""

    def __init__(self, decision_id: str, differences: Sequence[str]) -> None:
        self.decision_id = decision_id
        self.differences = tuple(differences)
        super().__init__(
            f"decision {decision_id} does not replay: {', '.join(differences)} differ; check "
            "the model file, policy and LPR table versions the decision names"
        )


# ----------------------------------------------------------------------------- policy


class Outcome(StrEnum):
    """What the lender tells the farmer."""

    APPROVE = "approve"
    REFER = "refer"
    """Manual review by a loan officer; the offer shown is provisional."""
    DECLINE = "decline"


_SEVERITY = {Outcome.APPROVE: 0, Outcome.REFER: 1, Outcome.DECLINE: 2}


class OverCapAction(StrEnum):
    """What to do when a band's rate would put the offer above the rate cap."""

    CAP = "cap"
    DECLINE = "decline"


class CapAction(StrEnum):
    """What the cap did to the offer."""

    WITHIN_CAP = "within_cap"
    CAPPED = "capped"
    DECLINED_OVER_CAP = "declined_over_cap"


class ScoreBand(BaseModel):
    """Scores from `min_score` up (to the next band): action, price and share of base limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    min_score: int
    action: Outcome
    rate_bps: int = Field(ge=0)
    limit_share_bps: int = Field(ge=0, le=10_000)


class CreditProduct(BaseModel):
    """A loan product: schedule, term, limits and fees."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name_en: str
    name_zh: str
    kind: ScheduleKind
    term_months: int = Field(gt=0)
    min_limit_fen: int = Field(gt=0)
    max_limit_fen: int = Field(gt=0)
    upfront_fee_bps: int = Field(default=0, ge=0, lt=10_000)
    penalty_rate_bps: int = Field(default=0, ge=0)
    grace_months: int = Field(default=0, ge=0)


SPRING_INPUTS = CreditProduct(
    code="spring-inputs-12m",
    name_en="Tea season inputs loan, repaid in the flush months",
    name_zh="茶季农资贷（采茶季分期还款）",
    kind=ScheduleKind.SEASONAL,
    term_months=12,
    min_limit_fen=100_000,
    max_limit_fen=5_000_000,
)

DEFAULT_BANDS: tuple[ScoreBand, ...] = (
    ScoreBand(name="A", min_score=630, action=Outcome.APPROVE, rate_bps=650,
              limit_share_bps=10_000),
    ScoreBand(name="B", min_score=605, action=Outcome.APPROVE, rate_bps=850,
              limit_share_bps=8_000),
    ScoreBand(name="C", min_score=585, action=Outcome.APPROVE, rate_bps=1050,
              limit_share_bps=6_000),
    ScoreBand(name="D", min_score=565, action=Outcome.REFER, rate_bps=1250,
              limit_share_bps=4_000),
    ScoreBand(name="E", min_score=-(10**6), action=Outcome.DECLINE, rate_bps=0,
              limit_share_bps=0),
)  # fmt: skip


class CreditPolicy(BaseModel):
    """Everything besides the scorecard that turns a score into an offer; hashed and stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "tea-season-2025"
    income_share_bps: int = Field(default=4_000, ge=0, le=10_000)
    """Base limit as a share of verified trailing 12-month sale income."""
    limit_step_fen: int = Field(default=10_000, gt=0)
    bands: tuple[ScoreBand, ...] = DEFAULT_BANDS
    product: CreditProduct = SPRING_INPUTS
    over_cap: OverCapAction = OverCapAction.CAP
    max_plausible_kg_per_mu_x100: int = Field(default=120_000, gt=0)
    """Fresh leaf above 1,200 kg/mu a year is implausible for tea: the data is checked first."""
    hard_cap_bps: int = Field(default=2_400, gt=0)
    lpr_multiple: int = Field(default=4, gt=0)
    use_lpr_cap: bool = True
    cap_basis: CapBasis = CapBasis.STRICTEST
    max_reasons: int = Field(default=4, ge=1, le=4)

    @model_validator(mode="after")
    def _check(self) -> CreditPolicy:
        """Bands strictly descending by min score; product limits ordered."""
        scores = [b.min_score for b in self.bands]
        if not scores or any(b >= a for a, b in itertools.pairwise(scores)):
            raise ValueError("bands must be listed with strictly decreasing min_score")
        if self.product.min_limit_fen > self.product.max_limit_fen:
            raise ValueError("product min_limit_fen exceeds max_limit_fen")
        return self

    def cap_policy(self) -> CapPolicy:
        """The lending-math cap policy this credit policy applies."""
        return CapPolicy(self.hard_cap_bps, self.lpr_multiple, self.use_lpr_cap, self.cap_basis)

    def band_for(self, score: int) -> ScoreBand:
        """The band a score falls in (the last band catches everything below)."""
        for band in self.bands:
            if score >= band.min_score:
                return band
        return self.bands[-1]

    @property
    def policy_hash(self) -> str:
        """sha256 of the canonical JSON of the policy."""
        return sha256_hex(canonical_json(self.model_dump(mode="json")))


DEFAULT_POLICY = CreditPolicy()


# ----------------------------------------------------------------------------- decisions


class ReasonCode(BaseModel):
    """A feature that cost points, in words the farmer can act on (Chinese and English)."""

    model_config = ConfigDict(frozen=True)

    code: str
    feature: str
    value: int
    points: int
    max_points: int
    points_lost: int
    target_value: int
    """The nearest value that would add points ("at least" or "at most" it, by direction)."""
    target_gain: int
    """Points that value would add."""
    text_en: str
    text_zh: str
    improve_en: str
    improve_zh: str


class PolicyNote(BaseModel):
    """A policy rule that shaped the outcome, limit or price."""

    model_config = ConfigDict(frozen=True)

    code: str
    text_en: str
    text_zh: str


class Pricing(BaseModel):
    """The band rate, the rate offered, and the cap rule that was applied."""

    model_config = ConfigDict(frozen=True)

    band_rate_bps: int
    offered_rate_bps: int | None
    cap_action: CapAction
    cap_rule: str
    cap_pct: Decimal
    checked_rate_pct: Decimal | None
    """The annualized figure checked against the cap (per the policy's cap basis)."""


class CreditDecision(BaseModel):
    """A complete, recomputable credit decision: inputs, model, score, reasons, offer."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = SCHEMA
    farmer_id: str
    profile_block_number: int
    profile_block_hash: str
    profile_as_of: date
    features: CreditFeatures
    model_version: str
    policy_hash: str
    policy: CreditPolicy
    contract_date: date
    score: int
    band: str
    points: tuple[FeaturePoints, ...]
    outcome: Outcome
    reasons: tuple[ReasonCode, ...]
    notes: tuple[PolicyNote, ...]
    base_limit_fen: int
    limit_fen: int
    pricing: Pricing | None
    disclosure: Disclosure | None

    def canonical(self) -> str:
        """Canonical JSON text of the decision."""
        return canonical_json(self.model_dump(mode="json"))


class DecisionRecord(BaseModel):
    """What is stored: the decision plus who asked and when; hashed as a whole."""

    model_config = ConfigDict(frozen=True)

    decision_id: str
    lender: str
    decided_at: datetime
    decision: CreditDecision

    @property
    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the record."""
        return sha256_hex(canonical_json(self.model_dump(mode="json")))


class Assessment(BaseModel):
    """The outcome, band and limit of a score under a policy, before pricing."""

    model_config = ConfigDict(frozen=True)

    band: ScoreBand
    outcome: Outcome
    base_limit_fen: int
    limit_fen: int
    notes: tuple[PolicyNote, ...]


def assess(features: CreditFeatures, score: int, policy: CreditPolicy) -> Assessment:
    """Band, outcome and limit of `score` (rules 1-4 of the module docstring)."""
    band = policy.band_for(score)
    base = features.trailing_sale_income_fen * policy.income_share_bps // 10_000
    limit = _limit(features, base, band, policy)
    outcome, notes = band.action, []
    if outcome is Outcome.DECLINE:
        notes.append(_note("SCORE_BELOW_CUTOFF", score=score, band=band.name))
        return Assessment(
            band=band, outcome=outcome, base_limit_fen=base, limit_fen=0, notes=tuple(notes)
        )
    if features.fresh_leaf_kg_per_mu_x100 > policy.max_plausible_kg_per_mu_x100:
        outcome = _worse(outcome, Outcome.REFER)
        notes.append(_note("YIELD_IMPLAUSIBLE", value=features.fresh_leaf_kg_per_mu_x100,
                           ceiling=policy.max_plausible_kg_per_mu_x100))  # fmt: skip
    if limit < policy.product.min_limit_fen:
        notes.append(
            _note("LIMIT_BELOW_MINIMUM", limit=limit, minimum=policy.product.min_limit_fen)
        )
        return Assessment(band=band, outcome=Outcome.DECLINE, base_limit_fen=base, limit_fen=0,
                          notes=tuple(notes))  # fmt: skip
    return Assessment(
        band=band, outcome=outcome, base_limit_fen=base, limit_fen=limit, notes=tuple(notes)
    )


def _limit(features: CreditFeatures, base: int, band: ScoreBand, policy: CreditPolicy) -> int:
    """Banded share of base limit less exposure, capped by the product, in whole steps."""
    banded = base * band.limit_share_bps // 10_000
    net = max(banded - features.current_exposure_fen, 0)
    capped = min(net, policy.product.max_limit_fen)
    return capped // policy.limit_step_fen * policy.limit_step_fen


def _worse(a: Outcome, b: Outcome) -> Outcome:
    """The more severe outcome."""
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def evaluate(
    snapshot: ProfileSnapshot,
    *,
    model: Scorecard,
    policy: CreditPolicy = DEFAULT_POLICY,
    contract_date: date,
    lpr_table: LprTable | None = None,
) -> CreditDecision:
    """The decision for a profile snapshot: pure, so an auditor can recompute it exactly."""
    result = model.score(snapshot.features)
    verdict = assess(snapshot.features, result.score, policy)
    outcome, limit, notes = verdict.outcome, verdict.limit_fen, list(verdict.notes)
    pricing, disclosure = None, None
    if outcome is not Outcome.DECLINE:
        pricing, disclosure = price_offer(limit, verdict.band, policy, contract_date, lpr_table)
        if pricing.cap_action is CapAction.CAPPED:
            notes.append(_note("RATE_CAPPED", band_rate=pricing.band_rate_bps,
                               rate=pricing.offered_rate_bps, rule=pricing.cap_rule,
                               cap=pricing.cap_pct))  # fmt: skip
        elif pricing.cap_action is CapAction.DECLINED_OVER_CAP:
            notes.append(_note("OVER_RATE_CAP", band_rate=pricing.band_rate_bps,
                               rule=pricing.cap_rule, cap=pricing.cap_pct))  # fmt: skip
            outcome, limit = Outcome.DECLINE, 0
    return CreditDecision(
        farmer_id=snapshot.farmer_id,
        profile_block_number=snapshot.block_number,
        profile_block_hash=snapshot.block_hash,
        profile_as_of=snapshot.as_of,
        features=snapshot.features,
        model_version=model.version,
        policy_hash=policy.policy_hash,
        policy=policy,
        contract_date=contract_date,
        score=result.score,
        band=verdict.band.name,
        points=result.by_feature,
        outcome=outcome,
        reasons=reason_codes(model, result.by_feature, policy.max_reasons),
        notes=tuple(notes),
        base_limit_fen=verdict.base_limit_fen,
        limit_fen=limit,
        pricing=pricing,
        disclosure=disclosure,
    )


# ----------------------------------------------------------------------------- pricing


def price_offer(
    limit_fen: int,
    band: ScoreBand,
    policy: CreditPolicy,
    contract_date: date,
    lpr_table: LprTable | None = None,
) -> tuple[Pricing, Disclosure | None]:
    """Price an offer at the band rate, or the highest rate within the cap, or refuse it."""
    cap_policy = policy.cap_policy()

    def trial(rate_bps: int) -> Disclosure:
        terms = _terms(limit_fen, rate_bps, policy.product, contract_date)
        return disclose(terms, cap_policy, lpr_table, enforce_caps=False)

    first = trial(band.rate_bps)
    if _within_cap(first):
        offer = _guard(first, policy, lpr_table)
        return _pricing(band, band.rate_bps, CapAction.WITHIN_CAP, first), offer
    found = _highest_within_cap(trial, first) if policy.over_cap is OverCapAction.CAP else None
    if found is None:
        return _pricing(band, None, CapAction.DECLINED_OVER_CAP, first), None
    rate, best = found
    return _pricing(band, rate, CapAction.CAPPED, best), _guard(best, policy, lpr_table)


def _highest_within_cap(
    trial: Callable[[int], Disclosure], over: Disclosure
) -> tuple[int, Disclosure] | None:
    """Highest whole-bps contract rate whose offer is within the cap (None if not even 0 is).

    `over` is the offer at the band rate, known to be over the cap. The annualized rate is
    close to proportional to the contract rate, so the search starts at band rate x cap /
    checked rate and gallops from there; usually two more disclosures settle it.
    """
    band_rate = int(over.annual_rate_pct * 100)
    checked, cap = over.rate_cap.rate_pct, over.rate_cap.cap_pct
    guess = min(band_rate - 1, max(0, int(band_rate * cap / checked)))
    high, probe, step = band_rate, guess, 1  # invariant: rate `high` is over the cap
    while not _within_cap(best := trial(probe)):
        if probe == 0:
            return None
        high, probe, step = probe, max(0, probe - step), step * 2
    low, step = probe, 1  # invariant: rate `low` is within the cap
    while low + step < high:
        candidate = trial(low + step)
        if not _within_cap(candidate):
            high = low + step
            break
        low, best, step = low + step, candidate, step * 2
    while high - low > 1:
        mid = (low + high) // 2
        candidate = trial(mid)
        if _within_cap(candidate):
            low, best = mid, candidate
        else:
            high = mid
    return low, best


def _terms(limit_fen: int, rate_bps: int, product: CreditProduct, start: date) -> LoanTerms:
    """Loan terms of an offer of the full limit."""
    return LoanTerms(
        principal_fen=limit_fen,
        annual_rate=rate_bps,
        term_months=product.term_months,
        kind=product.kind,
        start=start,
        upfront_fee_fen=limit_fen * product.upfront_fee_bps // 10_000,
        grace_months=product.grace_months,
        penalty_rate_bps=product.penalty_rate_bps,
    )


def _within_cap(d: Disclosure) -> bool:
    """True when the rate (and the combined overdue rate, if any) is within the cap."""
    return d.rate_cap.within_cap and (d.penalty_cap is None or d.penalty_cap.within_cap)


def _guard(d: Disclosure, policy: CreditPolicy, table: LprTable | None) -> Disclosure:
    """Re-check the offered disclosure with the raising cap checks: no offer over the cap."""
    cap_policy = policy.cap_policy()
    check_rate_cap(d.rate_cap.rate_pct, d.start, cap_policy, table)
    if d.penalty_rate_bps:
        check_penalty_rate_cap(d.rate_cap.rate_pct, d.penalty_rate_bps, d.start, cap_policy, table)
    return d


def _pricing(band: ScoreBand, offered: int | None, action: CapAction, d: Disclosure) -> Pricing:
    """The pricing record of an offer."""
    return Pricing(
        band_rate_bps=band.rate_bps,
        offered_rate_bps=offered,
        cap_action=action,
        cap_rule=d.rate_cap.rule,
        cap_pct=d.rate_cap.cap_pct,
        checked_rate_pct=d.rate_cap.rate_pct if offered is not None else None,
    )


# ----------------------------------------------------------------------------- reasons


def reason_codes(
    model: Scorecard, points: Sequence[FeaturePoints], max_reasons: int = 4
) -> tuple[ReasonCode, ...]:
    """The features that lost the most points against their maximum (ties: model order)."""
    order = {fb.name: i for i, fb in enumerate(model.features)}
    bins = {fb.name: fb for fb in model.features}
    lost = sorted(
        (p for p in points if p.points_lost > 0), key=lambda p: (-p.points_lost, order[p.name])
    )
    return tuple(_reason(bins[p.name], p) for p in lost[:max_reasons])


def _reason(fb: FeatureBins, p: FeaturePoints) -> ReasonCode:
    """One reason with its value, points and the nearest change that would add points."""
    spec = SPECS_BY_NAME[p.name]
    en, zh = _value_text(spec.unit, p.value)
    target, gain, at_least = _next_step(fb, p.bin)
    t_en, t_zh = _value_text(spec.unit, target)
    label_en = spec.label_en[0].upper() + spec.label_en[1:]
    if at_least:
        improve_en = f"Raising {spec.label_en} to at least {t_en} would add {gain} points."
        improve_zh = f"{spec.label_zh}达到{t_zh}及以上，可增加{gain}分。"
    else:
        improve_en = f"Lowering {spec.label_en} to at most {t_en} would add {gain} points."
        improve_zh = f"{spec.label_zh}降至{t_zh}及以下，可增加{gain}分。"
    return ReasonCode(
        code=spec.reason_code,
        feature=p.name,
        value=p.value,
        points=p.points,
        max_points=p.max_points,
        points_lost=p.points_lost,
        target_value=target,
        target_gain=gain,
        text_en=f"{label_en}: {en}, {p.points} of {p.max_points} points.",
        text_zh=f"{spec.label_zh}为{zh}，得{p.points}分（最高{p.max_points}分）。",
        improve_en=improve_en,
        improve_zh=improve_zh,
    )


def _next_step(fb: FeatureBins, index: int) -> tuple[int, int, bool]:
    """(threshold, points gained, True for 'at least') of the nearest bin with more points."""
    here = fb.points[index]
    if fb.direction is Direction.HIGHER_IS_BETTER:
        j = next(k for k in range(index + 1, len(fb.points)) if fb.points[k] > here)
        return fb.edges[j - 1], fb.points[j] - here, True
    j = next(k for k in range(index - 1, -1, -1) if fb.points[k] > here)
    return fb.edges[j] - 1, fb.points[j] - here, False


def _value_text(unit: Unit, value: int) -> tuple[str, str]:
    """A feature value in English and Chinese."""
    if unit is Unit.FEN:
        return f"¥{format_fen(value)}", f"{format_fen(value)}元"
    if unit is Unit.BPS:
        pct = f"{Decimal(value).scaleb(-2):.2f}%"
        return pct, pct
    if unit is Unit.KG_PER_MU_X100:
        x = f"{Decimal(value).scaleb(-2):,.2f}"
        return f"{x} kg/mu", f"{x}公斤/亩"
    words = {
        Unit.KG: (" kg", "公斤"), Unit.MONTHS: (" months", "个月"),
        Unit.DAYS: (" days", "天"), Unit.COUNT: ("", ""),
    }[unit]  # fmt: skip
    return f"{value:,}{words[0]}", f"{value:,}{words[1]}"


_NOTES: dict[str, tuple[str, str]] = {
    "SCORE_BELOW_CUTOFF": (
        "Score {score} is in band {band}, below the lowest band that can be offered credit.",
        "评分{score}分，属于{band}档，低于可授信的最低档。",
    ),
    "YIELD_IMPLAUSIBLE": (
        "Recorded yield {value} (kg/mu x100) is above the plausible {ceiling}: a loan officer "
        "checks the harvest records first.",
        "登记亩产{value}（公斤/亩×100）高于合理上限{ceiling}，需信贷员先核实采摘记录。",
    ),
    "LIMIT_BELOW_MINIMUM": (
        "The limit from verified income, score band and current loans ({limit} fen) is below "
        "the product minimum ({minimum} fen).",
        "按核实收入、评分档位和现有贷款计算的额度（{limit}分）低于产品最低额度（{minimum}分）。",
    ),
    "RATE_CAPPED": (
        "The band rate of {band_rate} bps would exceed the rate cap of {cap}% ({rule}); the "
        "rate offered is lowered to {rate} bps.",
        "档位利率{band_rate}个基点将超过利率上限{cap}%（{rule}），实际报价降至{rate}个基点。",
    ),
    "OVER_RATE_CAP": (
        "The band rate of {band_rate} bps would exceed the rate cap of {cap}% ({rule}); by "
        "policy no offer is made.",
        "档位利率{band_rate}个基点将超过利率上限{cap}%（{rule}），按政策不予报价。",
    ),
}


def _note(code: str, **values: object) -> PolicyNote:
    """A policy note with its texts filled in."""
    en, zh = _NOTES[code]
    return PolicyNote(code=code, text_en=en.format(**values), text_zh=zh.format(**values))


# ----------------------------------------------------------------------------- consent


class ConsentChecker(Protocol):
    """Answers whether `lender` holds the farmer's active consent now."""

    def has_consent(self, farmer_id: str, lender: str) -> bool:
        """True while the consent is active."""
        ...


class ProfileReader(Protocol):
    """Reads a farmer's current profile (a Mapping or an object, see lending/features.py)."""

    def read_profile(self, farmer_id: str) -> object:
        """The profile; ProfileNotFoundError if there is none."""
        ...


class AccessOutcome(StrEnum):
    """What happened when a lender asked for a profile."""

    READ = "read"
    READ_INVALID = "read_invalid"
    """Read, but the data could not be scored (ProfileDataError)."""
    REFUSED_NO_CONSENT = "refused_no_consent"


class ProfileAccess(BaseModel):
    """One entry of the profile access log."""

    model_config = ConfigDict(frozen=True)

    farmer_id: str
    lender: str
    purpose: str
    outcome: AccessOutcome
    at: datetime
    decision_id: str | None = None
    block_number: int | None = None
    block_hash: str | None = None


class AccessLog(Protocol):
    """Where profile accesses are recorded (credit_store.CreditStore, or MemoryAccessLog)."""

    def record_access(self, entry: ProfileAccess) -> None:
        """Append one entry; entries are never changed."""
        ...


class DecisionSink(Protocol):
    """Where decisions are stored (credit_store.CreditStore)."""

    def insert_decision(self, record: DecisionRecord) -> str:
        """Store a record; returns its decision id."""
        ...


class StaticConsent:
    """Consents held in memory as (farmer id, lender) pairs: simulations and tests."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = (), *, everyone: bool = False) -> None:
        self._pairs = {(f.lower(), lender.lower()) for f, lender in pairs}
        self._everyone = everyone

    def has_consent(self, farmer_id: str, lender: str) -> bool:
        """True for the stored pairs (or everyone, for simulations)."""
        return self._everyone or (farmer_id.lower(), lender.lower()) in self._pairs


class MappingProfileReader:
    """Profiles from a mapping of farmer id -> profile."""

    def __init__(self, profiles: Mapping[str, object]) -> None:
        self._profiles = {k.lower(): v for k, v in profiles.items()}

    def read_profile(self, farmer_id: str) -> object:
        """The profile, or ProfileNotFoundError."""
        try:
            return self._profiles[farmer_id.lower()]
        except KeyError:
            raise ProfileNotFoundError(f"no profile for farmer {farmer_id}") from None


class MemoryAccessLog:
    """An in-memory, append-only access log."""

    def __init__(self) -> None:
        self.entries: list[ProfileAccess] = []

    def record_access(self, entry: ProfileAccess) -> None:
        """Append one entry."""
        self.entries.append(entry)


class ChainConsentChecker:
    """Consent read from the ConsentRegistry contract (`hasConsent(farmer, lender)`)."""

    def __init__(self, registry: Contract) -> None:
        self._registry = registry

    @classmethod
    def from_client(cls, client: ChainClient, name: str = "ConsentRegistry") -> ChainConsentChecker:
        """The checker of the registry deployed under `name` on the client's chain."""
        return cls(client.contract(name))

    def has_consent(self, farmer_id: str, lender: str) -> bool:
        """Ask the chain; any failure is a ConsentCheckError (fail closed)."""
        from web3 import Web3

        try:
            farmer = bytes.fromhex(farmer_id.removeprefix("0x"))
            call = self._registry.functions.hasConsent(farmer, Web3.to_checksum_address(lender))
            return bool(call.call())
        except Exception as exc:
            raise ConsentCheckError(
                f"could not read consent of farmer {farmer_id} for lender {lender} from "
                f"ConsentRegistry {self._registry.address}: {exc}; no decision was made, retry "
                "when the node answers"
            ) from exc


# ----------------------------------------------------------------------------- decide


def decide(
    farmer_id: str,
    lender: str,
    *,
    profiles: ProfileReader,
    consent: ConsentChecker,
    access_log: AccessLog,
    model: Scorecard | None = None,
    policy: CreditPolicy = DEFAULT_POLICY,
    contract_date: date | None = None,
    lpr_table: LprTable | None = None,
    store: DecisionSink | None = None,
    now: datetime | None = None,
) -> DecisionRecord:
    """Check consent, read and log the profile, score it, and store the decision."""
    farmer, lender = _farmer_id(farmer_id), _lender(lender)
    at = now or datetime.now(UTC)
    decision_id = uuid.uuid4().hex
    access = {"farmer_id": farmer, "lender": lender, "purpose": "credit_decision", "at": at}
    if not consent.has_consent(farmer, lender):
        access_log.record_access(ProfileAccess(**access, outcome=AccessOutcome.REFUSED_NO_CONSENT))
        raise ConsentRequiredError(farmer, lender)
    access["decision_id"] = decision_id
    try:
        snapshot = snapshot_from_profile(profiles.read_profile(farmer))
    except ProfileDataError:
        access_log.record_access(ProfileAccess(**access, outcome=AccessOutcome.READ_INVALID))
        raise
    access_log.record_access(ProfileAccess(
        **access, outcome=AccessOutcome.READ, block_number=snapshot.block_number,
        block_hash=snapshot.block_hash,
    ))  # fmt: skip
    if snapshot.farmer_id != farmer:
        raise ProfileDataError("farmer_id", f"is {snapshot.farmer_id}, not {farmer}", farmer)
    decision = evaluate(
        snapshot,
        model=model or load_model(),
        policy=policy,
        contract_date=contract_date or at.astimezone(CHINA_TZ).date(),
        lpr_table=lpr_table,
    )
    record = DecisionRecord(
        decision_id=decision_id, lender=lender, decided_at=at, decision=decision
    )
    if store is not None:
        store.insert_decision(record)
    return record


def _farmer_id(value: str) -> str:
    """A farmer id as lowercase 0x-hex of 32 bytes."""
    text = value.lower() if isinstance(value, str) else ""
    if not re.fullmatch(r"0x[0-9a-f]{64}", text):
        raise InvalidRequestError(f"farmer id {value!r} must be 0x + 64 hex digits")
    return text


def _lender(value: str) -> str:
    """A lender address as lowercase 0x-hex of 20 bytes."""
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise InvalidRequestError(f"lender {value!r} must be an address: 0x + 40 hex digits")
    return value.lower()


# ----------------------------------------------------------------------------- replay


class ReplayResult(BaseModel):
    """A stored decision recomputed from its own inputs, and whether the two agree."""

    model_config = ConfigDict(frozen=True)

    decision_id: str
    matches: bool
    differences: tuple[str, ...]
    stored_hash: str
    recomputed_hash: str
    recomputed: CreditDecision


def replay(
    record: DecisionRecord,
    *,
    lpr_table: LprTable | None = None,
    models: Sequence[Scorecard] = (),
    profile: Mapping[str, Any] | object | None = None,
) -> ReplayResult:
    """Recompute a stored decision (and, given the profile, its features) and compare."""
    stored = record.decision
    snapshot = ProfileSnapshot(
        farmer_id=stored.farmer_id,
        block_number=stored.profile_block_number,
        block_hash=stored.profile_block_hash,
        as_of=stored.profile_as_of,
        features=stored.features,
    )
    differences: list[str] = []
    if profile is not None and snapshot_from_profile(profile) != snapshot:
        differences.append("profile")
    if stored.policy.policy_hash != stored.policy_hash:
        differences.append("policy_hash")
    recomputed = evaluate(
        snapshot,
        model=model_by_version(stored.model_version, models),
        policy=stored.policy,
        contract_date=stored.contract_date,
        lpr_table=lpr_table,
    )
    a, b = stored.model_dump(mode="json"), recomputed.model_dump(mode="json")
    differences += [k for k in a if a[k] != b.get(k)]
    return ReplayResult(
        decision_id=record.decision_id,
        matches=not differences,
        differences=tuple(differences),
        stored_hash=sha256_hex(stored.canonical()),
        recomputed_hash=sha256_hex(recomputed.canonical()),
        recomputed=recomputed,
    )
