"""Why a decision came out as it did: reason codes the farmer can act on, and policy notes.

`reason_codes` names the features that cost the most points against their maximum, with the
nearest value that would add points; `note` words a policy rule that shaped the outcome, limit
or price. Both are bilingual (English and Chinese).

Every reason is true to its feature and actionable: its text names the span the value is
computed over (`FeatureSpec.window`: a lifetime figure is never called "the last 24 months"),
and for past events, which nobody can undo, it says what the farmer can do from now on
(`FeatureSpec.action_en`): events in a trailing window stop counting when they leave it, a
lifetime figure never goes down, and neither is a change of the past.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from lending.credit.features import (
    SPECS_BY_NAME,
    WINDOW_WORDS,
    Direction,
    FeatureSpec,
    Unit,
    Window,
)
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
    """The nearest value that would add points ("at least" or "at most" it, by direction);
    the value itself when none can be reached (a lifetime count of past events)."""
    target_gain: int
    """Points that value would add (0 when it cannot be reached)."""
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
    """One reason with its value, window, points and what would add points from now on."""
    spec = SPECS_BY_NAME[p.name]
    en, zh = _value_text(spec.unit, p.value)
    target, gain, at_least = _next_step(fb, p.bin)
    if spec.past_events and spec.window not in _TRAILING:
        target, gain = p.value, 0  # a lifetime count of past events never goes down
    improve_en, improve_zh = _improve(spec, target, gain, at_least)
    window_en, window_zh = WINDOW_WORDS[spec.window]
    label_en = spec.label_en[0].upper() + spec.label_en[1:]
    return ReasonCode(
        code=spec.reason_code,
        feature=p.name,
        value=p.value,
        points=p.points,
        max_points=p.max_points,
        points_lost=p.points_lost,
        target_value=target,
        target_gain=gain,
        text_en=f"{label_en} {window_en}: {en}, {p.points} of {p.max_points} points.",
        text_zh=f"{window_zh}{spec.label_zh}为{zh}，得{p.points}分（最高{p.max_points}分）。",
        improve_en=improve_en,
        improve_zh=improve_zh,
    )


_TRAILING = {Window.LAST_12_MONTHS: 12, Window.LAST_24_MONTHS: 24}
"""Trailing windows, in months: an event stops counting that long after it happened."""


def _improve(spec: FeatureSpec, target: int, gain: int, at_least: bool) -> tuple[str, str]:
    """What would add points, as something the farmer can do from now on (English, Chinese)."""
    t_en, t_zh = _value_text(spec.unit, target)
    if not spec.past_events:
        if at_least:
            return (f"Raising {spec.label_en} to at least {t_en} would add {gain} points.",
                    f"{spec.label_zh}达到{t_zh}及以上，可增加{gain}分。")  # fmt: skip
        return (f"Lowering {spec.label_en} to at most {t_en} would add {gain} points.",
                f"{spec.label_zh}降至{t_zh}及以下，可增加{gain}分。")  # fmt: skip
    months = _TRAILING.get(spec.window)
    if months is None:
        window_en, window_zh = WINDOW_WORDS[spec.window]
        return (
            f"The past cannot be changed and this figure, taken {window_en}, does not go "
            f"down: {spec.action_en} so that it does not rise.",
            f"已发生的记录无法更改，该项（{window_zh}）不会降低：请{spec.action_zh}，避免其上升。",
        )
    return (
        f"The past cannot be changed, but each one stops counting {months} months after it "
        f"happened: {spec.action_en}, and once no more than {t_en} remain in the window you "
        f"gain {gain} points.",
        f"已发生的记录无法更改，但满{months}个月后不再计入：请{spec.action_zh}，"
        f"待计入的不超过{t_zh}时可增加{gain}分。",
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
