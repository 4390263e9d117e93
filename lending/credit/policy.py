"""Credit policy: outcomes, score bands, the loan product and the rules that price an offer.

A `CreditPolicy` is everything besides the scorecard that turns a score into an offer (bands,
income share, limits, the rate cap and what to do above it); it is hashed and stored with every
decision, so a decision can be replayed under exactly the policy it was made with.
"""

from __future__ import annotations

import itertools
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lending.credit.features import canonical_json, sha256_hex
from lending.pricing.caps import CapBasis, CapPolicy
from lending.pricing.schedule import ScheduleKind


class Outcome(StrEnum):
    """What the lender tells the farmer."""

    APPROVE = "approve"
    REFER = "refer"
    """Manual review by a loan officer; the offer shown is provisional."""
    DECLINE = "decline"


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
