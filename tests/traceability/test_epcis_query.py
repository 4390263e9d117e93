"""The EPCIS common query parameters over indexed events: filters, paging, refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Connection

from tests.api.conftest import DATABASES, database_for
from tests.traceability._epcis_world import EpcisWorld, build_world
from traceability.epcis import ids
from traceability.epcis.events import Scope, read_events
from traceability.epcis.query import QueryParameterError, page_token, parse_query, run_query


@pytest.fixture(scope="module", params=DATABASES)
def world(request, anvil_node, tmp_path_factory, pg_databases) -> EpcisWorld:
    """Every trace event once, indexed into SQLite and into PostgreSQL."""
    directory = tmp_path_factory.mktemp("epcis-query")
    return build_world(anvil_node, directory, database_for(request.param, directory, pg_databases))


@pytest.fixture
def conn(world) -> Iterator[Connection]:
    with world.engine.connect() as connection:
        yield connection


def _run(conn: Connection, **params: str) -> list[dict]:
    return [e.body for e in run_query(conn, parse_query(params)).events]


def test_no_parameters_is_every_event_in_chain_order(conn) -> None:
    every = read_events(conn, Scope())
    page = run_query(conn, parse_query({"perPage": "1000"}))
    assert [e.key for e in page.events] == sorted(e.key for e in every)
    assert page.next_page_token is None
    assert len(every) == 3 + 3 + 3 + 2 + 1 + 2 + 1  # harvests, ships, receipts, steps, ...


def test_event_type_and_biz_step(conn) -> None:
    steps = _run(conn, eventType="TransformationEvent")
    assert len(steps) == 2 and {e["type"] for e in steps} == {"TransformationEvent"}
    shipped = _run(conn, EQ_bizStep="shipping")
    assert len(shipped) == 3 and {e["bizStep"] for e in shipped} == {"shipping"}
    both = _run(conn, EQ_bizStep="shipping|receiving")
    assert len(both) == 6
    assert _run(conn, EQ_bizStep="shipping", eventType="TransformationEvent") == []
    assert len(_run(conn, EQ_disposition="recalled")) == 1
    assert len(_run(conn, EQ_action="ADD")) == 3
    cbv = "https://ref.gs1.org/cbv/"
    assert _run(conn, EQ_bizStep=f"{cbv}BizStep-shipping") == shipped
    assert len(_run(conn, EQ_disposition=f"{cbv}Disp-recalled")) == 1


def test_match_epc_class_finds_a_lots_events(world, conn) -> None:
    uri = ids.lot_uri(world.blend)
    mine = _run(conn, MATCH_epcClass=uri)
    steps = {e.get("bizStep") for e in mine}
    assert steps == {"shipping", "receiving", ids.BIZSTEP_SELLING, "inspecting"}
    anywhere = _run(conn, MATCH_anyEPCClass=uri)
    assert len(anywhere) == len(mine) + 1  # and the step that produced it
    assert _run(conn, MATCH_anyEPC=uri) == []  # lots are classes, never instance EPCs


def test_event_time_range(conn) -> None:
    every = read_events(conn, Scope())
    last = every[-1]
    start = _run(conn, GE_eventTime=last.body["eventTime"])
    assert start and all(e["eventTime"] >= last.body["eventTime"] for e in start)
    before = _run(conn, LT_eventTime=every[0].body["eventTime"])
    assert before == []
    assert _run(conn, GE_eventTime="2000-01-01T00:00:00+08:00", perPage="1000") == [
        e.body for e in every
    ]


def test_paging_walks_every_event_once(conn) -> None:
    every = [e.key for e in read_events(conn, Scope())]
    seen, token = [], None
    while True:
        params = {"perPage": "4"} | ({"nextPageToken": token} if token else {})
        page = run_query(conn, parse_query(params))
        seen += [e.key for e in page.events]
        token = page.next_page_token
        if token is None:
            break
    assert seen == every


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"eventType": "FooEvent"}, "eventType"),
        ({"GE_eventTime": "yesterday"}, "GE_eventTime"),
        ({"LT_eventTime": "2026-01-01T00:00:00"}, "LT_eventTime"),  # no offset
        ({"perPage": "0"}, "perPage"),
        ({"perPage": "-1"}, "perPage"),
        ({"perPage": "9" * 40}, "perPage"),
        ({"nextPageToken": "garbage!"}, "nextPageToken"),
        ({"nextPageToken": page_token((1, 2)) + "A"}, "nextPageToken"),
        ({"nextPageToken": page_token((2**63, 0))}, "nextPageToken"),  # beyond BIGINT
        ({"EQ_bizStep": "shipping||receiving"}, "EQ_bizStep"),
        ({"EQ_action": "CREATE"}, "EQ_action"),
        ({"MATCH_someEPC": "x"}, "MATCH_someEPC"),
        ({"EQ_bizStep": "|".join(["x"] * 101)}, "EQ_bizStep"),
    ],
)
def test_bad_parameters_are_named(params, name) -> None:
    with pytest.raises(QueryParameterError) as caught:
        parse_query(params)
    assert caught.value.parameter == name


def test_a_repeated_parameter_is_refused() -> None:
    with pytest.raises(QueryParameterError):
        parse_query([("EQ_bizStep", "shipping"), ("EQ_bizStep", "receiving")])


def _reference(event, query) -> bool:
    """The standard's semantics, applied to a built event (what SQL must reproduce)."""
    body = event.body

    def field_in(name, wanted):
        return wanted is None or body.get(name) in wanted

    every = ("quantityList", "inputQuantityList", "outputQuantityList")
    return (
        (query.event_types is None or event.event_type in query.event_types)
        and query.any_epc is None
        and (query.epc_classes is None or bool(event.classes("quantityList") & query.epc_classes))
        and (query.any_epc_classes is None or bool(event.classes(*every) & query.any_epc_classes))
        and (query.ge_time is None or event.timestamp >= query.ge_time)
        and (query.lt_time is None or event.timestamp < query.lt_time)
        and field_in("action", query.actions)
        and field_in("bizStep", query.biz_steps)
        and field_in("disposition", query.dispositions)
        and field_in("transformationID", query.transformation_ids)
    )


