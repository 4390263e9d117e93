"""`tealedger demo`: a tea season for a cooperative region, recorded on a persistent chain.

Every stage is idempotent: records carry deterministic ids, and each stage first asks the chain
what is already there, so re-running continues where the last run stopped and never duplicates.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from api.cooperatives.identity import salt_of_address
from api.core.demo_status import StatusWriter
from api.core.settings import ApiSettings
from chain.client import ChainClient
from chain.errors import ChainError
from chain.roles import grant_role_once
from simulation.season import FLUSHES, Season, generate
from traceability import contracts
from traceability.ids import farmer_id, output_data_hash, plot_id, text_hash
from traceability.models import (
    FarmerRegistration,
    HarvestRecord,
    LotState,
    PlotRegistration,
    ProcessOutput,
    QualityAttestation,
)
from traceability.service import Outcome, RecordingService

# Dev-mnemonic accounts: 0 platform admin, 1 cooperative, 2 processor, 3 distributor,
# 4 inspector; 7 and 8 are two more cooperatives, 9 the retail buyer.
COOPERATIVE_ACCOUNTS = (1, 7, 8)
PROCESSOR, DISTRIBUTOR, INSPECTOR, BUYER = 2, 3, 4, 9
QUALITY_FAILURE_RATE = 0.02
RETAIL_MARGIN_PCT = 120
"""The distributor sells on at 120% of what it paid (the farmers are paid the first sale)."""
BATCH = 100
# Leaf lots shipped and received a slice at a time, and processing runs sent a batch at a time,
# so the progress moves (2.9 M lots at 120,000 farmers would otherwise be one silent step of the
# status file). Where the node packs each pipeline into blocks (anvil), every slice costs blocks
# of its own, and each block a pass over all the chain's storage: slices a block's worth or more
# there (12,000 farmers: 58 slices of leaf took 3:00 against 0:12 for 15 at 3,000).
LEAF_SLICE = 5_000
PACKED_LEAF_SLICE = 40_000
PACKED_BATCH = 1_000


class SeasonMismatchError(ChainError):
    """The chain holds a season this version of the demo did not record."""


def demo_salts(addresses: Sequence[str], settings: ApiSettings) -> list[bytes]:
    """Each demo cooperative's pseudonym salt: the service's own (api.cooperatives.identity), so
    the service recomputes the season's ids and the cooperatives' pages show their members."""
    return [salt_of_address(settings, address) for address in addresses]


def demo_key(label: str) -> LocalAccount:
    """A development key derived from public text (demo wallets and merchants: never real funds)."""
    return Account.from_key(keccak(text=f"tealedger-demo:{label}"))


def farmer_wallet(farmer_id: bytes) -> LocalAccount:
    """The wallet a demo farmer keeps in its own e-CNY wallet app."""
    return demo_key(f"wallet:{farmer_id.hex()}")


def cooperative_addresses(client: ChainClient) -> list[str]:
    """The demo cooperatives' chain addresses, in the season's cooperative order."""
    return [client.accounts[i].address for i in COOPERATIVE_ACCOUNTS]


@dataclass
class SeasonSummary:
    """What the season put on chain (this run and before)."""

    farmers: int = 0
    plots: int = 0
    harvests: int = 0
    fresh_leaf_grams: int = 0
    made_tea_lots: int = 0
    made_tea_grams: int = 0
    lots_sold: int = 0
    sales_fen: int = 0
    quality_failures: int = 0
    recalled_lots: int = 0
    gas_used: int = 0
    new_transactions: int = 0
    seconds: float = 0.0
    made_lots: list[bytes] = field(default_factory=list, repr=False)


@dataclass
class Region:
    """The season's data with chain ids attached."""

    season: Season
    farmer_ids: list[bytes]
    plot_ids: list[list[bytes]]
    lot_ids: list[bytes] = field(default_factory=list)
    made_data: dict[bytes, bytes] = field(default_factory=dict)
    """Each made-tea lot's data hash: its maker (the processor) commits its shares with it."""
    recorded_by: dict[bytes, str] = field(default_factory=dict)
    """Harvest lots this run recorded, by their holder (the factory: no need to ask)."""


