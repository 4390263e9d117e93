"""record_harvests on anvil over HTTP: direct calldata, receipts fetched in JSON-RPC batches
(logs as the node sends them), batches of hundreds of records within the block gas limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from chain.client import ChainClient
from chain.config import (
    ANVIL_BLOCK_GAS_LIMIT,
    MIN_HISTORY_BLOCKS,
    MIN_NODE_STATES,
    ChainSettings,
)
from chain.nodes import BLOCK_GAS_LIMIT, PRUNED_STATES, free_port, make_node
from chain.sender import MAX_FEE_GROWTH, PRIORITY_FEE_WEI
from tests._fixtures import client_for, make_settings, needs_node
from tests.traceability._system import System, build_system
from tests.traceability.test_service import harvest
from traceability import calldata
from traceability.ids import lot_id
from traceability.models import HarvestCheck, LotState
from traceability.service import (
    HARVEST_RECORD_GAS,
    HARVEST_TX_GAS,
    MAX_HARVEST_BATCH,
    Outcome,
    RecordingService,
    harvest_batch_cap,
)

pytestmark = needs_node()


@pytest.fixture(scope="module")
def anvil_system(anvil_node, tmp_path_factory: pytest.TempPathFactory) -> System:
    """TeaTrace deployed on the session's anvil (its farmers and plots as build_system's)."""
    data_dir: Path = tmp_path_factory.mktemp("harvest-anvil")
    data_dir.mkdir(parents=True, exist_ok=True)
    return build_system(client_for(anvil_node, data_dir), farmers=4)


def _service(system: System, batch_size: int) -> RecordingService:
    return RecordingService(system.client, 1, contract=system.tt, batch_size=batch_size)


def test_the_largest_batch_stays_within_the_block_gas_target():
    assert HARVEST_TX_GAS + HARVEST_RECORD_GAS * MAX_HARVEST_BATCH <= BLOCK_GAS_LIMIT // 2
    assert HARVEST_TX_GAS + HARVEST_RECORD_GAS * (MAX_HARVEST_BATCH + 1) > BLOCK_GAS_LIMIT // 2


def test_big_batches_are_recorded_every_receipt_checked(anvil_system: System):
    coop = _service(anvil_system, MAX_HARVEST_BATCH)
    records = [
        harvest(anvil_system, i % 4, grams=1_000 + i) for i in range(2 * MAX_HARVEST_BATCH + 5)
    ]
    report = coop.record_harvests(records)
    assert report.recorded == len(records) and len(report.transactions) == 3
    w3 = anvil_system.client.w3
    assert all(w3.eth.get_transaction_receipt(h)["status"] == 1 for h in report.transactions)
    views = coop.lots([lot_id(coop.address, r.key) for r in records])
    assert all(v.state is LotState.HELD and v.holder == coop.address for v in views)
    again = coop.record_harvests(records)
    assert again.duplicates == len(records) and again.transactions == []


def test_a_race_lost_on_chain_is_a_duplicate_and_a_stale_batch_is_rechecked(
    anvil_system: System, monkeypatch: pytest.MonkeyPatch
):
    """A record the pre-check passed but another submission recorded first is skipped by the
    contract (HarvestSkipped, read from the raw receipt); a batch that reverts is checked
    again and its valid records resent once."""
    coop = _service(anvil_system, 2)
    taken = harvest(anvil_system, 0)
    assert coop.record_harvests([taken]).recorded == 1
    fresh = [harvest(anvil_system, i) for i in (1, 2, 3)]
    wrong_plot = harvest(anvil_system, 2, plot=anvil_system.plots[0])
    real = coop.check_harvests
    calls = {"n": 0}

    def stale_first_check(batch, as_of=None):
        calls["n"] += 1
        return [HarvestCheck.OK] * len(batch) if calls["n"] == 1 else real(batch, as_of)

    monkeypatch.setattr(coop, "check_harvests", stale_first_check)
    # batches: [taken, fresh0] (mined: one skipped), [wrong_plot, fresh1] (reverts), [fresh2]
    report = coop.record_harvests([taken, fresh[0], wrong_plot, fresh[1], fresh[2]])
    assert [o.outcome for o in report.outcomes] == [
        Outcome.DUPLICATE,
        Outcome.RECORDED,
        Outcome.REJECTED,
        Outcome.RECORDED,
        Outcome.RECORDED,
    ]
    assert "already recorded on chain" in report.outcomes[0].reason
    assert report.outcomes[2].reason == HarvestCheck.UNKNOWN_PLOT.reason
    assert calls["n"] == 2 and len(report.transactions) == 3


def test_a_pipeline_of_full_blocks_stays_mineable(anvil_system: System):
    """Batches above the gas target raise anvil's base fee block after block (~7% each):
    a long pipeline of them quoted once left its last ones unmined under their fee cap."""
    system, batch = anvil_system, 747
    gas = HARVEST_TX_GAS + HARVEST_RECORD_GAS * batch
    assert BLOCK_GAS_LIMIT // 2 < gas <= BLOCK_GAS_LIMIT
    calls = [
        {
            "to": system.tt.address,
            "data": calldata.record_harvests_data(
                [system.harvest_tuple(i % 4) for i in range(batch)]
            ),
        }
        for _ in range(15)
    ]
    w3 = system.client.w3
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    # the cap grows by up to 1/8 for each (anvil's blocks here grow the base fee ~7.5% each)
    quote = system.coop.fees([gas] * len(calls))["maxFeePerGas"]
    assert quote >= 2 * base * (1 + (gas - BLOCK_GAS_LIMIT // 2) / (4 * BLOCK_GAS_LIMIT)) ** 15
    assert system.coop.fees([gas // 2] * len(calls)) == system.coop.fees()  # within the target
    ceiling = 2 * MAX_FEE_GROWTH * base + PRIORITY_FEE_WEI  # a long pipeline's cap stops here
    assert system.coop.fees([gas] * 1_000)["maxFeePerGas"] == ceiling
    settled = system.coop.settle(system.coop.send_many(calls, gas=gas))
    assert all(not isinstance(r, Exception) and r["status"] == 1 for r in settled)
    assert w3.eth.get_block("latest")["baseFeePerGas"] > 1.8 * base


def test_bigger_blocks_take_bigger_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """TEALEDGER_BLOCK_GAS_LIMIT gives a started anvil bigger blocks, and the batch cap follows
    the node's block gas limit (harvest_batch_cap): on 100 M-gas blocks 1,247 records go in one
    transaction where 30 M-gas blocks take 372."""
    monkeypatch.setenv("TEALEDGER_BLOCK_GAS_LIMIT", "100000000")
    settings = make_settings(tmp_path, "anvil", free_port())
    assert settings.block_gas_limit == 100_000_000
    node = make_node(settings)
    node.start()
    try:
        client = ChainClient(settings, node)
        assert client.w3.eth.get_block("latest")["gasLimit"] == 100_000_000
        system = build_system(client, farmers=4)
        coop = _service(system, 10**6)
        assert coop.harvest_batch_cap == harvest_batch_cap(100_000_000) == 1_247
        records = [harvest(system, i % 4, grams=2_000 + i) for i in range(1_300)]
        report = coop.record_harvests(records)
        assert report.recorded == 1_300 and len(report.transactions) == 2
    finally:
        node.stop()


def test_anvil_mines_big_blocks_unless_told_otherwise(tmp_path: Path):
    """With no TEALEDGER_BLOCK_GAS_LIMIT a started anvil mines 2,000 M-gas blocks (its state
    root costs it a pass over all storage a block: fewer, bigger blocks) and keeps 32 block
    states (each a copy of all storage), ganache 30 M-gas blocks."""
    settings = make_settings(tmp_path, "anvil", free_port())
    assert settings.block_gas_limit is None
    node = make_node(settings)
    assert node.block_gas_limit == ANVIL_BLOCK_GAS_LIMIT == 2_000_000_000
    args = node.arguments()
    assert args[args.index("--prune-history") + 1] == str(PRUNED_STATES) == "32"
    node.start()
    try:
        client = ChainClient(settings, node)
        assert client.w3.eth.get_block("latest")["gasLimit"] == ANVIL_BLOCK_GAS_LIMIT
    finally:
        node.stop()
    ganache = make_node(make_settings(tmp_path, "ganache", free_port()))
    assert ganache.block_gas_limit == BLOCK_GAS_LIMIT
    assert ganache.arguments()[ganache.arguments().index("--miner.blockGasLimit") + 1] == str(
        BLOCK_GAS_LIMIT
    )


def test_anvil_keeps_the_history_and_states_it_is_told_to(tmp_path: Path):
    """TEALEDGER_HISTORY_BLOCKS and TEALEDGER_NODE_STATES reach anvil's flags; without them it
    keeps every block's transactions; values below the floors are refused."""
    plain = make_node(make_settings(tmp_path, "anvil", free_port())).arguments()
    assert "--transaction-block-keeper" not in plain
    settings = make_settings(tmp_path, "anvil", free_port()).model_copy(
        update={"history_blocks": 64, "node_states": 8}
    )
    args = make_node(settings).arguments()
    assert args[args.index("--transaction-block-keeper") + 1] == "64"
    assert args[args.index("--prune-history") + 1] == "8"
    with pytest.raises(ValidationError, match="history_blocks"):
        ChainSettings(history_blocks=MIN_HISTORY_BLOCKS - 1)
    with pytest.raises(ValidationError, match="node_states"):
        ChainSettings(node_states=MIN_NODE_STATES - 1)
