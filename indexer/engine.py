"""The indexer's main loop: read verified batches, write them atomically, follow reorgs.

Each batch (raw events, derived rows, window hashes, checkpoint) is one database transaction,
so a process killed at any instant restarts from the last committed checkpoint and ends in the
same database as an uninterrupted run. Before every read the checkpoint's block hash is compared
with the node's; a mismatch rolls back to the common ancestor (indexer/reorgs.py). Batches are
read ahead of the writer by a thread or a process (indexer/readers.py).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection

from chain.abi import DecodedLog
from chain.logs import RawLog
from indexer import deferred
from indexer.contracts import load_contracts, record_contracts
from indexer.db import BulkWriter, WalCheckpointer, migrate, sqlite_path
from indexer.errors import ChainMismatchError, IndexerError, UnstableChainError
from indexer.models import Checkpoint, IndexedContract, RawEvent, WindowBlock
from indexer.projections import Projector
from indexer.readers import ProcessReader, ThreadReader
from indexer.rebuild import replay_raw
from indexer.reorgs import common_ancestor, roll_back, tip_is_current, window_below
from indexer.source import Batch, ChainSource, ContractInfo, raw_row

log = logging.getLogger(__name__)
ZERO_HASH = b"\x00" * 32
READERS = ("thread", "inline", "process")


@dataclass
class IndexerConfig:
    """How the indexer runs."""

    window: int = 64  # unfinalized blocks whose hashes are kept for reorg handling
    confirmations: int = 0  # stay this many blocks behind the head
    poll_interval: float = 1.0  # seconds between head checks when following
    # How batches are read: "thread" (a thread parses and decodes the next reads while this
    # batch is written: SQLite and the socket release the GIL, so the two overlap; fastest
    # here), "inline" (read, then write: least CPU) or "process" (a forked reader process,
    # which pays for pickling every event: only for a host with idle cores).
    reader: str = "thread"
    # Consecutive reads are written in one transaction until it holds this many events: a
    # commit rewrites every index page the batch touched, and hash-keyed indexes are touched
    # all over, so fewer, larger commits write far less (figures: docs/indexer.md). Reads keep
    # the provider-friendly adaptive size.
    batch_events: int = 50_000
    # A first backfill (no raw events stored yet) drops the secondary indexes that only later
    # reads use and builds them once at the end (indexer/deferred.py).
    defer_indexes: bool = True

    def __post_init__(self) -> None:
        if self.reader not in READERS:
            raise IndexerError(f"unknown reader {self.reader!r}: use one of {', '.join(READERS)}")


@dataclass
class Progress:
    """Where the indexer is, for progress bars and reports."""

    start_block: int
    checkpoint: int
    head: int
    events: int = 0
    blocks: int = 0
    batches: int = 0
    reorgs: int = 0
    rolled_back_blocks: int = 0
    recovered_blocks: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def lag(self) -> int:
        """Blocks between the checkpoint and the head."""
        return max(0, self.head - self.checkpoint)

    @property
    def events_per_second(self) -> float:
        """Events written per second since start."""
        elapsed = time.perf_counter() - self.started
        return self.events / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class _Cursor:
    """The committed checkpoint."""

    number: int
    hash: bytes
    start_block: int


class Indexer:
    """Follows the project contracts of one chain into one database."""

    def __init__(
        self,
        engine: Engine,
        source: ChainSource,
        config: IndexerConfig | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.engine = engine
        self.source = source
        self.config = config or IndexerConfig()
        self.on_progress = on_progress
        self.projector = Projector()
        self._cursor: _Cursor | None = None
        self.progress: Progress | None = None
        path = sqlite_path(engine)
        self._checkpointer = WalCheckpointer(path) if path is not None else None
        self._indexes_checked = False  # set once every deferred index is known to exist

    # -------------------------------------------------------------------------------- setup

    def prepare(self) -> None:
        """Migrate the schema, pin the chain, register contracts (backfilling late ones)."""
        migrate(self.engine)
        chain_id = self.source.chain_id()
        genesis = self.source.header(0)
        assert genesis is not None
        with self.engine.begin() as conn:
            cursor = _load_cursor(conn)
            if cursor is None:
                cursor = self._initialise(conn, chain_id, genesis.hash)
            else:
                _check_chain(conn, chain_id, genesis.hash)
        self._cursor = cursor
        self._adopt_contracts()
        with self.engine.connect() as conn:
            for contract in load_contracts(conn):  # clones announced earlier, old deployments
                self.source.add_contract(contract)
        assert self._cursor is not None
        self.progress = Progress(self._cursor.start_block, self._cursor.number, self._cursor.number)

    def _initialise(self, conn: Connection, chain_id: int, genesis: bytes) -> _Cursor:
        """First run: checkpoint just before the earliest deployment."""
        start = min((c.from_block for c in self.source.contracts), default=0)
        before = start - 1
        parent = self.source.header(before) if before >= 0 else None
        parent_hash = parent.hash if parent else ZERO_HASH
        conn.execute(
            insert(Checkpoint).values(
                id=1, chain_id=chain_id, genesis_hash=genesis, start_block=start,
                block_number=before, block_hash=parent_hash,
            )
        )  # fmt: skip
        if parent is not None:
            conn.execute(
                insert(WindowBlock).values(
                    number=parent.number, hash=parent.hash, parent_hash=parent.parent_hash,
                    timestamp=parent.timestamp,
                )
            )  # fmt: skip
        return _Cursor(before, parent_hash, start)

    def _adopt_contracts(self) -> None:
        """Record new contracts; ones deployed at or below the checkpoint get their history."""
        assert self._cursor is not None
        with self.engine.connect() as conn:
            known = {row[0] for row in conn.execute(select(IndexedContract.address))}
        new = [c for c in self.source.contracts if c.address not in known]
        if not new:
            return
        late = [c for c in new if c.from_block <= self._cursor.number]
        events, clones = self._history(late, self._cursor.number) if late else ([], [])
        with self.engine.begin() as conn:
            record_contracts(conn, [*new, *clones])
            if late:
                writer = BulkWriter(conn)
                writer.extend(RawEvent, (raw_row(e) for e in events))
                writer.flush()
                replay_raw(conn, self.source.abis)
        if late:
            log.info("backfilled %d events of %d newly deployed contracts", len(events), len(late))

    def _history(
        self, contracts: Sequence[ContractInfo], until: int
    ) -> tuple[list[DecodedLog], list[ContractInfo]]:
        """Logs of `contracts` (and their clones) up to `until`, checked against our chain."""
        history = ChainSource(self.source.url, contracts, self.source.abis, bloom_check=False)
        logs: list[RawLog] = []
        clones: list[ContractInfo] = []
        start = min(c.from_block for c in contracts)
        while start <= until:
            raw = history.read_raw(start, until)
            logs.extend(raw.logs)
            clones.extend(raw.discovered)
            start = raw.stop + 1
        logs = self._verified_history(logs)
        for clone in clones:
            self.source.add_contract(clone)
        return [history.decoder.decode(lg) for lg in logs], clones

    def _verified_history(self, logs: list[RawLog]) -> list[RawLog]:
        """Stamp timestamps; refuse logs from blocks whose hash differs from what we stored."""
        numbers = sorted({lg.block_number for lg in logs})
        headers = {h.number: h for h in self.source.headers(numbers) if h is not None}
        with self.engine.connect() as conn:
            ours = dict(conn.execute(select(WindowBlock.number, WindowBlock.hash)).all())
            ours.update(conn.execute(select(RawEvent.block_number, RawEvent.block_hash)).all())
        out = []
        for lg in logs:
            header = headers.get(lg.block_number)
            expected = ours.get(lg.block_number, lg.block_hash)
            if header is None or header.hash != lg.block_hash or expected != lg.block_hash:
                raise UnstableChainError(
                    f"block {lg.block_number} changed while reading a new contract's history; "
                    "run the indexer again"
                )
            out.append(lg._replace(block_timestamp=header.timestamp))
        return out

    # ------------------------------------------------------------------------------ running

    def sync(self) -> Progress:
        """Catch up with the head (minus confirmations), then return."""
        if self._cursor is None:
            self.prepare()
        assert self.progress is not None
        self._defer_indexes_if_first()
        with fewer_gc_passes():
            while True:
                target = self.source.head() - self.config.confirmations
                self.progress.head = target
                self._check_tip()
                assert self._cursor is not None
                if self._cursor.number >= target:
                    break
                self._run_to(target)
        self._build_deferred_indexes()
        self._report()
        return self.progress

    def _defer_indexes_if_first(self) -> None:
        """Before a first backfill, drop the indexes it would otherwise update row by row."""
        if not self.config.defer_indexes or self._indexes_checked:
            return
        with self.engine.begin() as conn:
            if conn.execute(select(RawEvent.log_index).limit(1)).first() is None:
                deferred.drop(conn, deferred.RAW_INDEXES + deferred.DERIVED_INDEXES)

    def _build_deferred_indexes(self) -> None:
        """Once caught up: build deferred indexes that are missing (also after a killed run)."""
        if self._indexes_checked:
            return
        with self.engine.begin() as conn:
            built = deferred.build_missing(conn, deferred.RAW_INDEXES + deferred.DERIVED_INDEXES)
        if built:
            log.info("built %d deferred indexes", built)
        self._indexes_checked = True

    def follow(self, stop: threading.Event | None = None) -> None:
        """Keep following the head until `stop` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self.sync()
            stop.wait(self.config.poll_interval)

    def _run_to(self, target: int) -> None:
        """Write batches from the checkpoint up to `target`; stop early at a fork change."""
        assert self._cursor is not None
        reads = self._batches(self._cursor.number + 1, target)
        for batch, complete in _joined(reads, self._cursor.hash, self.config.batch_events):
            if batch is not None:
                self._write(batch)
            if not complete:
                return  # the node moved to another fork under us: _check_tip rolls back

    def _batches(self, start: int, target: int) -> Iterator[Batch]:
        """Batches in order, read ahead by a process or thread unless the reader is inline."""
        if self.config.reader == "inline":
            while start <= target:
                batch = self.source.read(start, target)
                yield batch
                start = batch.stop + 1
            return
        reader: ThreadReader | ProcessReader
        if self.config.reader == "process":
            reader = ProcessReader(self.source, start, target)
        else:
            # Enough reads ahead to fill the next transaction while this one is written.
            per_read = max(1, self.source.fetcher.adaptive.target_logs)
            depth = 2 + 2 * self.config.batch_events // per_read
            reader = ThreadReader(self.source, start, target, depth)
        try:
            yield from reader
        finally:
            reader.close()

    def _write(self, batch: Batch) -> None:
        """One transaction: raw events, derived rows, window hashes, checkpoint."""
        window_low = batch.stop - self.config.window
        try:
            with self.engine.begin() as conn:
                writer = BulkWriter(conn)
                writer.insert(RawEvent, batch.raw_rows())
                self.projector.apply(conn, batch.events)
                writer.extend(
                    WindowBlock,
                    ((h.number, h.hash, h.parent_hash, h.timestamp)
                     for h in batch.headers if h.number >= window_low),
                )  # fmt: skip
                writer.flush()
                record_contracts(conn, batch.discovered)
                conn.execute(delete(WindowBlock).where(WindowBlock.number < window_low))  # type: ignore[arg-type]
                tip = batch.headers[-1]
                conn.execute(
                    update(Checkpoint)
                    .where(Checkpoint.id == 1)
                    .values(  # type: ignore[arg-type]
                        block_number=tip.number, block_hash=tip.hash
                    )
                )
        except BaseException:
            self.projector.reset()
            raise
        for clone in batch.discovered:
            self.source.add_contract(clone)
        if self._checkpointer is not None:
            self._checkpointer.kick()
        assert self._cursor is not None and self.progress is not None
        self._cursor = _Cursor(tip.number, tip.hash, self._cursor.start_block)
        p = self.progress
        p.checkpoint = tip.number
        p.events += len(batch.events)
        p.blocks += batch.stop - batch.start + 1
        p.batches += 1
        p.recovered_blocks += batch.recovered_blocks
        self._report()

    def _report(self) -> None:
        """Tell the progress callback."""
        if self.on_progress is not None and self.progress is not None:
            self.on_progress(self.progress)

    # ------------------------------------------------------------------------------- reorgs

    def _check_tip(self) -> None:
        """Compare the checkpoint's hash with the node's; roll back on a mismatch."""
        assert self._cursor is not None
        if not tip_is_current(self.source, self._cursor.number, self._cursor.hash):
            self._rollback()

    def _rollback(self) -> None:
        """Roll back to the common ancestor in the window (indexer/reorgs.py)."""
        assert self._cursor is not None and self.progress is not None
        checkpoint = self._cursor.number
        number, block_hash = common_ancestor(
            self.engine, self.source, checkpoint, self.config.window
        )
        # The window a fresh database would hold at the ancestor: its `window` blocks below
        # it, never before the block preceding the first deployment.
        low = max(0, self._cursor.start_block - 1, number - self.config.window)
        below = window_below(self.source, low, number, block_hash)
        contracts = roll_back(self.engine, number, block_hash, below)
        self.projector.reset()
        self.source.set_contracts(contracts)
        depth = checkpoint - number
        log.warning("chain reorganised: rolled back %d blocks to block %d", depth, number)
        self.progress.reorgs += 1
        self.progress.rolled_back_blocks += depth
        self.progress.checkpoint = number
        self._cursor = _Cursor(number, block_hash, self._cursor.start_block)


