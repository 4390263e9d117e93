"""The CBV 2.0 event hash ID (EPCIS 2.0 section 8.9, CBV 2.0 "Event Hash ID") of an EPCIS
2.0 JSON-LD event: `ni:///sha-256;<hex>?ver=CBV2.0`.

The event is written as a canonical pre-hash string (fields in the standard's order, list
elements sorted, times in UTC at millisecond precision, CBV words as web-vocabulary URIs, EPC
URNs as GS1 Digital Link URIs, extension fields as `{namespace}name`, sorted after the
standard fields) whose SHA-256 is the id. The same event written differently (field order,
time zone, `urn:epcglobal:cbv:bizstep:` or bare words) gets the same id.

Why here and not a library: the only Python implementation calls itself a prototype, and
the maintained JavaScript SDK (`epcis2.js`) does not install from the npm registry (its
dependency `fs@0.0.1-security` is not served); see docs/traceability.md. This module covers
the event fields EPCIS 2.0 defines except sensor data, persistent dispositions and error
declarations (an event with one of those raises `UnsupportedEventError`), and is checked
against the reference generator's published vectors (tests/data/epcis_hash/).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

HASH_PREFIX = "ni:///sha-256;"
HASH_SUFFIX = "?ver=CBV2.0"
DIGITAL_LINK = "https://id.gs1.org/"
_HASH_ID = re.compile(r"ni:///sha-256;([0-9a-f]{64})\?ver=CBV2\.0")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

# Prefixes the standard JSON-LD context defines (a document's own @context may add more).
WELL_KNOWN_NAMESPACES = {
    "gs1": "https://ref.gs1.org/voc/",
    "cbv": "https://ref.gs1.org/cbv/",
    "epcis": "https://ref.gs1.org/epcis/",
    "cbvmda": "urn:epcglobal:cbv:mda",
}
# Never part of the hash (EPCIS 2.0 8.9: the id itself, when it was recorded, comments).
IGNORED = frozenset({"type", "eventID", "recordTime", "comment", "rdfs:comment", "@context"})
UNSUPPORTED = ("sensorElementList", "persistentDisposition", "errorDeclaration")


class UnsupportedEventError(ValueError):
    """The event has a field this implementation does not hash."""


@dataclass(frozen=True)
class Vocabulary:
    """Where CBV words expand to: CBV 2.0's `https://ref.gs1.org/cbv/BizStep-...`; the
    reference generator's older vectors used the draft `https://ns.gs1.org/voc/Bizstep-...`."""

    base: str = "https://ref.gs1.org/cbv/"
    biz_step: str = "BizStep-"

    def expand(self, kind: str, value: str) -> str:
        """A bare CBV word (or an old `urn:epcglobal:cbv:` URN) as its web URI."""
        old = {
            "BizStep-": "urn:epcglobal:cbv:bizstep:",
            "Disp-": "urn:epcglobal:cbv:disp:",
            "BTT-": "urn:epcglobal:cbv:btt:",
            "SDT-": "urn:epcglobal:cbv:sdt:",
        }[kind]
        prefix = self.base + (self.biz_step if kind == "BizStep-" else kind)
        if value.startswith(old):
            return prefix + value[len(old) :]
        if ":" not in value:
            return prefix + value
        return value


CBV = Vocabulary()


# ------------------------------------------------------------------------------ identifiers


def _check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit of a key's digits (weights 3, 1, ... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str(-total % 10)


def _indicator_key(company: str, reference: str) -> str:
    """GTIN-14 / SSCC digits: indicator (first digit of the reference), company, rest, check."""
    body = reference[:1] + company + reference[1:]
    return body + _check_digit(body)


def _plain_key(company: str, reference: str) -> str:
    """GLN / GDTI base digits: company, reference, check."""
    body = company + reference
    return body + _check_digit(body)


