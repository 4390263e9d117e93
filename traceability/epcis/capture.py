"""EPCIS 2.0 capture: a document's events recorded on chain by the organisation posting it.

The subset is the inverse of the export mapping (docs/traceability.md, "EPCIS capture"):
harvests (ObjectEvent ADD commissioning), processing steps (TransformationEvent), shipping,
receiving, sale (`tl` selling step, with `tl:priceFen`), inspection and recall. Every event
is mapped and checked before anything is sent; one event that cannot be recorded refuses the
whole document (`CaptureRefused`, per-event errors). Each event is keyed by its CBV 2.0 event
hash id: harvests and processing outputs carry it on chain (their data hash), every event is
kept in `epcis_captured_event`, so a document posted again records nothing new.

Foreign lots become new local lots (a lot id derives from its creator's address):
`epcis_lot_map` says which local lot stands for which source lot URI, for later events of the
same or a later document, whoever posts them (the lot moves between organisations).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from eth_utils import keccak
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError

from chain.errors import ContractRevertError
from traceability import contracts
from traceability.epcis import hashid, ids
from traceability.epcis.capture_models import EpcisCapturedEvent, EpcisCaptureJob, EpcisLotMap
from traceability.epcis.ids import BizStep, Disposition, IdentifierError, IdKind
from traceability.epcis.validate import violations
from traceability.errors import TraceabilityError, domain_error
from traceability.ids import lot_id
from traceability.models import (
    FarmerRegistration,
    HarvestCheck,
    HarvestRecord,
    LotKind,
    LotState,
    PlotRegistration,
    ProcessOutput,
    QualityAttestation,
)
from traceability.service import Outcome, RecordingService

Json = dict[str, Any]
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_EVENTS = 5_000
CHUNK = 500  # ids per IN (...) statement
MAX_DEPTH = 32  # an EPCIS event nests a few levels; deeper JSON is refused before parsing
UNITS = {"KGM": 1000, "GRM": 1}  # grams per unit
MASTER_VOCABULARY = "urn:epcglobal:epcis:vtype:ReadPoint"
SUPPLY_CHAIN = (contracts.COOPERATIVE_ROLE, contracts.PROCESSOR_ROLE, contracts.DISTRIBUTOR_ROLE)


class DocumentInvalid(ValueError):
    """The body is not JSON, not an EPCIS 2.0 document, or breaks the official schema."""

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = list(details)


@dataclass(frozen=True)
class EventError:
    """Why event `index` of the document cannot be recorded."""

    index: int
    event_id: str | None
    reason: str


class CaptureRefused(ValueError):
    """Some events cannot be recorded: nothing was sent."""

    def __init__(self, errors: list[EventError]) -> None:
        super().__init__(f"{len(errors)} event(s) cannot be recorded; nothing was recorded")
        self.errors = errors


@dataclass
class EventResult:
    """What capture did with one event."""

    index: int
    event_id: str | None
    hash_id: str
    status: str  # "recorded" | "already_captured"
    tx_hash: str | None = None
    lots: list[str] = field(default_factory=list)  # local lots it created or acted on


@dataclass
class CaptureReport:
    """A capture's outcome: per-event results, and the error that stopped it, if any."""

    capture_id: str
    created_at: int
    results: list[EventResult]
    errors: list[EventError] = field(default_factory=list)
    finished_at: int = 0

    @property
    def success(self) -> bool:
        """Every event is on chain (now or before)."""
        return not self.errors

    @property
    def recorded(self) -> int:
        """Events recorded by this capture."""
        return sum(1 for r in self.results if r.status == "recorded")

    @property
    def already(self) -> int:
        """Events that were captured before."""
        return sum(1 for r in self.results if r.status == "already_captured")

    def as_json(self) -> Json:
        """The job as the REST binding's capture job (plus our per-event results)."""
        return {
            "captureID": self.capture_id,
            "createdAt": _iso(self.created_at),
            "finishedAt": _iso(self.finished_at),
            "running": False,
            "success": self.success,
            "captureErrorBehaviour": "rollback",
            "recorded": self.recorded,
            "alreadyCaptured": self.already,
            "events": [asdict(r) for r in self.results],
            "errors": [asdict(e) for e in self.errors],
        }


def _iso(seconds: int) -> str:
    """Unix seconds as ISO 8601 UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


# ------------------------------------------------------------------------------ parsing


def _depth_ok(text: str) -> bool:
    """Whether brackets nest at most MAX_DEPTH deep (strings skipped): checked before
    json.loads, whose recursion a hostile body could exhaust."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not a JSON number")


