"""Pydantic validation errors as (where, message) pairs: the one way routeyard words them.

A discriminated union puts the tag of the member it tried into an error's location; routeyard's unions
(``routeyard.registry.kind_union``) mark their tags with :func:`union_tag`, and a location names the
fields the user wrote, so marked tags are left out of it.
"""

from __future__ import annotations

from pydantic import ValidationError

_TAG_MARK = "kind="


def union_tag(name: str) -> str:
    """The marked tag of a discriminated union's member ``name`` (left out of locations)."""
    return _TAG_MARK + name


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Every error of ``exc``, in pydantic's order, as (where, message): ``where`` is the dotted location
    (``messages.0.role``; ``""`` for the root object itself), ``message`` pydantic's own words (the
    rejected input itself is left out, so no prompt or key is quoted). Never empty for a raised
    ``ValidationError``."""
    return [(_location(error["loc"]), error["msg"]) for error in exc.errors()]


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if not (isinstance(part, str) and part.startswith(_TAG_MARK)))