class ReportingProgress(Progress):
    """Progress bars that also keep the demo's status file current (the home page shows it)."""

    def __init__(self, *columns: Any, status: StatusWriter | None = None, **options: Any) -> None:
        super().__init__(*columns, **options)
        self.status = status

    def add_task(self, description: str, *args: Any, **options: Any) -> TaskID:
        """A new bar, reported at once."""
        task = super().add_task(description, *args, **options)
        self._report(task)
        return task

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        """Advance a bar and report it."""
        super().advance(task_id, advance)
        self._report(task_id)

    def _report(self, task_id: TaskID) -> None:
        """Write the bar's count to the status file (the writer throttles)."""
        if self.status is not None:
            task = self._tasks[task_id]
            self.status.step(task.description, int(task.completed), int(task.total or 0))


def progress_bars(console: Console, status: StatusWriter | None = None) -> Progress:
    """A progress bar in the demo's style, reported to `status` if given."""
    return ReportingProgress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        status=status,
    )


def _gas(receipts: Sequence[dict], summary: SeasonSummary) -> None:
    """Account for mined transactions."""
    summary.gas_used += sum(r["gasUsed"] for r in receipts)
    summary.new_transactions += len(receipts)


def ensure_roles(client: ChainClient) -> None:
    """The extra demo cooperatives get their role (the first four roles come with deploy), and
    the factory accepts every cooperative's leaf (harvests are recorded as delivered to it)."""
    tea = contracts.tea_trace(client)
    admin = client.sender(0)
    factory = RecordingService(client, PROCESSOR)
    for address in cooperative_addresses(client):
        grant_role_once(admin, tea, contracts.COOPERATIVE_ROLE, address)
        if not factory.is_supplier(factory.address, address):
            factory.set_supplier(address)


def region_of(season: Season, salts: Sequence[bytes]) -> Region:
    """Pseudonymous ids of the season's farmers and plots (salted per cooperative)."""
    fids, pids = [], []
    for farmer in season.farmers:
        salt = salts[farmer.cooperative % len(salts)]
        fids.append(farmer_id(salt, farmer.national_id))
        pids.append([plot_id(salt, p.reference) for p in farmer.plots])
    return Region(season, fids, pids)


def _coop(client: ChainClient, cooperative: int) -> RecordingService:
    """The recording service of a demo cooperative."""
    return RecordingService(client, COOPERATIVE_ACCOUNTS[cooperative % len(COOPERATIVE_ACCOUNTS)])


def register_members(client: ChainClient, region: Region, summary: SeasonSummary) -> None:
    """Register farmers and plots not yet on chain, per cooperative."""
    season = region.season
    for coop in range(season.cooperatives):
        service = _coop(client, coop)
        members = [i for i, f in enumerate(season.farmers) if f.cooperative == coop]
        wallets = {i: farmer_wallet(region.farmer_ids[i]).address for i in members}
        new = [i for i in members if not service.farmer(region.farmer_ids[i]).registered]
        farmers = [FarmerRegistration(farmer=region.farmer_ids[i], wallet=wallets[i]) for i in new]
        _gas(service.register_farmers(farmers), summary)
        plots = [
            PlotRegistration(
                plot=region.plot_ids[i][k],
                farmer=region.farmer_ids[i],
                area_centi_mu=p.area_centi_mu,
                variety=p.variety,
            )
            for i in new
            for k, p in enumerate(season.farmers[i].plots)
        ]
        _gas(service.register_plots(plots), summary)
    summary.farmers = len(season.farmers)
    summary.plots = sum(len(f.plots) for f in season.farmers)