def _queries(world: EpcisWorld, every) -> list[dict[str, str]]:
    blend, made, leaf = (ids.lot_uri(x) for x in (world.blend, world.made[1], world.leaves[0]))
    step = next(e.body["transformationID"] for e in every if "transformationID" in e.body)
    middle = every[len(every) // 2].body["eventTime"]
    return [
        {},
        {"eventType": "ObjectEvent"},
        {"eventType": "TransformationEvent|ObjectEvent"},
        {"EQ_action": "OBSERVE"},
        {"EQ_action": "ADD", "eventType": "TransformationEvent"},
        {"EQ_bizStep": "commissioning"},
        {"EQ_bizStep": "inspecting", "EQ_disposition": "non_conformant"},
        {"EQ_disposition": "active|recalled"},
        {"EQ_bizStep": ids.BIZSTEP_SELLING},
        {"MATCH_epcClass": blend},
        {"MATCH_epcClass": f"{blend}|{made}"},
        {"MATCH_anyEPCClass": leaf},
        {"MATCH_anyEPCClass": made, "MATCH_epcClass": made},
        {"MATCH_anyEPCClass": "urn:example:not-ours"},
        {"MATCH_anyEPC": blend},
        {"EQ_transformationID": step},
        {"EQ_transformationID": "urn:tealedger:process:0x" + "00" * 32},
        {"GE_eventTime": middle},
        {"LT_eventTime": middle, "EQ_bizStep": "shipping|receiving"},
    ]


def test_sql_filters_agree_with_the_standards_semantics(world, conn) -> None:
    every = read_events(conn, Scope())
    for params in _queries(world, every):
        query = parse_query(params | {"perPage": "1000"})
        got = [e.key for e in run_query(conn, query).events]
        expected = [e.key for e in every if _reference(e, query)]
        assert got == expected, params


@pytest.mark.parametrize("per_page", ["1", "2", "5"])
def test_filtered_paging_agrees_too(world, conn, per_page) -> None:
    every = read_events(conn, Scope())
    for params in _queries(world, every)[:12]:
        expected = [e.key for e in every if _reference(e, parse_query(params))]
        seen, token = [], None
        while True:
            extra = {"nextPageToken": token} if token else {}
            page = run_query(conn, parse_query(params | {"perPage": per_page} | extra))
            seen += [e.key for e in page.events]
            token = page.next_page_token
            if token is None:
                break
        assert seen == expected, params


def test_steps_found_one_input_row_at_a_time(world, conn, monkeypatch) -> None:
    """Paging over steps whose inputs are read one row per statement (the batch loop)."""
    from traceability.epcis import events

    monkeypatch.setattr(events, "_input_batch", lambda limit: None if limit is None else 1)
    test_filtered_paging_agrees_too(world, conn, "1")
    test_sql_filters_agree_with_the_standards_semantics(world, conn)
