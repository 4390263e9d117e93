"""EPCIS identifiers of tealedger records, and their parsers (for capture later).

Lots are class-level identifiers (an amount of tea in kg, not numbered items), so they appear
as `epcClass` in quantity lists. Every URI is deployment-independent and pseudonymous: a lot,
plot or step by its 32-byte on-chain id, an organisation by its wallet address unless a GS1
GLN is known for it (then its GS1 Digital Link URI). Farmers are known only by their
pseudonymous id, and public documents leave even that out.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

URN_PREFIX = "urn:tealedger:"
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
# Our extension fields (ilmd and event extensions) use this namespace, prefix `tl`.
EXTENSION_PREFIX = "tl"
EXTENSION_NAMESPACE = "https://tealedger.example/epcis/"
CBV_NAMESPACE = "https://ref.gs1.org/cbv/"
GS1_DIGITAL_LINK = "https://id.gs1.org/"
# eventIDs are UUIDv5 of (chain id, transaction hash, log index) in this namespace.
EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, EXTENSION_NAMESPACE + "event")

_ID32 = re.compile(r"0x[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_GLN = re.compile(r"[0-9]{13}")

GlnLookup = Callable[[bytes], str | None]
"""Hook: the 13-digit GLN of an organisation's address, or None (no master data here)."""


class IdKind(StrEnum):
    """The record kinds with a tealedger URN of a 32-byte id."""

    LOT = "lot"
    PLOT = "plot"
    FARMER = "farmer"
    PROCESS = "process"


class BizStep(StrEnum):
    """CBV 2.0 business steps used here (bare words, as EPCIS 2.0 JSON-LD writes them)."""

    COMMISSIONING = "commissioning"
    SHIPPING = "shipping"
    RECEIVING = "receiving"
    INSPECTING = "inspecting"
    HOLDING = "holding"

    @property
    def uri(self) -> str:
        """The full CBV URI."""
        return f"{CBV_NAMESPACE}BizStep-{self.value}"


# CBV 2.0 has no business-to-business sale step (`retail_selling` is a point of sale to a
# consumer), so a sale uses our own step URI; EPCIS 2.0 allows user vocabulary as URIs.
BIZSTEP_SELLING = f"{EXTENSION_NAMESPACE}bizStep-selling"


class Disposition(StrEnum):
    """CBV 2.0 dispositions used here."""

    ACTIVE = "active"
    IN_TRANSIT = "in_transit"
    IN_PROGRESS = "in_progress"
    CONFORMANT = "conformant"
    NON_CONFORMANT = "non_conformant"
    RECALLED = "recalled"

    @property
    def uri(self) -> str:
        """The full CBV URI."""
        return f"{CBV_NAMESPACE}Disp-{self.value}"


class SourceDestType(StrEnum):
    """CBV source/destination types used here."""

    OWNING_PARTY = "owning_party"
    POSSESSING_PARTY = "possessing_party"
    LOCATION = "location"


class IdentifierError(ValueError):
    """A text is not the identifier it should be."""


def _urn32(kind: IdKind, value: bytes) -> str:
    """`urn:tealedger:<kind>:0x<64 hex>`."""
    if len(value) != 32:
        raise IdentifierError(f"a {kind} id has 32 bytes, not {len(value)}")
    return f"{URN_PREFIX}{kind}:0x{bytes(value).hex()}"


def lot_uri(lot: bytes) -> str:
    """A lot's class-level identifier."""
    return _urn32(IdKind.LOT, lot)


def plot_uri(plot: bytes) -> str:
    """A plot (pseudonymous id) as a read point."""
    return _urn32(IdKind.PLOT, plot)


def farmer_uri(farmer: bytes) -> str:
    """A farmer by pseudonymous id only (never a name); not used in public documents."""
    return _urn32(IdKind.FARMER, farmer)


def process_uri(process_id: bytes) -> str:
    """A processing step's id (a TransformationEvent's transformationID)."""
    return _urn32(IdKind.PROCESS, process_id)


def parse_urn32(text: str, kind: IdKind) -> bytes:
    """The 32-byte id of `urn:tealedger:<kind>:0x...` (lower-case hex), else IdentifierError."""
    prefix = f"{URN_PREFIX}{kind}:"
    if not isinstance(text, str) or not text.startswith(prefix):
        raise IdentifierError(f"not a tealedger {kind} URI: {text[:80]!r}")
    rest = text[len(prefix) :]
    if _ID32.fullmatch(rest) is None:
        raise IdentifierError(f"a {kind} URI ends in 0x and 64 lower-case hex digits")
    return bytes.fromhex(rest[2:])