def record_harvests(
    client: ChainClient, region: Region, summary: SeasonSummary, progress: Progress
) -> None:
    """Record every picking as delivered that day to the factory, which holds the new lot
    (duplicates are detected and skipped by the service)."""
    season = region.season
    task = progress.add_task("harvest records", total=len(season.harvests))
    region.lot_ids = [b""] * len(season.harvests)
    factory = client.accounts[PROCESSOR].address
    for coop in range(season.cooperatives):
        service = _coop(client, coop)
        indices = [i for i, h in enumerate(season.harvests) if _coop_of(season, i) == coop]
        records = [_record(region, i) for i in indices]
        advance = partial(progress.advance, task)
        report = service.record_harvests(records, advance, deliver_to=factory)
        summary.gas_used += report.gas_used
        summary.new_transactions += len(report.transactions)
        for i, outcome in zip(indices, report.outcomes, strict=True):
            region.lot_ids[i] = outcome.lot
            if outcome.outcome is Outcome.RECORDED:
                region.recorded_by[outcome.lot] = factory
    summary.harvests = len(season.harvests)
    summary.fresh_leaf_grams = season.fresh_leaf_grams()


def _coop_of(season: Season, harvest: int) -> int:
    """The cooperative a harvest belongs to."""
    return season.farmers[season.harvests[harvest].farmer].cooperative


def _record(region: Region, i: int) -> HarvestRecord:
    """The chain record of harvest i."""
    h = region.season.harvests[i]
    return HarvestRecord(
        farmer=region.farmer_ids[h.farmer],
        plot=region.plot_ids[h.farmer][h.plot],
        grams=h.grams,
        grade=h.grade,
        picked_at=h.picked_at,
        record_ref=h.record_ref,
    )


def process_batches(
    client: ChainClient, region: Region, summary: SeasonSummary, progress: Progress
) -> None:
    """Move each day's leaf to the processor and make tea; finished runs are skipped."""
    season = region.season
    processor = RecordingService(client, PROCESSOR)
    steps = []
    outputs_of = []
    for n, batch in enumerate(season.batches):
        outputs = [
            ProcessOutput(grams=g, data_hash=output_data_hash(f"demo-{season.seed}-{n}", k, g))
            for k, g in enumerate(batch.outputs_grams)
        ]
        outputs_of.append([processor_lot(processor, o) for o in outputs])
        region.made_data.update(zip(outputs_of[-1], (o.data_hash for o in outputs), strict=True))
        steps.append(([region.lot_ids[i] for i in batch.harvests], outputs))
    made = [lot for lots in outputs_of for lot in lots]
    done = {lot for lot, view in zip(made, processor.lots(made), strict=True) if view.exists}
    todo = [s for s, outs in zip(steps, outputs_of, strict=True) if outs[0] not in done]
    leaf = [lot for inputs, _ in todo for lot in inputs]
    states = _leaf_states(processor, region, leaf)
    _refuse_spent_leaf(states)
    packed = processor.sender.packs_blocks()
    leaf_states = list(zip(leaf, states, strict=True))
    _gather_leaf(client, processor, leaf_states, packed, summary, progress)
    task = progress.add_task("processing runs", total=len(steps))
    progress.advance(task, len(steps) - len(todo))
    batch = PACKED_BATCH if packed else BATCH
    for start in range(0, len(todo), batch):
        results = processor.process_many(todo[start : start + batch])
        _gas([r.receipt for r in results], summary)
        progress.advance(task, len(results))
    summary.made_lots = made
    summary.made_tea_lots = len(made)
    summary.made_tea_grams = sum(sum(b.outputs_grams) for b in season.batches)


def _gather_leaf(
    client: ChainClient,
    factory: RecordingService,
    leaf: list[tuple[bytes, tuple[LotState, str]]],
    packed: bool,
    summary: SeasonSummary,
    progress: Progress,
) -> None:
    """Bring to the factory the leaf held elsewhere: a chain an earlier demo version recorded
    without delivering it (this version's harvests are born at the factory)."""
    away = [(lot, state) for lot, state in leaf if state != (LotState.HELD, factory.address)]
    if not away:
        return
    moving = progress.add_task("leaf to the factory", total=len(away))
    size = PACKED_LEAF_SLICE if packed else LEAF_SLICE
    for start in range(0, len(away), size):
        part = away[start : start + size]
        _move_leaf(client, [lot for lot, _ in part], [state for _, state in part], summary)
        progress.advance(moving, len(part))


