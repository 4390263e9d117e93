"""Credit decisions: consent, score, reasons, limit, capped price and disclosure.

`decide` is the one way a lender scores a farmer: it reads the profile through
lending.credit.access (refused without the farmer's active consent, every read logged), scores
it with a frozen scorecard, and returns an immutable `DecisionRecord` (stored by
lending.credit.store). `evaluate` is the pure part (same inputs, same decision), which
lending.credit.replay runs again for an auditor. The policy is lending.credit.policy, the
reasons lending.credit.reasons, the price lending.credit.price.

Outcome rules, in order:
  1. The score band gives approve / refer / decline, a price and a share of the base limit.
  2. Limit = income share x verified trailing sale income x band share - current exposure,
     never above the product maximum, rounded down to whole `limit_step_fen`.
  3. Yield per mu above the plausibility ceiling -> at least refer (data to be checked).
  4. A limit under the product minimum -> decline.
  5. Price: the band rate, checked against the rate cap with the full disclosure of the offer
     (lending.pricing.disclosure, lending.pricing.caps). Above the cap the rate is lowered to
     the highest whole bps within it (`over_cap=cap`) or the offer is declined
     (`over_cap=decline`); either is stated in the decision. No offer above the cap can be
     made.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from lending.credit.access import (
    AccessLog,
    ConsentChecker,
    ProfileReader,
    read_with_consent,
)
from lending.credit.features import (
    CreditFeatures,
    ProfileSnapshot,
    canonical_json,
    sha256_hex,
    snapshot_from_profile,
)
from lending.credit.policy import (
    DEFAULT_POLICY,
    CapAction,
    CreditPolicy,
    Outcome,
    ScoreBand,
)
from lending.credit.price import Pricing, price_offer
from lending.credit.reasons import PolicyNote, ReasonCode, note, reason_codes
from lending.credit.scorecard import FeaturePoints, Scorecard, load_model
from lending.errors import InvalidRequestError, ProfileDataError
from lending.pricing.disclosure import Disclosure
from lending.pricing.lpr import LprTable

SCHEMA = "tealedger.credit-decision/1"
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SEVERITY = {Outcome.APPROVE: 0, Outcome.REFER: 1, Outcome.DECLINE: 2}


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
        notes.append(note("SCORE_BELOW_CUTOFF", score=score, band=band.name))
        return Assessment(
            band=band, outcome=outcome, base_limit_fen=base, limit_fen=0, notes=tuple(notes)
        )
    if features.fresh_leaf_kg_per_mu_x100 > policy.max_plausible_kg_per_mu_x100:
        outcome = _worse(outcome, Outcome.REFER)
        notes.append(note("YIELD_IMPLAUSIBLE", value=features.fresh_leaf_kg_per_mu_x100,
                          ceiling=policy.max_plausible_kg_per_mu_x100))  # fmt: skip
    if limit < policy.product.min_limit_fen:
        notes.append(note("LIMIT_BELOW_MINIMUM", limit=limit, minimum=policy.product.min_limit_fen))
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
            notes.append(note("RATE_CAPPED", band_rate=pricing.band_rate_bps,
                              rate=pricing.offered_rate_bps, rule=pricing.cap_rule,
                              cap=pricing.cap_pct))  # fmt: skip
        elif pricing.cap_action is CapAction.DECLINED_OVER_CAP:
            notes.append(note("OVER_RATE_CAP", band_rate=pricing.band_rate_bps,
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


class DecisionSink(Protocol):
    """Where decisions are stored (lending.credit.store.CreditStore)."""

    def insert_decision(self, record: DecisionRecord) -> str:
        """Store a record; returns its decision id."""
        ...


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
    snapshot = read_with_consent(
        farmer,
        lender,
        purpose="credit_decision",
        consent=consent,
        profiles=profiles,
        access_log=access_log,
        parse=snapshot_from_profile,
        at=at,
        decision_id=decision_id,
    )
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
