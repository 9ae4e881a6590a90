"""Pydantic validation errors as (where, message) pairs: the one way routeyard words them."""

from __future__ import annotations

from pydantic import ValidationError


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Every error of ``exc``, in pydantic's order, as (where, message): ``where`` is the dotted location
    (``messages.0.role``; ``""`` for the root object itself), ``message`` pydantic's own words (the
    rejected input itself is left out, so no prompt or key is quoted). Never empty for a raised
    ``ValidationError``."""
    return [(".".join(str(part) for part in error["loc"]), error["msg"]) for error in exc.errors()]
