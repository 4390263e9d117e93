"""chain/logs.py, chain/abi.py, chain/bloom.py: decoding agrees with eth-abi and web3, refusals
are understood, blooms match."""

from __future__ import annotations

import json
import threading
import time

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_bloom import BloomFilter
from hypothesis import given, settings
from hypothesis import strategies as st
from web3._utils.events import get_event_data

from chain.abi import AbiDecodeError, EventSpec, LogDecoder, word_decoder
from chain.bloom import bloom_bits, bloom_may_contain
from chain.logs import AdaptiveRange, LogFetcher, LogFilter, range_error
from chain.rpc import JsonRpc, RangeTooLargeError
from tests.indexer._support import IndexedChain

WORD_TYPES = {
    "uint8": st.integers(0, 2**8 - 1),
    "uint64": st.integers(0, 2**64 - 1),
    "uint256": st.integers(0, 2**256 - 1),
    "int16": st.integers(-(2**15), 2**15 - 1),
    "int256": st.integers(-(2**255), 2**255 - 1),
    "bool": st.booleans(),
    "bytes32": st.binary(min_size=32, max_size=32),
    "bytes4": st.binary(min_size=4, max_size=4),
    "address": st.binary(min_size=20, max_size=20),
}


@pytest.mark.parametrize("kind", sorted(WORD_TYPES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_word_decoders_agree_with_eth_abi(kind: str, data: st.DataObject) -> None:
    value = data.draw(WORD_TYPES[kind])
    arg = "0x" + value.hex() if kind == "address" else value
    word = abi_encode([kind], [arg])
    expected = abi_decode([kind], word)[0]
    if kind == "address":
        expected = bytes.fromhex(expected[2:])
    decoder = word_decoder(kind)
    assert decoder is not None and decoder(word) == expected


@pytest.mark.parametrize(
    ("kind", "word"),
    [
        ("uint8", (256).to_bytes(32, "big")),
        ("address", b"\x01" + bytes(31)),
        ("bool", (2).to_bytes(32, "big")),
        ("bytes4", b"\x00" * 4 + b"\x01" + bytes(27)),
        ("int8", (200).to_bytes(32, "big")),
    ],
)
def test_word_decoders_reject_non_canonical_words(kind: str, word: bytes) -> None:
    decoder = word_decoder(kind)
    assert decoder is not None
    with pytest.raises(AbiDecodeError):
        decoder(word)


def test_dynamic_data_goes_through_eth_abi() -> None:
    entry = {
        "type": "event",
        "name": "Noted",
        "anonymous": False,
        "inputs": [
            {"name": "who", "type": "address", "indexed": True},
            {"name": "text", "type": "string", "indexed": True},
            {"name": "amounts", "type": "uint256[]", "indexed": False},
            {"name": "memo", "type": "string", "indexed": False},
        ],
    }
    spec = EventSpec.from_abi(entry)
    assert spec.signature == "Noted(address,string,uint256[],string)"
    who = bytes(12) + b"\xab" * 20
    data = abi_encode(["uint256[]", "string"], [[1, 2, 3], "绿茶"])
    args = spec.decode([spec.topic0, who, b"\x11" * 32], data)
    assert args == {"who": b"\xab" * 20, "text": b"\x11" * 32, "amounts": (1, 2, 3), "memo": "绿茶"}


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        ("query returned more than 10000 results. "
         "Try with this block range [0x1e8480, 0x1e8e1f].", 2464),
        ("Log response size exceeded. You can make eth_getLogs requests with up to a 2K block "
         "range and no limit on the response size, or you can request any block range with a "
         "cap of 10K logs in the response. Based on your parameters, this block range should work: "
         "[0x0, 0x5f]", 96),
        ("eth_getLogs is limited to a 10,000 range", 10_000),
        ("exceed maximum block range: 5000", 5000),
        ("block range too large, max 2000 blocks", 2000),
        ("query returned more than 10000 results", None),
        ("request timed out", None),
    ],
)  # fmt: skip
def test_provider_refusals_are_recognised_with_their_limits(
    message: str, limit: int | None
) -> None:
    refusal = range_error(message)
    assert refusal is not None and refusal.block_limit == limit


