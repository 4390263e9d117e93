"""The slither gate: the committed tree passes; a new High/Medium finding or stale triage fails."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chain.config import PROJECT_ROOT
from tests._fixtures import needs_node

GATE = PROJECT_ROOT / "scripts" / "slither_gate.py"
SLITHER = PROJECT_ROOT / ".venv-slither" / "bin" / "slither"
TRIAGE = PROJECT_ROOT / "slither-triage.json"

pytestmark = needs_node()


def _load_gate() -> ModuleType:
    """scripts/ is no package: load the gate by path for its pure functions."""
    spec = importlib.util.spec_from_file_location("slither_gate", GATE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gate = _load_gate()


def run_gate(*args: str) -> subprocess.CompletedProcess[str]:
    """The gate's command line, as `make slither` runs it."""
    cmd = [sys.executable, str(GATE), *args]
    return subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def committed(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, dict]:
    """One real slither run over the committed contracts (about 10 s): result and JSON report."""
    if not SLITHER.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{SLITHER} missing: `make install` must build .venv-slither in CI")
        pytest.skip("slither not installed (make install builds .venv-slither)")
    saved = tmp_path_factory.mktemp("slither") / "slither.json"
    result = run_gate("--save-json", str(saved))
    return result, json.loads(saved.read_text())


def write(tmp_path: Path, name: str, doc: Any) -> str:
    """Write a JSON document for the gate to read; return its path."""
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def _gating(report: dict) -> list[dict]:
    return [r for r in report["results"]["detectors"] if r["impact"] in ("High", "Medium")]


def test_committed_tree_passes(committed):
    result, report = committed
    assert result.returncode == 0, result.stdout + result.stderr
    assert "slither gate: OK" in result.stdout
    assert ", 0 new" in result.stdout
    # Every triage entry matched a live finding, and every gating finding is triaged.
    accepted = {e["id"] for e in json.loads(TRIAGE.read_text())["accepted"]}
    found = gate.findings(report)
    assert accepted == {f.id for f in found if f.gating}


def test_triage_entries_say_why(committed):
    for entry in json.loads(TRIAGE.read_text())["accepted"]:
        assert len(entry["why"]) > 30, entry["id"]
        assert entry["id"].startswith(f"{entry['detector']}:{entry['contract']}.")


def test_a_new_high_finding_fails_and_is_listed(committed, tmp_path):
    _, report = committed
    fake = copy.deepcopy(_gating(report)[0])
    fake.update(
        check="arbitrary-send-eth",
        impact="High",
        confidence="Medium",
        description="LoanEscrow.sweep(address) (contracts/LoanEscrow.sol#500-503) sends eth to "
        "arbitrary user\n\tDangerous calls:\n\t- to.transfer(address(this).balance) "
        "(contracts/LoanEscrow.sol#502)\n",
    )
    fake["elements"][0].update(name="sweep")
    fake["elements"][0]["type_specific_fields"]["signature"] = "sweep(address)"
    tampered = copy.deepcopy(report)
    tampered["results"]["detectors"].append(fake)
    result = run_gate("--json", write(tmp_path, "r.json", tampered), "--suggest")
    assert result.returncode == gate.EXIT_NEW
    assert "NEW High/Medium findings" in result.stdout
    assert re.search(
        r"\[High/Medium\] arbitrary-send-eth:LoanEscrow\.sweep\(address\):", result.stdout
    )
    assert "sends eth to arbitrary user" in result.stdout
    assert '"why": ""' in result.stdout  # --suggest: a skeleton to fill in, never a reason


def test_a_triaged_finding_in_another_function_is_new(committed, tmp_path):
    _, report = committed
    moved = copy.deepcopy(report)
    high = next(r for r in _gating(moved) if r["check"] == "arbitrary-send-erc20")
    high["description"] = high["description"].replace("LoanEscrow.fund()", "LoanEscrow.refund()")
    high["elements"][0]["type_specific_fields"]["signature"] = "refund()"
    result = run_gate("--json", write(tmp_path, "r.json", moved))
    assert result.returncode == gate.EXIT_NEW
    assert "arbitrary-send-erc20:LoanEscrow.refund():" in result.stdout


def test_ids_ignore_line_numbers(committed):
    _, report = committed
    shifted = copy.deepcopy(report)
    for result in shifted["results"]["detectors"]:
        result["description"] = re.sub(
            r"#(\d+)", lambda m: f"#{int(m.group(1)) + 40}", result["description"]
        )
    assert [f.id for f in gate.findings(shifted)] == [f.id for f in gate.findings(report)]


def test_low_and_informational_findings_are_reported_not_gating(committed, tmp_path):
    _, report = committed
    low_only = copy.deepcopy(report)
    detectors = low_only["results"]["detectors"]
    low_only["results"]["detectors"] = [r for r in detectors if r not in _gating(report)]
    empty = write(tmp_path, "t.json", {"accepted": []})
    result = run_gate("--json", write(tmp_path, "r.json", low_only), "--triage", empty, "-v")
    assert result.returncode == gate.EXIT_OK
    assert "not gating: " in result.stdout and "timestamp (Low)" in result.stdout
    assert "[Low/" in result.stdout  # -v lists each one


