"""A sold lot's money through the API on the session's chain: shares previewed from lineage,
committed by the lot's maker, a sale settled by its holder, and what each settlement paid.

One chain (TeaTrace, the lending contracts and SaleSettlement) and one app per module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from api.core.models import Role
from api.supply_chain.batch import indexed_lots
from api.supply_chain.settlement import lineage_shares
from chain.client import ChainClient
from chain.config import ChainSettings
from chain.nodes import free_port
from indexer.runner import index_once
from lending.loans.disbursement import LoanDesk
from lending.loans.settlement import split_amount
from tealedger.system import deploy_system
from tests._fixtures import client_for
from tests.api.test_cooperatives import Org, World, _harvest_hash, served_world
from traceability.ids import lot_id

UNKNOWN = "0x" + "ab" * 32


@dataclass
class Sold:
    """A made-tea lot held by the distributor, from two farmers' leaves."""

    world: World
    lot: str
    coop: Org
    processor: Org
    distributor: Org
    farmers: dict[str, int]  # farmer id -> fresh-leaf grams


@pytest.fixture(scope="module")
def world(anvil_node, tmp_path_factory) -> World:
    """The whole contract system on anvil and the API on SQLite, with a platform admin."""
    tmp = tmp_path_factory.mktemp("settle-api")
    chain = client_for(anvil_node, tmp / "chain")
    chain.settings.data_dir.mkdir(parents=True, exist_ok=True)
    deploy_system(chain)
    with served_world(chain, tmp, f"sqlite:///{tmp / 'api.db'}") as world:
        yield world


@pytest.fixture(scope="module")
def sold(world) -> Sold:
    """Two members' leaves processed into tea and shipped to the distributor."""
    return make_sold(world)


def make_sold(
    world: World,
    coop: Org | None = None,
    processor: Org | None = None,
    distributor: Org | None = None,
    grams: tuple[int, int] = (40_000, 25_000),
) -> Sold:
    """Two members' leaves of `coop`, made into tea by `processor`, shipped to `distributor`."""
    coop = coop or world.org(Role.COOPERATIVE, "Enshi Yulu Cooperative")
    processor = processor or world.org(Role.PROCESSOR)
    distributor = distributor or world.org(Role.DISTRIBUTOR)
    post = world.http.post
    members = [world.member(coop) for _ in range(2)]
    leaves = [world.harvest(coop, m, g) for m, g in zip(members, grams, strict=True)]
    ship = {"lots": leaves, "to_org_id": processor.id}
    assert post("/cooperatives/shipments", json=ship, headers=coop.headers).status_code == 201
    receipt = {"lots": leaves}
    assert (
        post("/cooperatives/receipts", json=receipt, headers=processor.headers).status_code == 200
    )
    tea_grams = sum(grams) // 5  # a 20% yield
    run = {
        "inputs": leaves,
        "outputs": [{"grams": tea_grams}],
        "process_ref": f"P-{leaves[0][:10]}",
    }
    made = post("/cooperatives/processing", json=run, headers=processor.headers)
    assert made.status_code == 201, made.text
    tea = made.json()["outputs"][0]["lot"]
    ship = {"lots": [tea], "to_org_id": distributor.id}
    assert post("/cooperatives/shipments", json=ship, headers=processor.headers).status_code == 201
    receipt = {"lots": [tea]}
    assert (
        post("/cooperatives/receipts", json=receipt, headers=distributor.headers).status_code == 200
    )
    farmers = {m[0]: g for m, g in zip(members, grams, strict=True)}
    return Sold(world, tea, coop, processor, distributor, farmers)


def _mint(world: World, to: str, fen: int) -> None:
    """Development eCNY for a payer (the token admin mints it)."""
    desk = LoanDesk(world.chain, "LoanFactory")
    world.chain.sender(0).transact(desk.mint_call(to, fen))


