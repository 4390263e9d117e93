"""The chain as the indexer sees it: contracts to follow, verified batches of decoded logs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from chain.abi import DecodedLog, LogDecoder
from chain.bloom import bloom_bits, bloom_may_contain
from chain.logs import AdaptiveRange, Header, LogFetcher, LogFilter, RawLog
from chain.rpc import JsonRpc, RangeTooLargeError
from indexer.errors import HistoryPrunedError, UnstableChainError


@dataclass(frozen=True)
class ContractInfo:
    """A contract to follow: address (20 bytes), registry name, artifact name, first block."""

    address: bytes
    name: str
    contract: str
    from_block: int
    parent: bytes | None = None  # the factory that announced it


@dataclass(frozen=True)
class Factory:
    """A contract event announcing a new contract to follow (e.g. a loan's escrow clone)."""

    event: str
    address_arg: str
    contract: str


# The lending factory clones one LoanEscrow per loan; LoanIssued precedes the clone's own events.
FACTORIES: tuple[Factory, ...] = (Factory("LoanIssued", "escrow", "LoanEscrow"),)


@dataclass(frozen=True)
class RawBatch:
    """Blocks start..stop read from one fork: their headers and raw logs in chain order."""

    start: int
    stop: int
    headers: list[Header]
    logs: list[RawLog]
    recovered_blocks: int = 0  # blocks whose logs came back only on the bloom re-check
    discovered: tuple[ContractInfo, ...] = ()  # contracts announced by a factory event


@dataclass(frozen=True)
class Batch:
    """A RawBatch with its logs decoded."""

    start: int
    stop: int
    headers: list[Header]
    events: list[DecodedLog]
    recovered_blocks: int = 0
    discovered: tuple[ContractInfo, ...] = ()
    rows: list[tuple[Any, ...]] | None = field(default=None, repr=False, compare=False)

    @property
    def parent_hash(self) -> bytes:
        """Hash the block before `start` must have for this batch to extend our chain."""
        return self.headers[0].parent_hash

    @classmethod
    def joined(cls, batches: Sequence[Batch]) -> Batch:
        """Consecutive batches as one (written in one transaction)."""
        if len(batches) == 1:
            return batches[0]
        rows = [b.rows for b in batches]
        return cls(
            batches[0].start,
            batches[-1].stop,
            [h for b in batches for h in b.headers],
            [e for b in batches for e in b.events],
            sum(b.recovered_blocks for b in batches),
            tuple(c for b in batches for c in b.discovered),
            None if any(r is None for r in rows) else [row for r in rows for row in r or ()],
        )

    def raw_rows(self) -> list[tuple[Any, ...]]:
        """raw_event rows (column order of RawEvent) of the batch's events."""
        return self.rows if self.rows is not None else [raw_row(e) for e in self.events]

    def to_wire(self) -> tuple[Any, ...]:
        """Plain tuples: each event as its raw_event row (built here, in the reader process,
        so the writer hands the rows to the driver as they arrive) and its argument dict."""
        events = [(raw_row(e), e.args) for e in self.events]
        headers = [tuple(h) for h in self.headers]
        found = [tuple(c.__dict__.values()) for c in self.discovered]
        return (self.start, self.stop, headers, events, self.recovered_blocks, found)

    @classmethod
    def from_wire(cls, wire: tuple[Any, ...]) -> Batch:
        """Inverse of to_wire."""
        start, stop, headers, events, recovered, found = wire
        decoded = [DecodedLog(raw_log_of_row(row), row[12], args) for row, args in events]
        discovered = tuple(ContractInfo(*c) for c in found)
        rows = [row for row, _ in events]
        header_list = [Header._make(h) for h in headers]
        return cls(start, stop, header_list, decoded, recovered, discovered, rows)


def raw_row(event: DecodedLog) -> tuple[object, ...]:
    """A raw_event row (column order of RawEvent) from a decoded log."""
    lg = event.log
    t = lg.topics
    n = len(t)
    return (
        lg.block_hash, lg.log_index, lg.block_number, lg.block_timestamp, lg.tx_hash,
        lg.tx_index, lg.address, t[0] if n > 0 else None, t[1] if n > 1 else None,
        t[2] if n > 2 else None, t[3] if n > 3 else None, lg.data, event.name,
    )  # fmt: skip


def raw_log_of_row(row: tuple[Any, ...]) -> RawLog:
    """The RawLog a raw_event row was made from (inverse of raw_row)."""
    topics = row[7:11]
    return RawLog(row[2], row[0], row[1], row[5], row[4], row[6],
                  topics[: 4 - topics.count(None)], row[11], row[3])  # fmt: skip


def make_decoder(
    contracts: Iterable[ContractInfo], abis: Mapping[str, list[dict[str, Any]]]
) -> LogDecoder:
    """A decoder knowing every contract's ABI by address."""
    decoder = LogDecoder()
    for c in contracts:
        decoder.add(c.address, abis[c.contract])
    return decoder


class ChainSource:
    """Reads verified batches: logs and headers agree on one fork, no block is missing."""

    def __init__(
        self,
        url: str,
        contracts: Sequence[ContractInfo],
        abis: Mapping[str, list[dict[str, Any]]],
        adaptive: AdaptiveRange | None = None,
        bloom_check: bool = True,
        timeout: float = 30.0,
        factories: Sequence[Factory] = FACTORIES,
    ) -> None:
        self.url = url
        self.rpc = JsonRpc(url, timeout)
        self.abis = dict(abis)
        self.contracts = list(contracts)
        self.fetcher = LogFetcher(
            self.rpc, LogFilter([c.address for c in contracts]), adaptive, read_ahead=True
        )
        self.decoder = make_decoder(contracts, abis)
        self.bloom_check = bloom_check
        self._bloom_bits = [bloom_bits(c.address) for c in contracts]
        self.recovered_total = 0
        self.factories = [f for f in factories if f.contract in self.abis]

    @property
    def addresses(self) -> set[bytes]:
        """Every followed address."""
        return {c.address for c in self.contracts}

    def add_contract(self, contract: ContractInfo) -> None:
        """Start following one more contract (no-op if already followed)."""
        if contract.address in self.addresses:
            return
        self.contracts.append(contract)
        self.fetcher.filter.addresses.append(contract.address)
        self.decoder.add(contract.address, self.abis[contract.contract])
        self._bloom_bits.append(bloom_bits(contract.address))

    def chain_id(self) -> int:
        """eth_chainId."""
        return int(self.rpc.call("eth_chainId", []), 16)

    def head(self) -> int:
        """Latest block number."""
        return self.fetcher.head()

    def header(self, number: int) -> Header | None:
        """One header (None past the head)."""
        return self.fetcher.header(number)

    def headers(self, numbers: Iterable[int]) -> list[Header | None]:
        """Headers by number, batched."""
        return self.fetcher.headers(numbers)

    def read(self, start: int, end: int) -> Batch:
        """A verified, decoded batch from `start` up to at most `end`."""
        return self.decode(self.read_raw(start, end))

    def set_contracts(self, contracts: Sequence[ContractInfo]) -> None:
        """Follow exactly these contracts (after a rollback dropped announced clones)."""
        self.contracts = []
        self.fetcher.filter.addresses = []
        self._bloom_bits = []
        self.decoder = LogDecoder()
        for c in contracts:
            self.add_contract(c)

    def decode(self, raw: RawBatch) -> Batch:
        """Decode a raw batch's logs."""
        decode = self.decoder.decode
        events = [decode(lg) for lg in raw.logs]
        return Batch(raw.start, raw.stop, raw.headers, events, raw.recovered_blocks, raw.discovered)

    def reconnect(self) -> None:
        """Fresh HTTP connections (in a forked reader process: never share a socket)."""
        self.rpc = JsonRpc(self.url, self.rpc.timeout)
        self.fetcher.rpc = self.rpc

    def read_raw(self, start: int, end: int, attempts: int = 5) -> RawBatch:
        """A verified batch from `start` up to at most `end` (the adaptive span decides)."""
        for _ in range(attempts):
            logs, stop = self.fetcher.fetch(start, end)
            found = self.headers(range(start, stop + 1))
            if any(h is None for h in found):
                raise UnstableChainError(f"the node lost blocks in {start}..{stop} while read")
            headers: list[Header] = [h for h in found if h is not None]
            logs, discovered = self._with_announced(logs, stop)
            if _consistent(headers, logs):
                for c in discovered:
                    self.add_contract(c)
                logs, recovered = self._guard_missing(headers, logs)
                self.recovered_total += recovered
                stamped = _stamped(headers, logs)
                return RawBatch(start, stop, headers, stamped, recovered, discovered)
        raise UnstableChainError(
            f"logs and headers of blocks {start}..{end} kept coming from different forks"
        )

    def _with_announced(
        self, logs: list[RawLog], stop: int
    ) -> tuple[list[RawLog], tuple[ContractInfo, ...]]:
        """Add the logs of contracts announced in this batch (they were not in the filter)."""
        found: list[ContractInfo] = []
        known = self.addresses
        topics = {t: f for f in self.factories for t in self.decoder.topics_named(f.event)}
        for log in logs:
            factory = topics.get(log.topics[0]) if log.topics else None
            if factory is not None and log.address in known:
                event = self.decoder.decode(log)
                if event.name != factory.event:
                    continue
                child = event.args[factory.address_arg]
                if child not in known and all(c.address != child for c in found):
                    name = f"{factory.contract}@{child.hex()}"
                    found.append(
                        ContractInfo(child, name, factory.contract, log.block_number, log.address)
                    )
        if not found:
            return logs, ()
        first = min(c.from_block for c in found)
        extra = _split_fetch(
            LogFetcher(self.rpc, LogFilter([c.address for c in found])), first, stop
        )
        merged = sorted([*logs, *extra], key=lambda log: (log.block_number, log.log_index))
        return merged, tuple(found)

    def _guard_missing(self, headers: list[Header], logs: list[RawLog]) -> tuple[list[RawLog], int]:
        """Re-read, by hash, blocks whose bloom names our contracts but that returned no logs."""
        if not self.bloom_check:
            return logs, 0
        with_logs = {log.block_number for log in logs}
        extra: list[RawLog] = []
        recovered = 0
        for h in headers:
            if h.number in with_logs or not any(
                bloom_may_contain(h.logs_bloom, bits) for bits in self._bloom_bits
            ):
                continue
            again = self.fetcher.logs_by_block_hash(h.hash)
            if again:
                recovered += 1
                extra.extend(again)
            elif self._pruned(h.hash):
                raise HistoryPrunedError(h.number)
        if not extra:
            return logs, 0
        merged = sorted([*logs, *extra], key=lambda log: (log.block_number, log.log_index))
        return merged, recovered

    def _pruned(self, block_hash: bytes) -> bool:
        """Whether the node dropped this block's transactions: it used gas but lists none (an
        anvil with --transaction-block-keeper keeps the header, bloom included, of a block
        whose logs it no longer returns)."""
        block = self.rpc.call("eth_getBlockByHash", ["0x" + block_hash.hex(), False])
        return bool(block) and int(block["gasUsed"], 16) > 0 and not block["transactions"]


def _split_fetch(fetcher: LogFetcher, start: int, stop: int) -> list[RawLog]:
    """All logs of start..stop, halving the range on refusals."""
    try:
        return fetcher.get_logs(start, stop)
    except RangeTooLargeError:
        if start == stop:
            raise
        middle = (start + stop) // 2
        return _split_fetch(fetcher, start, middle) + _split_fetch(fetcher, middle + 1, stop)


def _consistent(headers: list[Header], logs: list[RawLog]) -> bool:
    """Headers chain by parent hash and every log's block hash is the header's."""
    for prev, cur in pairwise(headers):
        if cur.parent_hash != prev.hash:
            return False
    first, count = headers[0].number, len(headers)
    return all(
        0 <= log.block_number - first < count
        and headers[log.block_number - first].hash == log.block_hash
        for log in logs
    )


def _stamped(headers: list[Header], logs: list[RawLog]) -> list[RawLog]:
    """Logs with the block timestamp from the header (providers may omit it)."""
    first = headers[0].number
    out = []
    for log in logs:
        ts = headers[log.block_number - first].timestamp
        out.append(log if log.block_timestamp == ts else log._replace(block_timestamp=ts))
    return out
