"""Type-2 transactions signed directly are byte for byte what eth_account signs, and a node
takes them: the Sender's own transactions go through chain.signing."""

from __future__ import annotations

import pytest
from coincurve import PrivateKey
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.signing import sign_1559, signs_directly
from tests._fixtures import client_for, needs_node

KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
ACCOUNT = Account.from_key(KEY)
UINT256 = st.integers(min_value=0, max_value=2**256 - 1)

transactions = st.fixed_dictionaries(
    {
        "chainId": st.integers(min_value=1, max_value=2**64 - 1),
        "nonce": st.integers(min_value=0, max_value=2**64 - 2),
        "maxPriorityFeePerGas": UINT256,
        "maxFeePerGas": UINT256,
        "gas": st.integers(min_value=0, max_value=2**64 - 1),
        "to": st.binary(min_size=20, max_size=20).map(to_checksum_address),
        "value": UINT256,
        "data": st.binary(max_size=600).map(lambda b: "0x" + b.hex()),
    }
)


@settings(max_examples=300, deadline=None)
@given(tx=transactions)
def test_direct_signing_equals_eth_accounts(tx):
    assert signs_directly(tx)
    expected = ACCOUNT.sign_transaction(tx)
    signed = sign_1559(PrivateKey(KEY), tx)
    assert signed.raw_transaction == bytes(expected.raw_transaction)
    assert signed.hash == bytes(expected.hash)


def test_a_contract_creation_and_bytes_fields_sign_the_same():
    creation = {"chainId": 31337, "nonce": 3, "maxPriorityFeePerGas": 1, "maxFeePerGas": 9,
                "gas": 500_000, "value": 0, "data": "0x6080604052"}  # fmt: skip
    assert sign_1559(PrivateKey(KEY), creation).raw_transaction == bytes(
        ACCOUNT.sign_transaction(creation).raw_transaction
    )
    as_bytes = {**creation, "to": bytes.fromhex("22" * 20), "data": b"\x60\x80"}
    as_text = {**creation, "to": to_checksum_address("0x" + "22" * 20), "data": "0x6080"}
    assert sign_1559(PrivateKey(KEY), as_bytes) == sign_1559(PrivateKey(KEY), as_text)


@pytest.mark.parametrize(
    "tx",
    [
        {"gasPrice": 1, "nonce": 0, "gas": 21_000, "chainId": 1},  # legacy
        {"maxFeePerGas": 2, "accessList": [{"address": "0x" + "11" * 20, "storageKeys": []}]},
        {"maxFeePerGas": 2, "type": 3},
        {"maxFeePerGas": 2, "blobVersionedHashes": []},
    ],
)
def test_other_transactions_are_left_to_eth_account(tx):
    assert not signs_directly(tx)


@pytest.mark.parametrize(
    ("field", "value"),
    [("nonce", -1), ("gas", 1.5), ("value", True), ("to", "0x1234"), ("chainId", "1")],
)
def test_malformed_fields_are_refused_not_encoded(field, value):
    tx = {"chainId": 1, "nonce": 0, "maxPriorityFeePerGas": 1, "maxFeePerGas": 2, "gas": 21_000,
          "to": "0x" + "11" * 20, "value": 0, "data": "0x", field: value}  # fmt: skip
    with pytest.raises(ValueError, match=field):
        sign_1559(PrivateKey(KEY), tx)


@needs_node()
def test_the_node_takes_what_the_sender_signs(anvil_node, tmp_path):
    """Pipelined transfers signed by the Sender are mined on anvil, from the Sender's address."""
    client = client_for(anvil_node, tmp_path)
    sender = client.sender(1)
    to = client.accounts[2].address
    before = client.w3.eth.get_balance(to)
    receipts = sender.wait(sender.send_many([{"to": to}] * 3, gas=21_000, value=7))
    assert [r["status"] for r in receipts] == [1, 1, 1]
    assert {r["from"] for r in receipts} == {sender.address}
    assert client.w3.eth.get_balance(to) == before + 21
