"""Gas per action of TeaTrace, single and batched, beside a naive string-storing contract.

Run: `.venv/bin/python -m bench.bench_gas` (prints a markdown table; docs/gas.md holds one).
Everything runs on a fresh in-process EVM with fixed inputs, so the figures are deterministic:
tests/contracts/test_tea_trace_gas.py asserts them within a margin.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import keccak

from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, ChainSettings
from chain.sender import Sender
from traceability.contracts import deploy_traceability
from traceability.ids import lot_id

BATCH = 100
PICKED_AT = 1_700_000_000  # fixed, so calldata (and its gas) is identical on every run
GAS = 15_000_000  # explicit limits: py-evm's estimate_gas re-runs each transaction ~13 times
ZERO = "0x" + "00" * 20
# Descriptive strings the way the widely copied contracts store them for every item.
# Each is under 32 bytes (one storage slot), which keeps the baseline at its cheapest.
NAIVE_STRINGS = (
    "Yumeng Tea Garden 12",
    "Enshi, Hubei; terraced garden",
    "30.2722",
    "109.4881",
    "Spring flush, grade 1",
)
MERGE = 10


@dataclass
class _Rig:
    """A deployed TeaTrace with one organisation per role, and the naive baseline."""

    client: ChainClient
    tt: Any
    naive: Any
    coop: Sender
    processor: Sender
    distributor: Sender
    inspector: Sender
    farmers: list[bytes]
    plots: list[bytes]
    seq: int = 0

    def tx(self, sender: Sender, fn: Any) -> int:
        """Gas used by one transaction."""
        return int(sender.transact(fn, gas=GAS)["gasUsed"])

    def records(self, n: int, offset: int = 0) -> list[tuple[Any, ...]]:
        """n harvest records with fresh data hashes, for farmers offset..offset+n-1."""
        out = []
        for i in range(n):
            self.seq += 1
            k = (offset + i) % len(self.farmers)
            data_hash = keccak(text=f"harvest-{self.seq}")
            out.append((self.farmers[k], self.plots[k], 12_000 + i, 2, PICKED_AT, data_hash))
        return out

    def lots(self, records: list[tuple[Any, ...]]) -> list[bytes]:
        """Lot ids of the cooperative's records."""
        return [lot_id(self.coop.address, r[5]) for r in records]


def _rig(data_dir: Path) -> _Rig:
    """Deploy everything on a fresh embedded chain and register farmers and plots."""
    settings = ChainSettings(backend="embedded", data_dir=data_dir, mnemonic=DEV_MNEMONIC)
    client = ChainClient(settings)
    deploy_traceability(client)
    naive, _ = client.deploy("NaiveSupplyChain")
    farmers = [keccak(text=f"bench-farmer-{i}") for i in range(2 * BATCH + 1)]
    plots = [keccak(text=f"bench-plot-{i}") for i in range(2 * BATCH + 1)]
    rig = _Rig(
        client,
        client.contract("TeaTrace"),
        client.contract("NaiveSupplyChain", naive.address),
        client.sender(1),
        client.sender(2),
        client.sender(3),
        client.sender(4),
        farmers,
        plots,
    )
    return rig


def _row(
    name: str, value: float, unit: str, baseline: float | None = None, against: str = ""
) -> dict[str, Any]:
    """One result row."""
    return {
        "benchmark": name,
        "value": round(value),
        "unit": unit,
        "baseline": round(baseline) if baseline is not None else None,
        "baseline_name": against,
        "ratio": round(baseline / value, 1) if baseline else None,
    }


def _measure_registration(rig: _Rig, g: dict[str, float]) -> None:
    """Farmers (with wallet) and plots, single and batched."""
    tt, coop, f, p = rig.tt, rig.coop, rig.farmers, rig.plots
    wallet = rig.client.accounts[6].address
    n = len(f) - 1
    g["farmer_1"] = rig.tx(coop, tt.functions.registerFarmer(f[0], wallet))
    g["farmer_n"] = rig.tx(coop, tt.functions.registerFarmers([(x, wallet) for x in f[1:]])) / n
    plots = [(p[i], f[i], 250, 1, keccak(text=f"loc-{i}")) for i in range(len(p))]
    g["plot_1"] = rig.tx(coop, tt.functions.registerPlot(plots[0]))
    g["plot_n"] = rig.tx(coop, tt.functions.registerPlots(plots[1:])) / n


