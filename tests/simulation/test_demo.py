"""The demo's season on a real node: recorded once, re-run without duplicates, traceable."""

import pytest
from rich.console import Console

from chain.nodes import ProcessNode
from tealedger.demo.season import run_season
from tealedger.system import deploy_system
from tests._fixtures import client_for, needs_node
from traceability.lineage import LineageReader


@needs_node()
@pytest.mark.node
def test_season_is_idempotent_and_traceable(anvil_node: ProcessNode, tmp_path):
    client = client_for(anvil_node, tmp_path)
    deploy_system(client)
    quiet = Console(quiet=True)
    region, first = run_season(client, farmers=8, seed=5, console=quiet)
    assert first.harvests == len(region.season.harvests) > 100
    assert first.lots_sold + first.quality_failures == first.made_tea_lots
    assert first.recalled_lots >= 1 and first.new_transactions > 0
    assert first.sales_fen > 0

    _, again = run_season(client, farmers=8, seed=5, console=quiet)
    assert again.new_transactions == 0 and again.gas_used == 0
    assert (again.lots_sold, again.sales_fen) == (first.lots_sold, first.sales_fen)

    sold_lot = first.made_lots[0]
    lineage = LineageReader.from_client(client).trace(sold_lot)
    batch = region.season.batches[0]
    assert {h.lot for h in lineage.harvests()} == {region.lot_ids[i] for i in batch.harvests}


@needs_node()
@pytest.mark.node
def test_demo_indexes_gives_logins_and_serves(anvil_node: ProcessNode, tmp_path):
    import httpx

    from api.core.settings import ApiSettings
    from chain.nodes import free_port
    from tealedger.demo.service import (
        adopt_members,
        demo_logins,
        index_chain,
        start_service,
        stop_service,
    )

    client = client_for(anvil_node, tmp_path)
    deploy_system(client)
    settings = ApiSettings(data_dir=tmp_path, environment="test")
    region, summary = run_season(client, 3, seed=9, console=Console(quiet=True), settings=settings)
    sent = client.w3.eth.block_number
    assert adopt_members(client, settings, region) == 3
    assert adopt_members(client, settings, region) == 0  # a re-run adds nobody twice
    assert client.w3.eth.block_number == sent  # found on chain under its own pseudonyms
    progress = index_chain(client, settings.database_url)
    assert progress.events > summary.harvests
    first, second = demo_logins(client, settings), demo_logins(client, settings)
    assert [x.role for x in first] == [x.role for x in second]
    assert {x.api_key for x in first}.isdisjoint({x.api_key for x in second})
    url = start_service(settings, client.settings, free_port())
    try:
        admin = next(x for x in second if x.role == "admin")
        orgs = httpx.get(f"{url}/admin/organisations", headers={"X-API-Key": admin.api_key})
        assert orgs.json()["total"] == 10
        regulator = next(x for x in second if x.role == "regulator")
        scan = httpx.post(f"{url}/regulator/scans", headers={"X-API-Key": regulator.api_key})
        assert scan.status_code == 200 and scan.json()["findings"] == 0, scan.text  # honest
        # the season's members are in their cooperative's register, by name, with their plots
        coop = next(x for x in second if x.role == "cooperative")
        listed = httpx.get(f"{url}/cooperatives/farmers", headers={"X-API-Key": coop.api_key})
        mine = {f["name"] for f in listed.json()["items"]}
        expected = {f.name for f in region.season.farmers if f.cooperative == 0}
        assert mine == expected and mine
        fid = listed.json()["items"][0]["farmer_id"]
        plots = httpx.get(f"{url}/cooperatives/plots", params={"farmer_id": fid},
                          headers={"X-API-Key": coop.api_key})  # fmt: skip
        assert plots.status_code == 200 and plots.json()["total"] >= 1, plots.text
        lot = "0x" + summary.made_lots[0].hex()
        assert httpx.get(f"{url}/public/lots/{lot}/trace").json()["kind"] == "made_tea"
    finally:
        assert stop_service(settings)
    assert not stop_service(settings)
