"""Harvest records/s written to a real node through RecordingService and Sender.

A seeded season (simulation/season.py, one cooperative) is registered on a throw-away node
started on a free port, then consecutive slices of its pickings are recorded four ways through
`RecordingService.record_harvests` (pre-check by `checkHarvests`, signing, local nonces,
receipts): (a) one record per call, each awaited before the next — the naive baseline; (b) one
record per transaction, all sent before the first receipt is awaited; (c) calls of 100 records,
each awaited; (d) 100 records per transaction, all pipelined. The clock runs from the call to the
last receipt; building the pydantic records is outside it. These local nodes mine each
transaction as it arrives, so pipelining saves round trips only; on a network with a block
time, (a) and (c) also wait for a block per transaction.

Sustained rows (anvil only): on a second fresh anvil with bigger blocks (BIG_BLOCK_GAS, 300 M
gas), a three-cooperative season; first the baseline (a) again, then BENCH_WRITE_SUSTAINED
records (default 20,000) three ways, the cooperatives each signing their own records with their
own key: (e) 372 records per transaction (MAX_HARVEST_BATCH: what 30 M-gas blocks
admit within their gas target), the three cooperatives' shares one after another; (f) as many
records per transaction as the big blocks admit (3,747), one after another; (g) as (f), the
three at once, one process each. Every receipt is checked (status 1, every record settled as
recorded); the ratio is against the baseline of the same node.

Environment: BENCH_WRITE_SINGLE (records for (a) and (b), default 300), BENCH_WRITE_BATCHED
(records for (c) and (d), default 2,000), BENCH_WRITE_SUSTAINED (records for each of (e), (f)
and (g), default 20,000; 0 skips them), BENCH_WRITE_GANACHE=0 skips the ganache rows.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.core.settings import ApiSettings
from chain.accounts import dev_accounts
from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, PROJECT_ROOT, ChainSettings
from chain.nodes import GanacheNode, ProcessNode, free_port
from simulation.season import generate
from tealedger.demo.season import (
    COOPERATIVE_ACCOUNTS,
    SeasonSummary,
    demo_salts,
    ensure_roles,
    latest_full_season,
    region_of,
    register_members,
)
from tealedger.demo.season import Region as SeasonRegion
from tests._fixtures.workload import EphemeralAnvil
from traceability.contracts import deploy_traceability
from traceability.models import HarvestRecord
from traceability.service import MAX_HARVEST_BATCH, RecordingService, harvest_batch_cap

BATCH = 100
BIG_BLOCK_GAS = 300_000_000  # anvil --gas-limit of the sustained node ("bigger blocks")
WHOLE = 10**9  # a batch_size the node's block gas target cuts down (harvest_batch_cap)
FARMERS_PER_1000_RECORDS = 50  # a generated farmer picks ~23 times a year (1-3 plots)
Mode = Callable[[RecordingService, Sequence[HarvestRecord]], None]


def _env_int(name: str, default: int) -> int:
    """An integer from the environment."""
    return int(os.environ.get(name, default))


def _records(region: SeasonRegion) -> list[HarvestRecord]:
    """The season's pickings as the cooperative submits them (in picking order)."""
    out = []
    for h in region.season.harvests:
        out.append(
            HarvestRecord(
                farmer=region.farmer_ids[h.farmer],
                plot=region.plot_ids[h.farmer][h.plot],
                grams=h.grams,
                grade=h.grade,
                picked_at=h.picked_at,
                record_ref=h.record_ref,
            )
        )
    return out


def _recorded(service: RecordingService, records: Sequence[HarvestRecord]) -> None:
    """One record_harvests call that must record every record (else the figure is void)."""
    report = service.record_harvests(records)
    if report.recorded != len(records):
        reasons = {o.reason for o in report.outcomes if o.reason}
        raise RuntimeError(f"only {report.recorded} of {len(records)} recorded: {reasons}")


def single_waiting(service: RecordingService, records: Sequence[HarvestRecord]) -> None:
    """(a) one call per record, each receipt awaited before the next record."""
    for record in records:
        _recorded(service, [record])


def single_pipelined(service: RecordingService, records: Sequence[HarvestRecord]) -> None:
    """(b) one record per transaction, every transaction sent before receipts are awaited."""
    _recorded(service, records)


def batched_waiting(service: RecordingService, records: Sequence[HarvestRecord]) -> None:
    """(c) BATCH records per transaction, each call awaited before the next."""
    for start in range(0, len(records), BATCH):
        _recorded(service, records[start : start + BATCH])


def batched_pipelined(service: RecordingService, records: Sequence[HarvestRecord]) -> None:
    """(d) BATCH records per transaction, all transactions pipelined."""
    _recorded(service, records)


def _node(backend: str, data_dir: Path) -> ProcessNode:
    """A fresh node of `backend` on a free port (anvil without its periodic state dump)."""
    cls = EphemeralAnvil if backend == "anvil" else GanacheNode
    return cls(data_dir, PROJECT_ROOT, free_port(), DEV_MNEMONIC, accounts=10)