def test_other_errors_are_not_refusals() -> None:
    assert range_error("invalid argument 0: hex string without 0x prefix") is None
    assert range_error("execution reverted") is None


def test_adaptive_range_grows_shrinks_and_remembers_the_stated_limit() -> None:
    r = AdaptiveRange(span=100, max_span=10_000, target_logs=1000)
    r.succeeded(100, 10, 0.1)
    assert r.span == 200
    r.succeeded(200, 5000, 0.1)
    assert r.span == 100
    r.refused(100, RangeTooLargeError("too many", block_limit=30))
    assert r.span == 30 and r.provider_limit == 30
    for _ in range(10):
        r.succeeded(r.span, 0, 0.01)
    assert r.span == 30  # never beyond what the provider said
    r.refused(30, RangeTooLargeError("timed out"))
    assert r.span == 15
    r.succeeded(15, 0, 10.0)  # slow: shrink even with few logs
    assert r.span == 7


class _Refusing:
    """A JsonRpc stand-in whose eth_getLogs refuses ranges wider than `limit` blocks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spans: list[int] = []

    def call_raw(self, method: str, params: list) -> bytes:
        start, end = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
        self.spans.append(end - start + 1)
        if end - start + 1 > self.limit:
            error = {"code": -32005, "message": f"block range too large, max {self.limit} blocks"}
            return json.dumps({"jsonrpc": "2.0", "id": 1, "error": error}).encode()
        return b'{"jsonrpc":"2.0","id":1,"result":[]}'


def test_fetcher_shrinks_to_the_provider_limit_and_keeps_it() -> None:
    rpc = _Refusing(50)
    fetcher = LogFetcher(rpc, LogFilter([b"\x01" * 20]), AdaptiveRange(span=1000))  # type: ignore[arg-type]
    logs, stop = fetcher.fetch(0, 100_000)
    assert logs == [] and stop == 49
    _, stop = fetcher.fetch(50, 100_000)
    assert stop == 99 and rpc.spans[-1] == 50  # no second refusal: the limit is remembered


class _Recording:
    """A JsonRpc stand-in that records each eth_getLogs range and the thread asking for it;
    ranges in `refuse` are refused (once each) as too large."""

    def __init__(self, refuse: tuple[int, ...] = ()) -> None:
        self.ranges: list[tuple[int, int, str]] = []
        self.refuse = set(refuse)

    def call_raw(self, method: str, params: list) -> bytes:
        start, end = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
        self.ranges.append((start, end, threading.current_thread().name))
        if start in self.refuse:
            self.refuse.discard(start)
            error = {"code": -32005, "message": "query returned more than 10000 results"}
            return json.dumps({"jsonrpc": "2.0", "id": 1, "error": error}).encode()
        return b'{"jsonrpc":"2.0","id":1,"result":[]}'


def _read_ahead_fetcher(rpc: _Recording) -> LogFetcher:
    """A fetcher with a fixed 10-block span and read-ahead on."""
    adaptive = AdaptiveRange(span=10, max_span=10)
    return LogFetcher(rpc, LogFilter([b"\x01" * 20]), adaptive, read_ahead=True)  # type: ignore[arg-type]


def test_read_ahead_requests_the_next_range_once() -> None:
    rpc = _Recording()
    fetcher = _read_ahead_fetcher(rpc)
    start, stops = 0, []
    while start <= 34:
        _, stop = fetcher.fetch(start, 34)
        stops.append(stop)
        start = stop + 1
    assert stops == [9, 19, 29, 34]
    assert [(a, b) for a, b, _ in rpc.ranges] == [(0, 9), (10, 19), (20, 29), (30, 34)]
    assert {name for _, _, name in rpc.ranges[1:]} == {"log-read-ahead"}  # no range asked twice


def _main_ranges(rpc: _Recording) -> list[tuple[int, int]]:
    """Ranges the fetching thread asked itself."""
    return [(a, b) for a, b, name in rpc.ranges if name == threading.current_thread().name]


def test_read_ahead_reply_is_dropped_when_another_range_is_asked() -> None:
    rpc = _Recording()
    fetcher = _read_ahead_fetcher(rpc)
    fetcher.fetch(0, 100)  # sends 10..19 ahead
    _, stop = fetcher.fetch(5, 100)  # e.g. a retry after a fork change
    assert stop == 14 and _main_ranges(rpc) == [(0, 9), (5, 14)]


def test_read_ahead_reply_is_dropped_when_the_filter_changed() -> None:
    rpc = _Recording()
    fetcher = _read_ahead_fetcher(rpc)
    fetcher.fetch(0, 100)  # sends 10..19 ahead for one address
    fetcher.filter.addresses.append(b"\x02" * 20)  # a contract announced meanwhile
    fetcher.fetch(10, 100)
    assert _main_ranges(rpc) == [(0, 9), (10, 19)]  # asked again, with both addresses


def test_read_ahead_refusal_shrinks_the_span_like_a_direct_one() -> None:
    rpc = _Recording(refuse=(10,))
    fetcher = _read_ahead_fetcher(rpc)
    fetcher.fetch(0, 100)
    _, stop = fetcher.fetch(10, 100)  # the read-ahead of 10..19 was refused
    assert stop == 14 and _main_ranges(rpc) == [(0, 9), (10, 14)]


def test_no_read_ahead_past_the_end() -> None:
    rpc = _Recording()
    fetcher = _read_ahead_fetcher(rpc)
    fetcher.fetch(0, 9)
    time.sleep(0.05)
    assert [(a, b) for a, b, _ in rpc.ranges] == [(0, 9)]


def test_bloom_bits_match_eth_bloom() -> None:
    items = [bytes([i]) * 20 for i in range(1, 30)]
    bloom = BloomFilter()
    for item in items[:10]:
        bloom.add(item)
    raw = int(bloom).to_bytes(256, "big")
    assert all(bloom_may_contain(raw, bloom_bits(i)) for i in items[:10])
    assert sum(bloom_may_contain(raw, bloom_bits(i)) for i in items[10:]) <= 2


@pytest.mark.node
def test_decoding_matches_web3_process_log(region_chain: IndexedChain) -> None:
    client = region_chain.client
    trace = client.contract("TeaTrace")
    address = bytes.fromhex(trace.address[2:])
    decoder = LogDecoder()
    decoder.add(address, client.artifacts["TeaTrace"].abi)
    fetcher = LogFetcher(JsonRpc(region_chain.node.url), LogFilter([address]))
    logs = fetcher.get_logs(0, client.w3.eth.block_number)
    web3_logs = client.w3.eth.get_logs(
        {"fromBlock": 0, "toBlock": "latest", "address": trace.address}
    )
    assert len(logs) == len(web3_logs) > 50
    events = {e["name"]: e for e in client.artifacts["TeaTrace"].abi if e["type"] == "event"}
    by_topic = {EventSpec.from_abi(e).topic0: e for e in events.values()}
    for raw, theirs in zip(logs, web3_logs, strict=True):
        ours = decoder.decode(raw)
        expected = get_event_data(client.w3.codec, by_topic[raw.topics[0]], theirs)
        assert ours.name == expected["event"]
        normalised = {k: bytes.fromhex(v[2:]) if isinstance(v, str) and v.startswith("0x") else v
                      for k, v in expected["args"].items()}  # fmt: skip
        assert ours.args == normalised
        assert raw.block_hash == bytes(theirs["blockHash"]) and raw.log_index == theirs["logIndex"]