def digital_link(value: str) -> str:
    """A GS1 EPC URN as its canonical Digital Link URI; any other text unchanged."""
    if not value.startswith(("urn:epc:id:", "urn:epc:class:", "urn:epc:idpat:")):
        return value
    try:
        scheme, body = value.split(":", 4)[3:5]
        parts = body.split(".")
        if scheme == "sgtin" and len(parts) == 3:
            company, reference, serial = parts
            if value.startswith("urn:epc:idpat:"):
                return f"{DIGITAL_LINK}01/{_indicator_key(company, reference)}"
            return f"{DIGITAL_LINK}01/{_indicator_key(company, reference)}/21/{serial}"
        if scheme == "lgtin" and len(parts) == 3:
            company, reference, lot = parts
            return f"{DIGITAL_LINK}01/{_indicator_key(company, reference)}/10/{lot}"
        if scheme == "sscc" and len(parts) == 2:
            return f"{DIGITAL_LINK}00/{_indicator_key(*parts)}"
        if scheme == "sgln" and len(parts) == 3:
            company, location, extension = parts
            gln = _plain_key(company, location)
            tail = "" if extension == "0" else f"/254/{extension}"
            return f"{DIGITAL_LINK}414/{gln}{tail}"
        if scheme == "pgln" and len(parts) == 2:
            return f"{DIGITAL_LINK}417/{_plain_key(*parts)}"
        if scheme == "gdti" and len(parts) == 3:
            company, document, serial = parts
            return f"{DIGITAL_LINK}253/{_plain_key(company, document)}{serial}"
    except (ValueError, IndexError):
        return value
    return value  # other keys are left as written (none of them occur in tealedger's events)


# ----------------------------------------------------------------------------------- values