def parse_document(body: bytes) -> Json:
    """A posted body as a schema-valid EPCIS document (numbers with fractions as Decimal)."""
    if len(body) > MAX_BODY_BYTES:
        raise DocumentInvalid(f"a capture document has at most {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentInvalid(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if not _depth_ok(text):
        raise DocumentInvalid(f"the JSON nests deeper than {MAX_DEPTH} levels")
    try:
        plain = json.loads(text, parse_constant=_no_constant)
        document = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # also a number of more than 4300 digits
        raise DocumentInvalid(f"the body is not JSON: {str(exc)[:200]}") from exc
    try:  # an escaped lone surrogate (\ud800) parses, but is no Unicode text
        json.dumps(plain, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DocumentInvalid("the JSON has an unpaired surrogate escape (not Unicode)") from exc
    if not isinstance(document, dict) or document.get("type") != "EPCISDocument":
        raise DocumentInvalid("capture takes an EPCISDocument (a JSON object of that type)")
    found = violations(plain)
    if found:
        raise DocumentInvalid("the document breaks the EPCIS 2.0 schema", [str(v) for v in found])
    events = document.get("epcisBody", {}).get("eventList", [])
    if not isinstance(events, list) or not events:
        raise DocumentInvalid("the document has no events (epcisBody.eventList)")
    if len(events) > MAX_EVENTS:
        raise DocumentInvalid(f"at most {MAX_EVENTS} events per document: post it in parts")
    return document


# ------------------------------------------------------------------------------ master data


def plot_master_data(plots: Sequence[Any]) -> Json:
    """`epcisHeader` with plots as read-point master data: farmer pseudonym, area (0.01 mu),
    variety, location hash; what a capturing deployment needs to register them."""
    elements = [
        {
            "id": ids.plot_uri(bytes(p.plot)),
            "attributes": [
                {"id": _attr("farmer"), "attribute": ids.farmer_uri(bytes(p.farmer))},
                {"id": _attr("areaCentiMu"), "attribute": int(p.area_centi_mu)},
                {"id": _attr("variety"), "attribute": int(p.variety)},
                {"id": _attr("locationHash"), "attribute": "0x" + bytes(p.location_hash).hex()},
            ],
        }
        for p in plots
    ]
    vocabulary = {"type": MASTER_VOCABULARY, "vocabularyElementList": elements}
    return {"epcisMasterData": {"vocabularyList": [vocabulary]}}


def _attr(name: str) -> str:
    """A master-data attribute id in our namespace."""
    return f"{ids.EXTENSION_NAMESPACE}{name}"


def with_master_data(conn: Any, document: Json) -> Json:
    """The document with the plots its harvests name as master data (for capture elsewhere;
    farmer pseudonyms are public on chain, names never leave the cooperative)."""
    from indexer.models import Plot  # the indexer's tables, read like the export does

    wanted: set[bytes] = set()
    for event in document["epcisBody"]["eventList"]:
        point = event.get("readPoint", {}).get("id", "")
        if point.startswith(f"{ids.URN_PREFIX}{IdKind.PLOT}:"):
            wanted.add(ids.parse_urn32(point, IdKind.PLOT))
    columns = (Plot.plot, Plot.farmer, Plot.area_centi_mu, Plot.variety, Plot.location_hash)
    query = select(*columns).where(Plot.plot.in_(sorted(wanted)))  # type: ignore[attr-defined]
    rows = list(conn.execute(query))
    rows.sort(key=lambda p: bytes(p.plot))
    return document | {"epcisHeader": plot_master_data(rows)} if rows else document


@dataclass(frozen=True)
class PlotMaster:
    """A plot as master data describes it."""

    farmer: bytes
    area_centi_mu: int
    variety: int
    location_hash: bytes


def _master_plots(document: Json) -> dict[bytes, PlotMaster | str]:
    """Plots described in the header (an unusable description: its reason)."""
    found: dict[bytes, PlotMaster | str] = {}
    vocabularies = document.get("epcisHeader", {}).get("epcisMasterData", {}).get("vocabularyList")
    for vocabulary in vocabularies or []:
        if vocabulary.get("type") != MASTER_VOCABULARY:
            continue
        for element in vocabulary.get("vocabularyElementList", []):
            try:
                plot = ids.parse_urn32(element["id"], IdKind.PLOT)
            except IdentifierError:
                continue  # another read point: not ours to register
            try:
                attrs = {a["id"]: a.get("attribute") for a in element.get("attributes", [])}
                found[plot] = PlotMaster(
                    ids.parse_urn32(attrs[_attr("farmer")], IdKind.FARMER),
                    _int(attrs[_attr("areaCentiMu")], 1, 2**32 - 1),
                    _int(attrs.get(_attr("variety"), 0), 0, 2**16 - 1),
                    _hex32(attrs.get(_attr("locationHash"), "0x" + "00" * 32)),
                )
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                found[plot] = f"the plot's master data is incomplete or wrong ({exc})"
    return found


# ------------------------------------------------------------------------------ values


class _Unmappable(ValueError):
    """One event cannot be recorded; the message says why."""


def _int(value: Any, low: int, high: int) -> int:
    """A whole number in [low, high] (JSON number or decimal string)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError(f"{value!r} is not a whole number")
    try:
        exact = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{str(value)[:40]!r} is not a whole number") from exc
    if not exact.is_finite() or exact != exact.to_integral_value() or not low <= exact <= high:
        raise ValueError(f"{str(value)[:40]} is not a whole number in [{low}, {high}]")
    return int(exact)


def _hex32(value: Any) -> bytes:
    """`0x` + 64 hex digits."""
    if not isinstance(value, str) or len(value) != 66 or not value.startswith("0x"):
        raise ValueError("a hash is 0x and 64 hex digits")
    return bytes.fromhex(value[2:])


def _grams(element: Any) -> int:
    """A quantity element's mass in whole grams (KGM or GRM)."""
    if not isinstance(element, dict) or "quantity" not in element:
        raise _Unmappable("a quantity element without a quantity: lots are masses here")
    unit = element.get("uom")
    if unit not in UNITS:
        raise _Unmappable(f"unit {str(unit)[:20]!r}: only KGM and GRM are recorded")
    try:
        grams = Decimal(str(element["quantity"])) * UNITS[unit]
    except InvalidOperation as exc:
        raise _Unmappable("a quantity is not a number") from exc
    if not grams.is_finite() or grams != grams.to_integral_value() or not 0 < grams < 2**64:
        raise _Unmappable(f"{element['quantity']} {unit} is not a whole number of grams > 0")
    return int(grams)


def _party(elements: Any, kind: str, key: str) -> bytes:
    """The owning party of a source or destination list, as an address."""
    types = (kind, f"{ids.CBV_NAMESPACE}SDT-{kind}")
    found = [e for e in elements or [] if isinstance(e, dict) and e.get("type") in types]
    if len(found) != 1:
        raise _Unmappable(f"one {key} of type {kind} is needed, found {len(found)}")
    return _address(ids.parse_party_uri(found[0][key]), key)


def _address(ref: ids.PartyRef, what: str) -> bytes:
    """A party's address (GLNs need the deployment's GLN directory, which capture has not)."""
    if ref.address is None:
        raise _Unmappable(f"the {what} is a GLN: capture names organisations by address")
    return ref.address


def _time(value: Any, what: str) -> int:
    """An ISO 8601 date-time with an offset as Unix seconds."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise _Unmappable(f"{what} is not an ISO 8601 date-time") from exc
    if moment.tzinfo is None:
        raise _Unmappable(f"{what} has no time zone")
    return int(moment.timestamp())


# ------------------------------------------------------------------------------ planning


@dataclass
class _Lot:
    """The simulated state of a lot while a document is planned."""

    holder: bytes
    grams: int
    state: LotState
    kind: LotKind
    recalled: bool


@dataclass
class _Action:
    """One event, mapped: the call to send (None for harvests, sent in one batch)."""

    index: int
    event_id: str | None
    hash_id: str
    kind: str
    lots: list[bytes]
    call: ContractFunction | None = None
    harvest: HarvestRecord | None = None
    new_lots: dict[str, bytes] = field(default_factory=dict)  # source URI -> local lot
    independent: bool = True  # no lot of it is made or changed by an earlier event here
    on_chain: bool = False  # a harvest or step mined before a crash (found by its anchor)


@dataclass
class _Plan:
    """What a document asks for."""

    farmers: list[FarmerRegistration] = field(default_factory=list)
    plots: list[PlotRegistration] = field(default_factory=list)
    actions: list[_Action] = field(default_factory=list)
    already: list[EventResult] = field(default_factory=list)


class _Planner:
    """Maps every event of one document for one organisation, simulating TeaTrace's rules
    over the chain's current state, without sending anything."""

    def __init__(self, service: RecordingService, engine: Engine, document: Json) -> None:
        self.service = service
        self.engine = engine
        self.tea = service.contract.functions
        self.me = bytes.fromhex(service.address[2:].lower())
        self.context = document.get("@context")
        self.events: list[Any] = document["epcisBody"]["eventList"]
        self.master = _master_plots(document)
        self.lots: dict[bytes, _Lot | None] = {}
        self.known_map: dict[str, bytes] = {}  # read from epcis_lot_map up front
        self.unmapped: set[str] = set()  # URIs known to be in no row of it
        self.captured: dict[bytes, EpcisCapturedEvent] = {}
        self.mapped_before: set[bytes] = set()  # event hashes known to be in no row
        self.touched: set[bytes] = set()
        self.mapped: dict[str, bytes] = {}  # source URI -> local lot, this document
        self.plan = _Plan()
        self.errors: list[EventError] = []
        self.seen: set[bytes] = set()
        self.farmers_planned: set[bytes] = set()
        self.plots_planned: dict[bytes, bytes] = {}  # plot -> farmer
        self.roles: dict[bytes, bool] = {}
        self.max_yield = int(self.tea.maxYieldBps().call())

    # -------------------------------------------------------------- chain and tables

    def _role(self, role: bytes, who: bytes | None = None) -> bool:
        """Whether `who` (default: the caller) has the role."""
        account = who or self.me
        key = role + account
        if key not in self.roles:
            address = self.service.client.w3.to_checksum_address(account)
            self.roles[key] = bool(self.tea.hasRole(role, address).call())
        return self.roles[key]

    def _need(self, role: bytes, name: str) -> None:
        """Refuse unless the caller has the role."""
        if not self._role(role):
            raise _Unmappable(f"recording this needs TeaTrace's {name} role, which you lack")

    def _read_lots(self, lots: Sequence[bytes]) -> None:
        """Read lots' slots from chain into the simulation (batched: one eth_call per 500)."""
        for view in self.service.lots(sorted(set(lots) - set(self.lots))):
            if view.exists:
                holder = bytes.fromhex(view.holder[2:].lower())
                self.lots[view.lot] = _Lot(holder, view.grams, view.state, view.kind, view.recalled)
            else:
                self.lots[view.lot] = None

    def _lot(self, lot: bytes) -> _Lot | None:
        """The lot's simulated state (read from chain once); None: no such lot."""
        if lot not in self.lots:
            self._read_lots([lot])
        return self.lots[lot]

    def _mapped(self, uri: str) -> bytes | None:
        """The local lot a source lot URI was captured as, if any."""
        if uri in self.mapped:
            return self.mapped[uri]
        if uri in self.known_map:
            return self.known_map[uri]
        if uri in self.unmapped:
            return None
        with Session(self.engine) as session:
            row = session.get(EpcisLotMap, uri)
        return bytes(row.local_lot) if row is not None else None

    def _prefetch(self) -> None:
        """Everything the events will ask about, read in a few batches: lots named or made by
        them, captured events, mapped URIs (a season's document is thousands of events)."""
        address = self.service.address
        lots: set[bytes] = set()
        uris: set[str] = set()
        digests: list[bytes] = []
        for event in self.events:
            if not isinstance(event, dict):
                continue
            try:
                digest = hashid.hash_bytes(hashid.event_hash_id(event, self.context))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # reported when the event is mapped
            digests.append(digest)
            lots.add(lot_id(address, digest))
            outputs = event.get("outputQuantityList")
            for i in range(len(outputs) if isinstance(outputs, list) else 0):
                lots.add(lot_id(address, output_data_hash(digest, i)))
            for key in ("quantityList", "inputQuantityList", "outputQuantityList"):
                elements = event.get(key)
                for element in elements if isinstance(elements, list) else []:
                    uri = element.get("epcClass") if isinstance(element, dict) else None
                    if isinstance(uri, str):
                        uris.add(uri)
                        with contextlib.suppress(IdentifierError):
                            lots.add(ids.parse_lot_uri(uri))
        with Session(self.engine) as session:
            ordered = sorted(uris)
            for start in range(0, len(ordered), CHUNK):
                chunk = ordered[start : start + CHUNK]
                query = select(EpcisLotMap).where(EpcisLotMap.source_lot.in_(chunk))  # type: ignore[attr-defined]
                for row in session.scalars(query):
                    self.known_map[row.source_lot] = bytes(row.local_lot)
            for start in range(0, len(digests), CHUNK):
                chunk = digests[start : start + CHUNK]
                query = select(EpcisCapturedEvent).where(EpcisCapturedEvent.event_hash.in_(chunk))  # type: ignore[attr-defined]
                for row in session.scalars(query):
                    self.captured[bytes(row.event_hash)] = row
        self.unmapped = uris - set(self.known_map)
        self.mapped_before = set(digests) - set(self.captured)
        lots |= set(self.known_map.values())
        self._read_lots(sorted(lots))

    def _resolve(self, uri: Any) -> tuple[bytes, _Lot]:
        """A lot URI as a local lot that exists (captured before, or a lot of this chain)."""
        if not isinstance(uri, str):
            raise _Unmappable("a lot is named by its URI (epcClass)")
        local = self._mapped(uri)
        if local is None:
            try:
                local = ids.parse_lot_uri(uri)
            except IdentifierError as exc:
                raise _Unmappable(str(exc)) from exc
        state = self._lot(local)
        if state is None:
            raise _Unmappable(
                f"lot {uri[:100]} is unknown here: capture the event that made it first"
            )
        return local, state

    def _captured(self, digest: bytes) -> EpcisCapturedEvent | None:
        """The table's row of an event captured before."""
        if digest in self.captured or digest in self.mapped_before:
            return self.captured.get(digest)
        with Session(self.engine) as session:
            return session.get(EpcisCapturedEvent, digest)

    # -------------------------------------------------------------- events

    def run(self) -> _Plan:
        """Map every event; CaptureRefused with every error if any event fails."""
        self._prefetch()
        for index, event in enumerate(self.events):
            event_id = event.get("eventID") if isinstance(event, dict) else None
            event_id = event_id if isinstance(event_id, str) else None
            try:
                self._event(index, event, event_id)
            except _Unmappable as exc:
                self.errors.append(EventError(index, event_id, str(exc)))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                # a value of an unexpected shape the schema lets through: this event's error
                self.errors.append(EventError(index, event_id, f"cannot be read: {exc}"[:300]))
        if self.errors:
            raise CaptureRefused(self.errors)
        return self.plan

    def _event(self, index: int, event: Json, event_id: str | None) -> None:
        """Map one event (or note it as captured before)."""
        hash_id = hashid.event_hash_id(event, self.context)
        digest = hashid.hash_bytes(hash_id)
        if hashid.is_hash_id(event_id) and event_id != hash_id:
            raise _Unmappable(f"eventID is a hash id but not this event's ({hash_id})")
        if digest in self.seen:
            raise _Unmappable("the same event (same hash id) is in the document twice")
        self.seen.add(digest)
        before = self._captured(digest)
        if before is not None:
            self._replay_mapping(event)
            self.plan.already.append(
                EventResult(index, event_id, hash_id, "already_captured", _hex(before.tx_hash))
            )
            return
        action = _Action(index, event_id, hash_id, "", [])
        self._map(event, digest, action)
        if action.kind:
            self.plan.actions.append(action)

    def _replay_mapping(self, event: Json) -> None:
        """A captured event's lots: its outputs' mappings are in the table already."""
        for key in ("quantityList", "outputQuantityList"):
            for element in event.get(key, []):
                uri = element.get("epcClass")
                local = self._mapped(uri) if isinstance(uri, str) else None
                if local is not None:
                    self.mapped[uri] = local

    def _map(self, event: Json, digest: bytes, action: _Action) -> None:
        """Dispatch on the event's type, action and business step."""
        kind = event.get("type")
        if kind == "TransformationEvent":
            self._transformation(event, digest, action)
            return
        if kind != "ObjectEvent":
            raise _Unmappable(f"{kind} has no TeaTrace record (only Object/TransformationEvents)")
        if event.get("epcList") or event.get("parentID"):
            raise _Unmappable("lots are classes (quantityList), not instance EPCs")
        step = str(event.get("bizStep", ""))
        step = step.removeprefix(f"{ids.CBV_NAMESPACE}BizStep-")
        disposition = str(event.get("disposition", "")).removeprefix(f"{ids.CBV_NAMESPACE}Disp-")
        what = (event.get("action"), step)
        if what == ("ADD", BizStep.COMMISSIONING):
            self._harvest(event, digest, action)
        elif what == ("OBSERVE", BizStep.SHIPPING):
            self._ship(event, action)
        elif what == ("OBSERVE", BizStep.RECEIVING):
            self._receive(event, action)
        elif what == ("OBSERVE", ids.BIZSTEP_SELLING):
            self._sell(event, action)
        elif what == ("OBSERVE", BizStep.INSPECTING):
            self._inspect(event, digest, disposition, action)
        elif what == ("OBSERVE", BizStep.HOLDING) and disposition == Disposition.RECALLED:
            self._recall(event, digest, action)
        else:
            raise _Unmappable(
                f"action {str(what[0])[:20]} with bizStep {step[:80]!r} has no TeaTrace record"
            )

    def _one_lot(self, event: Json) -> tuple[str, bytes, _Lot]:
        """The event's single lot (quantityList of one element, the whole lot's mass if given)."""
        elements = event.get("quantityList") or []
        if len(elements) != 1:
            raise _Unmappable("one lot per event (quantityList of one element)")
        uri = elements[0].get("epcClass")
        local, state = self._resolve(uri)
        if "quantity" in elements[0] or "uom" in elements[0]:
            grams = _grams(elements[0])
            if grams != state.grams:
                raise _Unmappable(
                    f"the event names {grams} g of a lot of {state.grams} g: TeaTrace moves, "
                    "sells and inspects whole lots"
                )
        return uri, local, state

    def _caller_is(self, who: bytes, what: str) -> None:
        """Refuse an event done by another organisation."""
        if who != self.me:
            raise _Unmappable(
                f"the {what} is 0x{who.hex()}, not you (0x{self.me.hex()}): each organisation "
                "captures the events it did itself"
            )

    def _location(self, event: Json) -> bytes:
        """The organisation of the event's bizLocation."""
        location = event.get("bizLocation", {}).get("id")
        if not isinstance(location, str):
            raise _Unmappable("a bizLocation (the recording organisation) is needed")
        return _address(ids.parse_location_uri(location), "bizLocation")

    def _held_by_me(self, uri: str, state: _Lot) -> None:
        """TeaTrace's holder rule for shipping, selling and processing."""
        if state.holder != self.me or state.state != LotState.HELD:
            raise _Unmappable(f"lot {uri[:100]} is not held by you (or is in transit or used)")
        if state.recalled:
            raise _Unmappable(f"lot {uri[:100]} is recalled")

    # -------------------------------------------------------------- kinds

    def _harvest(self, event: Json, digest: bytes, action: _Action) -> None:
        """A harvest lot: plot, mass, grade and picking time; data hash = event hash."""
        self._caller_is(self._location(event), "harvest's bizLocation")
        self._need(contracts.COOPERATIVE_ROLE, "cooperative")
        elements = event.get("quantityList") or []
        if len(elements) != 1:
            raise _Unmappable("a harvest is one lot (quantityList of one element)")
        uri, grams = elements[0].get("epcClass"), _grams(elements[0])
        if not isinstance(uri, str):
            raise _Unmappable("a harvest lot is named by its URI (epcClass)")
        ilmd = event.get("ilmd") or {}
        plot = ids.parse_urn32(event.get("readPoint", {}).get("id", ""), IdKind.PLOT)
        try:
            grade = _int(ilmd.get(ids.ext("grade")), 1, 5)
        except ValueError as exc:
            raise _Unmappable(f"ilmd tl:grade: {exc}") from exc
        picked = _time(ilmd.get(ids.ext("pickedAt")), "ilmd tl:pickedAt")
        farmer = self._plot_farmer(plot)
        record = HarvestRecord(
            farmer=farmer, plot=plot, grams=grams, grade=grade, picked_at=picked, data_hash=digest
        )
        local = lot_id(self.service.address, digest)
        self._new_lot(uri, local)
        action.kind, action.harvest, action.lots = "harvest", record, [local]
        action.new_lots = {uri: local}
        self.mapped[uri] = local
        action.on_chain = self._lot(local) is not None  # mined before a crash: anchored
        if not action.on_chain:
            self.lots[local] = _Lot(self.me, grams, LotState.HELD, LotKind.FRESH_LEAF, False)
            self.touched.add(local)

    def _new_lot(self, uri: str, local: bytes) -> None:
        """Refuse a lot URI that already stands for another local lot: captured from another
        event, or a lot recorded on this chain itself (capturing it would count it twice)."""
        before = self._mapped(uri)
        if before is not None and before != local:
            raise _Unmappable(f"lot {uri[:100]} was captured from another event already")
        if before is None:
            with contextlib.suppress(IdentifierError):
                if self._lot(ids.parse_lot_uri(uri)) is not None:
                    raise _Unmappable(
                        f"lot {uri[:100]} is recorded on this chain already: not a foreign lot"
                    )

    def _plot_farmer(self, plot: bytes) -> bytes:
        """The farmer of a plot of yours here, registering it from master data if needed."""
        if plot in self.plots_planned:
            return self.plots_planned[plot]
        farmer, cooperative, _, _ = self.tea.plot(plot).call()
        if int(cooperative, 16) != 0:
            if bytes.fromhex(cooperative[2:].lower()) != self.me:
                raise _Unmappable("the plot is registered to another cooperative here")
            self.plots_planned[plot] = bytes(farmer)
            return bytes(farmer)
        master = self.master.get(plot)
        if master is None:
            raise _Unmappable(
                "the plot is not registered here: register it first, or send it as master "
                "data (epcisHeader, read point with tl farmer/areaCentiMu/variety/locationHash)"
            )
        if isinstance(master, str):
            raise _Unmappable(master)
        if master.farmer not in self.farmers_planned:
            record = contracts.farmer_record(
                self.service.client, master.farmer, self.service.contract
            )
            if not record.registered:
                self.plan.farmers.append(FarmerRegistration(farmer=master.farmer))
            elif bytes.fromhex(record.cooperative[2:].lower()) != self.me:  # type: ignore[index]
                raise _Unmappable("the plot's farmer is a member of another cooperative here")
            elif not record.active:
                raise _Unmappable("the plot's farmer is deactivated here")
            self.farmers_planned.add(master.farmer)
        self.plan.plots.append(
            PlotRegistration(
                plot=plot,
                farmer=master.farmer,
                area_centi_mu=master.area_centi_mu,
                variety=master.variety,
                location_hash=master.location_hash,
            )
        )
        self.plots_planned[plot] = master.farmer
        return master.farmer

    def _transformation(self, event: Json, digest: bytes, action: _Action) -> None:
        """A processing step: whole input lots you hold into new made-tea lots."""
        self._caller_is(self._location(event), "step's bizLocation")
        self._need(contracts.PROCESSOR_ROLE, "processor")
        if event.get("inputEPCList") or event.get("outputEPCList"):
            raise _Unmappable("lots are classes (quantity lists), not instance EPCs")
        outputs = event.get("outputQuantityList") or []
        if outputs and self._lot(lot_id(self.service.address, output_data_hash(digest, 0))):
            self._step_on_chain(event, digest, action)  # mined before a crash: anchored
            return
        inputs: list[tuple[str, bytes, _Lot]] = []
        for element in event.get("inputQuantityList") or []:
            uri = element.get("epcClass")
            local, state = self._resolve(uri)
            self._held_by_me(uri, state)
            if _grams(element) != state.grams:
                raise _Unmappable(f"input {uri[:100]}: a step consumes whole lots")
            if any(local == other for _, other, _ in inputs):
                raise _Unmappable(f"input {uri[:100]} is listed twice")
            inputs.append((uri, local, state))
        if not inputs or not outputs:
            raise _Unmappable("a step has input and output quantity lists")
        leaf = sum(s.grams for _, _, s in inputs if s.kind == LotKind.FRESH_LEAF)
        tea = sum(s.grams for _, _, s in inputs if s.kind != LotKind.FRESH_LEAF)
        made = [_grams(e) for e in outputs]
        allowed = leaf * self.max_yield // 10_000 + tea
        if sum(made) > allowed:
            raise _Unmappable(f"{sum(made)} g made from inputs that allow {allowed} g")
        hashes = [output_data_hash(digest, i) for i in range(len(outputs))]
        action.kind = "process"
        action.lots = [local for _, local, _ in inputs]
        action.call = self.tea.process(
            action.lots,
            [
                ProcessOutput(grams=g, data_hash=h).as_tuple()
                for g, h in zip(made, hashes, strict=True)
            ],
        )
        action.independent = not (set(action.lots) & self.touched)
        for _, local, state in inputs:
            state.state = LotState.CONSUMED
            self.touched.add(local)
        for element, grams, data_hash in zip(outputs, made, hashes, strict=True):
            uri = element.get("epcClass")
            if not isinstance(uri, str):
                raise _Unmappable("an output lot is named by its URI (epcClass)")
            local = lot_id(self.service.address, data_hash)
            self._new_lot(uri, local)
            action.new_lots[uri] = local
            self.mapped[uri] = local
            self.lots[local] = _Lot(self.me, grams, LotState.HELD, LotKind.MADE_TEA, False)
            self.touched.add(local)

    def _step_on_chain(self, event: Json, digest: bytes, action: _Action) -> None:
        """A step whose outputs exist already: map them, send nothing."""
        action.kind, action.on_chain = "process", True
        for i, element in enumerate(event["outputQuantityList"]):
            uri = element.get("epcClass")
            if not isinstance(uri, str):
                raise _Unmappable("an output lot is named by its URI (epcClass)")
            local = lot_id(self.service.address, output_data_hash(digest, i))
            action.new_lots[uri] = local
            self.mapped[uri] = local
            self.touched.add(local)

    def _ship(self, event: Json, action: _Action) -> None:
        """A lot you hold, shipped to another member."""
        self._caller_is(_party(event.get("sourceList"), "owning_party", "source"), "shipper")
        to = _party(event.get("destinationList"), "owning_party", "destination")
        if not any(self._role(role) for role in SUPPLY_CHAIN):
            raise _Unmappable("shipping needs a supply-chain role, which you lack")
        uri, local, state = self._one_lot(event)
        self._held_by_me(uri, state)
        if to == self.me or not any(self._role(role, to) for role in SUPPLY_CHAIN):
            raise _Unmappable(f"0x{to.hex()} cannot receive lots here (not a member, or you)")
        self._act(action, "ship", local, self.tea.ship(local, _checksum(to)))
        state.state, state.holder = LotState.IN_TRANSIT, to

    def _receive(self, event: Json, action: _Action) -> None:
        """A lot shipped to you, taken in."""
        self._caller_is(
            _party(event.get("destinationList"), "owning_party", "destination"), "receiver"
        )
        uri, local, state = self._one_lot(event)
        if state.state != LotState.IN_TRANSIT or state.holder != self.me:
            raise _Unmappable(f"lot {uri[:100]} is not in transit to you")
        self._act(action, "receive", local, self.tea.receiveLot(local))
        state.state = LotState.HELD

    def _sell(self, event: Json, action: _Action) -> None:
        """A lot you hold, sold (the price in fen is `tl:priceFen`: documents leave it out)."""
        self._caller_is(_party(event.get("sourceList"), "owning_party", "source"), "seller")
        buyer = _party(event.get("destinationList"), "owning_party", "destination")
        try:
            price = _int(event.get(ids.ext("priceFen")), 1, 2**256 - 1)
        except ValueError as exc:
            raise _Unmappable(
                f"a sale needs tl:priceFen, the price in whole fen ({exc}); exported documents "
                "leave prices out, the seller adds its own"
            ) from exc
        if not any(self._role(role) for role in SUPPLY_CHAIN):
            raise _Unmappable("selling needs a supply-chain role, which you lack")
        uri, local, state = self._one_lot(event)
        self._held_by_me(uri, state)
        if buyer == self.me:
            raise _Unmappable("you cannot sell to yourself")
        self._act(action, "sell", local, self.tea.sell(local, _checksum(buyer), price))
        state.holder = buyer

    def _inspector(self, event: Json) -> None:
        """The event's tl:inspector must be the caller, an inspector."""
        inspector = event.get(ids.ext("inspector"))
        if not isinstance(inspector, str):
            raise _Unmappable("tl:inspector (the inspecting party) is needed")
        self._caller_is(_address(ids.parse_party_uri(inspector), "tl:inspector"), "inspector")
        self._need(contracts.INSPECTOR_ROLE, "inspector")

    def _inspect(self, event: Json, digest: bytes, disposition: str, action: _Action) -> None:
        """A quality attestation (certificate hash: tl:certificateHash, else the event hash)."""
        self._inspector(event)
        if disposition not in (Disposition.CONFORMANT, Disposition.NON_CONFORMANT):
            raise _Unmappable("an inspection's disposition is conformant or non_conformant")
        try:
            grade = _int(event.get(ids.ext("grade")), 1, 5)
        except ValueError as exc:
            raise _Unmappable(f"tl:grade: {exc}") from exc
        certificate = event.get(ids.ext("certificateHash"))
        _, local, _ = self._one_lot(event)
        attestation = QualityAttestation(
            lot=local,
            grade=grade,
            passed=disposition == Disposition.CONFORMANT,
            certificate_hash=_hex32(certificate) if certificate is not None else digest,
        )
        self._act(action, "inspect", local, self.tea.attestQuality(attestation.as_tuple()))

    def _recall(self, event: Json, digest: bytes, action: _Action) -> None:
        """A recall (reason hash: tl:reasonHash, else the event hash)."""
        self._inspector(event)
        reason = event.get(ids.ext("reasonHash"))
        uri, local, state = self._one_lot(event)
        if state.recalled:
            raise _Unmappable(f"lot {uri[:100]} is recalled already")
        reason_hash = _hex32(reason) if reason is not None else digest
        self._act(action, "recall", local, self.tea.recall(local, reason_hash))
        state.recalled = True

    def _act(self, action: _Action, kind: str, lot: bytes, call: ContractFunction) -> None:
        """Fill in a one-lot action."""
        action.kind, action.lots, action.call = kind, [lot], call
        action.independent = lot not in self.touched
        self.touched.add(lot)


def output_data_hash(event_hash: bytes, index: int) -> bytes:
    """The data hash of a step's output `index`: keccak256(event hash, index as uint256), so
    each output lot id is unique and derived from the event (the chain anchors the event)."""
    return keccak(event_hash + index.to_bytes(32, "big"))


def _checksum(address: bytes) -> str:
    """A 20-byte address in checksum form."""
    from web3 import Web3

    return Web3.to_checksum_address("0x" + address.hex())


def _hex(value: bytes | None) -> str | None:
    """0x hex, or None for an empty value."""
    return "0x" + bytes(value).hex() if value else None


# ------------------------------------------------------------------------------ sending


class _Recorder:
    """Sends a plan's transactions and keeps the tables in step, event by event."""

    def __init__(self, service: RecordingService, engine: Engine, capture_id: str) -> None:
        self.service = service
        self.engine = engine
        self.capture_id = capture_id
        self.me = bytes.fromhex(service.address[2:].lower())

    def precheck(self, plan: _Plan) -> list[EventError]:
        """eth_call every call that does not depend on an earlier event of the document, and
        the contract's own harvest check for harvests on plots registered already."""
        errors: list[EventError] = []
        for action in plan.actions:
            if action.call is None or not action.independent or action.on_chain:
                continue
            try:
                self.service.client.check_call(action.call, self.service.address)
            except ContractRevertError as exc:
                errors.append(EventError(action.index, action.event_id, str(domain_error(exc))))
            except ContractLogicError as exc:  # a revert without a custom error
                errors.append(EventError(action.index, action.event_id, f"refused: {exc}"))
        registered = {p.plot for p in plan.plots}
        harvests = [
            a
            for a in plan.actions
            if a.harvest is not None and a.harvest.plot not in registered and self._new(a)
        ]
        if harvests:
            checks = self.service.check_harvests([a.harvest for a in harvests])  # type: ignore[misc]
            for action, check in zip(harvests, checks, strict=True):
                if check not in (HarvestCheck.OK, HarvestCheck.DUPLICATE):
                    errors.append(EventError(action.index, action.event_id, check.reason))
        return errors

    def _new(self, action: _Action) -> bool:
        """Whether the action's record is not on chain yet (harvest or step outputs)."""
        return not action.on_chain

    def record(self, plan: _Plan, results: list[EventResult]) -> EventError | None:
        """Registrations, then harvests in one submission, then every other event in
        document order (each pre-checked again just before it is sent). Returns the error
        that stopped it, or None."""
        if plan.farmers:
            self.service.register_farmers(plan.farmers)
        if plan.plots:
            self.service.register_plots(plan.plots)
        harvests = [a for a in plan.actions if a.harvest is not None]
        error = self._harvests(harvests, results)
        if error is not None:
            return error
        for action in plan.actions:
            if action.harvest is not None:
                continue
            if action.kind == "process" and not self._new(action):
                # sent before a crash: the chain anchors it (outputs derive from the hash)
                self._save(action, b"", 0, results, status="already_captured")
                continue
            try:
                self.service.client.check_call(action.call, self.service.address)  # type: ignore[arg-type]
                receipt = self.service.sender.transact(action.call)  # type: ignore[arg-type]
            except ContractRevertError as exc:
                return EventError(action.index, action.event_id, str(domain_error(exc)))
            except ContractLogicError as exc:  # a revert without a custom error
                return EventError(action.index, action.event_id, f"refused: {exc}")
            except TraceabilityError as exc:
                return EventError(action.index, action.event_id, str(exc))
            logs = self.service.decoder.decode_receipt(receipt)
            first = min((e.log_index for e in logs), default=0)
            self._save(action, bytes(receipt["transactionHash"]), first, results)
        return None

    def _harvests(self, actions: list[_Action], results: list[EventResult]) -> EventError | None:
        """All harvests in one pipelined submission (the service's own pre-check and skip)."""
        if not actions:
            return None
        report = self.service.record_harvests([a.harvest for a in actions])  # type: ignore[misc]
        where: dict[bytes, tuple[bytes, int]] = {}
        for tx in report.transactions:
            receipt = self.service.client.w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
            for log in self.service.decoder.decode_receipt(receipt):
                if log.name == "HarvestRecorded":
                    where[bytes(log.args["lot"])] = (bytes(tx), log.log_index)
        done: list[tuple[_Action, bytes, int, str]] = []
        stopped = None
        for action, outcome in zip(actions, report.outcomes, strict=True):
            if outcome.outcome is Outcome.REJECTED:
                stopped = stopped or EventError(action.index, action.event_id, outcome.reason)
                continue
            tx, log = where.get(action.lots[0], (b"", 0))
            # a duplicate was recorded before a crash: the chain anchors it by the event hash
            status = "recorded" if outcome.outcome is Outcome.RECORDED else "already_captured"
            done.append((action, tx, log, status))
        self._save_all(done, results)  # one commit for the submission's mined harvests
        return stopped

    def _save(
        self,
        action: _Action,
        tx: bytes,
        log_index: int,
        results: list[EventResult],
        status: str = "recorded",
    ) -> None:
        """One event and its new lots in the tables, committed at once (a crash after this
        leaves the event captured; before it, the chain's anchor or a re-post completes it)."""
        self._save_all([(action, tx, log_index, status)], results)

    def _save_all(
        self, done: list[tuple[_Action, bytes, int, str]], results: list[EventResult]
    ) -> None:
        """Events and their new lots in the tables, in one transaction (if another replica
        saved them first, each is saved alone and a clash reported as already captured)."""
        if not done:
            return
        try:
            self._write(done)
            saved = [status for _, _, _, status in done]
        except IntegrityError:
            saved = []
            for item in done:
                try:
                    self._write([item])
                    saved.append(item[3])
                except IntegrityError:  # another replica saved this event first
                    saved.append("already_captured")
        for (action, tx, _, _), status in zip(done, saved, strict=True):
            lots = ["0x" + lot.hex() for lot in [*action.lots, *action.new_lots.values()]]
            results.append(
                EventResult(action.index, action.event_id, action.hash_id, status, _hex(tx), lots)
            )

    def _write(self, done: list[tuple[_Action, bytes, int, str]]) -> None:
        """Insert the rows and commit (IntegrityError, rolled back, on a clash)."""
        with Session(self.engine) as session:
            for action, tx, log_index, _ in done:
                digest = hashid.hash_bytes(action.hash_id)
                session.add(
                    EpcisCapturedEvent(
                        event_hash=digest,
                        organisation=self.me,
                        capture_id=self.capture_id,
                        kind=action.kind,
                        event_id=(action.event_id or "")[:300],
                        tx_hash=tx,
                        log_index=log_index,
                    )
                )
                for uri, local in action.new_lots.items():
                    if session.get(EpcisLotMap, uri) is None:
                        session.add(
                            EpcisLotMap(
                                source_lot=uri,
                                local_lot=local,
                                organisation=self.me,
                                event_hash=digest,
                            )
                        )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                raise


def capture(
    service: RecordingService,
    engine: Engine,
    document: Json,
    capture_id: str,
    clock: Callable[[], float] = time.time,
) -> CaptureReport:
    """Record a parsed, schema-valid document as `service`'s organisation.

    CaptureRefused (nothing sent) when an event cannot be mapped or the chain would refuse a
    call found by eth_call; otherwise a report, whose `errors` say where sending stopped if
    the chain changed under it (what was sent stays; posting the document again completes
    it). The job is kept in `epcis_capture` either way it ends after sending."""
    created = int(clock())
    plan = _Planner(service, engine, document).run()
    recorder = _Recorder(service, engine, capture_id)
    errors = recorder.precheck(plan)
    if errors:
        raise CaptureRefused(sorted(errors, key=lambda e: e.index))
    results = list(plan.already)
    try:
        stopped = recorder.record(plan, results)
    except Exception as exc:  # the node went away mid-way: keep the job, then say so
        report = CaptureReport(capture_id, created, sorted(results, key=lambda r: r.index))
        reason = f"stopped by {type(exc).__name__}; post the document again to complete it"
        report.errors = [EventError(-1, None, reason)]
        report.finished_at = int(clock())
        save_job(engine, service.address, report)
        raise
    report = CaptureReport(capture_id, created, sorted(results, key=lambda r: r.index))
    report.errors = [stopped] if stopped is not None else []
    report.finished_at = int(clock())
    save_job(engine, service.address, report)
    return report


def save_job(engine: Engine, organisation: str, report: CaptureReport) -> None:
    """Keep a capture job for GET /epcis/capture/{id}."""
    with Session(engine) as session:
        session.add(
            EpcisCaptureJob(
                id=report.capture_id,
                organisation=bytes.fromhex(organisation[2:].lower()),
                created_at=report.created_at,
                finished_at=report.finished_at,
                success=report.success,
                events=len(report.results) + len(report.errors),
                recorded=report.recorded,
                already=report.already,
                results_json=json.dumps([asdict(r) for r in report.results]),
                errors_json=json.dumps([asdict(e) for e in report.errors]),
            )
        )
        session.commit()


def load_job(engine: Engine, organisation: str, capture_id: str) -> Json | None:
    """A capture job of this organisation as the REST binding shows it (None: not yours)."""
    with Session(engine) as session:
        job = session.get(EpcisCaptureJob, capture_id)
    if job is None or bytes(job.organisation) != bytes.fromhex(organisation[2:].lower()):
        return None
    return {
        "captureID": job.id,
        "createdAt": _iso(job.created_at),
        "finishedAt": _iso(job.finished_at),
        "running": False,
        "success": job.success,
        "captureErrorBehaviour": "rollback",
        "recorded": job.recorded,
        "alreadyCaptured": job.already,
        "events": json.loads(job.results_json),
        "errors": json.loads(job.errors_json),
    }


def split_by_actor(document: Json) -> list[tuple[bytes, Json]]:
    """A document cut into runs of consecutive events done by one organisation, each a
    document of its own: what each organisation posts with its own key, in order."""
    runs: list[tuple[bytes, list[Json]]] = []
    for event in document["epcisBody"]["eventList"]:
        who = actor(event)
        if runs and runs[-1][0] == who:
            runs[-1][1].append(event)
        else:
            runs.append((who, [event]))
    return [(who, document | {"epcisBody": {"eventList": events}}) for who, events in runs]


def actor(event: Json) -> bytes:
    """The organisation that did an event of the capture subset (its recorder on chain)."""
    step = str(event.get("bizStep", "")).removeprefix(f"{ids.CBV_NAMESPACE}BizStep-")
    if event.get("type") == "TransformationEvent" or step == BizStep.COMMISSIONING:
        ref = ids.parse_location_uri(event["bizLocation"]["id"])
    elif step in (BizStep.SHIPPING, ids.BIZSTEP_SELLING):
        ref = ids.parse_party_uri(event["sourceList"][0]["source"])
    elif step == BizStep.RECEIVING:
        ref = ids.parse_party_uri(event["destinationList"][0]["destination"])
    else:
        ref = ids.parse_party_uri(event[ids.ext("inspector")])
    return _address(ref, "actor")