def test_stale_entries_fail_and_can_be_pruned(committed, tmp_path):
    _, report = committed
    doc = json.loads(TRIAGE.read_text())
    stale = {"id": "reentrancy-eth:LoanEscrow.gone():0123456789ab", "detector": "reentrancy-eth"}
    stale["why"] = "a function that was deleted since"
    doc["accepted"].append(stale)
    triage = write(tmp_path, "t.json", doc)
    reported = write(tmp_path, "r.json", report)
    result = run_gate("--json", reported, "--triage", triage)
    assert result.returncode == gate.EXIT_STALE
    assert "STALE triage entries" in result.stdout and stale["id"] in result.stdout

    pruned = run_gate("--json", reported, "--triage", triage, "--prune-stale")
    assert pruned.returncode == gate.EXIT_OK
    kept = json.loads(Path(triage).read_text())["accepted"]
    assert [e["id"] for e in kept] == [e["id"] for e in json.loads(TRIAGE.read_text())["accepted"]]


def test_triage_entry_without_a_reason_is_refused(committed, tmp_path):
    _, report = committed
    doc = json.loads(TRIAGE.read_text())
    doc["accepted"][0]["why"] = " "
    result = run_gate(
        "--json", write(tmp_path, "r.json", report), "--triage", write(tmp_path, "t.json", doc)
    )
    assert result.returncode == gate.EXIT_ERROR
    assert "lacks why" in result.stderr


def test_missing_slither_is_a_clear_error(tmp_path):
    result = run_gate("--slither", str(tmp_path / "nothing"))
    assert result.returncode == gate.EXIT_ERROR
    assert "make install" in result.stderr


DRAIN = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Known High findings: anyone can destroy it or take its ether. The inline suppression must
/// not hide one from the gate: only the triage file accepts a finding.
contract Drain {
    receive() external payable {}

    function kill(address payable to) external {
        // slither-disable-next-line suicidal
        selfdestruct(to);
    }

    function pay(address payable to) external {
        to.transfer(address(this).balance);
    }
}
"""


def test_a_contract_with_known_high_issues_fails_the_gate(committed, tmp_path):
    """A real run: the project's contracts, every line moved down, plus an unprotected contract."""
    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "contracts", root / "contracts")
    (root / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
    for source in (root / "contracts").rglob("*.sol"):
        source.write_text("\n" * 7 + source.read_text())  # every line number changes
    (root / "contracts" / "Drain.sol").write_text(DRAIN)
    result = run_gate("--root", str(root), "--triage", str(TRIAGE))
    assert result.returncode == gate.EXIT_NEW, result.stdout + result.stderr
    new = result.stdout.split("NEW High/Medium findings", 1)[1]
    assert "suicidal:Drain.kill(address):" in new
    assert "arbitrary-send-eth:Drain.pay(address):" in new
    # The triaged false positives kept their ids although every line moved: none is new or stale.
    assert new.count("[High/") + new.count("[Medium/") == 2
    assert "STALE" not in result.stdout


def _result(check: str, impact: str, files: list[str]) -> dict:
    """A minimal slither result whose elements lie in `files`."""
    elements = [
        {"type": "node", "name": "x", "source_mapping": {"filename_relative": f}} for f in files
    ]
    return {
        "check": check,
        "impact": impact,
        "confidence": "High",
        "elements": elements,
        "description": f"{check} in {', '.join(files)}",
    }


def test_only_findings_touching_our_contracts_gate():
    oz = "node_modules/@openzeppelin/contracts/utils/math/Math.sol"
    report = {
        "success": True,
        "results": {
            "detectors": [
                _result("incorrect-exp", "High", [oz]),
                _result("reentrancy-eth", "High", ["contracts/LoanEscrow.sol", oz]),
                _result("suicidal", "High", ["contracts/test/AttackMerchant.sol"]),
            ]
        },
    }
    verdict = gate.judge(gate.findings(report), [])
    # slither's --filter-paths would drop the mixed one: the gate keeps it.
    assert [f.detector for f in verdict.new] == ["reentrancy-eth"]
    assert sorted(f.detector for f in verdict.foreign) == ["incorrect-exp", "suicidal"]


def test_a_contract_that_does_not_compile_is_a_clear_error(committed, tmp_path):
    (tmp_path / "contracts").mkdir()
    (tmp_path / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
    broken = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\n"
    (tmp_path / "contracts" / "Broken.sol").write_text(broken + "contract B { uint x = ; }\n")
    result = run_gate("--root", str(tmp_path))
    assert result.returncode == gate.EXIT_ERROR
    assert "compilation failed" in result.stderr and "contracts/Broken.sol:3" in result.stderr
    assert "Traceback" not in result.stderr
