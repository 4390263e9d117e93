"""chain/events.py: topic-filtered queries and receipts decode as web3 does, on every backend."""

from __future__ import annotations

import secrets

import pytest
from eth_abi import encode
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.logs import DISCARD

from chain import events as chain_events
from chain.client import ChainClient
from chain.events import EventDecoder, EventReader, event_decoder, topic_value
from chain.rpc import RpcError

MINT_GAS = 120_000


def _token(client: ChainClient) -> Contract:
    """A payment token of its own (a new registry name: never one an earlier test used)."""
    name = f"EventsToken-{secrets.token_hex(4)}"
    deployment, _ = client.deploy("PaymentToken", ("Test", "TST", client.accounts[0].address), name)
    return client.contract("PaymentToken", deployment.address)


def _two_tokens(client: ChainClient) -> tuple[Contract, Contract, list[str]]:
    """Two payment tokens with mints to three holders and some transfers between them."""
    first, second = _token(client), _token(client)
    holders = [client.accounts[i].address for i in (3, 4, 5)]
    admin = client.sender(0)
    for n, holder in enumerate(holders):
        admin.transact(first.functions.mint(holder, 100 + n), gas=MINT_GAS)
        admin.transact(second.functions.mint(holder, 200 + n), gas=MINT_GAS)
    client.sender(3).transact(first.functions.transfer(holders[1], 7), gas=MINT_GAS)
    client.sender(4).transact(second.functions.transfer(holders[0], 9), gas=MINT_GAS)
    return first, second, holders


def _web3_transfers(token: Contract, **filters: str) -> list[tuple[int, int, dict[str, object]]]:
    """(block, log index, args) of Transfer events as web3 decodes them."""
    logs = token.events.Transfer().get_logs(from_block=0, argument_filters=filters)
    return [(e["blockNumber"], e["logIndex"], dict(e["args"])) for e in logs]


def test_filtered_events_of_several_contracts_match_web3(any_chain: ChainClient) -> None:
    first, second, holders = _two_tokens(any_chain)
    reader = EventReader(any_chain.w3, [first.address, second.address], first.abi)
    found = reader.events("Transfer", "to", [holders[0]])
    expected = sorted(
        _web3_transfers(first, to=holders[0]) + _web3_transfers(second, to=holders[0])
    )
    assert [(e.block_number, e.log_index, e.args) for e in found] == expected
    assert {e.address for e in found} == {first.address, second.address}
    assert all(isinstance(e.args["to"], str) and e.args["to"] == holders[0] for e in found)
    assert all(len(e.tx_hash) == 32 and e.name == "Transfer" for e in found)
    # By topic position, by raw 20 bytes, or by the 32-byte topic: the same query.
    assert reader.events("Transfer", 2, [holders[0]]) == found
    raw = bytes.fromhex(holders[0][2:])
    assert reader.events("Transfer", "to", [raw]) == found
    assert reader.events("Transfer", "to", [bytes(12) + raw]) == found


def test_unfiltered_and_empty_queries(any_chain: ChainClient) -> None:
    first, _, _ = _two_tokens(any_chain)
    reader = EventReader(any_chain.w3, first.address, first.abi)
    everything = reader.events("Transfer")
    assert [(e.block_number, e.log_index, e.args) for e in everything] == _web3_transfers(first)
    assert reader.events("Transfer", "from", []) == []
    later = EventReader(any_chain.w3, first.address, first.abi, everything[-1].block_number)
    assert later.events("Transfer") == everything[-1:]


def test_chunked_topic_and_address_lists_give_the_same_events(
    any_chain: ChainClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, holders = _two_tokens(any_chain)
    reader = EventReader(any_chain.w3, [first.address, second.address], first.abi)
    whole = reader.events("Transfer", "to", holders)
    monkeypatch.setattr(chain_events, "TOPIC_CHUNK", 1)
    monkeypatch.setattr(chain_events, "ADDRESS_CHUNK", 1)
    assert reader.events("Transfer", "to", holders) == whole
    assert len(whole) == 8


def test_receipt_logs_decode_as_web3_does(any_chain: ChainClient) -> None:
    token = _token(any_chain)
    holder = any_chain.accounts[3].address
    receipt = any_chain.sender(0).transact(token.functions.mint(holder, 5), gas=MINT_GAS)
    decoded = EventDecoder(token.abi).decode_receipt(receipt)
    theirs = [
        *token.events.Transfer().process_receipt(receipt, errors=DISCARD),
        *token.events.PaymentTokenMinted().process_receipt(receipt, errors=DISCARD),
    ]
    theirs.sort(key=lambda e: e["logIndex"])
    assert [(e.name, e.log_index, e.args) for e in decoded] == [
        (e["event"], e["logIndex"], dict(e["args"])) for e in theirs
    ]
    # A log as a JSON-RPC reply spells it (hex strings) decodes the same.
    if isinstance(any_chain.w3.provider, HTTPProvider):  # the in-process EVM has no JSON
        raw = any_chain.w3.provider.make_request(
            "eth_getTransactionReceipt", ["0x" + bytes(receipt["transactionHash"]).hex()]
        )
        hexed = [EventDecoder(token.abi).decode(log) for log in raw["result"]["logs"]]
        assert hexed == decoded
    # The shared decoder of the same ABI (another list of equal entries) decodes the same.
    shared = event_decoder([dict(e) for e in token.abi])
    assert shared is event_decoder(token.abi) and shared.decode_receipt(receipt) == decoded
    others = [e for e in token.abi if e.get("name") != "Transfer"]
    assert event_decoder(others) is not shared


def test_unknown_logs_and_arguments(embedded: ChainClient) -> None:
    token = _token(embedded)
    receipt = embedded.sender(0).transact(
        token.functions.mint(embedded.accounts[3].address, 5), gas=MINT_GAS
    )
    other = [e for e in token.abi if e.get("name") != "Transfer"]
    assert [e.name for e in EventDecoder(other).decode_receipt(receipt)] == ["PaymentTokenMinted"]
    reader = EventReader(embedded.w3, token.address, token.abi)
    with pytest.raises(ValueError, match="no indexed argument 'value'"):
        reader.events("Transfer", "value", [1])
    with pytest.raises(KeyError):
        reader.events("NoSuchEvent")


def test_topic_values() -> None:
    address = "0x" + "ab" * 20
    padded = bytes(12) + bytes.fromhex("ab" * 20)
    assert topic_value("address", Web3.to_checksum_address(address)) == padded
    assert topic_value("address", bytes.fromhex("ab" * 20)) == padded
    assert topic_value("uint256", 7) == encode(["uint256"], [7])
    assert topic_value("bytes32", b"\x01" * 32) == b"\x01" * 32
    assert topic_value("string", b"\x02" * 32) == b"\x02" * 32  # the value's hash
    with pytest.raises(ValueError, match="topic hash"):
        topic_value("string", "tea")


class _Refusing(HTTPProvider):
    """An HTTP provider whose node answers every call with a JSON-RPC error."""

    def make_request(self, method, params):  # type: ignore[no-untyped-def, override]
        return {"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "too many"}}


def test_node_errors_raise_rpc_error() -> None:
    w3 = Web3(_Refusing("http://127.0.0.1:9"))
    abi = [{"type": "event", "name": "Ping", "anonymous": False, "inputs": []}]
    reader = EventReader(w3, "0x" + "00" * 20, abi)
    with pytest.raises(RpcError, match="too many") as info:
        reader.events("Ping")
    assert info.value.code == -32005