def parse_lot_uri(text: str) -> bytes:
    """The lot id of a lot URI."""
    return parse_urn32(text, IdKind.LOT)


def gln_check_digit(first12: str) -> str:
    """The GS1 mod-10 check digit of a GLN's first 12 digits."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str(-total % 10)


def is_gln(text: str) -> bool:
    """13 digits with a valid check digit."""
    return _GLN.fullmatch(text) is not None and gln_check_digit(text[:12]) == text[12]


@dataclass(frozen=True)
class PartyRef:
    """An organisation as an EPCIS URI names it: a wallet address or a GLN."""

    address: bytes | None = None
    gln: str | None = None


def _address_urn(kind: str, address: bytes) -> str:
    """`urn:tealedger:<party|location>:0x<40 hex>`."""
    if len(address) != 20:
        raise IdentifierError(f"an address has 20 bytes, not {len(address)}")
    return f"{URN_PREFIX}{kind}:0x{bytes(address).hex()}"


def _known_gln(address: bytes, gln_of: GlnLookup | None) -> str | None:
    """The GLN the hook knows for `address` (checked), or None."""
    gln = gln_of(address) if gln_of is not None else None
    if gln is not None and not is_gln(gln):
        raise IdentifierError(f"the GLN lookup gave {gln!r}, which is not a valid GLN")
    return gln


def party_uri(address: bytes, gln_of: GlnLookup | None = None) -> str:
    """An organisation as a party (owner, possessor): GS1 Digital Link party GLN (AI 417)
    when known, else its wallet address URN."""
    gln = _known_gln(address, gln_of)
    return f"{GS1_DIGITAL_LINK}417/{gln}" if gln else _address_urn("party", address)


def location_uri(address: bytes, gln_of: GlnLookup | None = None) -> str:
    """An organisation's premises as a business location: physical-location GLN (AI 414)
    when known, else a URN of its wallet address."""
    gln = _known_gln(address, gln_of)
    return f"{GS1_DIGITAL_LINK}414/{gln}" if gln else _address_urn("location", address)


def _parse_organisation(text: str, urn_kind: str, ai: str) -> PartyRef:
    """A party or location URI back to its address or GLN."""
    urn, link = f"{URN_PREFIX}{urn_kind}:", f"{GS1_DIGITAL_LINK}{ai}/"
    if isinstance(text, str) and text.startswith(urn):
        rest = text[len(urn) :]
        if _ADDRESS.fullmatch(rest) is None:
            raise IdentifierError(f"a {urn_kind} URI ends in 0x and 40 lower-case hex digits")
        return PartyRef(address=bytes.fromhex(rest[2:]))
    if isinstance(text, str) and text.startswith(link) and is_gln(text[len(link) :]):
        return PartyRef(gln=text[len(link) :])
    raise IdentifierError(f"not a {urn_kind} URI: {str(text)[:80]!r}")


def parse_party_uri(text: str) -> PartyRef:
    """A party URI (address URN or Digital Link AI 417) back to what it names."""
    return _parse_organisation(text, "party", "417")


def parse_location_uri(text: str) -> PartyRef:
    """A location URI (address URN or Digital Link AI 414) back to what it names."""
    return _parse_organisation(text, "location", "414")


def event_id(chain_id: int, tx_hash: bytes, log_index: int) -> str:
    """A deterministic `urn:uuid:` (v5) of the log that recorded the event."""
    name = f"{chain_id}:0x{bytes(tx_hash).hex()}:{log_index}"
    return uuid.uuid5(EVENT_ID_NAMESPACE, name).urn


def parse_biz_step(text: str) -> str:
    """A bizStep as a bare CBV word or our own URI (full CBV URIs are shortened)."""
    if text.startswith(f"{CBV_NAMESPACE}BizStep-"):
        text = text.removeprefix(f"{CBV_NAMESPACE}BizStep-")
    if text in BizStep._value2member_map_ or text == BIZSTEP_SELLING:
        return text
    raise IdentifierError(f"not a business step tealedger writes: {text[:80]!r}")


def context() -> list[object]:
    """The JSON-LD @context of every document: GS1's, plus our extension prefix."""
    return [EPCIS_CONTEXT, {EXTENSION_PREFIX: EXTENSION_NAMESPACE}]


def ext(name: str) -> str:
    """An extension field name in our namespace (`tl:plot`)."""
    return f"{EXTENSION_PREFIX}:{name}"
