"""Field readers shared by the translations: :data:`FIELDS`, the checks of a request body's fields
(raising :class:`~routeyard.gateway.anthropic_messages.errors.MessagesTranslationError`), and
:func:`lenient_object` and :func:`token_count`, which read an upstream's answer leniently.
"""

from __future__ import annotations

from typing import Any

from routeyard.gateway.anthropic_messages.errors import MessagesTranslationError
from routeyard.gateway.body_fields import BodyFields

FIELDS = BodyFields(MessagesTranslationError)
"""The body's field checks, raising :class:`MessagesTranslationError`."""


def lenient_object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (reading an upstream's answer leniently)."""
    return value if isinstance(value, dict) else {}


def token_count(value: Any) -> int:
    """A token count as an upstream reported it: a positive number as an integer, anything else 0."""
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0
