"""Bound the nesting of a JSON document before any parser sees it.

Python's JSON parsers recurse once per nesting level; the EVM and pairing libraries raise the
interpreter's recursion limit to 100,000 at import, so a deeply nested body can overflow the C
stack and kill the process instead of raising RecursionError. `json_depth` measures nesting
without recursion and stops as soon as the bound is passed.
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 64

# A whole JSON string (escapes included), so brackets inside strings are not counted; an
# unterminated string runs to the end of the document.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?$)', re.DOTALL)
_NOT_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")
_OPEN = frozenset(b"[{")


def json_depth(document: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply `document` nests arrays and objects, counted up to `limit + 1` at most."""
    brackets = _STRING.sub(b"", document).translate(None, delete=_NOT_BRACKET)
    depth = deepest = 0
    for byte in brackets:
        if byte in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif depth:
            depth -= 1
    return deepest


def too_deep(document: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `document` nests arrays and objects more than `limit` levels deep."""
    return json_depth(document, limit) > limit
