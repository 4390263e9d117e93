"""Profile reads through HTTP at 120,000 farmers, beside in-process reads of the same database.

The database holds BENCH_FARMERS farmers' indexed rows (one spring flush of pickings each),
generated directly by bench/bench_indexer.py's generator without a chain, and cached in
`.bench-cache/` keyed by the indexer's migrations and the generator's source. Each run copies it,
starts a throw-away anvil with TeaTrace and ConsentRegistry, creates a lender with
`tealedger admin create-org`, registers BENCH_READS of the farmers on chain with a wallet that
grants the lender consent, writes those grants' ConsentGranted events into the `consent` table
as the follower would index them, and runs `tealedger serve --no-indexer` (an API replica: the
rows were generated, not indexed) on a free port. Each consenting farmer's profile is then read
once, in random order, with one keep-alive httpx client: `GET /lenders/farmers/{id}/profile`
checks consent (api/core/consent_gate.py: the indexed grant and the revocations made through
the service, no node call), reads the indexed profile and logs the access. The baseline is
`load_profile` in process, one read transaction per farmer, on the same database in the same
run.

Environment: BENCH_FARMERS (default 120,000), BENCH_READS (default 2,000).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from eth_abi import encode
from eth_utils import keccak
from sqlalchemy import select

from api.core.settings import ApiSettings
from bench.bench_indexer import _profile_db as generate_profile_db
from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, PROJECT_ROOT, ChainSettings
from chain.nodes import free_port, rpc_call
from indexer.db import MIGRATIONS, make_engine
from indexer.models import Consent, Farmer
from indexer.profiles import load_profile
from tealedger.demo.service import service_env
from tests._fixtures import workload
from traceability import contracts
from traceability.models import FarmerRegistration
from traceability.service import RecordingService

CACHE = PROJECT_ROOT / ".bench-cache"
COOPERATIVE, WALLET = 1, 6  # dev accounts: the registering cooperative, the farmers' wallet
CONSENT_DAYS = 365
GRANT_ARGS = ["bytes32", "address", "uint64"]
GRANT = keccak(text=f"grantConsent({','.join(GRANT_ARGS)})")[:4]
GWEI = 10**9
WARMUP = 20
START_TIMEOUT_S = 60.0


def _env_int(name: str, default: int) -> int:
    """An integer from the environment."""
    return int(os.environ.get(name, default))


def _cache_key(farmers: int) -> str:
    """Changes with the indexer's schema (its migrations) and with the row generator."""
    digest = hashlib.sha256(inspect.getsource(generate_profile_db).encode())
    for path in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return f"profiles-{farmers}-{digest.hexdigest()[:16]}.db"


def cached_database(farmers: int) -> Path:
    """The generated database of `farmers` farmers, made once per schema and generator."""
    target = CACHE / _cache_key(farmers)
    if not target.exists():
        CACHE.mkdir(exist_ok=True)
        for stale in CACHE.glob(f"profiles-{farmers}-*"):  # made for an older schema
            stale.unlink()
        partial = target.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{partial}")
        generate_profile_db(engine, farmers)
        with engine.connect() as conn:  # everything into the file itself, so a copy is whole
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        _drop_companions(partial)
        partial.rename(target)
    return target


def _drop_companions(database: Path) -> None:
    """Remove an SQLite file's emptied WAL, shared-memory and migration-lock companions."""
    wal = database.with_name(database.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        raise RuntimeError(f"{wal} still holds pages after a checkpoint; not caching {database}")
    for suffix in ("-wal", "-shm", ".migrate.lock"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)


def _farmer_ids(url: str) -> list[bytes]:
    """Every indexed farmer id."""
    with make_engine(url).connect() as conn:
        return [bytes(f) for f in conn.execute(select(Farmer.farmer)).scalars()]  # type: ignore[arg-type]


def _quantiles(timings: Sequence[float]) -> tuple[float, float]:
    """p50 and p99."""
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49], cuts[98]


def _timed(farmers: Sequence[bytes], read: Callable[[bytes], None]) -> list[float]:
    """Milliseconds of each read."""
    timings = []
    for farmer in farmers:
        began = time.perf_counter()
        read(farmer)
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def in_process_reads(url: str, farmers: Sequence[bytes]) -> list[float]:
    """load_profile in process, one read transaction each (as bench_indexer measures it)."""
    engine = make_engine(url)

    def read(farmer: bytes) -> None:
        with engine.connect() as conn, conn.begin():
            load_profile(conn, farmer)

    _timed(farmers[:WARMUP], read)
    return _timed(farmers[WARMUP:], read)


def http_reads(base_url: str, api_key: str, farmers: Sequence[bytes]) -> list[float]:
    """GET each farmer's profile as the lender over one keep-alive connection."""
    with httpx.Client(base_url=base_url, headers={"X-API-Key": api_key}, timeout=30) as http:

        def read(farmer: bytes) -> None:
            reply = http.get(f"/lenders/farmers/0x{farmer.hex()}/profile")
            if reply.status_code != 200:
                raise RuntimeError(f"profile read refused: {reply.status_code} {reply.text}")

        _timed(farmers[:WARMUP], read)
        return _timed(farmers[WARMUP:], read)


def _create_lender(env: dict[str, str]) -> tuple[str, str]:
    """(chain address, API key) of a new lender, made by the real `tealedger admin create-org`."""
    cmd = [sys.executable, "-m", "tealedger.cli", "admin", "create-org"]
    cmd += ["--name", "Bench rural bank", "--role", "lender"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=True)
    address = done.stdout.split(" at ")[1].split()[0]
    key = done.stdout.split("API key (shown once): ")[1].split()[0]
    return address, key


