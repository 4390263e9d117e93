"""Text files from people's spreadsheets: one decoder for every upload and operator file.

UTF-8 with or without BOM, UTF-16 by its BOM, else GB18030 (a superset of GBK, what Chinese
spreadsheet software saves by default); binary content is refused with the encodings accepted.
Generic (nothing about tea or loans), so every layer above the chain decodes the same way.
"""

from __future__ import annotations

import codecs

from chain.errors import NotTextError

ENCODINGS = "UTF-8 (with or without BOM), UTF-16 (with BOM) or GBK/GB18030"
# Tab, line feed and carriage return are the only control characters a text file has.
_TEXT_CONTROLS = frozenset("\t\n\r")
_CONTROLS = frozenset(chr(c) for c in (*range(0x20), 0x7F))


def decode_text(content: bytes, name: str, kinds: str = "CSV") -> str:
    """The text of a file: UTF-8 (BOM or not), UTF-16 by its BOM, else GB18030 (which includes
    GBK); NotTextError for binary. `kinds` names the formats the refusal asks for."""
    if content.startswith(codecs.BOM_UTF8):
        text = _decode(content, "utf-8-sig")
    elif content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _decode(content, "utf-16")
    elif b"\x00" in content:
        text = None
    else:
        text = _decode(content, "utf-8")
        if text is None:
            text = _decode(content, "gb18030")
    if text is None or any(c in _CONTROLS and c not in _TEXT_CONTROLS for c in text):
        raise NotTextError(
            f"{name} is not a text file in an accepted encoding: save it as {kinds} in {ENCODINGS}"
        )
    return text


def _decode(content: bytes, encoding: str) -> str | None:
    """`content` decoded, or None if it is not valid in `encoding`."""
    try:
        return content.decode(encoding)
    except UnicodeDecodeError:
        return None