def _leaf_states(
    processor: RecordingService, region: Region, leaf: list[bytes]
) -> list[tuple[LotState, str]]:
    """Each leaf lot's state and holder. A lot this run recorded is held by the factory it was
    delivered to; only the others are read from the chain (on ganache a read of 500 lots takes
    1.7 s)."""
    unknown = [lot for lot in leaf if lot not in region.recorded_by]
    read = {
        lot: (v.state, v.holder) for lot, v in zip(unknown, processor.lots(unknown), strict=True)
    }
    return [
        (LotState.HELD, region.recorded_by[lot]) if lot in region.recorded_by else read[lot]
        for lot in leaf
    ]


def _refuse_spent_leaf(states: Sequence[tuple[LotState, str]]) -> None:
    """Stop before sending when leaf still to process was made into other lots: the chain
    holds a season of another demo version, whose runs this one cannot continue."""
    spent = sum(1 for state, _ in states if state == LotState.CONSUMED)
    if spent:
        raise SeasonMismatchError(
            f"{spent:,} harvest lots of this season were already processed into other lots: "
            "the chain holds a season recorded by another version of the demo. Start from a "
            "fresh chain (`tealedger stop`, then remove the data dir's nodes/ and tealedger.db, "
            "or set TEALEDGER_DATA_DIR to a new directory)"
        )


def processor_lot(processor: RecordingService, output: ProcessOutput) -> bytes:
    """The lot id an output of the processor gets."""
    from traceability.ids import lot_id

    return lot_id(processor.address, output.data_hash)


def _move_leaf(
    client: ChainClient,
    lots: list[bytes],
    states: Sequence[tuple[LotState, str]],
    summary: SeasonSummary,
) -> None:
    """Each cooperative ships its harvest lots (`states`: state and holder of each) to the
    processor, which receives them."""
    processor = RecordingService(client, PROCESSOR)
    by_holder: dict[str, list[bytes]] = {}
    for lot, (state, holder) in zip(lots, states, strict=True):
        if state == LotState.HELD and holder != processor.address:
            by_holder.setdefault(holder, []).append(lot)
    for holder, held in by_holder.items():
        index = next(i for i, a in enumerate(client.accounts) if a.address == holder)
        _gas(RecordingService(client, index).ship_many(held, processor.address), summary)
    to_us = zip(lots, states, strict=True)
    in_transit = [lot for lot, (state, _) in to_us if state == LotState.IN_TRANSIT]
    in_transit += [lot for held in by_holder.values() for lot in held]
    if in_transit:
        _gas(processor.receive_many(in_transit), summary)