def _measure(backend: str, single: int, batched: int) -> dict[str, tuple[int, float]]:
    """(records, seconds) of each mode on a fresh node of `backend`."""
    year = latest_full_season(datetime.now(UTC))
    farmers = max(10, (2 * single + 2 * batched) * FARMERS_PER_1000_RECORDS // 1000)
    salts = demo_salts([a.address for a in dev_accounts(DEV_MNEMONIC, 2)[1:]], ApiSettings())
    region = region_of(generate(farmers=farmers, seed=2026, year=year, cooperatives=1), salts)
    records = _records(region)
    if len(records) < 2 * single + 2 * batched:
        raise RuntimeError(f"the season has {len(records)} pickings, fewer than asked")
    modes: list[tuple[str, Mode, int, int]] = [
        ("single_waiting", single_waiting, single, 1),
        ("single_pipelined", single_pipelined, single, 1),
        ("batched_waiting", batched_waiting, batched, BATCH),
        ("batched_pipelined", batched_pipelined, batched, BATCH),
    ]
    out: dict[str, tuple[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix=f"bench-write-{backend}-") as tmp:
        node = _node(backend, Path(tmp))
        node.start()
        try:
            settings = ChainSettings(
                backend=backend, port=node.port, data_dir=Path(tmp), mnemonic=DEV_MNEMONIC
            )
            client = ChainClient(settings, node)
            deploy_traceability(client)
            register_members(client, region, SeasonSummary())
            offset = 0
            for name, mode, count, batch_size in modes:
                chunk = records[offset : offset + count]
                offset += count
                # The cooperative's one service; its sender (and nonces) is the client's.
                service = RecordingService(client, COOPERATIVE_ACCOUNTS[0], batch_size=batch_size)
                began = time.perf_counter()
                mode(service, chunk)
                out[name] = (count, time.perf_counter() - began)
        finally:
            node.stop()
    return out


def _rows(backend: str, found: dict[str, tuple[int, float]]) -> list[dict[str, Any]]:
    """Records/s of each mode, against one record per call, each awaited."""
    rate = {name: n / seconds for name, (n, seconds) in found.items()}
    base = rate["single_waiting"]
    labels = {
        "single_waiting": "1 record/tx, each receipt awaited (baseline)",
        "single_pipelined": "1 record/tx, pipelined",
        "batched_waiting": f"{BATCH} records/tx, each receipt awaited",
        "batched_pipelined": f"{BATCH} records/tx, pipelined",
    }
    rows: list[dict[str, Any]] = []
    for name, label in labels.items():
        n = found[name][0]
        row: dict[str, Any] = {
            "benchmark": f"harvest records written, {backend}: {label}, {n:,} records",
            "value": round(rate[name], 1),
            "unit": "records/s",
        }
        if name != "single_waiting":
            row |= {"baseline": round(base, 1), "ratio": round(rate[name] / base, 1)}
        rows.append(row)
    return rows


def _cooperative(
    settings: ChainSettings,
    index: int,
    records: Sequence[HarvestRecord],
    ready: Any,
    go: Any,
    done: Any,
) -> None:
    """(g) one cooperative's own process (as each runs its own service): connect, then record
    its share when told to; reports its error or None."""
    try:
        service = RecordingService(ChainClient(settings), index, batch_size=WHOLE)
        service.sender.fees()  # connected and warm before the clock starts
        assert service.harvest_batch_cap > MAX_HARVEST_BATCH
    except BaseException as exc:
        ready.put(repr(exc))
        return
    ready.put(None)
    go.wait()
    try:
        _recorded(service, records)
    except BaseException as exc:  # the parent voids the figure
        done.put(repr(exc))
        return
    done.put(None)


def _in_parallel(
    settings: ChainSettings, work: Sequence[tuple[int, Sequence[HarvestRecord]]]
) -> float:
    """Seconds from the start signal until every cooperative's process has recorded its share.

    Processes, not threads: in one interpreter the threads' hashing and JSON parsing hold the
    GIL while the others' replies wait to be read (threads measured half the serial rate).
    """
    ctx = multiprocessing.get_context("spawn")
    ready, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_cooperative, args=(settings, i, list(r), ready, go, done))
        for i, r in work
    ]
    for p in procs:
        p.start()
    try:
        errors = [e for e in (ready.get(timeout=300) for _ in procs) if e]
        if errors:
            raise RuntimeError(f"a cooperative could not start: {errors[0]}")
        began = time.perf_counter()
        go.set()
        errors = [e for e in (done.get(timeout=600) for _ in procs) if e]
        seconds = time.perf_counter() - began
        if errors:
            raise RuntimeError(f"a cooperative failed: {errors[0]}")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return seconds


