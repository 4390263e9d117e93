"""Every projected event exists, with the arguments the handler reads, in the compiled ABIs."""

from __future__ import annotations

import ast
import inspect

import pytest

from chain.compiler import compile_contracts
from chain.config import PROJECT_ROOT
from indexer.projections import HANDLERS

ARTIFACTS = compile_contracts(PROJECT_ROOT, PROJECT_ROOT / ".tealedger" / "cache")
EVENTS = {
    e["name"]: {i["name"] for i in e["inputs"]}
    for a in ARTIFACTS.all()
    if a.source.startswith("contracts/") and not a.source.startswith("contracts/test/")
    for e in a.abi
    if e.get("type") == "event"
}


def _keys_read(handler) -> set[str]:
    """String subscripts of the handler's third argument (`a["lot"]`)."""
    tree = ast.parse(inspect.getsource(handler))
    return {
        node.slice.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "a"
        and isinstance(node.slice, ast.Constant)
    }


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_handler_matches_the_contract_event(name: str) -> None:
    assert name in EVENTS, f"no compiled contract emits {name}: was it renamed?"
    missing = _keys_read(HANDLERS[name]) - EVENTS[name]
    assert not missing, f"{name} has no argument(s) {sorted(missing)}"
