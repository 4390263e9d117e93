"""Batched view reads (chain.views) return what web3's own calls return, on the in-process EVM
(one by one) and on anvil (JSON-RPC batches, split at READ_BATCH): structs, arrays of structs,
checksummed addresses; an address with no contract is a clear error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chain import client as client_module
from chain import views
from chain.nodes import ProcessNode
from chain.views import ViewReadError, read_many, try_many, view
from tests._fixtures import client_for, start_node
from tests.traceability._system import System, build_system


@pytest.fixture(scope="module", params=["embedded", "anvil"])
def system(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[System]:
    """TeaTrace with farmers, plots and a few harvest lots, on each kind of provider."""
    data = tmp_path_factory.mktemp(f"views-{request.param}")
    node: ProcessNode | None = None
    if request.param == "anvil":
        node = start_node("anvil", data / "node")
    built = build_system(client_for(node or "embedded", data / "chain"))
    built.harvest([10_000, 20_000, 30_000])
    yield built
    if node is not None:
        node.stop()


def test_reads_match_web3_calls(system: System, monkeypatch: pytest.MonkeyPatch):
    tt, abi = system.tt, system.tt.abi
    monkeypatch.setattr(views, "READ_BATCH", 2)  # several batches on anvil
    lots = [bytes(x) for x in system.harvest([5_000, 6_000])]
    calls = [(tt.address, view(abi, "farmer"), (f,)) for f in system.farmers]
    calls.append((tt.address, view(abi, "lots"), (lots,)))
    calls.append((tt.address, view(abi, "farmerCount"), ()))
    got = read_many(system.client.w3, calls)
    expected = [tt.functions.farmer(f).call() for f in system.farmers]
    assert [g[0] for g in got[:-2]] == [tuple(e) for e in expected]
    assert got[-2][0] == tuple(tuple(x) for x in tt.functions.lots(lots).call())
    assert got[-1] == (tt.functions.farmerCount().call(),)
    wallet = got[0][0][1]  # an address inside a struct, checksummed as web3 gives it
    assert wallet == expected[0][1] and wallet != wallet.lower()


def test_an_address_without_a_contract_is_a_clear_error(system: System):
    nobody = "0x" + "12" * 20
    with pytest.raises(ViewReadError, match="no contract answered"):
        read_many(system.client.w3, [(nobody, view(system.tt.abi, "farmerCount"), ())])


def test_address_bound_contracts_are_kept_up_to_a_bound(
    system: System, monkeypatch: pytest.MonkeyPatch
):
    """The client builds a contract object for an address once, and keeps only the most
    recently used BOUND_CONTRACTS of them."""
    monkeypatch.setattr(client_module, "BOUND_CONTRACTS", 2)
    client = system.client
    client._by_address.clear()
    a, b, c = ("0x" + f"{i:02x}" * 20 for i in (1, 2, 3))
    first = client.contract("TeaTrace", a)
    assert client.contract("TeaTrace", a.upper().replace("0X", "0x")) is first
    client.contract("TeaTrace", b)
    client.contract("TeaTrace", a)  # a is now the most recent: b goes first
    client.contract("TeaTrace", c)
    assert set(client._by_address) == {("TeaTrace", a), ("TeaTrace", c)}


def test_try_many_gives_none_where_the_contract_would_refuse(system: System):
    """A state-changing call tried as a sender: its outputs where it would pass, None where it
    would revert (the outsider holds no role), each in the same batch."""
    tt = system.tt
    ship = view(tt.abi, "ship")
    lot = bytes(system.harvest(7_000)[0])
    to = system.processor.address
    calls = [(tt.address, ship, (lot, to))]
    assert try_many(system.client.w3, system.coop.address, calls) == [()]
    assert try_many(system.client.w3, system.outsider.address, calls) == [None]
    assert tt.functions.lot(lot).call()[0] == system.coop.address  # nothing was sent


def test_call_data_is_what_web3_encodes(system: System):
    """call_data gives web3's own bytes for scalars, arrays, structs, arrays of structs and a
    bytes32 given as a hex string."""
    tt = system.tt
    lot, to = b"\x11" * 32, system.processor.address
    record = (b"\x01" * 32, b"\x02" * 32, 1_500, 2, 1_700_000_000, b"\x03" * 32)
    calls = [
        tt.functions.ship(lot, to),
        tt.functions.shipBatch([lot, b"\x22" * 32], to),
        tt.functions.recordHarvests([record, record]),
        tt.functions.process([lot], [(900, b"\x04" * 32)]),
        tt.functions.farmerCount(),
        tt.functions.ship("0x" + "11" * 32, to),
    ]
    for fn in calls:
        assert views.call_data(fn) == fn._encode_transaction_data()
