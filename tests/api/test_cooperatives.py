"""Cooperative routes on a real SQLite or PostgreSQL database and the session's anvil.

Each route: success, 401 without a key, 403 for the wrong role or another organisation's
record, 404 for an unknown id, 422 for a bad body. One chain and one app per module (keystore
encryption makes organisations slow to create); every test makes its own members and lots.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from api.cooperatives.identity import coop_salt
from api.core.chain import org_account
from api.core.models import (
    ApiKey,
    Farmer,
    HarvestRef,
    Organisation,
    OrganisationCreate,
    PageLogin,
    Role,
)
from api.core.organisations import create_organisation
from api.core.security import hash_key, revoke
from api.core.sessions import MAX_LOGINS_PER_KEY
from api.core.settings import ApiSettings
from api.main import create_app
from chain.client import ChainClient
from chain.config import ChainSettings
from chain.nodes import free_port
from chain.rpc import LogQueryError
from indexer.runner import index_once
from tests._fixtures import client_for
from tests.api.conftest import PASSWORD
from traceability.contracts import deploy_traceability
from traceability.ids import farmer_id, lot_id, plot_id
from traceability.models import FarmerRegistration, HarvestRecord
from traceability.service import RecordingService

ZERO = "0x" + "00" * 20
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_SEQ = itertools.count(1)


def resident_id(n: int | None = None) -> str:
    """A valid 18-character PRC resident id (correct check character), unique per call."""
    body = f"42280119850312{(n if n is not None else next(_SEQ)) % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


@dataclass
class Org:
    """An organisation of the test world."""

    id: int
    role: Role
    key: str
    address: str
    name: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


@dataclass
class World:
    """One app on one chain, with organisations made on demand."""

    app: object
    http: TestClient
    chain: object
    settings: ApiSettings
    admin: Org
    orgs: dict[str, Org] = field(default_factory=dict)
    _refs: itertools.count = field(default_factory=lambda: itertools.count(1))

    def org(self, role: Role, name: str | None = None) -> Org:
        """The organisation called `name` (created and provisioned on first use)."""
        name = name or role.value
        if name not in self.orgs:
            body = {"name": name, "role": role.value}
            made = self.http.post("/admin/organisations", json=body, headers=self.admin.headers)
            assert made.status_code == 201, made.text
            created = made.json()
            org_id = created["organisation"]["id"]
            url = f"/admin/organisations/{org_id}/provision"
            if role != Role.FARMER:  # farmers never need gas: their consents are relayed
                assert self.http.post(url, headers=self.admin.headers).status_code == 200
            address = created["organisation"]["chain_address"]
            self.orgs[name] = Org(org_id, role, created["api_key"]["key"], address, name)
        return self.orgs[name]

    def farmer(self, coop: Org, **extra) -> dict:
        """Register a member of `coop`."""
        body = {"national_id": resident_id(), "name": "张三", **extra}
        response = self.http.post("/cooperatives/farmers", json=body, headers=coop.headers)
        assert response.status_code == 201, response.text
        return response.json()

    def plot(self, coop: Org, farmer: str, **extra) -> dict:
        """Register a plot of a member."""
        body = {
            "farmer_id": farmer,
            "land_reference": f"鄂恩施-{next(self._refs)}",
            "area_centi_mu": 250,
            "variety": 3,
            **extra,
        }
        response = self.http.post("/cooperatives/plots", json=body, headers=coop.headers)
        assert response.status_code == 201, response.text
        return response.json()

    def member(self, coop: Org) -> tuple[str, str]:
        """A new member with one plot: (farmer id, plot id)."""
        farmer = self.farmer(coop)["farmer_id"]
        return farmer, self.plot(coop, farmer)["plot_id"]

    def harvest(self, coop: Org, member: tuple[str, str], grams: int = 10_000) -> str:
        """Record one picking; returns its lot."""
        record = {
            "farmer": member[0],
            "plot": member[1],
            "grams": grams,
            "grade": 2,
            "picked_at": int(time.time()) - 3600,
            "record_ref": f"R-{next(self._refs)}",
        }
        response = self.http.post("/cooperatives/harvests", json=[record], headers=coop.headers)
        assert response.status_code == 200, response.text
        (outcome,) = response.json()["outcomes"]
        assert outcome["outcome"] == "recorded", outcome
        return outcome["lot"]

    def session(self) -> Session:
        return Session(self.app.state.engine)  # type: ignore[attr-defined]

    def index(self) -> None:
        """Index the chain into the app's database (what `tealedger serve`'s follower does)."""
        index_once(self.chain, self.settings.database_url)

    def lot(self, coop: Org, lot: str) -> dict:
        """A lot of `coop` as the API shows it, once indexed."""
        response = self.http.get(f"/cooperatives/lots/{lot}", headers=coop.headers)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def world(anvil_node, tmp_path_factory, world_database_url):
    """TeaTrace on anvil and the API on SQLite or PostgreSQL, with a platform admin (lot lists
    read the indexer's tables: `World.index` catches them up)."""
    tmp = tmp_path_factory.mktemp("coop-api")
    chain = client_for(anvil_node, tmp / "chain")
    chain.settings.data_dir.mkdir(parents=True, exist_ok=True)
    deploy_traceability(chain)
    with served_world(chain, tmp, world_database_url) as world:
        yield world


@contextmanager
def served_world(chain: ChainClient, tmp: Path, database_url: str) -> Iterator[World]:
    """The app on `chain` and `database_url` (test settings, data in `tmp`), a platform admin
    and an HTTP client on it."""
    settings = ApiSettings(
        environment="test",
        database_url=database_url,
        data_dir=tmp,
        org_keystore_password=PASSWORD,
        pseudonym_secret="test-pseudonym-secret-0123456789abcdef",
        rate_limit_per_minute=100_000,
    )
    app = create_app(settings, chain=chain)
    with Session(app.state.engine) as session:
        org, key = create_organisation(
            session,
            OrganisationCreate(name="platform", role=Role.ADMIN),
            settings.keystore_dir,
            PASSWORD,
        )
        admin = Org(org.id, Role.ADMIN, key.secret, org.chain_address, org.name)
    with TestClient(app) as http:
        yield World(app, http, chain, settings, admin)


@pytest.fixture
def coop(world) -> Org:
    return world.org(Role.COOPERATIVE, "Enshi Yulu Cooperative")


@pytest.fixture
def other_coop(world) -> Org:
    return world.org(Role.COOPERATIVE, "Wufeng Cooperative")


def _org_row(world: World, org: Org) -> Organisation:
    with world.session() as session:
        row = session.get(Organisation, org.id)
        assert row is not None
        return row


# ------------------------------------------------------------------------------------ flow


def test_lots_move_along_the_supply_chain(world, coop):
    # First in the module on purpose: lineage reads (public trace, recall) use eth_getLogs,
    # which the embedded EVM answers by scanning every block, so they slow down as the
    # module's chain grows.
    processor = world.org(Role.PROCESSOR)
    distributor = world.org(Role.DISTRIBUTOR)
    inspector = world.org(Role.INSPECTOR)
    merchant = world.org(Role.MERCHANT)
    member = world.member(coop)
    leaves = [world.harvest(coop, member, g) for g in (40_000, 30_000)]
    post = world.http.post
    shipped = post(
        "/cooperatives/shipments",
        json={"lots": leaves, "to_org_id": processor.id, "owner": "me"},
        headers=coop.headers,
    )
    assert shipped.status_code == 201, shipped.text
    assert shipped.json()["to"] == processor.address and len(shipped.json()["transactions"]) == 1
    received = post("/cooperatives/receipts", json={"lots": leaves}, headers=processor.headers)
    assert received.status_code == 200, received.text
    run = {"inputs": leaves, "outputs": [{"grams": 9_000}, {"grams": 6_000}], "process_ref": "P-1"}
    made = post("/cooperatives/processing", json=run, headers=processor.headers)
    assert made.status_code == 201, made.text
    outputs = [o["lot"] for o in made.json()["outputs"]]
    assert len(outputs) == 2 and made.json()["transaction"]
    tea = outputs[0]
    shipment = {"lots": [tea], "to_org_id": distributor.id}
    assert (
        post("/cooperatives/shipments", json=shipment, headers=processor.headers).status_code == 201
    )
    receipt = {"lots": [tea]}
    assert (
        post("/cooperatives/receipts", json=receipt, headers=distributor.headers).status_code == 200
    )
    sale = {"lot": tea, "buyer_org_id": merchant.id, "price_fen": 1_280_00}
    sold = post("/cooperatives/sales", json=sale, headers=distributor.headers)
    assert sold.status_code == 201 and sold.json()["buyer"] == merchant.address
    holder = world.chain.contract("TeaTrace").functions.lot(bytes.fromhex(tea[2:])).call()[0]
    assert holder == merchant.address
    verdict = {
        "lot": tea,
        "grade": "特级",
        "passed": True,
        "certificate_ref": "GB/T 14456-2026-001",
    }
    attested = post("/cooperatives/attestations", json=verdict, headers=inspector.headers)
    assert attested.status_code == 201 and attested.json()["grade"] == 1
    trace = world.http.get(f"/public/lots/{tea}/trace").json()
    assert trace["harvest_count"] == 2 and trace["attestations"][0]["passed"] is True
    recalled = post(
        "/cooperatives/recalls",
        json={"lot": leaves[0], "reason": "pesticide residue"},
        headers=inspector.headers,
    )
    assert recalled.status_code == 200, recalled.text
    assert set(recalled.json()["lots"]) == {leaves[0], *outputs}
    assert world.http.get(f"/public/lots/{tea}/trace").json()["recalled"] is True


# ------------------------------------------------------------------------------------ farmers


def test_register_farmer_keeps_personal_data_off_chain(world, coop):
    nid = resident_id()
    body = {
        "national_id": nid,
        "name": "李四",
        # server-side fields: ignored
        "farmer_id": "0x" + "11" * 32,
        "cooperative_id": 999,
        "personal_data_erased": True,
        "registered_tx": "0xdead",
    }
    response = world.http.post("/cooperatives/farmers", json=body, headers=coop.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    expected = farmer_id(coop_salt(world.settings, _org_row(world, coop)), nid)
    assert created["farmer_id"] == "0x" + expected.hex() != "0x" + "11" * 32
    assert created["name"] == "李四" and created["personal_data_erased"] is False
    assert created["national_id_masked"] == nid[:4] + "*" * 10 + nid[-4:]
    assert created["transaction"] and created["registered_tx"] == created["transaction"]
    tea = world.chain.contract("TeaTrace")
    cooperative, wallet, active = tea.functions.farmer(expected).call()
    assert cooperative == coop.address and wallet == ZERO and active
    sent = world.chain.w3.eth.get_transaction(created["transaction"])
    data = bytes(sent["input"])
    assert nid.encode() not in data and "李四".encode() not in data
    with world.session() as session:
        row = session.exec(select(Farmer).where(Farmer.farmer_id == created["farmer_id"])).one()
        assert row.cooperative_id == coop.id and row.national_id == nid


def test_a_farmer_may_keep_their_own_wallet(world, coop):
    own = "0x" + "5a" * 20  # a wallet app's address: the service never holds its key
    body = {"national_id": resident_id(), "name": "钱七", "wallet": own.upper().replace("0X", "0x")}
    made = world.http.post("/cooperatives/farmers", json=body, headers=coop.headers)
    assert made.status_code == 201, made.text
    checksum = world.chain.w3.to_checksum_address(own)
    assert made.json()["wallet"] == checksum and made.json()["farmer_org_id"] is None
    tea = world.chain.contract("TeaTrace")
    fid = bytes.fromhex(made.json()["farmer_id"][2:])
    assert tea.functions.farmer(fid).call()[1] == checksum
    farmer_org = world.org(Role.FARMER)
    for wrong in (
        {"wallet": "0x" + "00" * 20},  # nobody's
        {"wallet": "0x12"},
        {"wallet": checksum.lower()[:-1] + "G"},
        {"wallet": own, "farmer_org_id": farmer_org.id},  # two wallets
    ):
        bad = {"national_id": resident_id(), "name": "孙八", **wrong}
        refused = world.http.post("/cooperatives/farmers", json=bad, headers=coop.headers)
        assert refused.status_code == 422, (wrong, refused.text)


def test_pseudonyms_differ_per_cooperative_and_a_person_registers_once(world, coop, other_coop):
    nid = resident_id()
    first = world.http.post(
        "/cooperatives/farmers", json={"national_id": nid, "name": "王五"}, headers=coop.headers
    )
    assert first.status_code == 201
    spaced = f" {nid[:6]} {nid[6:].lower()} "  # the same id, typed differently
    again = world.http.post(
        "/cooperatives/farmers", json={"national_id": spaced, "name": "王五"}, headers=coop.headers
    )
    assert again.status_code == 409 and first.json()["farmer_id"] in again.json()["detail"]
    elsewhere = world.http.post(
        "/cooperatives/farmers",
        json={"national_id": nid, "name": "王五"},
        headers=other_coop.headers,
    )
    assert elsewhere.status_code == 201
    assert elsewhere.json()["farmer_id"] != first.json()["farmer_id"]


def test_farmer_wallet_is_a_farmer_organisation(world, coop):
    farmer_org = world.org(Role.FARMER, "wallet farmer")
    created = world.farmer(coop, farmer_org_id=farmer_org.id)
    assert created["wallet"] == farmer_org.address and created["farmer_org_id"] == farmer_org.id
    tea = world.chain.contract("TeaTrace")
    fid = bytes.fromhex(created["farmer_id"][2:])
    assert tea.functions.farmer(fid).call()[1] == farmer_org.address
    url, headers = "/cooperatives/farmers", coop.headers
    taken = {"national_id": resident_id(), "name": "x", "farmer_org_id": farmer_org.id}
    assert world.http.post(url, json=taken, headers=headers).status_code == 409
    lender = world.org(Role.LENDER, "bank")
    not_farmer = {"national_id": resident_id(), "name": "x", "farmer_org_id": lender.id}
    assert world.http.post(url, json=not_farmer, headers=headers).status_code == 422
    unknown = {"national_id": resident_id(), "name": "x", "farmer_org_id": 99_999}
    assert world.http.post(url, json=unknown, headers=headers).status_code == 404


def test_register_farmer_refuses_bad_bodies_keys_and_roles(world, coop):
    url = "/cooperatives/farmers"
    good = {"national_id": resident_id(), "name": "赵六"}
    assert world.http.post(url, json=good).status_code == 401
    processor = world.org(Role.PROCESSOR)
    assert world.http.post(url, json=good, headers=processor.headers).status_code == 403
    wrong_check = good["national_id"][:17] + ("0" if good["national_id"][17] != "0" else "1")
    for body in (
        {"national_id": wrong_check, "name": "x"},  # a typo: the check character is wrong
        {"national_id": "4228011985", "name": "x"},
        {"national_id": good["national_id"], "name": "   "},
        {"national_id": good["national_id"]},
        {"national_id": good["national_id"], "name": "x", "farmer_org_id": "abc"},
    ):
        response = world.http.post(url, json=body, headers=coop.headers)
        assert response.status_code == 422, body


def test_get_farmer_is_object_level(world, coop, other_coop):
    mine = world.farmer(coop)["farmer_id"]
    theirs = world.farmer(other_coop)["farmer_id"]
    ok = world.http.get(f"/cooperatives/farmers/{mine}", headers=coop.headers)
    assert ok.status_code == 200 and ok.json()["active"] is True
    assert ok.json()["name"] == "张三"
    other = world.http.get(f"/cooperatives/farmers/{theirs}", headers=coop.headers)
    assert other.status_code == 403 and "another cooperative" in other.json()["detail"]
    unknown = "0x" + "ab" * 32
    assert (
        world.http.get(f"/cooperatives/farmers/{unknown}", headers=coop.headers).status_code == 404
    )
    assert world.http.get("/cooperatives/farmers/0x1234", headers=coop.headers).status_code == 422
    assert world.http.get(f"/cooperatives/farmers/{mine}").status_code == 401
    lender = world.org(Role.LENDER, "bank")
    assert (
        world.http.get(f"/cooperatives/farmers/{mine}", headers=lender.headers).status_code == 403
    )


def test_farmer_registered_on_chain_elsewhere_by_this_coop_but_not_here(world, coop):
    # A farmer the cooperative registered on chain outside this service (or whose database
    # write was lost): 404 until registered again with the national id, which adopts it.
    nid = resident_id()
    org = _org_row(world, coop)
    fid = farmer_id(coop_salt(world.settings, org), nid)
    service = RecordingService(world.chain, org_account(world.settings, org))
    service.register_farmers([FarmerRegistration(farmer=fid)])
    got = world.http.get(f"/cooperatives/farmers/0x{fid.hex()}", headers=coop.headers)
    assert got.status_code == 404 and "register them again" in got.json()["detail"]
    adopted = world.http.post(
        "/cooperatives/farmers", json={"national_id": nid, "name": "钱七"}, headers=coop.headers
    )
    assert adopted.status_code == 201, adopted.text
    assert adopted.json()["farmer_id"] == "0x" + fid.hex() and adopted.json()["transaction"] is None


def test_list_farmers_is_own_and_paginated(world, other_coop):
    coop = world.org(Role.COOPERATIVE, "list coop")  # a fresh one: exact totals
    ids = [world.farmer(coop)["farmer_id"] for _ in range(3)]
    world.farmer(other_coop)
    page = world.http.get("/cooperatives/farmers?limit=2&offset=1", headers=coop.headers).json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 1
    assert [f["farmer_id"] for f in page["items"]] == ids[1:]
    assert "national_id" not in page["items"][0]
    assert world.http.get("/cooperatives/farmers?limit=0", headers=coop.headers).status_code == 422
    assert world.http.get("/cooperatives/farmers").status_code == 401
    lender = world.org(Role.LENDER, "bank")
    assert world.http.get("/cooperatives/farmers", headers=lender.headers).status_code == 403


def test_erasure_removes_personal_data_and_keeps_the_pseudonym(world, coop, other_coop):
    name = "删除测试欧阳娜娜"
    nid = resident_id()
    created = world.http.post(
        "/cooperatives/farmers", json={"national_id": nid, "name": name}, headers=coop.headers
    ).json()
    fid = created["farmer_id"]
    plot = world.plot(coop, fid, label="欧阳家后山茶园")
    url = f"/cooperatives/farmers/{fid}/personal-data"
    erased = world.http.delete(url, headers=coop.headers)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["farmer_id"] == fid and body["personal_data_erased"] is True
    assert body["name"] is None and body["national_id_masked"] is None
    assert world.http.delete(url, headers=coop.headers).status_code == 200  # idempotent
    with world.session() as session:
        row = session.exec(select(Farmer).where(Farmer.farmer_id == fid)).one()
        assert row.name is None and row.national_id is None and row.erased_at is not None
    plots = world.http.get(f"/cooperatives/plots?farmer_id={fid}", headers=coop.headers).json()
    assert plots["items"][0]["plot_id"] == plot["plot_id"] and plots["items"][0]["label"] is None
    # still a member on chain, and still usable (harvests by pseudonym)
    world.harvest(coop, (fid, plot["plot_id"]))
    if world.settings.database_url.startswith("sqlite"):
        # the bytes are gone from the database file, not just hidden
        database = world.settings.database_url.removeprefix("sqlite:///")
        with sqlite3.connect(database) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with open(database, "rb") as handle:
            content = handle.read()
        assert name.encode() not in content and nid.encode() not in content
    # object level
    theirs = world.farmer(other_coop)["farmer_id"]
    forbidden = world.http.delete(
        f"/cooperatives/farmers/{theirs}/personal-data", headers=coop.headers
    )
    assert forbidden.status_code == 403
    unknown = f"/cooperatives/farmers/0x{'cd' * 32}/personal-data"
    assert world.http.delete(unknown, headers=coop.headers).status_code == 404
    bad = "/cooperatives/farmers/not-an-id/personal-data"
    assert world.http.delete(bad, headers=coop.headers).status_code == 422
    assert world.http.delete(url).status_code == 401
    lender = world.org(Role.LENDER, "bank")
    assert world.http.delete(url, headers=lender.headers).status_code == 403


def test_node_down_writes_nothing(world, coop, monkeypatch):
    nid = resident_id()
    body = {"national_id": nid, "name": "孙八"}
    org = _org_row(world, coop)
    sender = world.chain.sender_for(org_account(world.settings, org))
    monkeypatch.setattr(sender, "_backoff", 0.0)

    def unreachable(_raw):
        raise LogQueryError("JSON-RPC node at the test's URL unreachable: connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(sender, "_send_raw", unreachable)  # what the Sender's JSON-RPC raises
        down = world.http.post("/cooperatives/farmers", json=body, headers=coop.headers)
    assert down.status_code == 503 and "nothing was written" in down.json()["detail"]
    fid = "0x" + farmer_id(coop_salt(world.settings, org), nid).hex()
    with world.session() as session:
        assert session.exec(select(Farmer).where(Farmer.farmer_id == fid)).first() is None
    # a node that is not there at all
    dead = ChainSettings(backend="rpc", rpc_url=f"http://127.0.0.1:{free_port()}")
    from chain.client import ChainClient

    world.app.state.chain = ChainClient(dead)
    try:
        gone = world.http.post("/cooperatives/farmers", json=body, headers=coop.headers)
    finally:
        world.app.state.chain = world.chain
    assert gone.status_code == 503
    with world.session() as session:
        assert session.exec(select(Farmer).where(Farmer.farmer_id == fid)).first() is None
    # back up: the same request now succeeds
    ok = world.http.post("/cooperatives/farmers", json=body, headers=coop.headers)
    assert ok.status_code == 201 and ok.json()["farmer_id"] == fid


# ------------------------------------------------------------------------------------ plots


def test_register_plot(world, coop):
    fid = world.farmer(coop)["farmer_id"]
    body = {
        "farmer_id": fid,
        "land_reference": "鄂(2021)恩施市农村土地承包经营权第0012345号",
        "area_centi_mu": 180,
        "variety": 7,
        "location": "芭蕉侗族乡 30.21N 109.40E",
        "label": "东坡",
        "plot_id": "0x" + "22" * 32,  # ignored
        "cooperative_id": 1,  # ignored
    }
    response = world.http.post("/cooperatives/plots", json=body, headers=coop.headers)
    assert response.status_code == 201, response.text
    plot = response.json()
    expected = plot_id(coop_salt(world.settings, _org_row(world, coop)), body["land_reference"])
    assert plot["plot_id"] == "0x" + expected.hex() and plot["transaction"]
    assert plot["label"] == "东坡" and plot["farmer_id"] == fid
    on_chain = world.chain.contract("TeaTrace").functions.plot(expected).call()
    assert "0x" + bytes(on_chain[0]).hex() == fid and on_chain[1] == coop.address
    assert on_chain[2:] == [180, 7] or tuple(on_chain[2:]) == (180, 7)
    assert "location" not in plot and "land_reference" not in plot
    again = world.http.post("/cooperatives/plots", json=body, headers=coop.headers)
    assert again.status_code == 409


def test_register_plot_is_object_level(world, coop, other_coop):
    theirs = world.farmer(other_coop)["farmer_id"]
    body = {"farmer_id": theirs, "land_reference": "L-1", "area_centi_mu": 100}
    url = "/cooperatives/plots"
    assert world.http.post(url, json=body, headers=coop.headers).status_code == 403
    unknown = {**body, "farmer_id": "0x" + "ef" * 32}
    assert world.http.post(url, json=unknown, headers=coop.headers).status_code == 404
    mine = world.farmer(coop)["farmer_id"]
    for bad in (
        {**body, "farmer_id": mine, "area_centi_mu": 0},
        {**body, "farmer_id": "0x12"},
        {"farmer_id": mine, "area_centi_mu": 100},
        {**body, "farmer_id": mine, "variety": 70_000},
    ):
        assert world.http.post(url, json=bad, headers=coop.headers).status_code == 422, bad
    assert world.http.post(url, json=body).status_code == 401
    inspector = world.org(Role.INSPECTOR)
    assert world.http.post(url, json=body, headers=inspector.headers).status_code == 403


def test_list_plots(world, coop, other_coop):
    before = world.http.get("/cooperatives/plots", headers=coop.headers).json()["total"]
    a, b = world.farmer(coop)["farmer_id"], world.farmer(coop)["farmer_id"]
    plots = [world.plot(coop, a)["plot_id"], world.plot(coop, a)["plot_id"]]
    world.plot(coop, b)
    everything = world.http.get("/cooperatives/plots", headers=coop.headers).json()
    assert everything["total"] == before + 3
    of_a = world.http.get(f"/cooperatives/plots?farmer_id={a}&limit=1", headers=coop.headers)
    assert of_a.json()["total"] == 2 and [p["plot_id"] for p in of_a.json()["items"]] == plots[:1]
    theirs = world.farmer(other_coop)["farmer_id"]
    url = f"/cooperatives/plots?farmer_id={theirs}"
    assert world.http.get(url, headers=coop.headers).status_code == 403
    url = f"/cooperatives/plots?farmer_id=0x{'99' * 32}"
    assert world.http.get(url, headers=coop.headers).status_code == 404
    assert world.http.get("/cooperatives/plots?offset=-1", headers=coop.headers).status_code == 422
    assert world.http.get("/cooperatives/plots").status_code == 401


# ------------------------------------------------------------------------------------ harvests


def test_harvest_batch_records_valid_ones_once(world, coop, other_coop):
    member = world.member(coop)
    theirs = world.member(other_coop)
    now = int(time.time())
    records = [
        {"farmer": member[0], "plot": member[1], "grams": 12_000, "grade": "一级",
         "picked_at": now - 7200, "record_ref": "A-1"},
        {"farmer": member[0], "plot": member[1], "grams": 8_000, "grade": 3,
         "picked_at": now - 3600, "record_ref": "A-2", "lot": "0x" + "33" * 32},
        {"farmer": theirs[0], "plot": theirs[1], "grams": 5_000, "grade": 2,
         "picked_at": now - 3600},
        {"farmer": member[0], "plot": member[1], "grams": 12_000, "grade": 2,
         "picked_at": now - 7200, "record_ref": "A-1"},
        {"farmer": theirs[0], "plot": theirs[1], "grams": 5_000, "grade": 2,
         "picked_at": now - 3600},
    ]  # fmt: skip
    response = world.http.post("/cooperatives/harvests", json=records, headers=coop.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["recorded"], report["duplicates"], report["rejected"]) == (2, 2, 1)
    outcomes = [o["outcome"] for o in report["outcomes"]]
    assert outcomes == ["recorded", "recorded", "rejected", "duplicate", "duplicate"]
    assert "another cooperative" in report["outcomes"][2]["reason"]
    assert report["outcomes"][1]["lot"] != "0x" + "33" * 32  # lot ids are never the client's
    assert len(report["transactions"]) == 1
    lots = [o["lot"] for o in report["outcomes"][:2]]
    for lot in lots:
        holder, _grams, state, kind, _ = (
            world.chain.contract("TeaTrace").functions.lot(bytes.fromhex(lot[2:])).call()
        )
        assert holder == coop.address and state == 1 and kind == 1
    # resubmitting records nothing twice; once indexed, each lot shows its receipt number and
    # the transaction that recorded it
    again = world.http.post("/cooperatives/harvests", json=records, headers=coop.headers).json()
    assert again["recorded"] == 0 and again["duplicates"] == 4 and again["transactions"] == []
    assert world.http.get(f"/cooperatives/lots/{lots[0]}", headers=coop.headers).status_code == 404
    world.index()
    shown = [world.lot(coop, lot) for lot in lots]
    assert [s["record_ref"] for s in shown] == ["A-1", "A-2"]
    assert all(s["tx_hash"] == report["transactions"][0] for s in shown)
    assert [s["farmer_id"] for s in shown] == [member[0], member[0]]
    with world.session() as session:  # one receipt number per lot, whatever was resubmitted
        assert len(session.exec(select(HarvestRef).where(col(HarvestRef.lot).in_(lots))).all()) == 2


def test_a_lot_recorded_without_the_service_is_listed_once_indexed(world, coop):
    farmer, plot = world.member(coop)
    with world.session() as session:
        row = session.get(Organisation, coop.id)
        assert row is not None
        account = org_account(world.settings, row)
    picked = int(time.time()) - 600
    record = HarvestRecord(farmer=farmer, plot=plot, grams=4_000, grade=2, picked_at=picked)
    report = RecordingService(world.chain, account).record_harvests([record])
    lot = "0x" + report.outcomes[0].lot.hex()
    world.index()
    shown = world.lot(coop, lot)
    assert shown["grams"] == 4_000 and shown["record_ref"] == "" and shown["state"] == "held"
    listed = world.http.get("/cooperatives/lots?limit=1", headers=coop.headers).json()
    assert listed["items"][0]["lot"] == lot and listed["block_number"] >= shown["block_number"]


def test_harvest_batch_refuses_bad_bodies_keys_and_roles(world, coop):
    member = world.member(coop)
    good = {"farmer": member[0], "plot": member[1], "grams": 1_000, "grade": 2,
            "picked_at": int(time.time()) - 60}  # fmt: skip
    url = "/cooperatives/harvests"
    assert world.http.post(url, json=[good]).status_code == 401
    distributor = world.org(Role.DISTRIBUTOR)
    assert world.http.post(url, json=[good], headers=distributor.headers).status_code == 403
    for bad in (
        [],
        good,  # not a list
        [{**good, "grams": 0}],
        [{**good, "grade": 9}],
        [{**good, "picked_at": int(time.time()) + 86_400}],
        [{**good, "picked_at": "1999-12-31T00:00:00"}],
        [{**good, "farmer": "0x1234"}],
        [{**good, "record_ref": "x" * 129}],
    ):
        response = world.http.post(url, json=bad, headers=coop.headers)
        assert response.status_code == 422, bad
    too_many = [{**good, "record_ref": str(i)} for i in range(1_001)]
    assert world.http.post(url, json=too_many, headers=coop.headers).status_code == 422


def _csv(*rows: str) -> bytes:
    return ("farmer,plot,grams,grade,picked_at,record_ref\n" + "\n".join(rows) + "\n").encode()


def test_csv_upload_reports_row_errors_and_is_idempotent(world, coop):
    farmer, plot = world.member(coop)
    picked = "2026-01-05T08:30:00"
    content = _csv(
        f"{farmer},{plot},15000,特级,{picked},C-1",
        f"{farmer},{plot},not-a-number,2,{picked},C-2",
        f"{farmer},0x{'77' * 32},3000,2,{picked},C-3",
        f"{farmer},{plot},9000,二级,{picked},C-4",
    )
    url = "/cooperatives/harvests/upload"
    files = {"file": ("season.csv", content, "text/csv")}
    response = world.http.post(url, files=files, headers=coop.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["invalid"] == 1 and report["errors"][0]["where"] == "line 3"
    assert report["errors"][0]["field"] == "grams"
    assert (report["recorded"], report["rejected"], report["duplicates"]) == (2, 1, 0)
    assert [o["where"] for o in report["outcomes"]] == ["line 2", "line 4", "line 5"]
    assert "plot" in report["outcomes"][1]["reason"]
    again = world.http.post(url, files=files, headers=coop.headers).json()
    assert (again["recorded"], again["duplicates"]) == (0, 2)
    # the file format refuses personal data columns and other file types
    personal = b"farmer,plot,grams,grade,picked_at,name\n"
    refused = world.http.post(
        url, files={"file": ("p.csv", personal, "text/csv")}, headers=coop.headers
    )
    assert refused.status_code == 422 and "personal data" in refused.json()["detail"][0]["msg"]
    xlsx = world.http.post(url, files={"file": ("s.xlsx", b"PK", "x")}, headers=coop.headers)
    assert xlsx.status_code == 422
    assert world.http.post(url, headers=coop.headers).status_code == 422  # no file
    assert world.http.post(url, files=files).status_code == 401
    processor = world.org(Role.PROCESSOR)
    assert world.http.post(url, files=files, headers=processor.headers).status_code == 403


def test_harvests_go_straight_to_a_factory_that_accepts_the_cooperative(world, coop, other_coop):
    factory = world.org(Role.PROCESSOR, "Enshi Tea Factory")
    member = world.member(coop)
    record = {"farmer": member[0], "plot": member[1], "grams": 7_000, "grade": 2,
              "picked_at": int(time.time()) - 3600, "record_ref": "D-1"}  # fmt: skip
    url = f"/cooperatives/harvests?deliver_to_org_id={factory.id}"
    consignees = "/cooperatives/consignees"
    assert world.http.get(consignees, headers=coop.headers).json() == []
    block = world.chain.w3.eth.block_number
    refused = world.http.post(url, json=[record], headers=coop.headers)
    assert refused.status_code == 422 and "does not accept deliveries" in refused.text
    assert world.chain.w3.eth.block_number == block  # nothing was sent
    # the factory sees the cooperatives and accepts this one, on chain
    listed = world.http.get("/cooperatives/suppliers", headers=factory.headers).json()
    assert {(p["org_id"], p["accepted"]) for p in listed} >= {(coop.id, False)}
    body = {"cooperative_org_id": coop.id}
    accepted = world.http.post("/cooperatives/suppliers", json=body, headers=factory.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["accepted"] is True and accepted.json()["transaction"].startswith("0x")
    shown = world.http.get(consignees, headers=coop.headers).json()
    assert [(p["org_id"], p["name"]) for p in shown] == [(factory.id, "Enshi Tea Factory")]
    assert world.http.get(consignees, headers=other_coop.headers).json() == []
    recorded = world.http.post(url, json=[record], headers=coop.headers)
    assert recorded.status_code == 200, recorded.text
    lot = recorded.json()["outcomes"][0]["lot"]
    holder, grams, state, _kind, _ = (
        world.chain.contract("TeaTrace").functions.lot(bytes.fromhex(lot[2:])).call()
    )
    assert (holder, grams, state) == (factory.address, 7_000, 1)
    # a file may be delivered too; the other cooperative may not deliver there
    line = f"{member[0]},{member[1]},6000,2,2026-01-05T08:30:00,D-2"
    files = {"file": ("day.csv", _csv(line), "text/csv")}
    form = {"deliver_to_org_id": str(factory.id)}
    upload = "/cooperatives/harvests/upload"
    uploaded = world.http.post(upload, files=files, data=form, headers=coop.headers).json()
    assert uploaded["recorded"] == 1
    theirs = world.member(other_coop)
    other = {**record, "farmer": theirs[0], "plot": theirs[1]}
    assert world.http.post(url, json=[other], headers=other_coop.headers).status_code == 422
    world.index()
    assert world.lot(coop, lot)["holder"] == factory.address
    # bad requests: a non-cooperative, an unknown org, a role that holds no lots, itself
    for bad, code in [({"cooperative_org_id": factory.id}, 422),
                      ({"cooperative_org_id": 10**6}, 404),
                      ({"cooperative_org_id": coop.id, "accepted": "maybe"}, 422)]:  # fmt: skip
        answer = world.http.post("/cooperatives/suppliers", json=bad, headers=factory.headers)
        assert answer.status_code == code, answer.text
    inspector = world.org(Role.INSPECTOR)
    assert world.http.post("/cooperatives/suppliers", json=body,
                           headers=inspector.headers).status_code == 403  # fmt: skip
    assert world.http.post(f"/cooperatives/harvests?deliver_to_org_id={coop.id}", json=[record],
                           headers=coop.headers).status_code == 422  # fmt: skip
    assert world.http.post("/cooperatives/harvests?deliver_to_org_id=0", json=[record],
                           headers=coop.headers).status_code == 422  # fmt: skip
    # once the factory stops accepting, deliveries are refused again
    stop = {"cooperative_org_id": coop.id, "accepted": False}
    assert world.http.post("/cooperatives/suppliers", json=stop, headers=factory.headers).json()[
        "accepted"] is False  # fmt: skip
    assert world.http.post(url, json=[record], headers=coop.headers).status_code == 422


def test_csv_upload_names_farmers_by_member_number_and_plots_by_name(world, coop):
    farmer = world.farmer(coop, name="李四")
    world.plot(coop, farmer["farmer_id"], label="东坡茶园")
    number = farmer["member_number"]
    shown = world.http.get(f"/cooperatives/farmers/{farmer['farmer_id']}", headers=coop.headers)
    assert shown.json()["member_number"] == number
    picked = "2026-01-05T08:30:00"
    content = _csv(
        f"{number},东坡茶园,4000,2,{picked},N-1",
        f"{number},西坡茶园,4000,2,{picked},N-2",  # no such plot name: the row says so
    )
    files = {"file": ("names.csv", content, "text/csv")}
    url = "/cooperatives/harvests/upload"
    report = world.http.post(url, files=files, headers=coop.headers).json()
    assert report["recorded"] == 1 and report["invalid"] == 1, report
    assert report["errors"][0]["where"] == "line 3" and report["errors"][0]["field"] == "plot"
    # another cooperative's member numbers are not its own
    other = world.org(Role.COOPERATIVE, "Other names cooperative")
    theirs = world.http.post(url, files=files, headers=other.headers).json()
    assert theirs["recorded"] == 0 and theirs["invalid"] == 2


def test_lots_are_listed_newest_first_with_state_and_trace_links(world, coop):
    world.index()
    before = world.http.get("/cooperatives/lots", headers=coop.headers).json()["total"]
    member = world.member(coop)
    lots = [world.harvest(coop, member, grams) for grams in (1_000, 2_000, 3_000)]
    world.index()
    page = world.http.get("/cooperatives/lots?limit=2", headers=coop.headers).json()
    assert page["total"] == before + 3 and [i["lot"] for i in page["items"]] == lots[::-1][:2]
    item = page["items"][0]
    assert item["state"] == "held" and item["holder"] == coop.address and item["grams"] == 3_000
    assert item["trace_url"] == f"http://testserver/trace/{lots[2]}", "links follow the request"
    assert world.http.get("/cooperatives/lots?limit=501", headers=coop.headers).status_code == 422
    assert world.http.get("/cooperatives/lots").status_code == 401
    inspector = world.org(Role.INSPECTOR)
    assert world.http.get("/cooperatives/lots", headers=inspector.headers).status_code == 403


def test_lot_detail_is_object_level(world, coop, other_coop):
    mine = world.harvest(coop, world.member(coop))
    theirs = world.harvest(other_coop, world.member(other_coop))
    world.index()
    ok = world.http.get(f"/cooperatives/lots/{mine}", headers=coop.headers)
    assert ok.status_code == 200 and ok.json()["lot"] == mine and ok.json()["state"] == "held"
    assert world.http.get(f"/cooperatives/lots/{theirs}", headers=coop.headers).status_code == 403
    unknown = f"/cooperatives/lots/0x{'42' * 32}"
    assert world.http.get(unknown, headers=coop.headers).status_code == 404
    assert world.http.get("/cooperatives/lots/0xzz", headers=coop.headers).status_code == 422
    assert world.http.get(f"/cooperatives/lots/{mine}").status_code == 401
    lender = world.org(Role.LENDER, "bank")
    assert world.http.get(f"/cooperatives/lots/{mine}", headers=lender.headers).status_code == 403


# ------------------------------------------------------------------------------------ supply chain


def test_supply_chain_object_level_checks(world, coop, other_coop):
    processor = world.org(Role.PROCESSOR)
    mine = world.harvest(coop, world.member(coop))
    theirs = world.harvest(other_coop, world.member(other_coop))
    unknown = "0x" + "5a" * 32
    post = world.http.post
    ship = "/cooperatives/shipments"
    shipment = {"lots": [theirs], "to_org_id": processor.id}
    forbidden = post(ship, json=shipment, headers=coop.headers)
    assert forbidden.status_code == 403 and "held by" in forbidden.json()["detail"]
    assert post(ship, json={**shipment, "lots": [unknown]}, headers=coop.headers).status_code == 404
    to_lender = {"lots": [mine], "to_org_id": world.org(Role.LENDER, "bank").id}
    assert post(ship, json=to_lender, headers=coop.headers).status_code == 422
    nobody = {"lots": [mine], "to_org_id": 99_999}
    assert post(ship, json=nobody, headers=coop.headers).status_code == 404
    twice = {"lots": [mine, mine], "to_org_id": processor.id}
    assert post(ship, json=twice, headers=coop.headers).status_code == 422
    # processing: only lots the processor holds
    run = {"inputs": [mine], "outputs": [{"grams": 1_000}], "process_ref": "P-x"}
    held_elsewhere = post("/cooperatives/processing", json=run, headers=processor.headers)
    assert held_elsewhere.status_code == 403
    assert post("/cooperatives/processing", json=run, headers=coop.headers).status_code == 403
    gone = {**run, "inputs": [unknown]}
    assert post("/cooperatives/processing", json=gone, headers=processor.headers).status_code == 404
    # receiving: only lots shipped to you
    receipt = {"lots": [theirs]}
    assert post("/cooperatives/receipts", json=receipt, headers=coop.headers).status_code == 403
    assert (
        post("/cooperatives/receipts", json={"lots": [unknown]}, headers=coop.headers).status_code
        == 404
    )
    # sales
    merchant = world.org(Role.MERCHANT)
    sale = {"lot": theirs, "buyer_org_id": merchant.id, "price_fen": 100}
    assert post("/cooperatives/sales", json=sale, headers=coop.headers).status_code == 403
    unknown_sale = {**sale, "lot": unknown}
    assert post("/cooperatives/sales", json=unknown_sale, headers=coop.headers).status_code == 404
    free = {**sale, "lot": mine, "price_fen": 0}
    assert post("/cooperatives/sales", json=free, headers=coop.headers).status_code == 422
    # inspectors act on any existing lot
    inspector = world.org(Role.INSPECTOR)
    verdict = {"lot": unknown, "grade": 2, "passed": False, "certificate_ref": "C-1"}
    url = "/cooperatives/attestations"
    assert post(url, json=verdict, headers=inspector.headers).status_code == 404
    assert post(url, json={**verdict, "lot": mine}, headers=coop.headers).status_code == 403
    assert (
        post(url, json={**verdict, "lot": mine, "grade": 7}, headers=inspector.headers).status_code
        == 422
    )
    recall = {"lot": unknown, "reason": "mould"}
    assert post("/cooperatives/recalls", json=recall, headers=inspector.headers).status_code == 404
    assert (
        post(
            "/cooperatives/recalls", json={**recall, "lot": mine}, headers=coop.headers
        ).status_code
        == 403
    )


def test_a_refused_transaction_is_409_with_the_decoded_error(world, coop):
    processor = world.org(Role.PROCESSOR)
    leaf = world.harvest(coop, world.member(coop), 10_000)
    # held by the coop, not in transit: receiving it is refused by the contract
    refused = world.http.post("/cooperatives/receipts", json={"lots": [leaf]}, headers=coop.headers)
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "TeaTraceLotNotInTransit" and body["args"]["lot"] == leaf
    assert "is not in transit" in body["detail"]
    shipment = {"lots": [leaf], "to_org_id": processor.id}
    assert (
        world.http.post("/cooperatives/shipments", json=shipment, headers=coop.headers).status_code
        == 201
    )
    world.http.post("/cooperatives/receipts", json={"lots": [leaf]}, headers=processor.headers)
    greedy = {"inputs": [leaf], "outputs": [{"grams": 9_000}], "process_ref": "greedy"}
    over = world.http.post("/cooperatives/processing", json=greedy, headers=processor.headers)
    assert over.status_code == 409 and over.json()["error"] == "TeaTraceYieldExceeded"
    assert over.json()["args"]["freshLeafGrams"] == 10_000


WRITE_ROUTES = [
    ("/cooperatives/farmers", Role.COOPERATIVE),
    ("/cooperatives/plots", Role.COOPERATIVE),
    ("/cooperatives/harvests", Role.COOPERATIVE),
    ("/cooperatives/processing", Role.PROCESSOR),
    ("/cooperatives/shipments", Role.DISTRIBUTOR),
    ("/cooperatives/receipts", Role.DISTRIBUTOR),
    ("/cooperatives/sales", Role.COOPERATIVE),
    ("/cooperatives/attestations", Role.INSPECTOR),
    ("/cooperatives/recalls", Role.INSPECTOR),
]


@pytest.mark.parametrize(("url", "role"), WRITE_ROUTES)
def test_every_write_route_needs_a_key_the_role_and_a_body(world, url, role):
    assert world.http.post(url, json={}).status_code == 401
    bad_key = {"X-API-Key": "tl_nope_nope"}
    assert world.http.post(url, json={}, headers=bad_key).status_code == 401
    farmer = world.org(Role.FARMER, "wallet farmer")
    assert world.http.post(url, json={}, headers=farmer.headers).status_code == 403
    allowed = world.org(role)
    assert world.http.post(url, json={}, headers=allowed.headers).status_code == 422
    assert world.http.post(url, content=b"{not json", headers=allowed.headers).status_code == 422


# ------------------------------------------------------------------------------------ pages


def _login(world: World, org: Org) -> TestClient:
    """A browser-like client logged in through the form (cookie kept by the client)."""
    browser = TestClient(world.app)
    response = browser.post("/login", data={"api_key": org.key}, follow_redirects=False)
    assert response.status_code == 303
    return browser


def test_login_sets_an_httponly_cookie_and_pages_need_it(world, coop):
    page = TestClient(world.app)
    assert page.get("/login").status_code == 200 and 'name="api_key"' in page.get("/login").text
    assert page.get("/coop", follow_redirects=False).headers["location"] == "/login"
    refused = page.post("/login", data={"api_key": "tl_wrong_key"})
    assert refused.status_code == 401 and "invalid" in refused.text
    ok = page.post("/login", data={"api_key": coop.key}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/coop"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    home = page.get("/coop")
    assert (
        home.status_code == 200 and "鲜叶采摘登记" in home.text and "Record a harvest" in home.text
    )
    # the cookie is for pages only: the JSON API keeps X-API-Key
    assert page.get("/cooperatives/farmers").status_code == 401
    lender = _login(world, world.org(Role.LENDER, "bank"))
    assert lender.get("/coop").status_code == 403
    out = page.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and page.get("/coop", follow_redirects=False).status_code == 303


def test_the_login_cookie_is_a_server_session_that_logout_ends(world, coop):
    page = _login(world, coop)
    token = page.cookies["tealedger_login"]
    assert coop.key not in token and coop.key not in str(page.cookies), "the key stays out"
    copied = TestClient(world.app, cookies={"tealedger_login": token})
    assert copied.get("/coop").status_code == 200, "the session works from any browser"
    page.post("/logout", follow_redirects=False)
    gone = copied.get("/coop", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/login", "logout revokes it"
    forged = TestClient(world.app, cookies={"tealedger_login": coop.key})
    assert forged.get("/coop", follow_redirects=False).status_code == 303, "a key is no login"


def test_revoking_the_key_ends_its_page_sessions(world):
    coop = world.org(Role.COOPERATIVE, "revoked coop")
    page = _login(world, coop)
    assert page.get("/coop").status_code == 200
    with world.session() as session:
        key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(coop.key))).one()
        revoke(session, key)
    assert page.get("/coop", follow_redirects=False).status_code == 303


def test_logins_per_key_are_bounded(world):
    coop = world.org(Role.COOPERATIVE, "busy coop")
    for _ in range(MAX_LOGINS_PER_KEY + 5):
        _login(world, coop)
    with world.session() as session:
        key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(coop.key))).one()
        rows = session.exec(select(PageLogin).where(PageLogin.api_key_id == key.id)).all()
    assert len(rows) == MAX_LOGINS_PER_KEY


def test_harvest_form_records_and_lists_the_lot(world, coop, other_coop):
    farmer, plot = world.member(coop)
    browser = _login(world, coop)
    home = browser.get("/coop").text
    assert plot in home and 'id="harvest-form"' in home
    csrf = home.split('name="csrf" value="')[1].split('"')[0]
    picked = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 8 * 3600 - 7200))
    form = {"plot_id": plot, "grams_kg": "12.5", "grade": "2", "picked_at": picked,
            "record_ref": "F-1", "csrf": csrf}  # fmt: skip
    recorded = browser.post("/coop/harvests", data=form)
    assert recorded.status_code == 200, recorded.text
    lot = "0x" + lot_id(coop.address, _harvest_hash(farmer, plot, 12_500, 2, picked, "F-1")).hex()
    assert 'id="result"' in recorded.text and "recorded" in recorded.text
    world.index()  # the list shows the lot once indexed (in `serve`, the follower's work)
    listed = browser.get("/coop").text
    assert f'data-lot="{lot}"' in listed and f'href="/trace/{lot}"' in listed
    # invalid form: the page says why, nothing is sent
    bad = browser.post("/coop/harvests", data={**form, "grams_kg": "lots"})
    assert bad.status_code == 422 and 'id="form-errors"' in bad.text
    other = world.member(other_coop)
    foreign = browser.post("/coop/harvests", data={**form, "plot_id": other[1]})
    assert foreign.status_code == 422 and "choose one of your plots" in foreign.text
    forged = browser.post("/coop/harvests", data={**form, "csrf": "0" * 64})
    assert forged.status_code == 403


def _harvest_hash(farmer, plot, grams, grade, picked_local, ref):
    from datetime import datetime, timedelta, timezone

    from traceability.ids import harvest_data_hash

    moment = datetime.fromisoformat(picked_local).replace(tzinfo=timezone(timedelta(hours=8)))
    return harvest_data_hash(
        bytes.fromhex(farmer[2:]),
        bytes.fromhex(plot[2:]),
        grams,
        grade,
        int(moment.timestamp()),
        ref,
    )


def test_upload_page_shows_row_errors(world, coop):
    farmer, plot = world.member(coop)
    browser = _login(world, coop)
    csrf = browser.get("/coop").text.split('name="csrf" value="')[1].split('"')[0]
    content = _csv(f"{farmer},{plot},2000,2,2026-01-06T08:00:00,U-1", f"{farmer},{plot},-5,2,x,U-2")
    files = {"file": ("day.csv", content, "text/csv")}
    shown = browser.post("/coop/harvests/upload", files=files, data={"csrf": csrf})
    assert shown.status_code == 200, shown.text
    assert 'id="row-errors"' in shown.text and "line 3" in shown.text
    assert '<strong id="upload-recorded">1</strong>' in shown.text
    assert '<strong id="upload-invalid">1</strong>' in shown.text  # one row, two bad fields
    refused = browser.post("/coop/harvests/upload", files=files, data={"csrf": "x"})
    assert refused.status_code == 403


# ------------------------------------------------------------------------------------ settings


def test_production_refuses_the_default_pseudonym_secret(tmp_path):
    from pydantic import ValidationError

    keystore = {"org_keystore_password": "k" * 20}
    with pytest.raises(ValidationError, match="TEALEDGER_PSEUDONYM_SECRET"):
        ApiSettings(environment="production", data_dir=tmp_path, **keystore)
    with pytest.raises(ValidationError, match="at least 32"):
        ApiSettings(
            environment="production", data_dir=tmp_path, pseudonym_secret="short", **keystore
        )
    ok = ApiSettings(
        environment="production", data_dir=tmp_path, pseudonym_secret="p" * 32, **keystore
    )
    assert ok.pseudonym_secret.get_secret_value() == "p" * 32