def utc_millis(text: str) -> str:
    """An ISO 8601 date-time in UTC at millisecond precision, ending in Z."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def number(value: Any) -> str:
    """A number without sign, leading or trailing zeros or exponent (`600`, `12.1`)."""
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not exact.is_finite():
        raise ValueError(f"{value} is not a finite number")
    if exact == exact.to_integral_value():
        return str(int(exact))
    return format(exact.normalize(), "f")


def _scalar(value: Any) -> str:
    """A value as the pre-hash writes it (booleans lower-case, numbers canonical, EPC URNs
    as Digital Link, old CBV URNs as web URIs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return number(value)
    text = str(value).strip()
    for kind, old in (("BizStep-", "bizstep"), ("Disp-", "disp"), ("BTT-", "btt"), ("SDT-", "sdt")):
        if text.startswith(f"urn:epcglobal:cbv:{old}:"):
            return CBV.expand(kind, text)
    if _NUMBER.fullmatch(text):
        return number(text)
    return digital_link(text)


# ------------------------------------------------------------------------------- namespaces


def namespaces(context: Any) -> dict[str, str]:
    """Prefix -> namespace URI from a document's @context (strings name whole contexts)."""
    found = dict(WELL_KNOWN_NAMESPACES)
    items = context if isinstance(context, list) else [context]
    for item in items:
        if isinstance(item, Mapping):
            found.update({str(k): str(v) for k, v in item.items() if isinstance(v, str)})
    return found


def _key(name: str, ns: Mapping[str, str]) -> str:
    """An extension field's name as `{namespace}local` when its prefix is declared."""
    prefix, sep, local = name.partition(":")
    if sep and prefix in ns:
        return "{" + ns[prefix] + "}" + local
    return name


# -------------------------------------------------------------------------------- pre-hash


def _ids(name: str, values: Iterable[Any]) -> str:
    """`epcList` + sorted `epc=...` elements."""
    items = sorted(f"epc={digital_link(str(v))}" for v in values)
    return name + "".join(items) if items else ""


def _quantities(name: str, elements: Iterable[Mapping[str, Any]]) -> str:
    """A quantity list: sorted `quantityElement epcClass= quantity= uom=` elements."""
    items = []
    for element in elements:
        text = "quantityElement" + f"epcClass={digital_link(str(element['epcClass']))}"
        if "quantity" in element:
            text += f"quantity={number(element['quantity'])}"
        if "uom" in element:
            text += f"uom={element['uom']}"
        items.append(text)
    return name + "".join(sorted(items)) if items else ""


def _typed(name: str, field: str, kind: str, elements: Iterable[Mapping[str, Any]]) -> str:
    """bizTransactionList / sourceList / destinationList: sorted `field=... type=...`."""
    items = []
    for element in elements:
        text = f"{field}={_scalar(element[field])}"
        if "type" in element:
            text += f"type={CBV.expand(kind, str(element['type']))}"
        items.append(text)
    return name + "".join(sorted(items)) if items else ""


def _generic(name: str, value: Any, ns: Mapping[str, str]) -> list[str]:
    """An extension (or ilmd) field: `name=value`, or `name` + its sorted children."""
    key = _key(name, ns)
    if isinstance(value, list):
        return [text for item in value for text in _generic(name, item, ns)]
    if isinstance(value, Mapping):
        children: list[str] = []
        text = ""
        for child, item in value.items():
            if child == "#text":
                text = "=" + _scalar(item)
            elif child not in IGNORED and not child.startswith("@"):
                children += _generic(child, item, ns)
        return [key + text + "".join(sorted(children))]
    return [f"{key}={_scalar(value)}"]


def prehash(event: Mapping[str, Any], ns: Mapping[str, str], vocab: Vocabulary = CBV) -> str:
    """The canonical pre-hash string of one event."""
    for field in UNSUPPORTED:
        if field in event:
            raise UnsupportedEventError(f"{field} is not hashed here")
    parts = [f"eventType={event['type']}"]
    done = set(IGNORED)

    def take(field: str, text: str) -> None:
        done.add(field)
        if text:
            parts.append(text)

    for field in ("eventTime", "eventTimeZoneOffset"):
        if field in event:
            value = event[field]
            take(field, f"{field}={utc_millis(value) if field == 'eventTime' else value}")
    if "epcList" in event:
        take("epcList", _ids("epcList", event["epcList"]))
    if "parentID" in event:
        take("parentID", f"parentID={digital_link(str(event['parentID']))}")
    for field in ("inputEPCList", "childEPCs"):
        if field in event:
            take(field, _ids(field, event[field]))
    for field in ("quantityList", "childQuantityList", "inputQuantityList"):
        if field in event:
            take(field, _quantities(field, event[field]))
    if "outputEPCList" in event:
        take("outputEPCList", _ids("outputEPCList", event["outputEPCList"]))
    if "outputQuantityList" in event:
        take("outputQuantityList", _quantities("outputQuantityList", event["outputQuantityList"]))
    if "action" in event:
        take("action", f"action={event['action']}")
    if "transformationID" in event:
        take("transformationID", f"transformationID={digital_link(str(event['transformationID']))}")
    if "bizStep" in event:
        step = vocab.expand("BizStep-", str(event["bizStep"]))
        take("bizStep", f"bizStep={step}")
    if "disposition" in event:
        take("disposition", f"disposition={vocab.expand('Disp-', str(event['disposition']))}")
    for field in ("readPoint", "bizLocation"):
        if field in event:
            take(field, f"{field}id={digital_link(str(event[field]['id']))}")
    if "bizTransactionList" in event:
        text = _typed("bizTransactionList", "bizTransaction", "BTT-", event["bizTransactionList"])
        take("bizTransactionList", _vocab_fix(text, vocab))
    for field, item in (("sourceList", "source"), ("destinationList", "destination")):
        if field in event:
            take(field, _vocab_fix(_typed(field, item, "SDT-", event[field]), vocab))
    rest: list[str] = []
    for field, value in event.items():
        if field not in done and not field.startswith("@"):
            rest += _generic(field, value, ns)
    return "".join(parts) + "".join(sorted(rest))


def _vocab_fix(text: str, vocab: Vocabulary) -> str:
    """Move list types to another vocabulary base (only for the draft-vocabulary vectors)."""
    return text if vocab.base == CBV.base else text.replace(CBV.base, vocab.base)


def event_hash_id(event: Mapping[str, Any], context: Any = None, vocab: Vocabulary = CBV) -> str:
    """`ni:///sha-256;<hex>?ver=CBV2.0` of one event of a document with this @context."""
    text = prehash(event, namespaces(context), vocab)
    return HASH_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest() + HASH_SUFFIX


def hash_bytes(hash_id: str) -> bytes:
    """The 32 bytes of a sha-256 hash id (ValueError for anything else)."""
    match = _HASH_ID.fullmatch(hash_id)
    if match is None:
        raise ValueError(f"not a CBV 2.0 sha-256 event hash id: {hash_id[:100]!r}")
    return bytes.fromhex(match.group(1))


def is_hash_id(text: Any) -> bool:
    """Whether an eventID is written as an event hash id (`ni:///...`)."""
    return isinstance(text, str) and text.startswith("ni:///")
