"""Indexer benchmarks: backfill into SQLite and PostgreSQL vs web3.py, rebuild, profile reads.

Environment: BENCH_EVENTS (harvest events on anvil, default 1,000,000 as the issue asks; the
first run of a size generates and caches its chain, ~4 minutes at 1M), BENCH_FARMERS (farmers
for the profile-read benchmark, default 120,000), BENCH_READS (profiles read, default 2,000),
BENCH_PG (libpq DSN of a PostgreSQL server to create a throwaway database on; the PostgreSQL
row is left out if none answers), BENCH_CACHE=0 (regenerate the chain instead of loading the
cached anvil state from .bench-cache/). The profile-read database is generated directly (rows
written without a chain), which the row says.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from eth_utils import keccak
from sqlalchemy import Engine

from chain.client import ChainClient
from chain.compiler import Artifacts
from chain.config import DEV_MNEMONIC, PROJECT_ROOT, ChainSettings
from indexer.db import BulkWriter, make_engine, migrate
from indexer.engine import Indexer, IndexerConfig, fewer_gc_passes
from indexer.models import Checkpoint, Farmer, Harvest, HarvestYield, Plot, SaleShare
from indexer.profiles import load_profile
from indexer.projections import recompute_aggregates
from indexer.rebuild import rebuild
from indexer.runner import chain_source, project_abis
from indexer.seasons import season_of
from tests._fixtures import workload

HARVESTS_PER_FARMER = 25
HARVESTS_PER_TX = 1_000  # ~30M gas each
TXS_PER_BLOCK = 10  # 10,000 harvest events per block: the bench chain's gas limit is raised
GAS_LIMIT = 1_000_000_000
SEED = 7
# Most of a million-event run is the web3 baseline (~10 minutes here).
DEFAULT_EVENTS = 1_000_000
CACHE_DIR = PROJECT_ROOT / ".bench-cache" / "indexer"
WEB3_CHUNK_BLOCKS = 2  # 20,000 logs a call, as in our batches


def _env_int(name: str, default: int) -> int:
    """An integer from the environment."""
    return int(os.environ.get(name, default))


def _chain(
    tmp: Path, events: int, generate: bool = True
) -> tuple[workload.EphemeralAnvil, ChainClient]:
    """An anvil with `events` harvest events (plus the farmers and plots behind them).

    The chain is cached as an anvil state file keyed by the contracts' bytecode and the
    workload, so only the first run of a size pays for generating it (BENCH_CACHE=0: never).
    """
    settings = ChainSettings(backend="anvil", data_dir=tmp, mnemonic=DEV_MNEMONIC)
    use_cache = os.environ.get("BENCH_CACHE", "1") != "0"
    cache = CACHE_DIR / _cache_key(ChainClient(settings).artifacts, events)
    if use_cache and (cache / "meta.json").exists():
        node = workload.start_anvil(tmp, load_state=cache / "state.json", start_timeout=600)
        client = ChainClient(settings.model_copy(update={"port": node.port}), node)
        shutil.copytree(cache / "deployments", tmp / "deployments")
        if _matches(client, json.loads((cache / "meta.json").read_text())):
            return node, client
        node.stop()
        shutil.rmtree(tmp / "deployments")
        if not generate:
            raise RuntimeError(f"anvil did not restore the chain cached in {cache}")
    return _generate(tmp, settings, events, cache if use_cache else None)


def _cache_key(artifacts: Artifacts, events: int) -> str:
    """What the cached chain depends on: the contracts' creation code and the workload."""
    digest = hashlib.sha256()
    for name in ("TeaTrace", "ConsentRegistry"):
        digest.update(bytes(artifacts[name].bytecode))
    workload_spec = (events, HARVESTS_PER_FARMER, HARVESTS_PER_TX, TXS_PER_BLOCK, GAS_LIMIT, SEED)
    digest.update(repr(workload_spec).encode())
    return f"{events}-{digest.hexdigest()[:16]}"


def _matches(client: ChainClient, meta: dict[str, Any]) -> bool:
    """The loaded chain is the one recorded (same head block, same TeaTrace)."""
    head = client.w3.eth.get_block("latest")
    trace = client.registry.get("TeaTrace")
    return head["hash"].to_0x_hex() == meta["head_hash"] and trace is not None