def _measure_sustained(single: int, sustained: int) -> dict[str, tuple[int, float]]:
    """(records, seconds) of the baseline, (e), (f) and (g) on one fresh big-block anvil."""
    year = latest_full_season(datetime.now(UTC))
    coops = len(COOPERATIVE_ACCOUNTS)
    accounts = dev_accounts(DEV_MNEMONIC, max(COOPERATIVE_ACCOUNTS) + 1)
    salts = demo_salts([accounts[i].address for i in COOPERATIVE_ACCOUNTS], ApiSettings())
    # (e), (f), (g) take `sustained` each, the baseline `single`; cooperatives differ in size
    farmers = max(30, (3 * sustained + 3 * single) * FARMERS_PER_1000_RECORDS * 13 // 10_000)
    region = region_of(generate(farmers=farmers, seed=2027, year=year, cooperatives=coops), salts)
    records = _records(region)
    owner = [region.season.farmers[h.farmer].cooperative for h in region.season.harvests]
    by_coop = [[r for r, c in zip(records, owner, strict=True) if c == k] for k in range(coops)]
    baseline, by_coop[0] = by_coop[0][:single], by_coop[0][single:]
    share = sustained // coops  # (e), (f) and (g) each take a share of every cooperative's
    if len(baseline) < single or any(len(c) < 3 * share for c in by_coop):
        raise RuntimeError("the season has fewer pickings than asked")
    slices = [[c[k * share : (k + 1) * share] for c in by_coop] for k in range(3)]
    out: dict[str, tuple[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-write-sustained-") as tmp:
        node = EphemeralAnvil(
            Path(tmp), PROJECT_ROOT, free_port(), DEV_MNEMONIC, 10, block_gas_limit=BIG_BLOCK_GAS
        )
        node.start()
        try:
            settings = ChainSettings(
                backend="anvil", port=node.port, data_dir=Path(tmp), mnemonic=DEV_MNEMONIC
            )
            client = ChainClient(settings, node)
            deploy_traceability(client)
            ensure_roles(client)
            register_members(client, region, SeasonSummary())
            began = time.perf_counter()
            single_waiting(
                RecordingService(client, COOPERATIVE_ACCOUNTS[0], batch_size=1), baseline
            )
            out["single_waiting"] = (len(baseline), time.perf_counter() - began)
            for name, size, work in (
                ("max_batch", MAX_HARVEST_BATCH, slices[0]),
                ("big_blocks", WHOLE, slices[1]),
            ):
                services = [
                    RecordingService(client, i, batch_size=size) for i in COOPERATIVE_ACCOUNTS
                ]
                began = time.perf_counter()
                for service, chunk in zip(services, work, strict=True):
                    _recorded(service, chunk)
                out[name] = (share * coops, time.perf_counter() - began)
            seconds = _in_parallel(
                settings, list(zip(COOPERATIVE_ACCOUNTS, slices[2], strict=True))
            )
            out["big_blocks_parallel"] = (share * coops, seconds)
        finally:
            node.stop()
    return out


def _sustained_rows(found: dict[str, tuple[int, float]]) -> list[dict[str, Any]]:
    """Records/s of (e), (f) and (g) against the baseline measured on the same node."""
    rate = {name: n / seconds for name, (n, seconds) in found.items()}
    base = rate["single_waiting"]
    coops = len(COOPERATIVE_ACCOUNTS)
    big = harvest_batch_cap(BIG_BLOCK_GAS)
    labels = {
        "single_waiting": "1 record/tx, each receipt awaited (baseline of the sustained run)",
        "max_batch": (
            f"{MAX_HARVEST_BATCH} records/tx (30 M-gas blocks' gas target), {coops} "
            "cooperatives one after another, sustained"
        ),
        "big_blocks": (
            f"{big:,} records/tx (300 M-gas blocks), {coops} cooperatives one after another, "
            "sustained"
        ),
        "big_blocks_parallel": (
            f"{big:,} records/tx (300 M-gas blocks), {coops} cooperatives at once (a process "
            "each), sustained"
        ),
    }
    rows: list[dict[str, Any]] = []
    for name, label in labels.items():
        row: dict[str, Any] = {
            "benchmark": f"harvest records written, anvil: {label}, {found[name][0]:,} records",
            "value": round(rate[name], 1),
            "unit": "records/s",
        }
        if name != "single_waiting":
            row |= {"baseline": round(base, 1), "ratio": round(rate[name] / base, 1)}
        rows.append(row)
    return rows


def run() -> list[dict[str, Any]]:
    """Measure on anvil, then (unless disabled) on ganache with a quarter of the records."""
    single = _env_int("BENCH_WRITE_SINGLE", 300)
    batched = _env_int("BENCH_WRITE_BATCHED", 2_000)
    sustained = _env_int("BENCH_WRITE_SUSTAINED", 20_000)
    rows = _rows("anvil", _measure("anvil", single, batched))
    if sustained > 0:
        rows += _sustained_rows(_measure_sustained(single, sustained))
    if os.environ.get("BENCH_WRITE_GANACHE", "1") != "0":
        rows += _rows("ganache", _measure("ganache", max(1, single // 4), max(1, batched // 4)))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
