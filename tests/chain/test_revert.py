"""RevertDecoder: standard reverts, panics, custom errors with tuples, unknown selectors."""

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector

from chain.errors import ContractRevertError, revert_class
from chain.revert import RevertDecoder, reply_revert_data, revert_data

ABI = [
    {
        "type": "error",
        "name": "LotTooHeavy",
        "inputs": [
            {"name": "lotId", "type": "uint256"},
            {
                "name": "limits",
                "type": "tuple",
                "components": [{"name": "a", "type": "uint64"}, {"name": "b", "type": "address"}],
            },
        ],
    },
    {"type": "function", "name": "ignored", "inputs": []},
]
HOLDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_custom_error_with_tuple_argument():
    data = selector("LotTooHeavy(uint256,(uint64,address))") + encode(
        ["uint256", "(uint64,address)"], [7, (3, HOLDER)]
    )
    err = RevertDecoder([ABI]).decode(data)
    assert isinstance(err, revert_class("LotTooHeavy"))
    assert err.args_by_name == {"lotId": 7, "limits": (3, HOLDER.lower())}


def test_error_string_and_panic():
    decoder = RevertDecoder()
    err = decoder.decode(selector("Error(string)") + encode(["string"], ["no tea"]))
    assert err.name == "Error" and err.args_by_name == {"reason": "no tea"}
    panic = decoder.decode(selector("Panic(uint256)") + encode(["uint256"], [0x11]))
    assert panic.name == "Panic" and "overflow" in str(panic)


def test_unknown_selector_and_empty_revert():
    decoder = RevertDecoder()
    unknown = decoder.decode(b"\xde\xad\xbe\xef" + b"\x00" * 32)
    assert unknown.name == "UnknownError"
    assert unknown.args_by_name["selector"] == b"\xde\xad\xbe\xef"
    assert decoder.decode(b"").name == "Reverted"


def test_one_class_per_error_name():
    assert revert_class("X") is revert_class("X")
    assert issubclass(revert_class("X"), ContractRevertError)


def test_revert_data_from_exception_shapes():
    class Web3Style(Exception):
        data = "0x" + "ab" * 4

    class GanacheStyle(Exception):
        data = {"result": "0x" + "cd" * 4}  # noqa: RUF012 - mirrors the provider's payload

    assert revert_data(Web3Style()) == b"\xab" * 4
    assert revert_data(GanacheStyle()) == b"\xcd" * 4
    assert revert_data(ValueError("b'\\x01\\x02'")) == b"\x01\x02"
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = Web3Style()
    assert revert_data(wrapped) == b"\xab" * 4
    assert revert_data(RuntimeError("nothing")) is None


def test_eth_tester_text_whose_payload_contains_b_quote():
    """The repr starts at the first b'…; a `b'` inside the payload must not be taken instead."""
    payload = b"\x12\x34b'\x00" + b"\x00" * 32
    assert revert_data(ValueError(f"execution reverted: {payload!r}")) == payload


def test_error_replies_to_eth_call_tell_a_revert_from_a_node_failure():
    """anvil's and ganache's error replies, as seen from a batch of eth_calls."""
    vm = "VM Exception while processing transaction: "
    anvil = {"code": 3, "message": "execution reverted: custom error", "data": "0x2e0ee2b9"}
    assert reply_revert_data(anvil) == bytes.fromhex("2e0ee2b9")
    assert reply_revert_data({"code": -32000, "message": vm + "revert", "data": "0x"}) == b""
    assert reply_revert_data({"code": -32000, "message": vm + "out of gas", "data": "0x"}) is None
    assert reply_revert_data({"code": -32000, "message": "intrinsic gas too high"}) is None
