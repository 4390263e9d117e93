"""Read logs fast: raw `eth_getLogs` in adaptive block ranges, and block headers.

web3's `get_logs` + `process_log` builds several AttributeDicts and runs formatters per log; this
module speaks JSON-RPC itself (chain/rpc.py: keep-alive HTTP, batched header requests), sends
the next range's request ahead (chain/readahead.py) and keeps logs as small tuples of bytes.
Decoding is chain/abi.py's, bloom checks chain/bloom.py's. It knows nothing about what the
events mean.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from chain.readahead import Ahead, AheadThread
from chain.rpc import JsonRpc, LogQueryError, RangeTooLargeError, RpcError

HEADER_BATCH = 500  # eth_getBlockByNumber calls per JSON-RPC batch request


class RawLog(NamedTuple):
    """One log as the node returned it, hex decoded; cheap to build and to store."""

    block_number: int
    block_hash: bytes
    log_index: int
    tx_index: int
    tx_hash: bytes
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    block_timestamp: int | None


class Header(NamedTuple):
    """What the indexer needs from a block header."""

    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int
    logs_bloom: bytes


# ------------------------------------------------------------------------------ range adapting

_SUGGESTED = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")
_BLOCK_LIMIT = (
    re.compile(r"up to a (\d+)\s*([kK]?) block range"),
    re.compile(r"(?:maximum|max|limited to(?: a)?)[^\d]{0,30}?(\d[\d,]*)\s*(?:blocks?)?", re.I),
    re.compile(r"(\d[\d,]*)\s*block range", re.I),
)
_TOO_LARGE_HINTS = (
    "too many",
    "more than",
    "range",
    "response size",
    "limit exceeded",
    "exceed",
    "timeout",
    "timed out",
    "deadline",
    "too large",
    "too big",
)


def range_error(message: str) -> RangeTooLargeError | None:
    """Recognise a provider's "range too large / too many results" refusal and its stated limit."""
    text = message.lower()
    if not any(hint in text for hint in _TOO_LARGE_HINTS):
        return None
    limit: int | None = None
    suggested = _SUGGESTED.search(message)
    if suggested:
        limit = int(suggested.group(2), 16) - int(suggested.group(1), 16) + 1
    else:
        for pattern in _BLOCK_LIMIT:
            found = pattern.search(message)
            if found:
                value = int(found.group(1).replace(",", ""))
                thousands = len(found.groups()) > 1 and found.group(2)
                limit = value * 1000 if thousands else value
                break
    return RangeTooLargeError(message, block_limit=limit if limit and limit > 0 else None)


