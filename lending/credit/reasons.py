"""Why a decision came out as it did: reason codes the farmer can act on, and policy notes.

`reason_codes` names the features that cost the most points against their maximum, with the
nearest value that would add points; `note` words a policy rule that shaped the outcome, limit
or price. Both are bilingual (English and Chinese).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from lending.credit.features import SPECS_BY_NAME, Direction, Unit
from lending.credit.scorecard import FeatureBins, FeaturePoints, Scorecard
from lending.pricing.units import format_fen


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


def note(code: str, **values: object) -> PolicyNote:
    """A policy note with its texts filled in."""
    en, zh = _NOTES[code]
    return PolicyNote(code=code, text_en=en.format(**values), text_zh=zh.format(**values))
