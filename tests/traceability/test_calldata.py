"""Harvest calldata encoded directly is byte for byte what web3 encodes, and the contract
answers it; harvest data hashes encoded directly equal eth-abi's."""

from __future__ import annotations

import os
import random
import time

import pytest
from eth_abi import encode
from eth_utils import keccak

from tests.traceability._system import System
from traceability import calldata
from traceability.ids import HARVEST_HASH_DOMAIN, harvest_data_hash, lot_id, lot_ids
from traceability.models import HarvestCheck


def _random_tuples(rng: random.Random, n: int) -> list[tuple]:
    """HarvestRecord tuples with values across each field's whole range."""
    return [
        (
            os.urandom(32),
            os.urandom(32),
            rng.choice([0, 1, 2**64 - 1, rng.randrange(2**64)]),
            rng.randrange(256),
            rng.choice([0, 2**64 - 1, rng.randrange(2**64)]),
            os.urandom(32),
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("n", [0, 1, 7, 300])
def test_calldata_equals_web3s_encoding(module_system: System, n: int):
    tt = module_system.tt
    records = _random_tuples(random.Random(n), n)
    coop = module_system.coop.address
    assert calldata.record_harvests_data(records) == bytes.fromhex(
        tt.encode_abi("recordHarvests", [records])[2:]
    )
    assert calldata.check_harvests_data(coop, 2**70, records) == bytes.fromhex(
        tt.encode_abi("checkHarvests", [coop, 2**70, records])[2:]
    )
    factory = module_system.processor.address
    assert calldata.record_deliveries_data(records, factory) == bytes.fromhex(
        tt.encode_abi("recordDeliveries", [records, factory])[2:]
    )


def test_out_of_range_values_are_refused():
    (record,) = _random_tuples(random.Random(1), 1)
    for bad in [(*record[:2], 2**64, *record[3:]), (*record[:3], 256, *record[4:])]:
        with pytest.raises(ValueError):
            calldata.record_harvests_data([bad])
    with pytest.raises(ValueError):
        calldata.record_harvests_data([(b"\x01" * 31, *record[1:])])
    with pytest.raises(ValueError):
        calldata.check_harvests_data("0x1234", 0, [record])
    with pytest.raises(ValueError):
        calldata.record_deliveries_data([record], "0x1234")


def test_the_contract_answers_the_direct_encoding(system: System):
    """checkHarvests' verdicts decode from the raw reply; recordHarvests records from raw
    calldata sent as is (one OK, one unknown plot, one duplicate of the first)."""
    ok = system.harvest_tuple(0)
    unknown = system.harvest_tuple(1, plot=keccak(text="no-such-plot"))
    w3, now = system.client.w3, int(time.time())
    data = calldata.check_harvests_data(system.coop.address, now, [ok, unknown])
    reply = w3.eth.call({"from": system.coop.address, "to": system.tt.address, "data": data})
    assert calldata.decode_checks(reply, 2) == [HarvestCheck.OK, HarvestCheck.UNKNOWN_PLOT]
    with pytest.raises(ValueError, match="2 verdicts for 3"):
        calldata.decode_checks(reply, 3)
    receipt = system.coop.transact(
        {"to": system.tt.address, "data": calldata.record_harvests_data([ok])}, gas=300_000
    )
    assert receipt["status"] == 1
    data = calldata.check_harvests_data(system.coop.address, now, [ok])
    reply = w3.eth.call({"from": system.coop.address, "to": system.tt.address, "data": data})
    assert calldata.decode_checks(reply, 1) == [HarvestCheck.DUPLICATE]


def test_harvest_data_hash_equals_eth_abis_encoding():
    rng = random.Random(7)
    types = ["string", "bytes32", "bytes32", "uint64", "uint8", "uint64", "string"]
    for _ in range(500):
        farmer, plot = os.urandom(32), os.urandom(32)
        grams, grade, at = rng.randrange(2**64), rng.randrange(256), rng.randrange(2**64)
        ref = "".join(rng.choice("ab茶0 -") for _ in range(rng.randrange(0, 80)))
        want = keccak(encode(types, [HARVEST_HASH_DOMAIN, farmer, plot, grams, grade, at, ref]))
        assert harvest_data_hash(farmer, plot, grams, grade, at, ref) == want
    with pytest.raises(Exception):  # noqa: B017 - eth-abi's own refusal, as before
        harvest_data_hash(farmer, plot, 2**64, 1, 1, "")


def test_lot_ids_equal_lot_id_of_each():
    creator = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    hashes = [os.urandom(32) for _ in range(20)]
    assert lot_ids(creator, hashes) == [lot_id(creator, h) for h in hashes]
