"""EPCIS round trip between two independent deployments on one anvil: a season exported from
A (harvests, a merge with mass balance, shipping, receiving, sale, quality, a recall) is
captured into an empty B by each organisation with its own key, B is indexed and exported
again: same lineage, same grams, same recall; capturing again records nothing."""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from chain.client import ChainClient
from indexer.db import make_engine, migrate
from indexer.runner import index_once
from tests._fixtures import client_for
from tests.traceability._epcis_world import PRICE_FEN, EpcisWorld, build_world
from traceability.contracts import DEFAULT_MAX_YIELD_BPS, deploy_traceability
from traceability.epcis import ids
from traceability.epcis.capture import (
    CaptureReport,
    capture,
    split_by_actor,
    with_master_data,
)
from traceability.epcis.capture_models import EpcisCapturedEvent, EpcisLotMap
from traceability.epcis.export import dumps, epcis_document, loads, lot_events
from traceability.epcis.validate import validate_text
from traceability.service import RecordingService


@dataclass
class Deployment:
    """B: an empty TeaTrace on the same chain, with its own index and capture tables."""

    client: ChainClient
    url: str
    engine: Engine


def _season_document(world: EpcisWorld) -> dict[str, Any]:
    """A's whole season as one document (every lot's events, chain order), plots as master
    data, as published (schema-checked, exact numbers)."""
    with world.engine.connect() as conn:
        events = {}
        for lot in (world.blend, world.made[1], world.lone):
            events.update((e.key, e) for e in lot_events(conn, lot))
        document = with_master_data(conn, epcis_document([events[k] for k in sorted(events)]))
    text = dumps(document)
    validate_text(text)
    return loads(text)


def _priced(document: dict[str, Any]) -> dict[str, Any]:
    """The seller adds its price (exported documents leave prices out)."""
    document = copy.deepcopy(document)
    for event in document["epcisBody"]["eventList"]:
        if event.get("bizStep") == ids.BIZSTEP_SELLING:
            event[ids.ext("priceFen")] = PRICE_FEN
    return document


def _capture_all(b: Deployment, document: dict[str, Any], tag: str) -> list[CaptureReport]:
    """Each organisation posts its own run of events, in order, with its own key."""
    accounts = {bytes.fromhex(a.address[2:].lower()): i for i, a in enumerate(b.client.accounts)}
    reports = []
    for n, (who, part) in enumerate(split_by_actor(document)):
        service = RecordingService(b.client, accounts[who])
        text = dumps(part)
        validate_text(text)
        reports.append(capture(service, b.engine, loads(text), f"{tag}-{n}"))
    return reports


@pytest.fixture(scope="module")
def world(anvil_node, tmp_path_factory) -> EpcisWorld:
    """Deployment A with its season, indexed."""
    return build_world(anvil_node, tmp_path_factory.mktemp("epcis-a"))


@pytest.fixture(scope="module")
def deployment_b(anvil_node, tmp_path_factory) -> Deployment:
    """An empty deployment B (roles only) on the same chain."""
    directory: Path = tmp_path_factory.mktemp("epcis-b")
    client = client_for(anvil_node, directory / "chain")
    client.settings.data_dir.mkdir(parents=True, exist_ok=True)
    deploy_traceability(client, DEFAULT_MAX_YIELD_BPS)
    url = f"sqlite:///{directory / 'index.db'}"
    engine = make_engine(url)
    migrate(engine)
    return Deployment(client, url, engine)


@pytest.fixture(scope="module")
def round_trip(world, deployment_b) -> tuple[dict[str, Any], list[CaptureReport]]:
    """A's season captured into B (then B indexed)."""
    document = _priced(_season_document(world))
    reports = _capture_all(deployment_b, document, "first")
    index_once(deployment_b.client, deployment_b.url)
    return document, reports


