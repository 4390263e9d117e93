"""Pseudonymous ids and content hashes."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from eth_abi import encode
from eth_utils import keccak

from traceability.ids import farmer_id, harvest_data_hash, lot_id, plot_id, process_id

SALT = bytes(range(32))
NATIONAL_ID = "42280119850312001X"


def test_farmer_id_is_an_hmac_of_the_normalized_national_id():
    expected = hmac.new(SALT, f"farmer:{NATIONAL_ID}".encode(), hashlib.sha256).digest()
    assert farmer_id(SALT, NATIONAL_ID) == expected
    assert farmer_id(SALT, " 42280119850312001x ") == expected  # spacing and case do not matter
    assert (
        farmer_id(SALT, "４２２８０１１９８５０３１２００１Ｘ") == expected
    )  # full-width digits (NFKC)
    assert len(expected) == 32


def test_ids_depend_on_the_cooperative_salt_and_kind():
    other = bytes(32)
    assert farmer_id(SALT, NATIONAL_ID) != farmer_id(other, NATIONAL_ID)
    assert farmer_id(SALT, "X1") != plot_id(SALT, "X1")
    assert NATIONAL_ID.encode() not in farmer_id(SALT, NATIONAL_ID)


@pytest.mark.parametrize(("salt", "ref"), [(b"short", NATIONAL_ID), (SALT, "   ")])
def test_weak_salt_or_empty_reference_is_refused(salt, ref):
    with pytest.raises(ValueError):
        farmer_id(salt, ref)


def test_lot_and_process_ids_match_the_contract_formulas():
    creator = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    data_hash = keccak(text="record")
    assert lot_id(creator, data_hash) == keccak(
        encode(["address", "bytes32"], [creator, data_hash])
    )
    inputs = [keccak(text="a"), keccak(text="b")]
    assert process_id(inputs) == keccak(inputs[0] + inputs[1])


def test_harvest_data_hash_is_stable_and_covers_the_record_reference():
    args = (b"\1" * 32, b"\2" * 32, 5_000, 2, 1_700_000_000)
    assert harvest_data_hash(*args) == harvest_data_hash(*args)
    assert harvest_data_hash(*args, record_ref="R-1") != harvest_data_hash(*args, record_ref="R-2")
    assert harvest_data_hash(*args) != harvest_data_hash(
        b"\1" * 32, b"\2" * 32, 5_001, 2, 1_700_000_000
    )