def _measure_naive(rig: _Rig, g: dict[str, float]) -> None:
    """Gas of each step of one item in the naive contract (it has no batches)."""
    fn, coop, dist = rig.naive.functions, rig.coop, rig.distributor
    g["naive_harvest"] = rig.tx(coop, fn.harvestItem(1, *NAIVE_STRINGS))
    g["naive_process"] = rig.tx(coop, fn.processItem(1))
    g["naive_pack"] = rig.tx(coop, fn.packItem(1))
    g["naive_sell"] = rig.tx(coop, fn.sellItem(1, 1_000))
    g["naive_buy"] = int(dist.transact(fn.buyItem(1), gas=GAS, value=1_000)["gasUsed"])
    g["naive_ship"] = rig.tx(dist, fn.shipItem(1))
    g["naive_receive"] = rig.tx(rig.processor, fn.receiveItem(1))
    g["naive_purchase"] = rig.tx(rig.inspector, fn.purchaseItem(1))


def _measure_harvests(rig: _Rig, g: dict[str, float]) -> list[bytes]:
    """Harvest records single, batched and re-submitted; returns 2 x BATCH new lots."""
    tt, coop = rig.tt, rig.coop
    g["harvest_1"] = rig.tx(coop, tt.functions.recordHarvests(rig.records(1)))
    first = rig.records(BATCH)
    g["harvest_n"] = rig.tx(coop, tt.functions.recordHarvests(first)) / BATCH
    g["harvest_again_n"] = rig.tx(coop, tt.functions.recordHarvests(first)) / BATCH
    second = rig.records(BATCH, offset=BATCH)
    rig.tx(coop, tt.functions.recordHarvests(second))
    return rig.lots(first) + rig.lots(second)


def _measure_lots(rig: _Rig, lots: list[bytes], g: dict[str, float]) -> None:
    """Ship/receive/sell/attest/recall single and batched; processing merge and split."""
    tt, coop, proc, dist, insp = rig.tt, rig.coop, rig.processor, rig.distributor, rig.inspector
    single, batch, rest = lots[0], lots[1 : BATCH + 1], lots[BATCH + 1 : 2 * BATCH + 1]
    g["ship_1"] = rig.tx(coop, tt.functions.ship(single, proc.address))
    g["ship_n"] = rig.tx(coop, tt.functions.shipBatch(batch, proc.address)) / len(batch)
    g["receive_1"] = rig.tx(proc, tt.functions.receiveLot(single))
    g["receive_n"] = rig.tx(proc, tt.functions.receiveBatch(batch)) / len(batch)
    merge = tt.functions.process(batch[:MERGE], [(30_000, keccak(text="made-1"))])
    g["merge_per_input"] = rig.tx(proc, merge) / MERGE
    parts = [(1_000, keccak(text=f"part-{k}")) for k in range(3)]
    g["split_3"] = rig.tx(proc, tt.functions.process([single], parts))
    made = [lot_id(proc.address, h) for _, h in parts]
    g["sell_1"] = rig.tx(proc, tt.functions.sell(made[0], dist.address, 50_000))
    g["sell_n"] = rig.tx(
        coop, tt.functions.sellBatch(rest, dist.address, [10_000] * len(rest))
    ) / len(rest)
    cert = keccak(text="certificate")
    g["attest_1"] = rig.tx(insp, tt.functions.attestQuality((made[1], 2, True, cert)))
    attestations = [(lot, 2, True, cert) for lot in rest]
    g["attest_n"] = rig.tx(insp, tt.functions.attestQualityBatch(attestations)) / len(rest)
    reason = keccak(text="recall notice")
    g["recall_1"] = rig.tx(insp, tt.functions.recall(made[2], reason))
    g["recall_n"] = rig.tx(insp, tt.functions.recallBatch(rest, reason)) / len(rest)


def _measure_deliveries(rig: _Rig, g: dict[str, float]) -> None:
    """Harvests recorded straight to the factory that accepts the cooperative (batched)."""
    tt = rig.tt
    rig.tx(rig.processor, tt.functions.setSupplier(rig.coop.address, True))
    records = rig.records(BATCH)
    fn = tt.functions.recordDeliveries(records, rig.processor.address)
    g["deliver_n"] = rig.tx(rig.coop, fn) / BATCH


