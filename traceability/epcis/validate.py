"""Validation against GS1's official EPCIS 2.0 JSON schema, offline.

The schema (JSON Schema draft-07) is vendored in `schema/` (source and SHA-256 in its
README). The validator is `jsonschema_rs` (maintained, draft-07, with built-in `date-time`
and `uri` format checks turned on here); no `$ref` is ever fetched: the schema has only local
`#/definitions/...` references, and the retriever refuses every URI should one appear.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMA_PATH = Path(__file__).parent / "schema" / "epcis-json-schema.json"
SCHEMA_SHA256 = "ed3228d7867198b4a5be9748fe77f473457c6ed98224fab28a950b4ce634a041"
MAX_ERRORS = 20


class SchemaFileError(RuntimeError):
    """The vendored schema is missing or is not the file recorded in its README."""


class EpcisValidationError(ValueError):
    """A document breaks the EPCIS 2.0 schema; `errors` says where and how."""

    def __init__(self, errors: list[SchemaViolation]) -> None:
        super().__init__("; ".join(str(e) for e in errors[:3]))
        self.errors = errors


@dataclass(frozen=True)
class SchemaViolation:
    """One failed schema check: where in the document and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.message}"


def _refuse(uri: str) -> Any:
    """Retriever: no schema is ever downloaded."""
    raise SchemaFileError(f"the EPCIS schema referred to {uri!r}; nothing is fetched")


@cache
def validator() -> jsonschema_rs.Draft7Validator:
    """The validator of the vendored schema (checked against its recorded hash)."""
    raw = SCHEMA_PATH.read_bytes()
    if hashlib.sha256(raw).hexdigest() != SCHEMA_SHA256:
        raise SchemaFileError(f"{SCHEMA_PATH.name} is not the recorded official schema")
    return jsonschema_rs.Draft7Validator(
        json.loads(raw),
        validate_formats=True,
        ignore_unknown_formats=False,
        retriever=_refuse,
    )


def violations(document: Any) -> list[SchemaViolation]:
    """Every schema violation of a parsed document (empty when valid), at most MAX_ERRORS."""
    found: list[SchemaViolation] = []
    try:
        for error in validator().iter_errors(document):
            path = "/" + "/".join(str(p) for p in error.instance_path)
            found.append(SchemaViolation(path, error.message[:300]))
            if len(found) >= MAX_ERRORS:
                break
    except UnicodeEncodeError:
        # JSON allows "\ud800" (a lone surrogate) but no UTF-8 string can hold it
        return [SchemaViolation("/", "the text holds a lone surrogate escape: not Unicode text")]
    return found


def validate_text(text: str | bytes) -> None:
    """Raise EpcisValidationError unless the JSON text is a valid EPCIS 2.0 document.

    The text, not the dict, is checked: that is what is published (numbers included).
    """
    errors = violations(json.loads(text))
    if errors:
        raise EpcisValidationError(errors)