def _lot_map(b: Deployment) -> dict[str, bytes]:
    """Source lot URI -> B's lot."""
    with Session(b.engine) as session:
        return {r.source_lot: bytes(r.local_lot) for r in session.exec(select(EpcisLotMap))}


def _shape(events: list[dict[str, Any]], rename: dict[str, str]) -> Counter[str]:
    """Events without what differs between deployments (ids, times, step ids), lots renamed
    to A's URIs: what must come out the same."""
    shaped: Counter[str] = Counter()
    for event in events:
        event = {
            k: v for k, v in event.items() if k not in ("eventID", "eventTime", "transformationID")
        }
        text = dumps(event)
        for local, source in rename.items():
            text = text.replace(local, source)
        shaped[text] += 1
    return shaped


def test_every_event_is_recorded_once(round_trip) -> None:
    document, reports = round_trip
    assert all(r.success for r in reports), [r.errors for r in reports]
    results = [e for r in reports for e in r.results]
    assert len(results) == len(document["epcisBody"]["eventList"]) == 15
    assert {e.status for e in results} == {"recorded"}


def test_b_exports_the_same_lineage_grams_and_recall(world, deployment_b, round_trip) -> None:
    document, _ = round_trip
    lots = _lot_map(deployment_b)
    source = [ids.lot_uri(x) for x in (world.blend, world.made[1], world.lone)]
    assert set(source) <= set(lots)
    with deployment_b.engine.connect() as conn:
        events = {}
        for uri in source:
            events.update((e.key, e) for e in lot_events(conn, lots[uri]))
        exported = loads(dumps(epcis_document([events[k] for k in sorted(events)])))
    validate_text(dumps(exported))
    rename = {ids.lot_uri(local): uri for uri, local in lots.items()}
    before = [
        {k: v for k, v in e.items() if k != ids.ext("priceFen")}
        for e in document["epcisBody"]["eventList"]
    ]
    assert _shape(exported["epcisBody"]["eventList"], rename) == _shape(before, {})
    tea = deployment_b.client.contract("TeaTrace").functions
    recalled = lots[ids.lot_uri(world.made[1])]
    assert tea.lot(recalled).call()[4] is True  # (holder, grams, state, kind, recalled)
    assert tea.lot(lots[ids.lot_uri(world.blend)]).call()[4] is False


def test_harvests_and_outputs_are_anchored_by_the_event_hash(deployment_b, round_trip) -> None:
    _, reports = round_trip
    with Session(deployment_b.engine) as session:
        rows = list(session.exec(select(EpcisCapturedEvent)))
    assert len(rows) == 15 and all(len(r.tx_hash) == 32 for r in rows)
    tea = deployment_b.client.contract("TeaTrace").functions
    harvests = [r for r in rows if r.kind == "harvest"]
    assert len(harvests) == 3
    coop = deployment_b.client.accounts[1].address
    for row in harvests:  # lot id = keccak(cooperative, data hash = the event's hash)
        assert bytes(tea.lotId(coop, bytes(row.event_hash)).call()) in {
            bytes.fromhex(lot[2:]) for r in reports for e in r.results for lot in e.lots
        }


def test_capturing_again_records_nothing(deployment_b, round_trip) -> None:
    document, _ = round_trip
    w3 = deployment_b.client.w3
    nonces = [w3.eth.get_transaction_count(a.address) for a in deployment_b.client.accounts[:5]]
    reports = _capture_all(deployment_b, document, "again")
    assert all(r.success for r in reports)
    statuses = [e.status for r in reports for e in r.results]
    assert statuses == ["already_captured"] * 15
    after = [w3.eth.get_transaction_count(a.address) for a in deployment_b.client.accounts[:5]]
    assert after == nonces  # not one transaction sent


def test_the_exported_document_round_trips_through_json(round_trip) -> None:
    document, _ = round_trip
    assert json.loads(dumps(document))["epcisHeader"]["epcisMasterData"]["vocabularyList"]
