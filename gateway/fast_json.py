"""JSON on the request path, with orjson: parse a body, render a response or an SSE event.

The standard library's ``json`` and Starlette's ``JSONResponse`` took ≈ 5 % of a passthrough request's
CPU (issue 14's profile); orjson does the same work several times faster. It is also stricter where the
standard library was wrong for a gateway: a lone surrogate escape (``"\\ud800"``) or bytes that are not
UTF-8 are a parse error (a 400 for the client), never a string that fails later when it is encoded.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse

JSONDecodeError = orjson.JSONDecodeError
"""What :func:`loads` raises for text that is not JSON (a ``ValueError``)."""


def loads(raw: bytes | str) -> Any:
    """The JSON value of ``raw``; raises :data:`JSONDecodeError` (invalid JSON or UTF-8, a lone
    surrogate, nesting deeper than 1,024)."""
    return orjson.loads(raw)


def loads_lenient(raw: bytes | str) -> Any:
    """Like :func:`loads`, but what orjson refuses is read again by the standard library, which also
    accepts the ``NaN`` and ``Infinity`` some Python servers write (for upstream answers, whose odd
    numbers are judged later, never trusted); raises ``ValueError`` or ``RecursionError``."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests objects and arrays more than ``limit`` levels deep; it stops
    at the first container past the limit. (orjson parses 1,024 levels but writes only 254.)"""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def dumps(value: Any) -> str:
    """``value`` as compact JSON text (dict keys must be strings)."""
    return orjson.dumps(value).decode()


class FastJSONResponse(JSONResponse):
    """Starlette's ``JSONResponse``, rendered by orjson (compact, UTF-8)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
