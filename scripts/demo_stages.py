"""Time `tealedger demo` stage by stage: the table docs/demo.md shows for a size and backend.

    python scripts/demo_stages.py --farmers 3000 --backend anvil

runs the demo in a new data dir on free ports, reads its progress file (`demo-status.json`,
what the home page shows) twice a second and the process tree's memory from /proc, then stops
what it started (`tealedger stop`) and prints a Markdown table: each step's items and time
(from the end of the step before to the moment it was complete), the time to the first page, the
whole run, the peak memory of the demo, its service and the node together and of each alone,
and the database's size. A step's time includes whatever ran beside it (the service's follower
indexing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chain.nodes import free_port

POLL_S = 0.5
PAGE_SIZE = 4096


@dataclass
class Step:
    """One progress bar as the status file showed it over time."""

    name: str
    total: int
    appeared: float
    completed: float | None = None


@dataclass
class Watch:
    """What the poller saw."""

    started: float
    steps: dict[str, Step] = field(default_factory=dict)
    first_page: float | None = None
    peak_rss: int = 0
    peaks: dict[str, int] = field(default_factory=dict)
    ended: float | None = None

    def see_memory(self, trees: dict[str, int]) -> None:
        """Record each process tree's resident bytes and their sum at one moment."""
        self.peak_rss = max(self.peak_rss, sum(trees.values()))
        for name, rss in trees.items():
            self.peaks[name] = max(self.peaks.get(name, 0), rss)

    def see_status(self, status: dict, now: float) -> None:
        """Record the steps that appeared or completed since the last poll."""
        for raw in status.get("steps", []):
            step = self.steps.setdefault(raw["name"], Step(raw["name"], raw["total"], now))
            step.total = raw["total"]
            if step.completed is None and raw["done"] >= raw["total"]:
                step.completed = now


def _children(pid: int) -> list[int]:
    """The direct children of a process (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def tree_rss(root: int, apart: Collection[int] = ()) -> int:
    """Resident bytes of a process and its descendants, leaving out the trees of `apart`."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/statm").read_text().split()
            total += int(fields[1]) * PAGE_SIZE
        except OSError:
            continue
        todo += [c for c in _children(pid) if c not in apart]
    return total


def trees_rss(roots: dict[str, int]) -> dict[str, int]:
    """Each root's tree without the other roots' trees: the demo starts the node and the
    service, so its own tree holds both, and a sum of whole trees counted them twice."""
    others = set(roots.values())
    return {name: tree_rss(pid, others - {pid}) for name, pid in roots.items()}


def _service_pids(data_dir: Path) -> dict[str, int]:
    """The service and node the demo started in the background (their own sessions), by role."""
    pids = {}
    for name, record in [("service", data_dir / "service.json"),
                         *(("node", r) for r in data_dir.glob("nodes/*/node.json"))]:  # fmt: skip
        try:
            pids[name] = int(json.loads(record.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue
    return pids


def _status(path: Path) -> dict:
    """The demo's progress file, or {} while it is missing or half-written."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run(args: argparse.Namespace, data_dir: Path) -> tuple[Watch, int]:
    """Run the demo and poll it until it ends; returns what was seen and its exit code."""
    serve_port = free_port()
    env = os.environ | {"TEALEDGER_DATA_DIR": str(data_dir), "COLUMNS": "120"}
    cmd = [sys.executable, "-m", "tealedger.cli", "demo", "--backend", args.backend,
           "--farmers", str(args.farmers), "--port", str(free_port()),
           "--serve-port", str(serve_port)]  # fmt: skip
    log = (data_dir / "demo-run.log").open("wb")
    watch = Watch(time.monotonic())
    demo = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    status_file, home = data_dir / "demo-status.json", f"http://127.0.0.1:{serve_port}/"
    while demo.poll() is None:
        now = time.monotonic()
        roots = {"demo": demo.pid} | _service_pids(data_dir)
        watch.see_memory(trees_rss(roots))
        watch.see_status(_status(status_file), now)
        if watch.first_page is None:
            try:
                if httpx.get(home, timeout=2).status_code == 200:
                    watch.first_page = now
            except httpx.HTTPError:
                pass
        time.sleep(POLL_S)
    end = time.monotonic()
    watch.see_status(_status(status_file), end)
    watch.ended = end
    return watch, demo.returncode


def stop(data_dir: Path) -> None:
    """`tealedger stop`: the service and the node the demo left running."""
    env = os.environ | {"TEALEDGER_DATA_DIR": str(data_dir)}
    subprocess.run([sys.executable, "-m", "tealedger.cli", "stop"], env=env, check=False,
                   capture_output=True, timeout=120)  # fmt: skip


def _clock(seconds: float | None) -> str:
    """m:ss, or h:mm:ss past an hour."""
    if seconds is None:
        return "(not complete)"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _peaks(watch: Watch) -> str:
    """Each process tree's own peak, which need not fall at the moment of the joint peak."""
    return ", ".join(f"{name} {rss / 2**30:.2f}" for name, rss in watch.peaks.items())


def report(args: argparse.Namespace, watch: Watch, code: int, data_dir: Path) -> str:
    """The Markdown table and the run's figures."""
    lines = [f"`tealedger demo --farmers {args.farmers} --backend {args.backend}` "
             f"(exit {code}; data dir {data_dir})", "",
             "| stage | items | time |", "| --- | ---: | ---: |"]  # fmt: skip
    steps = list(watch.steps.values())
    mark = min((s.appeared for s in steps), default=watch.started)
    lines.append(f"| deploy, service start | | {_clock(mark - watch.started)} |")
    for step in steps:
        # The steps run one after another: a step's time runs from the end of the one before
        # (its preparation, before its bar appears, included).
        elapsed = None if step.completed is None else step.completed - mark
        mark = step.completed or mark
        items = f"{step.total:,}" if step.total > 1 else ""
        lines.append(f"| {step.name} | {items} | {_clock(elapsed)} |")
    whole = watch.ended or mark
    lines.append(f"| after the last step (index, risk scan) | | {_clock(whole - mark)} |")
    lines.append(f"| **whole run** | | **{_clock(whole - watch.started)}** |")
    db = sum(p.stat().st_size for p in data_dir.glob("tealedger.db*") if p.is_file())
    first = None if watch.first_page is None else watch.first_page - watch.started
    lines += ["", f"- first page: {_clock(first)}",
              f"- peak memory (demo, service and node together): {watch.peak_rss / 2**30:.2f} GiB"
              f" ({_peaks(watch)})",
              f"- database (SQLite with its WAL): {db / 2**20:,.0f} MiB"]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, stop what was started, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--farmers", type=int, default=300)
    parser.add_argument("--backend", choices=("anvil", "ganache"), default="anvil")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a new temp dir")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="tealedger-stages-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        watch, code = run(args, data_dir)
    finally:
        stop(data_dir)
    print(report(args, watch, code, data_dir))
    return code


if __name__ == "__main__":
    sys.exit(main())
