"""The backfill's fast paths equal the slow, obviously right ones: anvil replies parsed without
`json` equal `json.loads` + `parse_log`; generated event decoders equal eth-abi; hand-laid
harvest calldata equals eth-abi's encoding."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.abi import AbiDecodeError, DecodedLog, EventSpec, compile_static_decoder
from chain.logs import Header, LogFetcher, LogFilter, RawLog, parse_log, parse_logs_reply
from chain.rpc import JsonRpc, RpcError
from indexer.engine import _joined
from indexer.source import Batch, ContractInfo, raw_row
from tests._fixtures.workload import HARVEST_SELECTOR, HARVEST_TYPE, harvest_calldata
from tests.indexer._support import IndexedChain


def _hex(n: int) -> st.SearchStrategy[str]:
    """0x-prefixed lower-case hex of n bytes."""
    return st.binary(min_size=n, max_size=n).map(lambda b: "0x" + b.hex())


def _quantity() -> st.SearchStrategy[str]:
    """A JSON-RPC quantity."""
    return st.integers(0, 2**40).map(hex)


LOGS = st.fixed_dictionaries(
    {
        "address": _hex(20),
        "topics": st.lists(_hex(32), max_size=4),
        "data": st.integers(0, 6).flatmap(lambda words: _hex(32 * words)),
        "blockHash": _hex(32),
        "blockNumber": _quantity(),
        "blockTimestamp": _quantity(),
        "transactionHash": _hex(32),
        "transactionIndex": _quantity(),
        "logIndex": _quantity(),
        "removed": st.just(False),
    }
)


ANVIL_ORDER = ("address", "topics", "data", "blockHash", "blockNumber", "blockTimestamp",
               "transactionHash", "transactionIndex", "logIndex", "removed")  # fmt: skip


def _anvil(log: dict[str, Any]) -> dict[str, Any]:
    """The log's keys in anvil's order."""
    return {k: log[k] for k in ANVIL_ORDER if k in log}


def _reply(logs: list[dict[str, Any]], request_id: int = 1, **dumps: Any) -> bytes:
    """An eth_getLogs reply body as anvil writes it (or otherwise, with json.dumps options)."""
    dumps.setdefault("separators", (",", ":"))
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": logs}, **dumps).encode()


def _slow(body: bytes) -> list[Any]:
    """The reference: json.loads + parse_log."""
    return [parse_log(item) for item in json.loads(body)["result"]]


@settings(max_examples=150, deadline=None)
@given(logs=st.lists(LOGS, max_size=6), request_id=st.integers(0, 2**31), drop_ts=st.booleans())
def test_anvil_replies_parse_as_json_does(
    logs: list[dict[str, Any]], request_id: int, drop_ts: bool
) -> None:
    if drop_ts:  # older anvils and other nodes leave the timestamp out
        for log in logs:
            del log["blockTimestamp"]
    body = _reply([_anvil(log) for log in logs], request_id)
    assert parse_logs_reply(body) == _slow(body)


@settings(max_examples=150, deadline=None)
@given(logs=st.lists(LOGS, min_size=1, max_size=4), data=st.data())
def test_other_layouts_never_parse_differently(logs: list[dict[str, Any]], data: Any) -> None:
    """Reordered keys, whitespace, escapes, upper case, removed logs: None or the same logs."""
    mutation = data.draw(st.sampled_from(["reorder", "spaces", "escape", "upper", "removed"]))
    logs = [_anvil(log) for log in logs]
    if mutation == "reorder":
        logs = [dict(data.draw(st.permutations(list(log.items())))) for log in logs]
    elif mutation == "upper":
        key = data.draw(st.sampled_from(["blockHash", "data", "logIndex", "address"]))
        logs[0][key] = "0x" + logs[0][key][2:].upper()
    elif mutation == "removed":
        logs[-1]["removed"] = True
    body = _reply(logs, separators=(", ", ": ") if mutation == "spaces" else (",", ":"))
    if mutation == "escape":
        body = body.replace(b'"0x', b'"\\u0030x', 1)
    fast = parse_logs_reply(body)
    assert fast is None or fast == _slow(body)
    if mutation in ("spaces", "escape", "removed"):
        assert fast is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc":"2.0","id":1,"result":[]}',
        b'{"jsonrpc":"2.0","id":1,"result":[]}\n',
    ],
)
def test_empty_replies(body: bytes) -> None:
    assert parse_logs_reply(body) == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"too many"}}',
        b'{"jsonrpc":"2.0","id":1,"result":[],}',
        b'{"jsonrpc":"2.0","id":1,"result":[]',
        b'{"jsonrpc":"2.0","id":1,"result":null}',
        b"\xff\xfe",
        b"",
    ],
)
def test_errors_and_broken_replies_are_left_to_json(body: bytes) -> None:
    assert parse_logs_reply(body) is None


@settings(max_examples=40, deadline=None)
@given(logs=st.lists(LOGS, min_size=2, max_size=3), cut=st.integers(1, 200))
def test_truncated_or_trailing_comma_replies_are_refused(
    logs: list[dict[str, Any]], cut: int
) -> None:
    body = _reply([_anvil(log) for log in logs])
    assert parse_logs_reply(body) is not None
    assert parse_logs_reply(body[:-cut]) is None
    assert parse_logs_reply(body.replace(b"]}", b",]}")) is None


class _Canned:
    """A JsonRpc stand-in answering every call with one body."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def call_raw(self, method: str, params: list[Any]) -> bytes:
        return self.body