def grant_consents(client: ChainClient, farmers: Sequence[bytes], lender: str) -> None:
    """Register `farmers` on chain with one wallet, which grants `lender` consent for each.

    The wallet is one of the node's unlocked development accounts and the node signs its
    grants (eth_sendTransaction): without a native secp256k1 library, signing thousands of
    transactions in Python would take longer than the whole measurement.
    """
    wallet = client.accounts[WALLET].address
    coop = RecordingService(client, COOPERATIVE)
    coop.register_farmers([FarmerRegistration(farmer=f, wallet=wallet) for f in farmers])
    registry = contracts.consent_registry(client).address
    expires = int(client.w3.eth.get_block("latest")["timestamp"]) + CONSENT_DAYS * 86_400
    url = client.node.url
    # Fees given: the node would cap each grant at the base fee it quotes when the grant arrives.
    fees = {"gas": hex(150_000), "maxFeePerGas": hex(100 * GWEI), "maxPriorityFeePerGas": hex(GWEI)}
    sent = ""
    rpc_call(url, "evm_setAutomine", [False])  # queue every grant, then mine full blocks
    try:
        for farmer in farmers:
            data = GRANT + encode(GRANT_ARGS, [farmer, lender, expires])
            tx = {"from": wallet, "to": registry, "data": "0x" + data.hex(), **fees}
            sent = rpc_call(url, "eth_sendTransaction", [tx])
        while int(rpc_call(url, "txpool_status")["pending"], 16):
            rpc_call(url, "evm_mine")
    finally:
        rpc_call(url, "evm_setAutomine", [True])
    # A grant that failed would show up as a 403 when its profile is read.
    if sent and client.w3.eth.wait_for_transaction_receipt(sent)["status"] != 1:
        raise RuntimeError(f"granting consent failed in transaction {sent}")


def index_consents(client: ChainClient, url: str) -> int:
    """Write the registry's ConsentGranted events into the `consent` table, as the follower
    would (the bench serves with --no-indexer: its profile rows were generated, not indexed);
    returns how many."""
    registry = contracts.consent_registry(client)
    logs = registry.events.ConsentGranted.get_logs(from_block=0)
    rows = [
        {"block_number": e.blockNumber, "log_index": e.logIndex, "farmer": bytes(e.args.farmer),
         "lender": bytes.fromhex(e.args.lender[2:]), "wallet": bytes.fromhex(e.args.wallet[2:]),
         "expires_at": int(e.args.expiresAt), "granted": True}
        for e in logs
    ]  # fmt: skip
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(Consent.__table__.insert(), rows)  # type: ignore[attr-defined]
    engine.dispose()
    return len(rows)


@contextmanager
def served(env: dict[str, str], log: Path) -> Iterator[str]:
    """`tealedger serve --no-indexer` on a free port until the block ends; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # --no-indexer: an API replica; the generated rows must not meet the follower.
    cmd = [sys.executable, "-m", "tealedger.cli", "serve", "--port", str(port), "--no-indexer"]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Return once /healthz answers; fail if the server exits or never answers."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tealedger serve exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"tealedger serve did not answer at {url}")


def _measure(tmp: Path, farmers: int, reads: int) -> tuple[list[float], list[float]]:
    """(HTTP timings, in-process timings) in ms on a copy of the cached database."""
    database = tmp / "tealedger.db"
    shutil.copyfile(cached_database(farmers), database)
    url = f"sqlite:///{database}"
    rng = random.Random(5)
    ids = _farmer_ids(url)
    sample = min(reads + WARMUP, len(ids))  # the first WARMUP of each are read untimed
    consenting, baseline = rng.sample(ids, sample), rng.sample(ids, sample)
    node = workload.start_anvil(tmp)
    try:
        chain = ChainSettings(backend="anvil", port=node.port, data_dir=tmp, mnemonic=DEV_MNEMONIC)
        client = ChainClient(chain, node)
        contracts.deploy_traceability(client)
        env = service_env(ApiSettings(data_dir=tmp, database_url=url), chain)
        env["TEALEDGER_RATE_LIMIT_PER_MINUTE"] = str(100 * reads)  # latency, not the limiter
        lender, key = _create_lender(env)
        grant_consents(client, consenting, lender)
        if index_consents(client, url) != len(consenting):
            raise RuntimeError("not every consent grant was found on chain")
        inproc = in_process_reads(url, baseline)
        with served(env, tmp / "service.log") as base_url:
            http = http_reads(base_url, key, consenting)
    finally:
        node.stop()
    return http, inproc


def run() -> list[dict[str, Any]]:
    """Measure and return the result rows."""
    farmers = _env_int("BENCH_FARMERS", 120_000)
    reads = _env_int("BENCH_READS", 2_000)
    with tempfile.TemporaryDirectory(prefix="bench-profile-http-") as tmp:
        http, inproc = _measure(Path(tmp), farmers, reads)
    (h50, h99), (i50, i99) = _quantiles(http), _quantiles(inproc)
    label = f"profile read at {farmers:,} farmers over HTTP (consent indexed, access logged)"
    return [
        {"benchmark": f"{label} p50, {len(http):,} reads", "value": round(h50, 2), "unit": "ms",
         "baseline": round(i50, 2), "ratio": round(i50 / h50, 2)},
        {"benchmark": f"{label} p99", "value": round(h99, 2), "unit": "ms",
         "baseline": round(i99, 2), "ratio": round(i99 / h99, 2)},
        {"benchmark": "  baseline: load_profile in process, same database, same run (p50)",
         "value": round(i50, 2), "unit": "ms"},
        {"benchmark": "  baseline: load_profile in process, same database, same run (p99)",
         "value": round(i99, 2), "unit": "ms"},
    ]  # fmt: skip


if __name__ == "__main__":
    for row in run():
        print(row)