def test_preview_commit_settle_and_read_back(sold):
    http, lot = sold.world.http, sold.lot
    url = f"/cooperatives/lots/{lot}"
    preview = http.get(f"{url}/shares?amount_fen=100001", headers=sold.distributor.headers)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert {f["farmer_id"]: f["weight_grams"] for f in body["farmers"]} == sold.farmers
    assert body["maker"] == sold.processor.address and body["holder"] == sold.distributor.address
    assert body["committed_hash"] is None and body["committed_matches"] is False
    weights = [f["weight_grams"] for f in body["farmers"]]
    assert [f["share_fen"] for f in body["farmers"]] == split_amount(100_001, weights)
    # nothing committed yet: a sale cannot be settled
    early = http.post(
        f"{url}/settlements", json={"amount_fen": 100}, headers=sold.distributor.headers
    )
    assert early.status_code == 409 and "no committed shares" in early.json()["detail"]
    # only the maker commits
    assert http.post(f"{url}/shares", headers=sold.distributor.headers).status_code == 403
    committed = http.post(f"{url}/shares", headers=sold.processor.headers)
    assert committed.status_code == 201, committed.text
    assert committed.json()["shares_hash"] == body["shares_hash"]
    after = http.get(f"{url}/shares", headers=sold.processor.headers).json()
    assert after["committed_matches"] is True and after["committed_hash"] == body["shares_hash"]
    # the holder pays: first without the money (checked before anything is sent), then with it
    poor = http.post(
        f"{url}/settlements", json={"amount_fen": 100_001}, headers=sold.distributor.headers
    )
    assert poor.status_code == 409 and "balance" in poor.json()["detail"]
    _mint(sold.world, sold.distributor.address, 100_001)
    paid = http.post(
        f"{url}/settlements", json={"amount_fen": 100_001}, headers=sold.distributor.headers
    )
    assert paid.status_code == 201, paid.text
    rows = paid.json()["farmers"]
    assert sum(r["share_fen"] for r in rows) == 100_001
    for r in rows:
        parts = r["repaid_to_loan_fen"] + r["paid_to_farmer_fen"] + r["held_for_farmer_fen"]
        assert parts == r["share_fen"]
    token = LoanDesk(sold.world.chain, "LoanFactory").token
    settlement_address = sold.world.chain.contract("SaleSettlement").address
    allowance = token.functions.allowance(sold.distributor.address, settlement_address).call()
    assert allowance == 0  # exactly the amount was approved, and spent
    # the shares are frozen now: the contract's reason comes back as 409
    frozen = http.post(f"{url}/shares", headers=sold.processor.headers)
    assert frozen.status_code == 409 and "SettlementSharesFrozen" in frozen.text
    listed = http.get(f"{url}/settlements", headers=sold.processor.headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["total"] == 1
    (sale,) = page["items"]
    assert sale["sale_id"] == paid.json()["sale_id"] and sale["amount_fen"] == 100_001
    assert sale["farmers"] == rows and sale["payer"] == sold.distributor.address


def test_other_organisations_unknown_lots_and_bad_input(sold):
    http, url = sold.world.http, f"/cooperatives/lots/{sold.lot}"
    stranger = sold.world.org(Role.DISTRIBUTOR, "Another Distributor")
    other_coop = sold.world.org(Role.COOPERATIVE, "Wufeng Cooperative")
    for org in (stranger, other_coop):
        assert http.get(f"{url}/shares", headers=org.headers).status_code == 403
        assert http.get(f"{url}/settlements", headers=org.headers).status_code == 403
        assert http.post(f"{url}/shares", headers=org.headers).status_code == 403
        pay = http.post(f"{url}/settlements", json={"amount_fen": 5}, headers=org.headers)
        assert pay.status_code == 403
    # the cooperative whose leaves went in neither made, holds nor bought the tea
    assert http.get(f"{url}/shares", headers=sold.coop.headers).status_code == 403
    # the maker may look but not pay
    pay = http.post(f"{url}/settlements", json={"amount_fen": 5}, headers=sold.processor.headers)
    assert pay.status_code == 403
    gone = f"/cooperatives/lots/{UNKNOWN}"
    assert http.get(f"{gone}/shares", headers=sold.distributor.headers).status_code == 404
    assert http.get(f"{gone}/settlements", headers=sold.distributor.headers).status_code == 404
    bad = http.post(f"{url}/settlements", json={"amount_fen": 0}, headers=sold.distributor.headers)
    assert bad.status_code == 422
    assert (
        http.get(f"{url}/shares?amount_fen=-1", headers=sold.distributor.headers).status_code == 422
    )
    assert http.get(f"{url}/shares").status_code == 401
    inspector = sold.world.org(Role.INSPECTOR)
    assert http.get(f"{url}/shares", headers=inspector.headers).status_code == 403


def test_node_down_is_503(sold):
    world = sold.world
    dead = ChainSettings(backend="rpc", rpc_url=f"http://127.0.0.1:{free_port()}")
    world.app.state.chain = ChainClient(dead)
    try:
        url = f"/cooperatives/lots/{sold.lot}"
        assert world.http.get(f"{url}/shares", headers=sold.distributor.headers).status_code == 503
        body = {"amount_fen": 5}
        pay = world.http.post(f"{url}/settlements", json=body, headers=sold.distributor.headers)
        assert pay.status_code == 503
    finally:
        world.app.state.chain = world.chain


def test_a_harvest_lot_is_made_by_its_cooperative(sold):
    world, coop = sold.world, sold.coop
    member = world.member(coop)
    leaf = world.harvest(coop, member, 12_000)
    url = f"/cooperatives/lots/{leaf}/shares"
    preview = world.http.get(url, headers=coop.headers)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["maker"] == coop.address and body["holder"] == coop.address
    assert [(f["farmer_id"], f["weight_grams"]) for f in body["farmers"]] == [(member[0], 12_000)]
    committed = world.http.post(url, headers=coop.headers)
    assert committed.status_code == 201, committed.text
    assert world.http.get(url, headers=coop.headers).json()["committed_matches"] is True


def test_pages_check_the_session_the_form_token_and_the_amount(sold):
    world, lot = sold.world, sold.lot
    assert world.http.get(f"/supply/lots/{lot}", follow_redirects=False).status_code in (303, 401)
    browser = _login(world, sold.distributor)
    assert browser.get(f"/supply/lots/{lot}").status_code == 200
    for bad in ("abc", "0", "-5", "1.234", "1e30"):
        page = browser.get(f"/supply/lots/{lot}/settle", params={"amount": bad})
        assert page.status_code == 422, bad
    forged = browser.post(f"/supply/lots/{lot}/settle", data={"csrf": "x", "amount_fen": 5})
    assert forged.status_code == 403 and "form token" in forged.text
    stranger = _login(world, world.org(Role.DISTRIBUTOR, "Another Distributor"))
    assert stranger.get(f"/supply/lots/{lot}").status_code == 403
    assert stranger.get(f"/supply/lots/{UNKNOWN}").status_code == 404
    farmerless = _login(world, world.org(Role.INSPECTOR))
    assert farmerless.get("/supply").status_code == 403


def _login(world: World, org: Org) -> TestClient:
    """A browser-like client logged in through the form."""
    browser = TestClient(world.app)
    response = browser.post("/login", data={"api_key": org.key}, follow_redirects=False)
    assert response.status_code == 303
    return browser


def test_a_factory_accepts_a_cooperative_and_the_form_delivers_to_it(world):
    coop = world.org(Role.COOPERATIVE, "Enshi Yulu Cooperative")
    factory = world.org(Role.PROCESSOR, "Shuanghe Tea Factory")
    farmer, plot = world.member(coop)
    plant = _login(world, factory)
    supply = plant.get("/supply").text
    card = supply.split(f'data-org="{coop.id}"')[1].split("</form>")[0]
    assert coop.name in card and 'class="accept"' in card and "not accepted" in card
    csrf = supply.split('name="csrf" value="')[1].split('"')[0]
    form = {"csrf": csrf, "cooperative_org_id": str(coop.id), "accepted": "true"}
    accepted = plant.post("/supply/suppliers", data=form)
    assert accepted.status_code == 200 and 'id="done"' in accepted.text  # redirected back
    card = accepted.text.split(f'data-org="{coop.id}"')[1].split("</form>")[0]
    assert 'class="stop"' in card and ">accepted<" in card
    assert plant.post("/supply/suppliers", data={**form, "csrf": "0" * 64}).status_code == 403
    itself = plant.post("/supply/suppliers", data={**form, "cooperative_org_id": str(factory.id)})
    assert itself.status_code == 422 and 'id="error"' in itself.text
    # the cooperative's form offers the factory; the lot it records is the factory's
    browser = _login(world, coop)
    home = browser.get("/coop").text
    choice = f'<option value="{factory.id}" >Shuanghe Tea Factory · 当天交售 delivered'
    assert choice in home.split('id="deliver_to"')[1].split("</select>")[0]
    assert choice in home.split('id="upload_deliver_to"')[1].split("</select>")[0]
    token = home.split('name="csrf" value="')[1].split('"')[0]
    picked = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 8 * 3600 - 7200))
    entry = {"plot_id": plot, "grams_kg": "3.5", "grade": "1", "picked_at": picked,
             "record_ref": "F-D1", "csrf": token, "deliver_to_org_id": str(factory.id)}  # fmt: skip
    recorded = browser.post("/coop/harvests", data=entry)
    assert recorded.status_code == 200 and "recorded" in recorded.text, recorded.text
    kept = recorded.text.split('id="deliver_to"')[1].split("</select>")[0]
    assert f'<option value="{factory.id}" selected>' in kept  # the next picking goes there too
    lot = lot_id(coop.address, _harvest_hash(farmer, plot, 3_500, 1, picked, "F-D1"))
    assert world.chain.contract("TeaTrace").functions.lot(lot).call()[0] == factory.address
    junk = browser.post("/coop/harvests", data={**entry, "deliver_to_org_id": "abc"})
    assert junk.status_code == 422 and "choose where the leaf went" in junk.text
    # the factory stops accepting: the page says so, and a delivery is refused on the form
    stop = plant.post("/supply/suppliers", data={**form, "accepted": "false"})
    assert "no longer accept" in stop.text
    refused = browser.post("/coop/harvests", data={**entry, "record_ref": "F-D2"})
    assert refused.status_code == 422 and "does not accept deliveries" in refused.text
    assert (
        f'value="{factory.id}"'
        not in refused.text.split('id="deliver_to"')[1].split("</select>")[0]
    )