def test_fetcher_raises_node_errors_and_reads_other_layouts() -> None:
    error = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"header not found"}}'
    with pytest.raises(RpcError, match="header not found"):
        LogFetcher(_Canned(error), LogFilter([b"\x01" * 20])).get_logs(0, 1)  # type: ignore[arg-type]
    log = {"removed": False, "logIndex": "0x2", "transactionIndex": "0x0", "blockNumber": "0x5",
           "blockHash": "0x" + "ab" * 32, "transactionHash": "0x" + "cd" * 32,
           "address": "0x" + "01" * 20, "data": "0x", "topics": ["0x" + "ef" * 32]}  # fmt: skip
    geth_like = _reply([log], separators=(", ", ": "))
    assert parse_logs_reply(geth_like) is None
    logs = LogFetcher(_Canned(geth_like), LogFilter([b"\x01" * 20])).get_logs(0, 9)  # type: ignore[arg-type]
    assert logs == _slow(geth_like) and logs[0].log_index == 2 and logs[0].block_timestamp is None


@pytest.mark.node
def test_real_anvil_replies_take_the_fast_path(region_chain: IndexedChain) -> None:
    rpc = JsonRpc(region_chain.node.url)
    body = rpc.call_raw("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest"}])
    fast = parse_logs_reply(body)
    assert fast is not None and len(fast) > 100
    assert fast == _slow(body)


# ------------------------------------------------------------------------------- decoders

STATIC_TYPES = {
    "uint8": 8, "uint32": 32, "uint64": 64, "uint256": 256, "int8": 8, "int64": 64,
    "int256": 256, "bool": 1, "address": 160, "bytes1": 8, "bytes4": 32, "bytes31": 248,
    "bytes32": 256,
}  # fmt: skip


