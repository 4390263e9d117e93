"""Benchmarks of credit decisions: features, scoring, full decisions, decisions stored in SQLite."""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlmodel import create_engine

from bench.report import table
from lending.credit.access import MappingProfileReader, StaticConsent
from lending.credit.decision import decide, evaluate
from lending.credit.features import snapshot_from_profile
from lending.credit.policy import Outcome
from lending.credit.scorecard import load_model
from lending.credit.simulation import simulate_population
from lending.credit.store import CreditStore, create_tables

SECONDS = 1.5
FARMERS = 500
CONTRACT = date(2025, 10, 20)  # within the shipped LPR table's validity (later is refused)
LENDER = "0x" + "42" * 20


def _rate(fn: Callable[[], object], seconds: float = SECONDS) -> float:
    """Calls per second of `fn`, timed with perf_counter over about `seconds`."""
    fn()
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(10):
            fn()
        calls += 10
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def run() -> list[dict[str, object]]:
    """Measure and return one row per benchmark."""
    model = load_model()
    farmers = simulate_population(6, FARMERS, "bench").farmers
    snapshots = [snapshot_from_profile(f.profile) for f in farmers]
    offered = [
        s
        for s in snapshots
        if evaluate(s, model=model, contract_date=CONTRACT).outcome is not Outcome.DECLINE
    ]
    profiles = itertools.cycle(farmers)
    features = itertools.cycle(s.features for s in snapshots)
    offers = itertools.cycle(offered)
    reader = MappingProfileReader({f.farmer_id: f.profile for f in farmers})
    consent = StaticConsent(everyone=True)
    rows = [
        _row(
            "profiles -> credit features/s", lambda: snapshot_from_profile(next(profiles).profile)
        ),
        _row("scorecard scores/s", lambda: model.score(next(features))),
        _row(
            "decisions/s (score, reasons, limit, capped price, disclosure)",
            lambda: evaluate(next(offers), model=model, contract_date=CONTRACT),
        ),
    ]
    for label, wal in (
        ("SQLite WAL, synchronous=NORMAL", True),
        ("SQLite, fsync per commit", False),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            store = _store(Path(tmp) / "credit.db", wal)

            def stored(store: CreditStore = store) -> object:
                farmer = next(profiles)
                return decide(
                    farmer.farmer_id, LENDER, profiles=reader, consent=consent,
                    access_log=store, store=store, contract_date=CONTRACT,
                )  # fmt: skip

            rows.append(_row(f"decisions/s end to end (consent, access log, {label})", stored))
            store.engine.dispose()
    return rows


def _row(name: str, fn: Callable[[], object]) -> dict[str, object]:
    """One result row."""
    return {"benchmark": f"credit: {name}", "value": round(_rate(fn), 1), "unit": "ops/s"}


def _store(path: Path, wal: bool) -> CreditStore:
    """A decision store in a fresh SQLite file, in WAL mode or SQLite's default journal."""
    engine = create_engine(f"sqlite:///{path}")
    if wal:

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: object) -> None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")

    create_tables(engine)
    return CreditStore(engine)


if __name__ == "__main__":
    print(table(run()))
