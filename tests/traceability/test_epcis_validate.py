"""The validator is GS1's official schema with format checks on, offline: broken documents
fail (it is not a no-op)."""

from __future__ import annotations

import copy
import hashlib
import json
from decimal import Decimal

import jsonschema_rs
import pytest

from traceability.epcis import ids
from traceability.epcis.export import dumps
from traceability.epcis.validate import (
    SCHEMA_PATH,
    SCHEMA_SHA256,
    EpcisValidationError,
    _refuse,
    validate_text,
    validator,
    violations,
)

GOOD = {
    "@context": ids.context(),
    "type": "EPCISDocument",
    "schemaVersion": "2.0",
    "creationDate": "2026-05-01T08:00:00Z",
    "epcisBody": {
        "eventList": [
            {
                "type": "ObjectEvent",
                "eventTime": "2026-05-01T08:00:00Z",
                "eventTimeZoneOffset": "+08:00",
                "eventID": ids.event_id(1, b"\x01" * 32, 0),
                "action": "ADD",
                "quantityList": [
                    {
                        "epcClass": ids.lot_uri(b"\x02" * 32),
                        "quantity": Decimal("1.5"),
                        "uom": "KGM",
                    }
                ],
                "bizStep": "commissioning",
                "ilmd": {"tl:grade": 2},
            }
        ]
    },
}


def _broken(path: list, value: object) -> str:
    document = copy.deepcopy(GOOD)
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return dumps(document)


def test_the_vendored_schema_is_the_recorded_file() -> None:
    assert hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest() == SCHEMA_SHA256
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$id"] == "https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json"
    assert validator() is validator()


def test_a_good_document_passes() -> None:
    validate_text(dumps(GOOD))


EVENT = ["epcisBody", "eventList", 0]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["type"], "EPCISDocumentt"),  # unknown type: no branch applies, then required fails
        (["creationDate"], "yesterday"),  # format date-time
        ([*EVENT, "eventTime"], "2026-05-01 08:00"),  # format date-time
        ([*EVENT, "eventID"], "not a uri"),  # format uri
        ([*EVENT, "action"], "CREATE"),
        ([*EVENT, "bizStep"], "teleporting"),
        ([*EVENT, "quantityList", 0, "uom"], "kg"),
        ([*EVENT, "quantityList", 0, "quantity"], "1.5"),
        ([*EVENT, "plot"], "no namespace"),  # extension field names must be URIs/CURIEs
        ([*EVENT, "eventTimeZoneOffset"], "8"),
    ],
)
def test_a_broken_document_fails(path: list, value: object) -> None:
    text = _broken(path, value)
    with pytest.raises(EpcisValidationError) as caught:
        validate_text(text)
    assert caught.value.errors


def test_a_missing_required_field_fails() -> None:
    document = copy.deepcopy(GOOD)
    del document["schemaVersion"]
    assert violations(json.loads(dumps(document)))


def _refs(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_nothing_is_fetched() -> None:
    refs = _refs(json.loads(SCHEMA_PATH.read_text()))
    assert refs and all(r.startswith("#/") for r in refs)  # only the schema's own definitions
    remote = {"$ref": "https://example.com/elsewhere.json"}
    with pytest.raises(Exception, match="nothing is fetched"):
        jsonschema_rs.Draft7Validator(remote, retriever=_refuse)


def test_a_lone_surrogate_is_a_violation_not_a_crash() -> None:
    text = '{"type": "EPCISDocument", "note": "\\ud800"}'
    with pytest.raises(EpcisValidationError, match="lone surrogate"):
        validate_text(text)