def quality_and_sales(client: ChainClient, region: Region, summary: SeasonSummary) -> None:
    """Inspect made tea (a few fail), sell the rest to the distributor, which sells it on to the
    retail buyer, and recall one lot.

    The processor sells to the distributor (not ships): that first sale is the one the farmers'
    leaf is paid for, so TeaTrace records the distributor as the lot's first buyer, the party
    SaleSettlement lets pay the farmers.
    """
    season = region.season
    processor = RecordingService(client, PROCESSOR)
    inspector = RecordingService(client, INSPECTOR)
    distributor = RecordingService(client, DISTRIBUTOR)
    rng = random.Random(season.seed)
    made = summary.made_lots
    grades = dict(
        zip(made, (b.grade for b in season.batches for _ in b.outputs_grams), strict=True)
    )
    prices = [b.price_fen_per_kg for b in season.batches for _ in b.outputs_grams]
    price = dict(zip(made, prices, strict=True))
    failed = {lot for lot in made if rng.random() < QUALITY_FAILURE_RATE}
    views = dict(zip(made, processor.lots(made), strict=True))
    attested = _attested(client)
    todo = [m for m in made if m not in attested]
    if todo:
        verdicts = [
            QualityAttestation(
                lot=m, grade=grades[m], passed=m not in failed, certificate_hash=_cert(m)
            )
            for m in todo
        ]
        _gas(inspector.attest_many(verdicts), summary)
    held = [m for m in made if m not in failed and views[m].holder == processor.address]
    if held:
        fen = [price[m] * views[m].grams // 1000 for m in held]
        _gas(processor.sell_many(held, distributor.address, fen), summary)
    arriving = [  # shipped rather than sold by an earlier version of the demo
        m
        for m, v in views.items()
        if m not in failed and v.state == LotState.IN_TRANSIT and v.holder == distributor.address
    ]
    if arriving:
        _gas(distributor.receive_many(arriving), summary)
    views = dict(zip(made, processor.lots(made), strict=True))
    to_sell = [m for m in made if views[m].holder == distributor.address]
    if to_sell:
        _sell(client, distributor, to_sell, price, views, summary)
    if failed and not views[min(failed)].recalled:
        inspector.recall_with_descendants(min(failed), text_hash("demo recall"))
    final = processor.lots(made)
    buyer = client.accounts[BUYER].address
    sold = [m for m, v in zip(made, final, strict=True) if v.holder == buyer]
    summary.quality_failures = len(failed)
    summary.recalled_lots = sum(1 for v in final if v.recalled)
    summary.lots_sold = len(sold)
    summary.sales_fen = sum(price[m] * views[m].grams // 1000 for m in sold)


def _cert(lot: bytes) -> bytes:
    """Hash of the (off-chain) inspection certificate of a lot."""
    return text_hash(f"cert-{lot.hex()}")


def _attested(client: ChainClient) -> set[bytes]:
    """Lots that already carry a quality attestation (from chain events)."""
    tea = contracts.tea_trace(client)
    reader = client.event_reader(tea.address, tea.abi, contracts.deployment_block(client))
    return {e.args["lot"] for e in reader.events("QualityAttested")}


def _sell(
    client: ChainClient,
    distributor: RecordingService,
    lots: list[bytes],
    price_per_kg: dict[bytes, int],
    views: dict,
    summary: SeasonSummary,
) -> None:
    """Sell lots on to the retail buyer at the season's price for their grade plus a margin."""
    fen = [price_per_kg[lot] * views[lot].grams * RETAIL_MARGIN_PCT // 100_000 for lot in lots]
    _gas(distributor.sell_many(lots, client.accounts[BUYER].address, fen), summary)


def latest_full_season(now: datetime) -> int:
    """The latest year whose autumn flush is over (no record may be dated in the future)."""
    (month, day) = FLUSHES["autumn"][1]
    return now.year if (now.month, now.day) > (month, day) else now.year - 1


def run_season(
    client: ChainClient,
    farmers: int,
    seed: int,
    console: Console,
    settings: ApiSettings | None = None,
    status: StatusWriter | None = None,
) -> tuple[Region, SeasonSummary]:
    """Generate the season and put it on chain (idempotently), with the pseudonyms the service
    of `settings` (default: the environment's) gives the cooperatives' members; its progress
    goes to `status` too, if given."""
    started = time.perf_counter()
    year = latest_full_season(datetime.now(UTC))
    season = generate(farmers=farmers, seed=seed, year=year)
    settings = settings or ApiSettings(data_dir=client.settings.data_dir)
    region = region_of(season, demo_salts(cooperative_addresses(client), settings))
    summary = SeasonSummary()
    ensure_roles(client)
    with progress_bars(console, status) as progress:
        task = progress.add_task("farmers and plots", total=1)
        register_members(client, region, summary)
        progress.advance(task)
        record_harvests(client, region, summary, progress)
        process_batches(client, region, summary, progress)
        task = progress.add_task("quality, sales, recall", total=1)
        quality_and_sales(client, region, summary)
        progress.advance(task)
    summary.seconds = time.perf_counter() - started
    return region, summary