def test_a_recalled_lot_is_refused_by_the_eth_call_and_leaves_no_allowance(sold):
    # Last in the module: the recall is for good.
    world, url = sold.world, f"/cooperatives/lots/{sold.lot}"
    inspector = world.org(Role.INSPECTOR)
    recall = {"lot": sold.lot, "reason": "pesticide residue"}
    assert (
        world.http.post("/cooperatives/recalls", json=recall, headers=inspector.headers).status_code
        == 200
    )
    _mint(world, sold.distributor.address, 700)
    refused = world.http.post(
        f"{url}/settlements", json={"amount_fen": 700}, headers=sold.distributor.headers
    )
    assert refused.status_code == 409 and "SettlementLotRecalled" in refused.text
    token = LoanDesk(world.chain, "LoanFactory").token
    spender = world.chain.contract("SaleSettlement").address
    assert token.functions.allowance(sold.distributor.address, spender).call() == 0
    listed = world.http.get(f"{url}/settlements", headers=sold.distributor.headers).json()
    assert listed["total"] == 1  # nothing new was settled


def test_many_lots_committed_and_settled_in_one_request_each(sold):
    world = sold.world
    lots = [make_sold(world, sold.coop, sold.processor, sold.distributor, (g, 10_000))
            for g in (30_000, 21_000)]  # fmt: skip
    ids = [x.lot for x in lots]
    index_once(world.chain, world.settings.database_url)
    found = indexed_lots(world.settings, [bytes.fromhex(i[2:]) for i in ids])
    for lot in ids:  # the index splits lineage exactly as the chain's own lineage walk does
        raw = bytes.fromhex(lot[2:])
        assert found[raw].shares == lineage_shares(world.chain, raw)
    http = world.http
    body = {"lots": [*ids, UNKNOWN]}
    assert (
        http.post("/cooperatives/shares", json=body, headers=sold.distributor.headers).json()[
            "refused"
        ]
        == 3
    )  # only the maker commits
    committed = http.post("/cooperatives/shares", json=body, headers=sold.processor.headers)
    assert committed.status_code == 200, committed.text
    out = committed.json()
    assert (out["done"], out["already"], out["refused"]) == (2, 0, 1)
    assert "has not read this lot" in out["lots"][2]["reason"]
    w3 = world.chain.w3
    sent = [x["transaction"] for x in out["lots"][:2]]
    # anvil: the commits mined together, below the gas target
    assert len({w3.eth.get_transaction_receipt(tx)["blockNumber"] for tx in sent}) == 1
    again = http.post("/cooperatives/shares", json=body, headers=sold.processor.headers).json()
    assert (again["done"], again["already"]) == (0, 2)  # nothing sent twice
    for lot in ids:
        preview = http.get(f"/cooperatives/lots/{lot}/shares", headers=sold.processor.headers)
        assert preview.json()["committed_matches"] is True  # what the one-lot route computes

    sales = {
        "sales": [{"lot": ids[0], "amount_fen": 40_000}, {"lot": ids[1], "amount_fen": 31_001}]
    }
    url = "/cooperatives/settlements"
    poor = http.post(url, json=sales, headers=sold.distributor.headers)
    assert poor.status_code == 409 and "balance" in poor.json()["detail"]
    _mint(world, sold.distributor.address, 71_001)
    token = LoanDesk(world.chain, "LoanFactory").token
    before = int(token.functions.balanceOf(sold.distributor.address).call())
    paid = http.post(url, json=sales, headers=sold.distributor.headers)
    assert paid.status_code == 200, paid.text
    assert paid.json()["done"] == 2 and all(x["transaction"] for x in paid.json()["lots"])
    paid_in = {w3.eth.get_transaction_receipt(x["transaction"])["blockNumber"]
               for x in paid.json()["lots"]}  # fmt: skip
    assert len(paid_in) == 1
    after = int(token.functions.balanceOf(sold.distributor.address).call())
    assert before - after == 71_001
    spender = world.chain.contract("SaleSettlement").address
    assert token.functions.allowance(sold.distributor.address, spender).call() == 0
    twice = http.post(url, json=sales, headers=sold.distributor.headers).json()
    assert (twice["done"], twice["already"]) == (0, 2)
    assert int(token.functions.balanceOf(sold.distributor.address).call()) == after
    listed = http.get(f"/cooperatives/lots/{ids[1]}/settlements", headers=sold.distributor.headers)
    assert listed.json()["items"][0]["amount_fen"] == 31_001
    dup = {"sales": [sales["sales"][0], sales["sales"][0]]}
    assert http.post(url, json=dup, headers=sold.distributor.headers).status_code == 409
    assert http.post(url, json={"sales": []}, headers=sold.distributor.headers).status_code == 422
    assert http.post(url, json=sales, headers=sold.coop.headers).json()["refused"] == 2
