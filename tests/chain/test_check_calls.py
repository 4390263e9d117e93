"""Checking many calls at once (ChainClient.check_calls): on every kind of node, each call's
outcome is what check_call gives it one by one: None where the chain would take it, the same
decoded custom error where it would refuse it, across JSON-RPC batches; nothing is sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chain import views
from chain.errors import ContractRevertError
from chain.nodes import ProcessNode
from chain.rpc import JsonRpc
from chain.views import ViewReadError, refusals
from tests._fixtures import client_for, start_node
from tests.traceability._system import System, build_system


@pytest.fixture(scope="module", params=["embedded", "anvil", "ganache"])
def system(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[System]:
    """TeaTrace with farmers and a few harvest lots, on each kind of node."""
    data = tmp_path_factory.mktemp(f"checks-{request.param}")
    node: ProcessNode | None = None
    if request.param != "embedded":
        node = start_node(request.param, data / "node")
    built = build_system(client_for(node or "embedded", data / "chain"))
    yield built
    if node is not None:
        node.stop()


def _one_by_one(system: System, fn, sender: str) -> str | None:
    """check_call's verdict on one call (ChainClient.refusal): the error's name, or None."""
    error = system.client.refusal(fn, sender)
    return None if error is None else error.name


def test_each_call_gets_what_check_call_gives_it(system: System, monkeypatch):
    monkeypatch.setattr(views, "READ_BATCH", 2)  # several batches over HTTP
    tt, coop = system.tt, system.coop.address
    mine = [bytes(x) for x in system.harvest([5_000, 6_000])]
    unknown = b"\x07" * 32
    to = system.processor.address
    calls = [tt.functions.ship(mine[0], to), tt.functions.ship(unknown, to),
             tt.functions.ship(mine[1], system.outsider.address), tt.functions.ship(mine[1], to),
             tt.functions.recall(mine[0], b"\x01" * 32)]  # fmt: skip
    got = system.client.check_calls(calls, coop)
    assert [None if e is None else e.name for e in got] == [
        _one_by_one(system, fn, coop) for fn in calls
    ]
    assert got[0] is None and got[3] is None
    assert {e.name for e in got if e is not None} >= {"TeaTraceUnknownLot"}
    assert all(isinstance(e, ContractRevertError) for e in got if e is not None)
    assert [tt.functions.lot(x).call()[0] for x in mine] == [coop, coop]  # nothing was sent


def test_each_call_may_have_its_own_sender(system: System):
    """The same call is taken from the lot's holder and refused from an outsider."""
    tt = system.tt
    (lot,) = [bytes(x) for x in system.harvest([4_000])]
    call = tt.functions.ship(lot, system.processor.address)
    got = system.client.check_calls([call, call], [system.coop.address, system.outsider.address])
    assert got[0] is None and got[1] is not None
    assert got[1].name == _one_by_one(system, call, system.outsider.address)
    with pytest.raises(ValueError, match="2 calls but 1 senders"):
        system.client.check_calls([call, call], [system.coop.address])


def test_no_calls_is_no_request(system: System):
    assert system.client.check_calls([], system.coop.address) == []


def test_a_node_error_that_is_not_a_revert_is_not_taken_for_one(system: System):
    """A call the node cannot run at all (too little gas for its data) raises, rather than
    being reported as a refusal without a reason."""
    rpc = views.rpc_of(system.client.w3)
    if rpc is None:
        pytest.skip("the in-process EVM has no JSON-RPC endpoint")
    assert isinstance(rpc, JsonRpc)
    payload = {"from": system.coop.address, "to": system.tt.address, "gas": "0x1", "data": "0x"}
    with pytest.raises(ViewReadError, match="batched check failed"):
        refusals(rpc, [[payload, "latest"]])