def _rows(g: dict[str, float]) -> list[dict[str, Any]]:
    """The result table."""
    n = BATCH
    nv = "NaiveSupplyChain."
    naive_sale = g["naive_sell"] + g["naive_buy"]
    naive_total = sum(v for k, v in g.items() if k.startswith("naive_"))
    ours_total = g["harvest_n"] + g["ship_n"] + g["receive_n"] + g["sell_n"]
    delivered_total = g["deliver_n"] + g["sell_n"]
    return [
        _row("register farmer (with wallet), single tx", g["farmer_1"], "gas/tx"),
        _row(f"register farmer (with wallet), batch of {2 * n}", g["farmer_n"], "gas/farmer"),
        _row("register plot, single tx", g["plot_1"], "gas/tx"),
        _row(f"register plot, batch of {2 * n}", g["plot_n"], "gas/plot"),
        _row(
            "harvest record, single tx",
            g["harvest_1"],
            "gas/tx",
            g["naive_harvest"],
            nv + "harvestItem",
        ),
        _row(
            f"harvest record, batch of {n}",
            g["harvest_n"],
            "gas/record",
            g["naive_harvest"],
            nv + "harvestItem",
        ),
        _row(f"harvest re-submitted (skipped), batch of {n}", g["harvest_again_n"], "gas/record"),
        _row(f"harvest delivered to the factory, batch of {n}", g["deliver_n"], "gas/record"),
        _row(
            f"process: merge {MERGE} lots into 1, per input lot",
            g["merge_per_input"],
            "gas/lot",
            g["naive_process"],
            nv + "processItem",
        ),
        _row("process: split 1 lot into 3, single tx", g["split_3"], "gas/tx"),
        _row("ship, single tx", g["ship_1"], "gas/tx", g["naive_ship"], nv + "shipItem"),
        _row(f"ship, batch of {n}", g["ship_n"], "gas/lot", g["naive_ship"], nv + "shipItem"),
        _row(
            "receive, single tx", g["receive_1"], "gas/tx", g["naive_receive"], nv + "receiveItem"
        ),
        _row(
            f"receive, batch of {n}",
            g["receive_n"],
            "gas/lot",
            g["naive_receive"],
            nv + "receiveItem",
        ),
        _row("sell, single tx", g["sell_1"], "gas/tx", naive_sale, nv + "sellItem+buyItem"),
        _row(f"sell, batch of {n}", g["sell_n"], "gas/lot", naive_sale, nv + "sellItem+buyItem"),
        _row("attest quality, single tx", g["attest_1"], "gas/tx"),
        _row(f"attest quality, batch of {n}", g["attest_n"], "gas/lot"),
        _row("recall, single tx", g["recall_1"], "gas/tx"),
        _row(f"recall, batch of {n}", g["recall_n"], "gas/lot"),
        _row(
            "one lot: harvest, ship, receive, sell (batched)",
            ours_total,
            "gas/lot",
            naive_total,
            "NaiveSupplyChain, all 8 steps",
        ),
        _row(
            "one lot: harvest delivered to the factory, sell (batched)",
            delivered_total,
            "gas/lot",
            naive_total,
            "NaiveSupplyChain, all 8 steps",
        ),
    ]


def run() -> list[dict[str, Any]]:
    """Measure every action on a fresh in-process EVM; one row per figure."""
    g: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-gas-") as tmp:
        rig = _rig(Path(tmp))
        _measure_naive(rig, g)
        _measure_registration(rig, g)
        lots = _measure_harvests(rig, g)
        _measure_lots(rig, lots, g)
        _measure_deliveries(rig, g)
    return _rows(g)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| benchmark | TeaTrace | unit | naive baseline | naive / TeaTrace |",
        "|---|---:|---|---:|---:|",
    ]
    for r in rows:
        base = f"{r['baseline']:,} ({r['baseline_name']})" if r["baseline"] is not None else "-"
        ratio = f"{r['ratio']}x" if r["ratio"] else "-"
        lines.append(f"| {r['benchmark']} | {r['value']:,} | {r['unit']} | {base} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(run()))
