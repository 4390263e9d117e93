"""Slither over contracts/, gated by a committed triage file (`make slither`, part of `make lint`).

Runs slither (from `.venv-slither`) through the offline compiler shim in crytic-compile's
standard-JSON mode, then compares its High and Medium findings with `slither-triage.json`,
where each accepted false positive has a stable id and a one-line reason. Exit codes:

    0  no untriaged High/Medium finding and no stale triage entry
    1  new High/Medium findings (listed, with a triage skeleton under --suggest)
    2  the gate could not run (slither missing, compilation failed, a malformed triage file)
    3  triage entries that no longer match any finding (stale: remove them, or --prune-stale)

Low, Informational and Optimization findings are summarised, never gating. Only the standard
library is used, so any Python 3.11 runs this; slither itself runs in its own environment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GATING = ("High", "Medium")
IMPACT_ORDER = ("High", "Medium", "Low", "Informational", "Optimization")
PROJECT_DIR = "contracts/"
# contracts/test/ holds deliberately hostile doubles (attack tokens, naive baselines).
EXCLUDED_DIR = "contracts/test/"
REMAPPINGS = "@openzeppelin/=node_modules/@openzeppelin/"
EXIT_OK, EXIT_NEW, EXIT_ERROR, EXIT_STALE = 0, 1, 2, 3
_LINES = re.compile(r"#L?\d+(?:-L?\d+)?")
_SPACE = re.compile(r"\s+")


class GateError(Exception):
    """The gate could not reach a verdict (exit 2)."""


@dataclass(frozen=True)
class Finding:
    """One slither result, reduced to what the gate compares."""

    id: str
    detector: str
    impact: str
    confidence: str
    contract: str
    function: str
    text: str
    description: str
    ours: bool = True

    @property
    def gating(self) -> bool:
        """High and Medium findings in the project's own contracts fail the gate unless triaged."""
        return self.ours and self.impact in GATING

    def skeleton(self) -> dict[str, str]:
        """A triage entry for this finding, with the reason left for a person to write."""
        return {
            "id": self.id,
            "detector": self.detector,
            "impact": self.impact,
            "contract": self.contract,
            "function": self.function,
            "finding": self.text,
            "why": "",
        }


def normalise(description: str) -> str:
    """The description without line numbers or layout, so an edit above a finding keeps its id."""
    return _SPACE.sub(" ", _LINES.sub("", description)).strip()


def _scope(element: dict[str, Any]) -> tuple[str, str]:
    """(contract, function) enclosing a result's first element, walking up its parents."""
    contract = function = ""
    node: dict[str, Any] | None = element
    while node:
        fields = node.get("type_specific_fields") or {}
        kind = node.get("type")
        if kind == "function" and not function:
            function = fields.get("signature") or f"{node.get('name', '')}()"
        elif kind == "contract" and not contract:
            contract = node.get("name", "")
        node = fields.get("parent")
    return contract, function


def _ours(elements: list[dict[str, Any]]) -> bool:
    """True when any element lies in the project's contracts (not only in node_modules).

    slither's own --filter-paths drops a result if *any* element matches, which would hide a
    finding in our code that merely mentions an OpenZeppelin function; this keeps it.
    """
    for element in elements:
        name = (element.get("source_mapping") or {}).get("filename_relative") or ""
        if name.startswith(PROJECT_DIR) and not name.startswith(EXCLUDED_DIR):
            return True
    return False


def findings(report: dict[str, Any]) -> list[Finding]:
    """Every detector result of a slither JSON report, each with a stable id."""
    if not report.get("success", False):
        raise GateError(f"slither failed: {report.get('error') or 'no error given'}")
    results = (report.get("results") or {}).get("detectors") or []
    seen: Counter[str] = Counter()
    out = []
    for result in results:
        elements = result.get("elements") or [{}]
        contract, function = _scope(elements[0])
        text = normalise(result.get("description", ""))
        check = result.get("check", "?")
        digest = hashlib.sha256(f"{check}\n{text}".encode()).hexdigest()[:12]
        base = f"{check}:{contract or '-'}.{function or '-'}:{digest}"
        seen[base] += 1
        # Two results with the same text in one function: number them in report order.
        fid = base if seen[base] == 1 else f"{base}#{seen[base]}"
        out.append(
            Finding(
                id=fid,
                detector=check,
                impact=result.get("impact", "?"),
                confidence=result.get("confidence", "?"),
                contract=contract,
                function=function,
                text=text,
                description=result.get("description", "").strip(),
                ours=_ours(result.get("elements") or []),
            )
        )
    return out


