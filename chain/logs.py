"""Read logs fast: raw `eth_getLogs` in adaptive block ranges, block headers, eth-abi decoding.

web3's `get_logs` + `process_log` builds several AttributeDicts and runs formatters per log; this
module speaks JSON-RPC itself (keep-alive HTTP, batched header requests), keeps logs as small
tuples of bytes and decodes event data with one cached eth-abi tuple decoder per event. It knows
nothing about what the events mean.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from eth_abi.abi import default_codec
from eth_utils import keccak

from chain.errors import ChainError

DEFAULT_TIMEOUT = 30.0
HEADER_BATCH = 500  # eth_getBlockByNumber calls per JSON-RPC batch request


class LogQueryError(ChainError):
    """A log or header query failed for a reason other than its size."""


class RangeTooLargeError(LogQueryError):
    """The provider refused a range as too wide or with too many results (or timed out)."""

    def __init__(self, message: str, block_limit: int | None = None) -> None:
        super().__init__(message)
        self.block_limit = block_limit


class RpcError(LogQueryError):
    """The node answered a JSON-RPC call with an error object."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        super().__init__(f"{method} failed: {message} (code {code})")
        self.method = method
        self.code = code
        self.rpc_message = message


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


# ------------------------------------------------------------------------------------ transport


class JsonRpc:
    """Minimal JSON-RPC over one keep-alive HTTP connection per thread."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise LogQueryError(f"raw log reading needs an http(s) JSON-RPC URL, got {url!r}")
        self.url = url
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._local = threading.local()
        self._ids = iter(range(1, 2**62))

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's connection (created on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def post(self, payload: Any) -> Any:
        """POST one JSON body and return the parsed reply; one reconnect on a stale socket."""
        return json.loads(self.post_raw(payload))

    def post_raw(self, payload: Any) -> bytes:
        """POST one JSON body and return the reply's bytes unparsed."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request("POST", self._path, body, headers)
                resp = conn.getresponse()
                raw = resp.read()
            except TimeoutError as exc:
                self.close()
                raise RangeTooLargeError(f"request to {self.url} timed out: {exc}") from None
            except (http.client.HTTPException, ConnectionError, OSError) as exc:
                self.close()
                if attempt:
                    raise LogQueryError(f"JSON-RPC node at {self.url} unreachable: {exc}") from None
                continue
            if resp.status in (408, 413, 504):
                raise RangeTooLargeError(f"HTTP {resp.status} from {self.url}")
            if resp.status >= 400 and not raw.startswith((b"{", b"[")):
                raise LogQueryError(f"HTTP {resp.status} from {self.url}: {raw[:200]!r}")
            return raw
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, method: str, params: list[Any]) -> Any:
        """One call; an error reply raises RpcError."""
        return self.result(method, self.post(self.request(method, params)))

    def call_raw(self, method: str, params: list[Any]) -> bytes:
        """One call, the reply's bytes unparsed (for parsers faster than `json`)."""
        return self.post_raw(self.request(method, params))

    def request(self, method: str, params: list[Any]) -> dict[str, Any]:
        """A JSON-RPC request object with the next id."""
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}

    @staticmethod
    def result(method: str, reply: Any) -> Any:
        """The result of a parsed reply; an error reply raises RpcError."""
        if "error" in reply:
            err = reply["error"]
            raise RpcError(method, err.get("code"), str(err.get("message", err)))
        return reply["result"]

    def batch(self, method: str, params: Sequence[list[Any]]) -> list[Any]:
        """Many calls of one method in one request, results in order."""
        if not params:
            return []
        first = next(self._ids)
        calls = [
            {"jsonrpc": "2.0", "id": first + i, "method": method, "params": p}
            for i, p in enumerate(params)
        ]
        self._ids = iter(range(first + len(calls), 2**62))
        replies = self.post(calls)
        if isinstance(replies, dict):  # a batch-level error
            err = replies.get("error", {})
            raise RpcError(method, err.get("code"), str(err.get("message", replies)))
        by_id = {r.get("id"): r for r in replies}
        results = []
        for call in calls:
            reply = by_id.get(call["id"], {"error": {"message": "no reply in batch"}})
            if "error" in reply:
                err = reply["error"]
                raise RpcError(method, err.get("code"), str(err.get("message", err)))
            results.append(reply["result"])
        return results


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
    `parse_log`: the result equals `json.loads` + `parse_log` in a third of the time. Hashes,
    numbers and addresses repeat within a block and are converted once. Any other layout
    (key order, errors, `removed` logs) returns None: the caller parses JSON.
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