def _value(kind: str) -> st.SearchStrategy[Any]:
    """A valid value of a static type, as eth-abi encodes it."""
    bits = STATIC_TYPES[kind]
    if kind.startswith("uint"):
        return st.integers(0, 2**bits - 1)
    if kind.startswith("int"):
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if kind == "bool":
        return st.booleans()
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
    return st.binary(min_size=bits // 8, max_size=bits // 8)


def _word(kind: str) -> st.SearchStrategy[bytes]:
    """A word: mostly a canonical encoding, sometimes any 32 bytes (often not canonical)."""
    canonical = _value(kind).map(lambda v: abi_encode([kind], [v]))
    junk = st.one_of(
        st.binary(min_size=32, max_size=32),
        st.integers(0, 2**256 - 1).map(lambda n: n.to_bytes(32, "big")),
        st.integers(1, 255).map(lambda b: bytes(31) + bytes([b])),
    )
    return st.one_of(canonical, canonical, junk)


def _reference(kind: str, word: bytes) -> Any:
    """eth-abi's decoding of one word (addresses as raw bytes)."""
    value = abi_decode([kind], word)[0]
    return bytes.fromhex(value[2:]) if kind == "address" else value


PARAMS = st.lists(
    st.tuples(st.sampled_from(sorted(STATIC_TYPES)), st.booleans()), min_size=1, max_size=7
).filter(lambda ps: sum(indexed for _, indexed in ps) <= 3)


@settings(max_examples=300, deadline=None)
@given(params=PARAMS, data=st.data())
def test_generated_decoders_equal_eth_abi(params: list[tuple[str, bool]], data: Any) -> None:
    indexed = [(f"i{n}", kind) for n, (kind, flag) in enumerate(params) if flag]
    fields = [(f"d{n}", kind) for n, (kind, flag) in enumerate(params) if not flag]
    decode = compile_static_decoder(indexed, fields)
    assert decode is not None
    topics = [b"\x00" * 32] + [data.draw(_word(kind)) for _, kind in indexed]
    words = [data.draw(_word(kind)) for _, kind in fields]
    try:
        expected = {name: _reference(kind, w) for (name, kind), w in
                    zip([*indexed, *fields], [*topics[1:], *words], strict=True)}  # fmt: skip
    except Exception:  # eth-abi refuses a non-canonical word: so must we
        with pytest.raises(AbiDecodeError):
            decode(topics, b"".join(words))
        return
    assert decode(topics, b"".join(words)) == expected


def test_generated_decoder_leaves_odd_data_to_eth_abi() -> None:
    entry = {"type": "event", "name": "Paid", "anonymous": False, "inputs": [
        {"name": "who", "type": "address", "indexed": True},
        {"name": "amount", "type": "uint256", "indexed": False},
    ]}  # fmt: skip
    spec = EventSpec.from_abi(entry)
    who = bytes(12) + b"\xab" * 20
    assert spec.decode([spec.topic0, who], (7).to_bytes(32, "big")) == {
        "who": who[12:],
        "amount": 7,
    }
    decode = compile_static_decoder(spec.indexed, spec.data)
    assert decode is not None and decode([spec.topic0, who], bytes(33)) is None  # wrong length
    with pytest.raises(AbiDecodeError):
        decode([spec.topic0, b"\x01" * 32], bytes(32))  # address topic with dirty padding
    with pytest.raises(AbiDecodeError):
        decode([spec.topic0, who[1:]], bytes(32))  # short topic
    assert compile_static_decoder([], [("memo", "string")]) is None
    dynamic_topic = compile_static_decoder([("text", "string")], [])
    assert dynamic_topic is not None and dynamic_topic([b"", b"\x11" * 32], b"") == {
        "text": b"\x11" * 32
    }


# ------------------------------------------------------------------------------ calldata

WORD32 = st.binary(min_size=32, max_size=32)
UINT64 = st.integers(0, 2**64 - 1)
RECORDS = st.lists(
    st.tuples(WORD32, WORD32, UINT64, st.integers(0, 255), UINT64, WORD32), max_size=5
)


@settings(max_examples=60, deadline=None)
@given(records=RECORDS)
def test_harvest_calldata_equals_eth_abi(records: list[tuple[Any, ...]]) -> None:
    expected = HARVEST_SELECTOR + abi_encode([HARVEST_TYPE], [records])
    assert harvest_calldata(records) == expected


# ------------------------------------------------------------------------------ wire

RAW_LOGS = st.builds(
    RawLog,
    st.integers(0, 2**40), WORD32, st.integers(0, 2**20), st.integers(0, 2**20), WORD32,
    st.binary(min_size=20, max_size=20), st.lists(WORD32, max_size=4).map(tuple),
    st.binary(max_size=200), st.integers(0, 2**40) | st.none(),
)  # fmt: skip
ARGS = st.dictionaries(st.text(min_size=1, max_size=8), st.integers() | st.binary(max_size=32))


@settings(max_examples=60, deadline=None)
@given(logs=st.lists(st.tuples(RAW_LOGS, st.sampled_from(["A", "B", None]), ARGS), max_size=8))
def test_batches_cross_to_the_writer_unchanged(logs: list[tuple[RawLog, Any, Any]]) -> None:
    """What the reader process sends is what the writer rebuilds, raw_event rows included."""
    header = Header(1, b"\x01" * 32, b"\x02" * 32, 5, bytes(256))
    events = [DecodedLog(log, name, args) for log, name, args in logs]
    found = (ContractInfo(b"\x03" * 20, "LoanEscrow@03", "LoanEscrow", 1, b"\x04" * 20),)
    batch = Batch(1, 1, [header], events, 2, found)
    wire = pickle.loads(pickle.dumps(batch.to_wire(), protocol=pickle.HIGHEST_PROTOCOL))
    back = Batch.from_wire(wire)
    assert back == batch and back.raw_rows() == [raw_row(e) for e in events]


# ------------------------------------------------------------------------- joined writes


def _chain_of_reads(sizes: list[int], fork_at: int | None = None) -> list[Batch]:
    """Reads of one block each, `sizes[i]` events in read i; read `fork_at` comes from
    another fork (its parent is not the previous block)."""
    reads, parent = [], b"\x00" * 32
    for i, size in enumerate(sizes):
        block_hash = bytes([i + 1]) * 32
        header = Header(i, block_hash, b"\xff" * 32 if i == fork_at else parent, i, bytes(256))
        log = RawLog(i, block_hash, 0, 0, b"\x01" * 32, b"\x02" * 20, (), b"", i)
        reads.append(Batch(i, i, [header], [DecodedLog(log, None, {})] * size))
        parent = block_hash
    return reads


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 5), min_size=1, max_size=12),
    min_events=st.integers(1, 12),
    fork=st.integers(0, 15),
)
def test_reads_join_into_transactions_and_stop_at_a_fork(
    sizes: list[int], min_events: int, fork: int
) -> None:
    fork_at = fork if fork < len(sizes) else None
    reads = _chain_of_reads(sizes, fork_at)
    out = list(_joined(iter(reads), b"\x00" * 32, min_events))
    written = [batch for batch, _ in out if batch is not None]
    kept = reads[:fork_at] if fork_at is not None else reads
    assert [h for b in written for h in b.headers] == [h for r in kept for h in r.headers]
    assert [e for b in written for e in b.events] == [e for r in kept for e in r.events]
    assert all(len(b.events) >= min_events for b in written[:-1])
    assert all(b.start == b.headers[0].number and b.stop == b.headers[-1].number for b in written)
    assert [complete for _, complete in out][-1:] == ([False] if fork_at is not None else [True])
