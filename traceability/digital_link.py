"""GS1 identifiers of packaged tea: GTINs, lot codes and GS1 Digital Link URIs (pure functions).

A package's QR code carries `{base}/01/{gtin14}/10/{lot code}`: AI (01) the product's GTIN as
14 digits, AI (10) the batch/lot, at most 20 characters of GS1 AI encodable character set 82.
Our lot ids are 32-byte hashes, too long for AI (10), so a lot gets a short code (`lot_code_for`,
or the cooperative's own) and the service keeps the (GTIN, lot code) -> lot mapping.

GTIN check digits and AI syntax are checked by `biip` (a maintained, dependency-free GS1
parser): its GTIN parser validates the mod-10 check digit, its element-string parser the AI
(10) pattern, its Digital Link parser the URI path. Its Digital Link parser does not check the
GTIN's check digit, so `parse_digital_link` does that through `normalise_gtin` too.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from biip import ParseError
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString
from biip.gtin import Gtin

from traceability.errors import TraceabilityError

GTIN_LENGTHS = (8, 12, 13, 14)
MAX_LOT_CODE = 20
# Generated codes: base32 of a hash prefix (A-Z, 2-7: inside charset 82, safe in a URI path).
GENERATED_CODE_LENGTH = 10
# The longest URI or value we look at; anything longer is refused before parsing.
MAX_URI = 2_000
# GS1 AI encodable character set 82 (GS1 General Specifications 7.11, figure 7.11-1).
CHARSET_82 = re.compile(r"""[!"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}""")

# Link types of the GS1 Web vocabulary (https://gs1.org/voc/) the resolver answers.
GS1_VOC = "https://gs1.org/voc/"
PIP = "pip"
TRACEABILITY = "traceability"
DEFAULT_LINK = "defaultLink"
ALL = "all"


class DigitalLinkError(TraceabilityError):
    """A GTIN, lot code or Digital Link URI that is not valid GS1 syntax (bad check digit...)."""


@dataclass(frozen=True)
class DigitalLink:
    """The identifiers a Digital Link URI carries: a GTIN-14 and, optionally, a lot code."""

    gtin: str
    lot_code: str | None = None


def normalise_gtin(value: str) -> str:
    """A GTIN-8/12/13/14 as its 14 digits once its check digit is verified (DigitalLinkError)."""
    text = value.strip()
    if len(text) not in GTIN_LENGTHS or not text.isascii() or not text.isdigit():
        raise DigitalLinkError(
            f"a GTIN has 8, 12, 13 or 14 digits, got {_shown(text)} ({len(text)} characters)"
        )
    if not text.strip("0"):
        raise DigitalLinkError("a GTIN cannot be all zeros")
    try:
        return Gtin.parse(text).as_gtin_14()
    except ParseError as exc:
        raise DigitalLinkError(f"GTIN {text}: {_reason(exc)}") from exc


def check_lot_code(value: str) -> str:
    """A batch/lot code as AI (10) takes it: 1-20 characters of GS1 charset 82, else an error."""
    if not 1 <= len(value) <= MAX_LOT_CODE:
        raise DigitalLinkError(f"a lot code has 1 to {MAX_LOT_CODE} characters, got {len(value)}")
    if not CHARSET_82.fullmatch(value):
        raise DigitalLinkError(
            f"lot code {_shown(value)}: only A-Z a-z 0-9 and !\"%&'()*+,-./:;<=>?_ "
            "(GS1 character set 82) may appear in it"
        )
    try:
        GS1ElementString.parse(f"10{value}")  # the AI's own pattern, as scanners check it
    except ParseError as exc:  # pragma: no cover (the pattern above is the same set)
        raise DigitalLinkError(f"lot code {_shown(value)}: {_reason(exc)}") from exc
    return value


def lot_code_for(lot: bytes) -> str:
    """The deterministic short code of a lot: base32 of a SHA-256 prefix of its 32-byte id.

    50 bits: two lots of one product sharing a code would take ~2^25 lots of that product; the
    service's unique (gtin, lot code) index refuses the second all the same.
    """
    digest = hashlib.sha256(b"tealedger lot code\x00" + lot).digest()
    return base64.b32encode(digest).decode("ascii")[:GENERATED_CODE_LENGTH]


def encode_segment(value: str) -> str:
    """An AI value as a URI path segment: everything but unreserved characters percent-encoded
    (GS1 Digital Link 1.4, 4.4: `/`, `%`, `?`, `#`... of charset 82 are escaped)."""
    return quote(value, safe="")


def digital_link(base: str, gtin: str, lot_code: str | None = None) -> str:
    """The Digital Link URI `{base}/01/{gtin14}[/10/{lot code}]` on our own resolver."""
    path = f"/01/{normalise_gtin(gtin)}"
    if lot_code is not None:
        path += f"/10/{encode_segment(check_lot_code(lot_code))}"
    return base.rstrip("/") + path


def parse_digital_link(uri: str) -> DigitalLink:
    """The GTIN-14 and lot code of a Digital Link URI (any host, any path prefix), checked."""
    if len(uri) > MAX_URI:
        raise DigitalLinkError(f"a Digital Link URI this long ({len(uri)} characters) is not one")
    if not uri.isascii() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        raise DigitalLinkError("a Digital Link URI is ASCII without spaces or control characters")
    segments = urlsplit(uri).path.split("/")
    if "01" not in segments:
        raise DigitalLinkError("a Digital Link URI names a GTIN: /01/{gtin}")
    tail = segments[segments.index("01") :]
    # Only what our packages carry: a product (01) and its lot (10); no serials or variants.
    if len(tail) not in (2, 4) or (len(tail) == 4 and tail[2] != "10"):
        raise DigitalLinkError("this resolver answers /01/{gtin} and /01/{gtin}/10/{lot} only")
    try:
        parsed = GS1DigitalLinkURI.parse(uri)
    except ParseError as exc:
        raise DigitalLinkError(f"not a GS1 Digital Link URI: {_reason(exc)}") from exc
    gtin_es = parsed.element_strings.get(ai="01")
    if gtin_es is None:
        raise DigitalLinkError("a Digital Link URI names a GTIN: /01/{gtin}")
    lot_es = parsed.element_strings.get(ai="10")
    lot_code = check_lot_code(lot_es.value) if lot_es is not None else None
    return DigitalLink(gtin=normalise_gtin(gtin_es.value), lot_code=lot_code)


def link_type(value: str) -> str:
    """A `linkType` as its short name: `gs1:traceability` and the full vocabulary URI alike."""
    for prefix in ("gs1:", GS1_VOC, GS1_VOC.replace("https:", "http:")):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _reason(exc: ParseError) -> str:
    """biip's message, cut to something a response may carry."""
    return _shown(str(exc), 200)


def _shown(value: str, limit: int = 40) -> str:
    """A value quoted for a message: bounded, control characters escaped."""
    return repr(value[:limit] + ("…" if len(value) > limit else ""))