def load_triage(path: Path) -> list[dict[str, Any]]:
    """The accepted false positives; each needs an id, a detector and a one-line reason."""
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text()).get("accepted", [])
    except (json.JSONDecodeError, AttributeError) as exc:
        raise GateError(f"{path}: not a triage file ({exc})") from None
    ids: Counter[str] = Counter()
    for i, entry in enumerate(entries):
        missing = [k for k in ("id", "detector", "why") if not str(entry.get(k, "")).strip()]
        if missing:
            name = entry.get("id", "?")
            raise GateError(f"{path}: entry {i} ({name}) lacks {', '.join(missing)}")
        ids[entry["id"]] += 1
    dupes = [k for k, n in ids.items() if n > 1]
    if dupes:
        raise GateError(f"{path}: duplicate ids {', '.join(dupes)}")
    return entries


@dataclass(frozen=True)
class Verdict:
    """What the gate found: new gating findings, triaged ones, stale entries, the rest.

    `foreign` are findings only in dependencies (OpenZeppelin) or in contracts/test/.
    """

    new: list[Finding]
    triaged: list[Finding]
    stale: list[dict[str, Any]]
    ungated: list[Finding]
    foreign: list[Finding]

    @property
    def exit_code(self) -> int:
        """New findings outrank stale entries."""
        if self.new:
            return EXIT_NEW
        return EXIT_STALE if self.stale else EXIT_OK


def judge(found: list[Finding], triage: list[dict[str, Any]]) -> Verdict:
    """Compare the findings with the triage file."""
    accepted = {e["id"] for e in triage}
    present = {f.id for f in found}
    gating = [f for f in found if f.gating]
    return Verdict(
        new=[f for f in gating if f.id not in accepted],
        triaged=[f for f in found if f.id in accepted],
        stale=[e for e in triage if e["id"] not in present],
        ungated=[f for f in found if f.ours and not f.gating and f.id not in accepted],
        foreign=[f for f in found if not f.ours],
    )


def run_slither(root: Path, slither: str, solc: Path, out: Path) -> dict[str, Any]:
    """Run slither over `root`/contracts and return its JSON report."""
    if not Path(slither).exists():
        raise GateError(f"{slither} not found: run `make install` (it builds .venv-slither)")
    if not solc.exists():
        raise GateError(f"compiler shim {solc} not found")
    cmd = [
        slither,
        "contracts",
        "--solc-standard-json",
        "--solc",
        str(solc),
        "--solc-remaps",
        REMAPPINGS,
        # Inline `slither-disable` comments and a slither.db.json would hide findings from the
        # gate: the committed triage file is the one place a finding is accepted.
        "--show-ignored-findings",
        "--json",
        str(out),
        "--disable-color",
    ]
    out.unlink(missing_ok=True)
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if not out.exists():
        raise GateError(_why_no_report(proc.returncode, proc.stderr or proc.stdout or ""))
    return json.loads(out.read_text())


def _why_no_report(code: int, output: str) -> str:
    """The compiler's own diagnostics when compilation failed, else the tail of slither's output."""
    marker = "InvalidCompilation: "
    if marker in output:
        return "compilation failed:\n" + output.split(marker, 1)[1].strip()
    tail = "\n".join(output.strip().splitlines()[-20:])
    return f"slither wrote no report (exit {code}):\n{tail}"


def _line(f: Finding) -> str:
    """One finding as a report line."""
    return f"  [{f.impact}/{f.confidence}] {f.id}\n      {f.text}"


