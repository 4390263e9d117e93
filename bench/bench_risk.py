"""Ground truth of the risk monitor: injected misuse found (recall), findings that are about it
(precision), and alerts on an honest season (issue #20).

On a throw-away anvil the demo's honest season and lending run (`BENCH_RISK_FARMERS` farmers,
default 200, seed `BENCH_RISK_SEED`, default 2026); every registered rule scans it (the clean
line); then `simulation.risk_cases.plan` (`BENCH_RISK_CASES` cases per pattern, default 5, with
amounts, delays, hop counts, cycle lengths, spreads, harvest factors and APR excesses drawn per
case; `BENCH_RISK_PATTERNS`, comma-separated, plays only those) is played on it by
`tealedger.demo.risk_injection` and the rules scan again.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

from bench.report import table
from simulation.risk_cases import PATTERNS, Case, plan
from tealedger.demo.risk_injection import GroundTruth, PatternScore, ground_truth

NOT_REGISTERED = "rule not registered"


def _ratio(part: int, whole: int) -> str:
    """`part/whole (0.00)`, exact to two places; '-' when there is nothing to divide."""
    if not whole:
        return "-"
    return f"{part}/{whole} ({float(Fraction(part, whole)):.2f})"


def pattern_table(gt: GroundTruth) -> str:
    """The per-pattern markdown table and the clean-season line."""
    lines = [
        f"Ground truth: {gt.farmers} farmers, seed {gt.seed}, {gt.seconds:.0f} s.",
        "",
        "| pattern | injected | detected | recall | findings | precision |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in gt.scores:
        lines.append("| " + " | ".join(_cells(s)) + " |")
    lines += ["", clean_line(gt), *missed(gt)]
    return "\n".join(lines) + "\n"


def missed(gt: GroundTruth) -> list[str]:
    """The cases a registered rule did not find, with the parameters they were drawn with (what
    a detector's author needs to see its blind spot), and its new findings about no case."""
    rules, clean = set(gt.rules), {f.key for f in gt.clean}
    found = {x.case.case_id for x in gt.labels
             if any(x.matches(f) for f in gt.findings if f.rule == x.pattern)}  # fmt: skip
    out = []
    for x in gt.labels:
        if x.pattern in rules and x.skipped is None and x.case.case_id not in found:
            out.append(f"- missed {x.case.case_id} ({x.subject}): {describe(x.case)}")
        elif x.pattern in rules and x.skipped is not None:
            out.append(f"- not played {x.case.case_id}: {x.skipped}")
    for f in gt.findings:
        if (
            f.rule in rules
            and f.key not in clean
            and not any(x.matches(f) for x in gt.labels if x.shows(f.rule))
        ):
            out.append(f"- finding about no {f.rule} case: {f.subject}: {f.explanation_en}")
    return ["", *out] if out else []


def describe(case: Case) -> str:
    """A case's drawn parameters in words."""
    parts = {
        "principal": f"¥{case.principal_yuan:,}" if case.principal_yuan else "",
        "share": f"{float(case.share):.2f}" if case.share else "",
        "delay": f"{case.delay_s / 86_400:.2f} days" if case.delay_s else "",
        "hops": str(case.hops) if case.hops else "",
        "count": str(case.count) if case.count else "",
        "factor": f"{float(case.factor):.1f}x" if case.factor else "",
        "APR excess": f"{case.apr_excess_bps} bps" if case.apr_excess_bps else "",
        "variant": case.variant,
    }
    return ", ".join(f"{k} {v}" for k, v in parts.items() if v)


def _cells(s: PatternScore) -> list[str]:
    """One pattern's row (a rule that is not registered gets no figures)."""
    injected = f"{s.injected}" + (f" (+{s.skipped} not played)" if s.skipped else "")
    if not s.registered:
        return [s.pattern, injected, NOT_REGISTERED, "", "", ""]
    return [s.pattern, injected, str(s.detected), _ratio(s.detected, s.injected),
            str(s.findings), _ratio(s.true_findings, s.findings)]  # fmt: skip


def clean_line(gt: GroundTruth) -> str:
    """Findings of the honest season, per 100 farmers, by rule."""
    by_rule = {r: sum(1 for f in gt.clean if f.rule == r) for r in gt.rules}
    detail = ", ".join(f"{r} {n}" for r, n in by_rule.items()) or "no rule registered"
    rate = gt.clean_per_100
    return (f"Clean season: {len(gt.clean)} findings on {gt.farmers} farmers = "
            f"{float(rate):.2f} per 100 farmers ({detail}).")  # fmt: skip


def rows(gt: GroundTruth) -> list[dict[str, object]]:
    """Rows for the benchmarks table."""
    out: list[dict[str, object]] = []
    for s in gt.scores:
        name = f"risk ground truth: {s.pattern}"
        if not s.registered:
            out.append({"benchmark": name, "value": NOT_REGISTERED, "unit": ""})
            continue
        out.append({"benchmark": f"{name}: recall", "value": _ratio(s.detected, s.injected),
                    "unit": "cases found"})  # fmt: skip
        out.append({"benchmark": f"{name}: precision",
                    "value": _ratio(s.true_findings, s.findings), "unit": "findings"})  # fmt: skip
    out.append({"benchmark": f"risk: alerts on a clean season ({gt.farmers} farmers)",
                "value": f"{float(gt.clean_per_100):.2f}", "unit": "per 100 farmers"})  # fmt: skip
    return out


def run() -> list[dict[str, object]]:
    """Build, inject, scan, score; print the pattern table and return the summary rows."""
    farmers = int(os.environ.get("BENCH_RISK_FARMERS", "200"))
    per_pattern = int(os.environ.get("BENCH_RISK_CASES", "5"))
    seed = int(os.environ.get("BENCH_RISK_SEED", "2026"))
    named = os.environ.get("BENCH_RISK_PATTERNS", "")
    patterns = tuple(p.strip() for p in named.split(",") if p.strip()) or PATTERNS
    with tempfile.TemporaryDirectory(prefix="bench-risk-", ignore_cleanup_errors=True) as tmp:
        cases = plan(seed, per_pattern, patterns)
        gt = ground_truth(Path(tmp), farmers, seed, cases, patterns)
    print(pattern_table(gt))
    return rows(gt)


if __name__ == "__main__":
    print(table(run()))
