"""`tealedger record harvests`, `tealedger trace` and `tealedger recall-impact` via CliRunner."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from chain.nodes import ProcessNode
from tests._fixtures import client_for, needs_node
from tests.traceability._system import System, build_system
from traceability import cli

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    root.command("noop")(lambda: None)  # a root with several commands, like `tealedger`
    cli.register(root)
    return root


@pytest.fixture
def on_system(system: System, monkeypatch: pytest.MonkeyPatch) -> System:
    """Commands talk to the test's in-process chain."""
    monkeypatch.setattr(cli, "make_client", lambda: system.client)
    return system


def harvest_csv(path: Path, system: System, rows: list[tuple]) -> Path:
    """A CSV of (farmer index, plot index, grams, grade, ref) rows, picked two hours ago."""
    picked = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 7_200))
    lines = ["farmer,plot,grams,grade,picked_at,record_ref"]
    for f, p, grams, grade, ref in rows:
        lines.append(
            f"0x{system.farmers[f].hex()},0x{system.plots[p].hex()},{grams},{grade},{picked},{ref}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_record_harvests_reports_rows_and_never_records_twice(
    app, on_system: System, tmp_path: Path
):
    rows = [
        (0, 0, 12_000, 2, "R-1"),
        (1, 1, 11_000, "一级", "R-2"),
        (2, 2, 9_000, 9, "R-3"),  # unknown grade: refused by validation
        (3, 0, 7_000, 3, "R-4"),  # plot 0 is not farmer 3's: refused by the chain's check
        (0, 0, 12_000, 2, "R-1"),  # the first row again
        (2, 2, 10_000, "special", "R-6"),
    ]
    path = harvest_csv(tmp_path / "day1.csv", on_system, rows)
    first = runner.invoke(app, ["record", "harvests", str(path), "--batch-size", "2"])
    assert first.exit_code == cli.EXIT_REJECTED, first.output
    out = " ".join(first.output.split())
    assert "recorded (new lots) │ 3" in out
    assert "duplicates (skipped) │ 1" in out
    assert "line 4" in out and "grade" in out
    assert "line 5" in out and "not registered to this farmer" in out
    second = runner.invoke(app, ["record", "harvests", str(path)])
    out = " ".join(second.output.split())
    assert "recorded (new lots) │ 0" in out and "duplicates (skipped) │ 4" in out
    assert "transactions │ 0" in out


def test_a_clean_file_exits_zero(app, on_system: System, tmp_path: Path):
    path = harvest_csv(tmp_path / "ok.csv", on_system, [(1, 1, 5_000, 1, "OK-1")])
    result = runner.invoke(app, ["record", "harvests", str(path)])
    assert result.exit_code == 0, result.output


def test_a_file_delivered_to_a_factory_is_the_factorys(app, on_system: System, tmp_path: Path):
    s = on_system
    path = harvest_csv(tmp_path / "delivered.csv", s, [(0, 0, 6_000, 2, "D-1")])
    factory = s.processor.address
    args = ["record", "harvests", str(path), "--deliver-to", factory]
    refused = runner.invoke(app, args)
    assert refused.exit_code == cli.EXIT_FAILED and "does not accept harvests" in refused.output
    s.processor.transact(s.tt.functions.setSupplier(s.coop.address, True))
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "recorded (new lots) │ 1" in " ".join(result.output.split())
    (lot,) = [e["args"]["lot"] for e in s.tt.events.HarvestRecorded().get_logs(from_block=0)
              if e["args"]["plot"] == s.plots[0] and e["args"]["grams"] == 6_000]  # fmt: skip
    assert s.lot(lot)[0] == factory


def test_trace_and_recall_impact_commands(app, on_system: System):
    s = on_system
    lots = s.harvest([10_000, 12_000])
    s.move(lots, s.coop, s.processor)
    (made,) = s.process(lots, [6_000])
    result = runner.invoke(app, ["trace", "0x" + made.hex()])
    assert result.exit_code == 0, result.output
    assert "made tea" in result.output and result.output.count("harvest 0x") == 2
    assert "2 harvests · 22,000 g fresh leaf · 2 farmers" in result.output
    as_json = json.loads(runner.invoke(app, ["trace", "0x" + made.hex(), "--json"]).output)
    assert as_json["harvest_count"] == 2 and as_json["tree"]["grams"] == 6_000
    impact = runner.invoke(app, ["recall-impact", "0x" + lots[0].hex()])
    assert impact.exit_code == 0 and "0x" + made.hex() in impact.output
    data = json.loads(runner.invoke(app, ["recall-impact", "0x" + lots[0].hex(), "--json"]).output)
    assert data["holders"] == {s.processor.address: ["0x" + made.hex()]}


def test_clear_errors(app, on_system: System, tmp_path: Path, monkeypatch):
    unknown = runner.invoke(app, ["trace", "0x" + "42" * 32])
    assert unknown.exit_code == cli.EXIT_FAILED and "does not exist" in unknown.output
    assert runner.invoke(app, ["trace", "0x1234"]).exit_code == 2  # usage error
    bad = tmp_path / "h.csv"
    bad.write_text("farmer,plot,grams,grade,picked_at,phone\n")
    refused = runner.invoke(app, ["record", "harvests", str(bad)])
    assert refused.exit_code == cli.EXIT_FAILED and "unknown columns: phone" in refused.output
    fresh = client_for("embedded", tmp_path / "empty")
    monkeypatch.setattr(cli, "make_client", lambda: fresh)
    missing = runner.invoke(app, ["trace", "0x" + "42" * 32])
    assert missing.exit_code == cli.EXIT_FAILED and "tealedger deploy" in missing.output


@needs_node()
@pytest.mark.node
def test_commands_use_the_configured_chain(
    app, anvil_node: ProcessNode, tmp_path: Path, monkeypatch
):
    """No injection: ChainClient() from TEALEDGER_* settings, addresses from its registry."""
    system = build_system(client_for(anvil_node, tmp_path))
    monkeypatch.setenv("TEALEDGER_BACKEND", "anvil")
    monkeypatch.setenv("TEALEDGER_PORT", str(anvil_node.port))
    monkeypatch.setenv("TEALEDGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TEALEDGER_CONFIG", str(tmp_path / "none.toml"))
    path = harvest_csv(
        tmp_path / "h.csv", system, [(0, 0, 9_000, 2, "A-1"), (1, 1, 8_000, 3, "A-2")]
    )
    result = runner.invoke(app, ["record", "harvests", str(path)])
    assert result.exit_code == 0, result.output
    logs = system.tt.events.HarvestRecorded().get_logs(from_block=0)
    assert len(logs) == 2
    traced = runner.invoke(app, ["trace", "0x" + logs[0]["args"]["lot"].hex(), "--json"])
    assert json.loads(traced.output)["harvest_count"] == 1