@dataclass
class AdaptiveRange:
    """Block span of the next `eth_getLogs`: grows while replies are small and quick, shrinks
    on refusals, and never again exceeds a limit the provider stated."""

    span: int = 100
    min_span: int = 1
    max_span: int = 10_000
    target_logs: int = 10_000
    slow_seconds: float = 5.0
    provider_limit: int | None = None

    def ceiling(self) -> int:
        """The largest span allowed now."""
        return min(self.max_span, self.provider_limit or self.max_span)

    def succeeded(self, span: int, logs: int, seconds: float) -> None:
        """Adapt after a successful query of `span` blocks that returned `logs` logs."""
        if seconds > self.slow_seconds or logs > 2 * self.target_logs:
            proposal = span // 2
        elif logs * 2 < self.target_logs:
            proposal = span * 2
        else:
            proposal = span
        self.span = max(self.min_span, min(self.ceiling(), proposal))

    def refused(self, span: int, error: RangeTooLargeError) -> None:
        """Shrink after a refusal; remember a stated block limit for good."""
        if error.block_limit is not None:
            self.provider_limit = max(self.min_span, error.block_limit)
        limited = min(span // 2, error.block_limit or span)
        self.span = max(self.min_span, min(self.ceiling(), limited))


# ------------------------------------------------------------------------------- log fetching


def _b(hex_str: str) -> bytes:
    """0x-hex to bytes."""
    return bytes.fromhex(hex_str[2:])


def parse_log(item: dict[str, Any]) -> RawLog:
    """A JSON-RPC log object as a RawLog."""
    ts = item.get("blockTimestamp")
    return RawLog(
        int(item["blockNumber"], 16),
        bytes.fromhex(item["blockHash"][2:]),
        int(item["logIndex"], 16),
        int(item["transactionIndex"], 16),
        bytes.fromhex(item["transactionHash"][2:]),
        bytes.fromhex(item["address"][2:]),
        tuple(bytes.fromhex(t[2:]) for t in item["topics"]),
        bytes.fromhex(item["data"][2:]),
        int(ts, 16) if ts else None,
    )


# One log object exactly as anvil writes it: these keys in this order, no whitespace, not removed
# (replies holding a backslash, i.e. JSON escapes, never take this path).
_ANVIL_LOG = re.compile(
    r'\{"address":"0x([^"]*)","topics":\[([^\]]*)\],"data":"0x([^"]*)",'
    r'"blockHash":"0x([^"]*)","blockNumber":"0x([0-9a-f]+)",(?:"blockTimestamp":"0x([0-9a-f]+)",)?'
    r'"transactionHash":"0x([^"]*)","transactionIndex":"0x([0-9a-f]+)","logIndex":"0x([0-9a-f]+)",'
    r'"removed":false\}'
)
_REPLY_HEAD = re.compile(r'\{"jsonrpc":"2\.0","id":\d+,"result":\[')
_REPLY_TAIL = re.compile(r"\]\}\s*")


def parse_logs_reply(body: bytes) -> list[RawLog] | None:
    """The logs of an eth_getLogs reply in anvil's exact layout; None for any other reply.

    One regular expression matches each log object whole (no escapes, no whitespace), the
    matches must tile the result array, and every value goes through the same conversion as
    `parse_log`: the result equals `json.loads` + `parse_log`, in far less time (figures:
    docs/indexer.md). Hashes, numbers and addresses repeat within a block and are converted
    once. Any other layout (key order, errors, `removed` logs) returns None: the caller parses
    JSON.
    """
    try:
        return _parse_anvil_logs(body.decode("ascii"))
    except ValueError:  # not ASCII or not hex: let the JSON path decide
        return None


def _parse_anvil_logs(text: str) -> list[RawLog] | None:
    """parse_logs_reply on text."""
    head = _REPLY_HEAD.match(text)
    if head is None or "\\" in text:
        return None
    pos = head.end()
    out: list[RawLog] = []
    if text.startswith("]", pos):
        return out if _REPLY_TAIL.fullmatch(text, pos) else None
    match, fromhex = _ANVIL_LOG.match, bytes.fromhex
    hexes: dict[str, bytes] = {}
    ints: dict[str | None, int | None] = {None: None}
    while True:
        found = match(text, pos)
        if found is None:
            return None
        address, topics, data, block_hash, number, ts, tx_hash, tx_index, log_index = found.groups()
        for key in (address, block_hash, tx_hash):
            if key not in hexes:
                hexes[key] = fromhex(key)
        for key in (number, ts, tx_index):
            if key not in ints:
                ints[key] = int(key, 16)
        if topics and (topics[0] != '"' or topics[-1] != '"'):
            return None
        out.append(
            RawLog(
                ints[number], hexes[block_hash], int(log_index, 16), ints[tx_index],  # type: ignore[arg-type]
                hexes[tx_hash], hexes[address],
                tuple(fromhex(t[2:]) for t in topics[1:-1].split('","')) if topics else (),
                fromhex(data), ints[ts],
            )
        )  # fmt: skip
        pos = found.end()
        if text.startswith(",", pos):
            pos += 1
        elif text.startswith("]", pos):
            return out if _REPLY_TAIL.fullmatch(text, pos) else None
        else:
            return None


def parse_logs_body(body: bytes) -> list[RawLog]:
    """The logs of an eth_getLogs reply; provider size refusals raise RangeTooLargeError."""
    fast = parse_logs_reply(body)
    if fast is not None:
        return fast
    try:
        items = JsonRpc.result("eth_getLogs", json.loads(body))
    except RpcError as exc:
        refusal = range_error(exc.rpc_message)
        if refusal is not None:
            raise refusal from None
        raise
    return [parse_log(item) for item in items]


def parse_header(item: dict[str, Any]) -> Header:
    """A JSON-RPC block object as a Header."""
    return Header(
        int(item["number"], 16),
        _b(item["hash"]),
        _b(item["parentHash"]),
        int(item["timestamp"], 16),
        _b(item["logsBloom"]),
    )


@dataclass
class LogFilter:
    """Which logs to ask for: contract addresses (20 bytes each) and optional topic0 set."""

    addresses: list[bytes] = field(default_factory=list)
    topic0: list[bytes] | None = None

    def params(self) -> dict[str, Any]:
        """The address/topics part of an eth_getLogs filter object."""
        out: dict[str, Any] = {"address": ["0x" + a.hex() for a in self.addresses]}
        if self.topic0:
            out["topics"] = [["0x" + t.hex() for t in self.topic0]]
        return out


class LogFetcher:
    """eth_getLogs and headers over raw JSON-RPC, in adaptive block ranges.

    With `read_ahead`, each fetch that stops short of its end sends the request for the next
    range from a background thread before returning: the node serialises those logs while
    the caller parses and writes these. A read-ahead reply is used only by a fetch asking
    for exactly its range and filter; anything else discards it.
    """

    def __init__(
        self,
        rpc: JsonRpc,
        log_filter: LogFilter,
        adaptive: AdaptiveRange | None = None,
        max_attempts: int = 12,
        read_ahead: bool = False,
    ) -> None:
        self.rpc = rpc
        self.filter = log_filter
        self.adaptive = adaptive or AdaptiveRange()
        self._max_attempts = max_attempts
        self.read_ahead = read_ahead
        self._ahead: Ahead | None = None
        self._ahead_thread = AheadThread()

    def head(self) -> int:
        """The node's latest block number."""
        return int(self.rpc.call("eth_blockNumber", []), 16)

    def get_logs(self, start: int, end: int) -> list[RawLog]:
        """All matching logs of blocks start..end in one query (raises RangeTooLargeError)."""
        return self._logs_call(self._range_params(start, end))

    def logs_by_block_hash(self, block_hash: bytes) -> list[RawLog]:
        """Matching logs of exactly one block, by hash (immune to a reorg under the query)."""
        params = {"blockHash": "0x" + block_hash.hex(), **self.filter.params()}
        return self._logs_call(params)

    def _range_params(self, start: int, end: int) -> dict[str, Any]:
        """eth_getLogs parameters of blocks start..end."""
        return {"fromBlock": hex(start), "toBlock": hex(end), **self.filter.params()}

    def _logs_call(self, params: dict[str, Any]) -> list[RawLog]:
        """eth_getLogs; provider size refusals become RangeTooLargeError."""
        return parse_logs_body(self.rpc.call_raw("eth_getLogs", [params]))

    def fetch(self, start: int, end: int) -> tuple[list[RawLog], int]:
        """(logs of start..stop, stop): the adaptive span picks stop <= end."""
        for _ in range(self._max_attempts):
            stop = self._next_stop(start, end)
            span = stop - start + 1
            try:
                body, seconds = self._reply(self._range_params(start, stop))
                logs = parse_logs_body(body)
            except RangeTooLargeError as exc:
                if span <= self.adaptive.min_span:
                    raise LogQueryError(
                        f"the node refuses even a {span}-block log query at block {start}: {exc}"
                    ) from None
                self.adaptive.refused(span, exc)
                continue
            self.adaptive.succeeded(span, len(logs), seconds)
            self._send_ahead(stop + 1, end)
            return logs, stop
        raise LogQueryError(f"eth_getLogs from block {start} kept failing; giving up")

    def _reply(self, params: dict[str, Any]) -> tuple[bytes, float]:
        """The reply to `params`: the read-ahead one if it asked exactly that, else a new call."""
        ahead, self._ahead = self._ahead, None
        if ahead is None or ahead.params != params or ahead.pid != os.getpid():
            ahead = Ahead(self.rpc, params)
            ahead.run()
        return ahead.result()

    def _next_stop(self, start: int, end: int) -> int:
        """Last block of the next query from `start`: the adaptive span, at most `end`."""
        return start + min(self.adaptive.span, end - start + 1) - 1

    def _send_ahead(self, start: int, end: int) -> None:
        """Request the range the next fetch will ask for, if there is one."""
        if not self.read_ahead or start > end:
            return
        params = self._range_params(start, self._next_stop(start, end))
        self._ahead = self._ahead_thread.submit(Ahead(self.rpc, params))

    def headers(self, numbers: Iterable[int]) -> list[Header | None]:
        """Headers by number (None where the node has no such block), batched."""
        wanted = list(numbers)
        out: list[Header | None] = []
        for i in range(0, len(wanted), HEADER_BATCH):
            chunk = wanted[i : i + HEADER_BATCH]
            replies = self.rpc.batch("eth_getBlockByNumber", [[hex(n), False] for n in chunk])
            out.extend(parse_header(r) if r else None for r in replies)
        return out

    def header(self, number: int) -> Header | None:
        """One header by number, None past the head."""
        reply = self.rpc.call("eth_getBlockByNumber", [hex(number), False])
        return parse_header(reply) if reply else None