def _joined(
    reads: Iterator[Batch], tip: bytes, min_events: int
) -> Iterator[tuple[Batch | None, bool]]:
    """Consecutive reads joined into batches of at least `min_events` events (the last one
    may be smaller), each paired with False once a read does not extend the previous one:
    the batch then holds only what came before the fork change, and nothing follows."""
    group: list[Batch] = []
    events = 0
    for read in reads:
        if read.parent_hash != tip:
            yield Batch.joined(group) if group else None, False
            return
        group.append(read)
        events += len(read.events)
        tip = read.headers[-1].hash
        if events >= min_events:
            yield Batch.joined(group), True
            group, events = [], 0
    if group:
        yield Batch.joined(group), True


@contextlib.contextmanager
def fewer_gc_passes(threshold: int = 100_000) -> Iterator[None]:
    """Collect the youngest generation every `threshold` allocations instead of 700.

    A batch keeps tens of thousands of small objects alive until it is written; with the
    default threshold the collector walks them again and again, a large share of the
    backfill's CPU (figures: docs/indexer.md). They hold no cycles, so collecting rarely frees
    the same memory.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(threshold, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _load_cursor(conn: Connection) -> _Cursor | None:
    """The stored checkpoint, if any."""
    row = conn.execute(
        select(Checkpoint.block_number, Checkpoint.block_hash, Checkpoint.start_block)
    ).first()
    return _Cursor(row[0], row[1], row[2]) if row else None


def _check_chain(conn: Connection, chain_id: int, genesis: bytes) -> None:
    """Refuse a database filled from another chain."""
    row = conn.execute(select(Checkpoint.chain_id, Checkpoint.genesis_hash)).one()
    if row[0] != chain_id or row[1] != genesis:
        raise ChainMismatchError(
            f"this database was indexed from chain {row[0]} (genesis 0x{row[1].hex()[:12]}..), "
            f"but the node serves chain {chain_id} (genesis 0x{genesis.hex()[:12]}..). "
            "Use another --database-url for this chain, or delete the database to start over."
        )
