"""Where the time of a batched `record_harvests` goes (not a `make bench` row: run it alone).

`python -m bench.profile_write` records BENCH_PROFILE_RECORDS (default 20,000) seeded pickings
of one cooperative on a throw-away anvil with blocks of BENCH_PROFILE_GAS_LIMIT gas (default
30 M, as our nodes), as many records per transaction as its gas target admits (or
BENCH_PROFILE_BATCH), with timers around each phase: the `checkHarvests` pre-check, the calldata,
signing, `eth_sendRawTransaction`, the receipts. Besides each phase's wall time it prints the
CPU seconds this process and anvil (its process group, from /proc) spent over the whole call:
on a shared machine the rest of the wall time is waiting for a core.
"""

from __future__ import annotations

import collections
import functools
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.core.settings import ApiSettings
from bench.bench_write import _records
from chain.accounts import dev_accounts
from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, PROJECT_ROOT, ChainSettings
from chain.nodes import BLOCK_GAS_LIMIT, free_port
from chain.sender import Sender
from simulation.season import generate
from tealedger.demo.season import (
    COOPERATIVE_ACCOUNTS,
    SeasonSummary,
    demo_salts,
    latest_full_season,
    region_of,
    register_members,
)
from tests._fixtures.workload import EphemeralAnvil
from traceability import calldata
from traceability.contracts import deploy_traceability
from traceability.service import RecordingService, harvest_batch_cap

SPENT: collections.Counter[str] = collections.Counter()
CALLS: collections.Counter[str] = collections.Counter()


def _timed(owner: Any, name: str, label: str) -> None:
    """Replace owner.name by a wrapper adding its wall time to SPENT[label]."""
    inner: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(inner)
    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            SPENT[label] += time.perf_counter() - began
            CALLS[label] += 1

    setattr(owner, name, timed)


def _group_cpu(session: int) -> float:
    """CPU seconds (user + system) of every process in `session` (the node and its npx)."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Record the pickings once under the timers and print the split."""
    count = int(os.environ.get("BENCH_PROFILE_RECORDS", 20_000))
    gas_limit = int(os.environ.get("BENCH_PROFILE_GAS_LIMIT", BLOCK_GAS_LIMIT))
    batch = int(os.environ.get("BENCH_PROFILE_BATCH", harvest_batch_cap(gas_limit)))
    year = latest_full_season(datetime.now(UTC))
    salts = demo_salts([a.address for a in dev_accounts(DEV_MNEMONIC, 2)[1:]], ApiSettings())
    season = generate(
        farmers=max(10, count * 50 // 1000 + 20), seed=2026, year=year, cooperatives=1
    )
    records = _records(region_of(season, salts))[:count]
    with tempfile.TemporaryDirectory(prefix="bench-profile-write-") as tmp:
        node = EphemeralAnvil(
            Path(tmp), PROJECT_ROOT, free_port(), DEV_MNEMONIC, 10, block_gas_limit=gas_limit
        )
        node.start()
        try:
            settings = ChainSettings(
                backend="anvil", port=node.port, data_dir=Path(tmp), mnemonic=DEV_MNEMONIC
            )
            client = ChainClient(settings, node)
            deploy_traceability(client)
            register_members(client, region_of(season, salts), SeasonSummary())
            service = RecordingService(client, COOPERATIVE_ACCOUNTS[0], batch_size=batch)
            _timed(RecordingService, "check_harvests", "pre-check: checkHarvests eth_call")
            _timed(calldata, "record_harvests_data", "recordHarvests calldata")
            _timed(Sender, "_sign", "signing (chain.signing, coincurve)")
            _timed(Sender, "_send_raw", "eth_sendRawTransaction (anvil executes)")
            _timed(Sender, "fees", "fee quote (eth_getBlockByNumber)")
            _timed(Sender, "settle", "receipts (batched eth_getTransactionReceipt)")
            session = int(node.status().pid or 0)
            anvil_before, cpu_before = _group_cpu(session), time.process_time()
            began = time.perf_counter()
            report = service.record_harvests(records)
            wall = time.perf_counter() - began
            own, anvil = time.process_time() - cpu_before, _group_cpu(session) - anvil_before
        finally:
            node.stop()
    if report.recorded != len(records):
        raise RuntimeError(f"only {report.recorded} of {len(records)} recorded")
    print(
        f"{count:,} records, {batch}/tx, {len(report.transactions)} txs: {wall:.2f} s wall = "
        f"{count / wall:,.0f} records/s; CPU: this process {own:.2f} s, anvil {anvil:.2f} s"
    )
    print("| phase | seconds | share of wall | calls |\n|---|---:|---:|---:|")
    for label, seconds in SPENT.most_common():
        print(f"| {label} | {seconds:.2f} | {100 * seconds / wall:.0f}% | {CALLS[label]} |")
    rest = wall - sum(SPENT.values())
    print(
        f"| the rest (data hashes, lot ids, outcomes) | {rest:.2f} | {100 * rest / wall:.0f}% | |"
    )


if __name__ == "__main__":
    main()