def report(verdict: Verdict, found: list[Finding], triage_path: Path, verbose: bool) -> str:
    """The human summary printed on every run."""
    ours = [f for f in found if f.ours]
    by_impact = Counter(f.impact for f in ours)
    counts = ", ".join(f"{k} {by_impact[k]}" for k in IMPACT_ORDER if by_impact[k])
    lines = [
        f"slither gate: {len(ours)} findings in contracts/ ({counts or 'none'}); "
        f"{len(verdict.foreign)} only in dependencies or contracts/test/, not gating"
    ]
    gating = sum(1 for f in found if f.gating)
    lines.append(
        f"  High/Medium: {gating}, of which {len(verdict.triaged)} triaged as false positives "
        f"in {triage_path.name}, {len(verdict.new)} new"
    )
    per_detector = Counter(f"{f.detector} ({f.impact})" for f in verdict.ungated)
    summary = ", ".join(f"{k} x{n}" for k, n in per_detector.most_common())
    lines.append(f"  Low/Informational/Optimization, not gating: {len(verdict.ungated)}: {summary}")
    if verbose:
        lines += [_line(f) for f in verdict.ungated]
    if verdict.new:
        lines.append(f"NEW High/Medium findings not triaged in {triage_path.name}:")
        lines += [_line(f) for f in verdict.new]
        lines.append(
            "  Fix the contract; only a false positive goes into the triage file, with its id "
            "and a one-line why (--suggest prints entries to fill in)."
        )
    if verdict.stale:
        lines.append(f"STALE triage entries in {triage_path.name} (no finding matches them):")
        lines += [f"  {e['id']}  ({e.get('why', '')})" for e in verdict.stale]
        lines.append("  Remove them (--prune-stale) so the file lists only live false positives.")
    if not verdict.new and not verdict.stale:
        lines.append("slither gate: OK")
    return "\n".join(lines)


def prune(triage_path: Path, stale: list[dict[str, Any]]) -> None:
    """Rewrite the triage file without its stale entries (never adds one)."""
    doc = json.loads(triage_path.read_text())
    gone = {e["id"] for e in stale}
    doc["accepted"] = [e for e in doc.get("accepted", []) if e["id"] not in gone]
    triage_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def _parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=REPO, help="project whose contracts/ to analyse")
    p.add_argument("--triage", type=Path, help="triage file (default: <root>/slither-triage.json)")
    p.add_argument("--slither", default=str(REPO / ".venv-slither" / "bin" / "slither"))
    p.add_argument("--solc", type=Path, default=REPO / "chain" / "solc_shim.js")
    p.add_argument("--json", type=Path, help="judge this slither JSON report instead of running")
    p.add_argument("--save-json", type=Path, help="keep slither's JSON report here")
    p.add_argument("--suggest", action="store_true", help="print triage entries for new findings")
    p.add_argument("--prune-stale", action="store_true", help="drop stale triage entries")
    p.add_argument("-v", "--verbose", action="store_true", help="list every non-gating finding")
    return p


def _report_json(args: argparse.Namespace) -> dict[str, Any]:
    """Read the given report, or run slither (into --save-json or a temporary file)."""
    if args.json:
        return json.loads(args.json.read_text())
    if args.save_json:
        args.save_json.parent.mkdir(parents=True, exist_ok=True)
        return run_slither(args.root.resolve(), args.slither, args.solc, args.save_json.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        return run_slither(args.root.resolve(), args.slither, args.solc, Path(tmp) / "slither.json")


def main(argv: list[str] | None = None) -> int:
    """Run the gate; see the module docstring for exit codes."""
    args = _parser().parse_args(argv)
    triage_path = args.triage or args.root / "slither-triage.json"
    try:
        triage = load_triage(triage_path)
        found = findings(_report_json(args))
    except (GateError, OSError, json.JSONDecodeError) as exc:
        print(f"slither gate: cannot run: {exc}", file=sys.stderr)
        return EXIT_ERROR
    verdict = judge(found, triage)
    print(report(verdict, found, triage_path, args.verbose))
    if args.suggest and verdict.new:
        print(json.dumps([f.skeleton() for f in verdict.new], indent=2, ensure_ascii=False))
    if args.prune_stale and verdict.stale:
        prune(triage_path, verdict.stale)
        print(f"removed {len(verdict.stale)} stale entries from {triage_path}")
        return EXIT_NEW if verdict.new else EXIT_OK
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main())
