"""Fairness of the real credit decisions, for the regulator: lending.credit.observed's report over
the service's stored decisions and the indexed farmers and loans, and its charts.

Groups are the farmers' cooperatives (the chain says which) and their intersections; a
cooperative is shown by its organisation's name where the service knows it, else its short
address. No farmer is named: only counts per group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup
from sqlalchemy import Engine

from api.core.indexed import index_ready, indexer_engine
from api.regulator.charts import Bar, bar_chart
from api.regulator.service import wallet_names
from lending.credit.observed import (
    JOIN,
    ApprovalCheck,
    DefaultRates,
    LimitCheck,
    ObservedFairnessReport,
    OperatorGroups,
    Verdict,
    observed_fairness,
)

VERDICTS = {
    Verdict.PASSED: ("通过", "passed"),
    Verdict.FAILED: ("未通过", "failed"),
    Verdict.NOT_ENOUGH_DATA: ("数据不足，无法判断", "not enough data to judge"),
}
TOO_FEW = " · 样本不足 too few to judge"
ATTRIBUTES = {"cooperative": ("合作社", "cooperative")}


def report(
    service: Engine, database_url: str, groups: OperatorGroups | None = None
) -> ObservedFairnessReport:
    """The fairness report over the stored decisions (the latest per farmer and lender), by
    cooperative and by the attributes of an operator's groups file when one is given."""
    with index_ready():
        return observed_fairness(service, indexer_engine(database_url), groups)


def group_names(service: Engine) -> dict[str, str]:
    """Lower-case 0x address -> organisation name, for naming cooperative groups."""
    return {"0x" + a.hex(): label.name for a, label in wallet_names(service).items()}


def group_label(group: str | None, names: Mapping[str, str]) -> str:
    """A group as people read it: organisations by name, intersections part by part."""
    if group is None:
        return "—"
    return " × ".join(_part(p, names) for p in group.split(JOIN))


def _part(value: str, names: Mapping[str, str]) -> str:
    """One attribute value: a known address by name, another address shortened."""
    if value.startswith("0x") and len(value) == 42:
        return names.get(value.lower(), f"{value[:8]}…{value[-4:]}")
    return value


def attribute_label(attribute: str) -> str:
    """合作社 cooperative; an operator's attribute as named; intersections joined with ×."""
    parts = [ATTRIBUTES.get(a, (a, a)) for a in attribute.split(JOIN)]
    zh, en = " × ".join(p[0] for p in parts), " × ".join(p[1] for p in parts)
    return zh if zh == en else f"{zh} {en}"


def verdict_label(verdict: Verdict) -> str:
    """通过 passed, 未通过 failed, ..."""
    zh, en = VERDICTS[verdict]
    return f"{zh} {en}"


@dataclass(frozen=True)
class Chart:
    """One chart of the page: what it shows, its verdict line and the SVG."""

    chart_id: str
    title: str
    verdict: str
    failed: bool
    summary: str
    svg: Markup


def approval_chart(index: int, check: ApprovalCheck, names: Mapping[str, str]) -> Chart:
    """Approval rate per group with intervals and the four-fifths line (of the best rate)."""
    bars = [
        Bar(
            group_label(g.group, names), g.approval_rate, g.ci.low, g.ci.high,
            f"{g.approved}/{g.decisions} 批准 approved" + ("" if g.judged else TOO_FEW),
            g.judged,
        )
        for g in check.groups
    ]  # fmt: skip
    judged = [g.approval_rate for g in check.groups if g.judged]
    line = check.threshold * max(judged) if judged else None
    return Chart(
        f"approval-{index}", attribute_label(check.attribute), verdict_label(check.verdict),
        check.verdict is Verdict.FAILED, _describe(check, names),
        bar_chart(f"approval-chart-{index}", bars, "percent", line, "4/5"),
    )  # fmt: skip


def default_chart(index: int, rates: DefaultRates, names: Mapping[str, str]) -> Chart:
    """Default rate per group with intervals (information: no threshold)."""
    bars = [
        Bar(
            group_label(g.group, names), g.default_rate,
            g.ci.low if g.ci else None, g.ci.high if g.ci else None,
            f"{g.defaulted}/{g.defaulted + g.repaid} 违约 defaulted · {g.open} 未结 open · "
            f"{g.cancelled} 取消 cancelled",
            g.judged,
        )
        for g in rates.groups
    ]  # fmt: skip
    return Chart(
        f"default-{index}", attribute_label(rates.attribute), "仅供参考 information only",
        False, f"{rates.unassigned} 笔未分组 unassigned",
        bar_chart(f"default-chart-{index}", bars, "percent"),
    )  # fmt: skip


def limit_chart(checks: list[LimitCheck], threshold: Decimal, names: Mapping[str, str]) -> Chart:
    """Mean-limit ratio (lowest group / highest) per attribute, band and income bucket."""
    bars = [
        Bar(
            f"{attribute_label(c.attribute)} · {c.band} · 收入档 {c.income_bucket}",
            c.ratio, c.ratio_ci.low if c.ratio_ci else None,
            c.ratio_ci.high if c.ratio_ci else None,
            f"{verdict_label(c.verdict)} · {group_label(c.lowest, names)} / "
            f"{group_label(c.highest, names)}",
            c.verdict is not Verdict.NOT_ENOUGH_DATA,
        )
        for c in checks
    ]  # fmt: skip
    verdicts = {c.verdict for c in checks}
    failed = Verdict.FAILED in verdicts
    verdict = (Verdict.FAILED if failed else Verdict.PASSED if Verdict.PASSED in verdicts
               else Verdict.NOT_ENOUGH_DATA)  # fmt: skip
    return Chart(
        "limits", "额度比 limit ratios", verdict_label(verdict), failed,
        "同一评分档、同一收入档内各组平均额度之比 · mean limits compared within a score band "
        "and income bucket",
        bar_chart("limit-chart", bars, "ratio", threshold, "最低 min"),
    )  # fmt: skip


def _describe(check: ApprovalCheck, names: Mapping[str, str]) -> str:
    """The ratio, its interval and its groups in one line."""
    if check.verdict is Verdict.NOT_ENOUGH_DATA or check.ratio is None:
        return "不足两组达到最小样本 · fewer than two groups large enough to judge"
    ci = f" [{check.ratio_ci.low}–{check.ratio_ci.high}]" if check.ratio_ci else ""
    edge = (
        " · 区间跨过阈值 the interval straddles the threshold"
        if check.ci_contains_threshold
        else ""
    )
    return (
        f"比率 ratio {check.ratio}{ci} · 阈值 threshold {check.threshold} · 最低 lowest "
        f"{group_label(check.lowest, names)} · 最高 highest {group_label(check.highest, names)}"
        + edge
    )


def charts(found: ObservedFairnessReport, names: Mapping[str, str]) -> dict[str, list[Chart]]:
    """Every chart of the page, by section."""
    return {
        "approval": [approval_chart(i, c, names) for i, c in enumerate(found.approval)],
        "defaults": [default_chart(i, d, names) for i, d in enumerate(found.defaults)],
        "limits": [limit_chart(list(found.limits), found.thresholds.limit_ratio_min, names)],
    }