class _Ahead:
    """An eth_getLogs request (sent ahead by a background thread, or inline): reply bytes."""

    def __init__(self, rpc: JsonRpc, params: dict[str, Any]) -> None:
        self.rpc = rpc
        self.params = params
        self.pid = os.getpid()
        self.body = b""
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        """Send the request (in the background thread, or inline when nothing was ahead)."""
        began = time.perf_counter()
        try:
            self.body = self.rpc.call_raw("eth_getLogs", [self.params])
        except BaseException as exc:  # raised by result(), in the thread that takes the reply
            self.error = exc
        self.seconds = time.perf_counter() - began
        self._done.set()

    def result(self) -> tuple[bytes, float]:
        """The reply and how long the node took; the request's error is raised here."""
        self._done.wait()
        if self.error is not None:
            raise self.error
        return self.body, self.seconds


class _AheadThread:
    """One daemon thread sending read-ahead requests in order; it exits when idle."""

    IDLE_SECONDS = 2.0

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Fresh state (also in a forked child, which has none of the parent's threads)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Ahead] = queue.SimpleQueue()
        self._running = False

    def submit(self, job: _Ahead) -> _Ahead:
        """Queue a request; start the thread if none runs."""
        if self._pid != os.getpid():
            self._reset()
        with self._lock:
            self._jobs.put(job)
            if not self._running:
                self._running = True
                threading.Thread(target=self._loop, name="log-read-ahead", daemon=True).start()
        return job

    def _loop(self) -> None:
        """Run requests until none comes for IDLE_SECONDS."""
        while True:
            try:
                job = self._jobs.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._running = False
                        return
                continue
            job.run()


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
        self._ahead: _Ahead | None = None
        self._ahead_thread = _AheadThread()

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
            ahead = _Ahead(self.rpc, params)
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
        self._ahead = self._ahead_thread.submit(_Ahead(self.rpc, params))

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


# ------------------------------------------------------------------------------------- blooms


def bloom_bits(item: bytes) -> tuple[tuple[int, int], ...]:
    """The three (byte index, bit mask) pairs `item` sets in a 2048-bit logs bloom."""
    digest = keccak(item)
    pairs = []
    for i in (0, 2, 4):
        bit = ((digest[i] << 8) | digest[i + 1]) & 2047
        pairs.append((255 - bit // 8, 1 << (bit % 8)))
    return tuple(pairs)


def bloom_may_contain(bloom: bytes, bits: tuple[tuple[int, int], ...]) -> bool:
    """True if every bit of the item is set (the block may hold a log mentioning it)."""
    return all(bloom[index] & mask for index, mask in bits)


# ----------------------------------------------------------------------------------- decoding


def _canonical(param: dict[str, Any]) -> str:
    """ABI type string of a parameter, expanding tuples."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in param.get("components", []))
        return f"({inner}){kind[5:]}"
    return kind


_UINT = re.compile(r"^uint(\d*)$")
_INT = re.compile(r"^int(\d*)$")
_BYTES_N = re.compile(r"^bytes([1-9]|[12]\d|3[0-2])$")


class AbiDecodeError(ValueError):
    """A 32-byte word is not a canonical encoding of its ABI type."""


def word_decoder(type_str: str) -> Callable[[bytes], Any] | None:
    """Decoder of one head word of a static elementary type; None for any other type.

    Follows eth-abi's strict rules (range and zero padding checked) but returns addresses as
    their 20 raw bytes; tests check it against eth-abi on random values.
    """
    if type_str == "address":
        return _address_word
    if type_str == "bool":
        return _bool_word
    if found := _UINT.match(type_str):
        return _uint_word(1 << int(found.group(1) or 256))
    if found := _INT.match(type_str):
        return _int_word(int(found.group(1) or 256))
    if found := _BYTES_N.match(type_str):
        return _bytes_word(int(found.group(1)))
    return None


def _address_word(word: bytes) -> bytes:
    """An address: 12 zero bytes, then 20."""
    if len(word) != 32 or any(word[:12]):
        raise AbiDecodeError(f"not an address word: 0x{word.hex()}")
    return word[12:]


def _bool_word(word: bytes) -> bool:
    """A bool: 0 or 1."""
    value = int.from_bytes(word, "big")
    if len(word) != 32 or value > 1:
        raise AbiDecodeError(f"not a bool word: 0x{word.hex()}")
    return value == 1


def _uint_word(limit: int) -> Callable[[bytes], int]:
    """An unsigned integer below `limit`."""

    def decode(word: bytes) -> int:
        value = int.from_bytes(word, "big")
        if value >= limit or len(word) != 32:
            raise AbiDecodeError(f"uint out of range: 0x{word.hex()}")
        return value

    return decode


def _int_word(bits: int) -> Callable[[bytes], int]:
    """A two's-complement signed integer of `bits` bits, sign-extended to 256."""
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def decode(word: bytes) -> int:
        value = int.from_bytes(word, "big", signed=True)
        if not low <= value <= high or len(word) != 32:
            raise AbiDecodeError(f"int{bits} out of range: 0x{word.hex()}")
        return value

    return decode


def _bytes_word(size: int) -> Callable[[bytes], bytes]:
    """bytesN: N bytes, right-padded with zeros."""

    def decode(word: bytes) -> bytes:
        if len(word) != 32 or any(word[size:]):
            raise AbiDecodeError(f"bytes{size} with non-zero padding: 0x{word.hex()}")
        return word[:size]

    return decode


def _to_bytes_address(type_str: str, value: Any) -> Any:
    """eth-abi returns checksummed strings for addresses; this module uses raw bytes."""
    if type_str == "address":
        return bytes.fromhex(value[2:])
    return value


_ZEROS = tuple(bytes(n) for n in range(33))
_BOOLS = {bytes(32): False, bytes(31) + b"\x01": True}


def _bad_word(kind: str, word: bytes) -> None:
    """Raise for a word that is not a canonical encoding of `kind`."""
    raise AbiDecodeError(f"not a canonical {kind} word: 0x{word.hex()}")


def _word_lines(kind: str, src: str, out: str) -> list[str] | None:
    """Source lines decoding the 32-byte word `src` into `out` by eth-abi's strict rules (the
    same as word_decoder); None for types that are not static elementary words."""
    bad = f"_bad({kind!r}, {src})"
    if kind == "address":
        return [f"if {src}[:12] != _ZEROS[12]: {bad}", f"{out} = {src}[12:]"]
    if kind == "bool":
        return [f"{out} = _BOOLS.get({src})", f"if {out} is None: {bad}"]
    if found := _UINT.match(kind):
        bits = int(found.group(1) or 256)
        check = [f"if {out} >> {bits}: {bad}"] if bits < 256 else []
        return [f"{out} = _int({src}, 'big')", *check]
    if found := _INT.match(kind):
        bits = int(found.group(1) or 256)
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        check = [f"if not {low} <= {out} <= {high}: {bad}"] if bits < 256 else []
        return [f"{out} = _int({src}, 'big', signed=True)", *check]
    if found := _BYTES_N.match(kind):
        size = int(found.group(1))
        if size == 32:
            return [f"{out} = {src}"]
        return [f"if {src}[{size}:] != _ZEROS[{32 - size}]: {bad}", f"{out} = {src}[:{size}]"]
    return None


def compile_static_decoder(
    indexed: Sequence[tuple[str, str]], data: Sequence[tuple[str, str]], first_topic: int = 1
) -> Callable[[Sequence[bytes], bytes], dict[str, Any] | None] | None:
    """A function decoding an event whose data is only static elementary words, or None.

    The function is generated source (as `collections.namedtuple` does): straight-line slicing
    and `int.from_bytes` with the range and padding checks of word_decoder, building the
    argument dict in one literal: several times faster than a loop over per-word decoders on
    the hot event. It returns None when the data is not exactly one word per argument (the
    caller then asks eth-abi); tests hold it equal to eth-abi on random events and words.
    """
    lines = [
        "def decode(topics, data):",
        f"    if len(data) != {32 * len(data)}:",
        "        return None",
    ]
    values = []
    for i, (_, kind) in enumerate(indexed):
        src, out = f"t{i}", f"v{len(values)}"
        lines.append(f"    {src} = topics[{first_topic + i}]")
        word = _word_lines(kind, src, out)
        if word is None:  # dynamic or composite: the topic is its hash
            lines.append(f"    {out} = {src}")
        else:
            lines.append(f"    if len({src}) != 32: _bad({kind!r}, {src})")
            lines += [f"    {line}" for line in word]
        values.append(out)
    for i, (_, kind) in enumerate(data):
        src, out = f"w{i}", f"v{len(values)}"
        word = _word_lines(kind, src, out)
        if word is None:
            return None
        lines.append(f"    {src} = data[{32 * i}:{32 * i + 32}]")
        lines += [f"    {line}" for line in word]
        values.append(out)
    names = [name for name, _ in (*indexed, *data)]
    pairs = ", ".join(f"{name!r}: {v}" for name, v in zip(names, values, strict=True))
    lines.append(f"    return {{{pairs}}}")
    namespace = {"_int": int.from_bytes, "_bad": _bad_word, "_ZEROS": _ZEROS, "_BOOLS": _BOOLS}
    exec("\n".join(lines), namespace)  # source built above from type names and literals only
    return namespace["decode"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class EventSpec:
    """How to decode one event: names and types of topics and data, with cached decoders.

    Events whose data is only static elementary words (the common case: ids, amounts,
    addresses) get a generated straight-line decoder; anything else (strings, arrays, tuples)
    goes through eth-abi's cached tuple decoder. Indexed dynamic values stay as their 32-byte
    topic hash.
    """

    name: str
    signature: str
    topic0: bytes
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]
    anonymous: bool = False
    _topic_decoders: tuple[Callable[[bytes], Any], ...] = field(
        repr=False, compare=False, default=()
    )
    _static: Callable[[Sequence[bytes], bytes], dict[str, Any] | None] | None = field(
        repr=False, compare=False, default=None
    )

    @classmethod
    def from_abi(cls, entry: dict[str, Any]) -> EventSpec:
        """Build from an ABI `event` entry."""
        inputs = entry.get("inputs", [])
        types = [_canonical(p) for p in inputs]
        signature = f"{entry['name']}({','.join(types)})"
        indexed = tuple((p["name"], t) for p, t in zip(inputs, types, strict=True) if p["indexed"])
        data = tuple((p["name"], t) for p, t in zip(inputs, types, strict=True) if not p["indexed"])
        anonymous = bool(entry.get("anonymous"))
        return cls(
            entry["name"],
            signature,
            keccak(text=signature),
            indexed,
            data,
            anonymous,
            tuple(word_decoder(t) or bytes for _, t in indexed),
            compile_static_decoder(indexed, data, 0 if anonymous else 1),
        )

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        """Arguments by name."""
        if self._static is not None:
            values = self._static(topics, data)
            if values is not None:
                return values
        first = 0 if self.anonymous else 1
        values = {}
        for i, (name, _) in enumerate(self.indexed):
            values[name] = self._topic_decoders[i](topics[first + i])
        if not self.data:
            return values
        decoded = default_codec.decode([t for _, t in self.data], data)
        for (name, kind), value in zip(self.data, decoded, strict=True):
            values[name] = _to_bytes_address(kind, value)
        return values


class DecodedLog(NamedTuple):
    """A raw log with its event name and decoded arguments (name None if unknown)."""

    log: RawLog
    name: str | None
    args: dict[str, Any]


class LogDecoder:
    """Decodes logs of known contracts by (address, topic0), falling back to topic0 alone."""

    def __init__(self) -> None:
        self._by_address: dict[bytes, dict[bytes, EventSpec]] = {}
        self._by_topic: dict[bytes, EventSpec] = {}

    @staticmethod
    def events(abi: Iterable[dict[str, Any]]) -> dict[bytes, EventSpec]:
        """topic0 -> spec for every non-anonymous event of an ABI."""
        specs = (EventSpec.from_abi(e) for e in abi if e.get("type") == "event")
        return {s.topic0: s for s in specs if not s.anonymous}

    def add(self, address: bytes, abi: Iterable[dict[str, Any]]) -> None:
        """Know the events of the contract at `address`."""
        specs = self.events(abi)
        self._by_address[address] = specs
        for topic, spec in specs.items():
            self._by_topic.setdefault(topic, spec)

    def topics_named(self, name: str) -> set[bytes]:
        """topic0 of every known event called `name`."""
        return {t for t, spec in self._by_topic.items() if spec.name == name}

    def topic0s(self) -> list[bytes]:
        """Every known event topic."""
        return sorted(self._by_topic)

    def spec(self, address: bytes, topic0: bytes) -> EventSpec | None:
        """The event spec for a log, or None."""
        specs = self._by_address.get(address)
        found = specs.get(topic0) if specs else None
        return found or self._by_topic.get(topic0)

    def decode(self, log: RawLog) -> DecodedLog:
        """Decode one log; unknown or undecodable logs get name None and no args."""
        if not log.topics:
            return DecodedLog(log, None, {})
        spec = self.spec(log.address, log.topics[0])
        if spec is None or len(log.topics) != len(spec.indexed) + 1:
            return DecodedLog(log, None, {})
        try:
            return DecodedLog(log, spec.name, spec.decode(log.topics, log.data))
        except Exception:  # malformed data from a contract that shares a signature
            return DecodedLog(log, None, {})