def _generate(
    tmp: Path, settings: ChainSettings, events: int, cache: Path | None
) -> tuple[workload.EphemeralAnvil, ChainClient]:
    """Create the chain; with `cache`, have anvil dump it on exit and start again from it."""
    dump = tmp / "state.json" if cache else None
    node = workload.start_anvil(tmp, gas_limit=GAS_LIMIT, dump_state=dump)
    client = ChainClient(settings.model_copy(update={"port": node.port}), node)
    system = workload.deploy_tea(client)
    farmers = workload.register_farmers(system, max(1, events // HARVESTS_PER_FARMER), seed=SEED)
    per_farmer = -(-events // len(farmers))
    records = workload.harvest_records(farmers, per_farmer, seed=SEED)
    records = {k: v[:events] for k, v in records.items()}
    workload.send_harvests(system, records, batch=HARVESTS_PER_TX, per_block=TXS_PER_BLOCK)
    if cache is None or dump is None:
        return node, client
    head = client.w3.eth.get_block("latest")["hash"].to_0x_hex()
    node.stop()
    cache.mkdir(parents=True, exist_ok=True)
    shutil.move(dump, cache / "state.json")
    shutil.rmtree(cache / "deployments", ignore_errors=True)
    shutil.copytree(tmp / "deployments", cache / "deployments")
    (cache / "meta.json").write_text(json.dumps({"events": events, "head_hash": head}))
    return _chain(tmp / "loaded", events, generate=False)


@dataclass(frozen=True)
class Run:
    """One measured pass: events, wall seconds, CPU seconds of this process and its children."""

    events: int
    seconds: float
    cpu: float

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per event (the node's excluded)."""
        return self.cpu / self.events * 1e6


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the reader process)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _backfill(client: ChainClient, url: str, reader: str | None = None) -> Run:
    """Index everything into a new database: the catching up, timed."""
    config = IndexerConfig() if reader is None else IndexerConfig(reader=reader)
    indexer = Indexer(make_engine(url, writer=True), chain_source(client), config)
    indexer.prepare()
    began, cpu = time.perf_counter(), _cpu()
    progress = indexer.sync()
    return Run(progress.events, time.perf_counter() - began, _cpu() - cpu)


def _median_backfill(client: ChainClient, tmp: Path, url: str, runs: int = 3) -> Run:
    """The median of `runs` backfills into new SQLite files (this machine's speed drifts by a
    quarter within minutes); the last one's database is kept at `url` for the rebuild."""
    done = [_backfill(client, f"sqlite:///{tmp / f'spare-{n}.db'}") for n in range(runs - 1)]
    done.append(_backfill(client, url))
    return sorted(done, key=lambda run: run.rate)[len(done) // 2]


@contextlib.contextmanager
def _pg_database() -> Iterator[str | None]:
    """A throwaway database on the local PostgreSQL (BENCH_PG: libpq DSN); None if none answers."""
    dsn = os.environ.get("BENCH_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    try:
        admin = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        yield None
        return
    name = f"tealedger_bench_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    info = admin.info
    try:
        yield f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _raw_decode(client: ChainClient) -> Run:
    """Our read path alone (eth_getLogs + decoding, no database)."""
    source = chain_source(client)
    head, start = source.head(), min(c.from_block for c in source.contracts)
    began, cpu, count = time.perf_counter(), _cpu(), 0
    while start <= head:
        batch = source.read(start, head)
        count += len(batch.events)
        start = batch.stop + 1
    return Run(count, time.perf_counter() - began, _cpu() - cpu)


def _web3_baseline(client: ChainClient) -> Run:
    """web3.py: eth.get_logs + contract event process_log, the same logs, same chunking."""
    trace = client.contract("TeaTrace")
    by_topic = {}
    for entry in trace.abi:
        if entry.get("type") == "event":
            types = ",".join(i["type"] for i in entry["inputs"])
            by_topic[keccak(text=f"{entry['name']}({types})")] = trace.events[entry["name"]]()
    head = client.w3.eth.block_number
    began, cpu, count = time.perf_counter(), _cpu(), 0
    with fewer_gc_passes():  # the indexer's own setting, so the comparison is of the code only
        for start in range(0, head + 1, WEB3_CHUNK_BLOCKS):
            logs = client.w3.eth.get_logs(
                {"fromBlock": start, "toBlock": min(head, start + WEB3_CHUNK_BLOCKS - 1),
                 "address": trace.address}
            )  # fmt: skip
            for log in logs:
                by_topic[bytes(log["topics"][0])].process_log(log)
                count += 1
    return Run(count, time.perf_counter() - began, _cpu() - cpu)


def _profile_db(engine: Engine, farmers: int, seed: int = 11) -> list[bytes]:
    """Write `farmers` farmers with a season of harvests each directly (no chain)."""
    migrate(engine)
    rng = random.Random(seed)
    coops = [keccak(text=f"coop{i}")[:20] for i in range(max(1, farmers // 1200))]
    ids = [keccak(text=f"bench-farmer-{i}") for i in range(farmers)]
    spring = 1_773_000_000  # 2026-03-09, China spring flush
    with engine.begin() as conn:
        w = BulkWriter(conn)
        w.add(Checkpoint, (1, 31337, b"\x00" * 32, 1, 1, b"\x11" * 32))
        for n, farmer in enumerate(ids):
            coop = coops[n % len(coops)]
            plot = keccak(farmer + b"plot")
            w.add(Farmer, (farmer, coop, None, 1, n, spring - 86400 * 400))
            w.add(Plot, (plot, farmer, coop, 100 + rng.randrange(400), 1, plot, 1, n))
            for k in range(8):  # one spring flush of pickings
                lot = keccak(farmer + bytes([k]))
                picked = spring + 86400 * (3 * k) + rng.randrange(86400)
                grams = 5_000 + rng.randrange(30_000)
                season = season_of(picked)
                w.add(Harvest, (lot, farmer, plot, coop, grams, 1 + rng.randrange(5), picked,
                                season, lot, 2 + k, n, picked + 3600))  # fmt: skip
                w.add(HarvestYield, (lot, farmer, season, lot, grams // 5, 3 + k))
                w.add(SaleShare, (3 + k, n, lot, farmer, coop, season, grams, grams * 3))
            if n % 5000 == 4999:
                w.flush()
        w.flush()
        recompute_aggregates(conn)
    return ids


def _reads(engine: Engine, ids: list[bytes], reads: int) -> tuple[float, float]:
    """p50 and p99 of reading one profile (own read transaction each), in milliseconds."""
    rng = random.Random(3)
    timings = []
    for farmer in (rng.choice(ids) for _ in range(reads)):
        began = time.perf_counter()
        with engine.connect() as conn, conn.begin():
            load_profile(conn, farmer)
        timings.append((time.perf_counter() - began) * 1000)
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49], cuts[98]


def _vs(label: str, run: Run, web3: Run) -> list[dict[str, Any]]:
    """A throughput row against the web3 baseline, and its CPU cost."""
    return [
        {"benchmark": label, "value": round(run.rate), "unit": "events/s",
         "baseline": round(web3.rate), "ratio": round(run.rate / web3.rate, 1)},
        {"benchmark": "  CPU of the indexer (all its threads and processes; the node excluded)",
         "value": round(run.cpu_us, 1), "unit": "µs/event", "baseline": round(web3.cpu_us, 1),
         "ratio": round(web3.cpu_us / run.cpu_us, 1)},
    ]  # fmt: skip


def run() -> list[dict[str, Any]]:
    """Measure and return the result rows."""
    events = _env_int("BENCH_EVENTS", DEFAULT_EVENTS)
    farmers = _env_int("BENCH_FARMERS", 120_000)
    reads = _env_int("BENCH_READS", 2_000)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-indexer-") as tmp:
        node, client = _chain(Path(tmp), events)
        try:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            ours = _median_backfill(client, Path(tmp), url)
            inline = _backfill(client, f"sqlite:///{Path(tmp) / 'inline.db'}", reader="inline")
            with _pg_database() as pg_url:
                pg = _backfill(client, pg_url) if pg_url else None
            web3 = _web3_baseline(client)
            raw = _raw_decode(client)
        finally:
            node.stop()
        label = f"indexer backfill into SQLite, {ours.events:,} events (anvil), median of 3"
        rows += _vs(label, ours, web3)
        rows += _vs("  same, reading inline (read, then write; no reader thread)", inline, web3)
        if pg is not None:
            rows += _vs(f"indexer backfill into PostgreSQL, {pg.events:,} events", pg, web3)
        rows += [
            {"benchmark": "raw eth_getLogs + decode, no database (one process)",
             "value": round(raw.rate), "unit": "events/s", "baseline": round(web3.rate),
             "ratio": round(raw.rate / web3.rate, 1)},
            {"benchmark": "baseline: web3 get_logs + process_log, same logs",
             "value": round(web3.rate), "unit": "events/s"},
        ]  # fmt: skip
        stats = rebuild(make_engine(url, writer=True), project_abis(client.artifacts))
        rows.append({"benchmark": f"rebuild derived tables from {stats.events:,} raw events "
                                  "(SQLite)",
                     "value": round(stats.events_per_second), "unit": "events/s"})  # fmt: skip
        profile_engine = make_engine(f"sqlite:///{Path(tmp) / 'profiles.db'}")
        ids = _profile_db(profile_engine, farmers)
        p50, p99 = _reads(profile_engine, ids, reads)
        label = f"profile read at {farmers:,} farmers (rows generated, in-process)"
        rows += [
            {"benchmark": f"{label} p50", "value": round(p50, 2), "unit": "ms"},
            {"benchmark": f"{label} p99", "value": round(p99, 2), "unit": "ms"},
        ]
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
