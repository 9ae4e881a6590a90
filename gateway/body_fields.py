"""The fields of a request body in another API dialect, read one by one (``anthropic_messages.fields``,
``responses_api.request``): each check returns the value, or raises the dialect's error naming the field.

:class:`BodyFields` holds that error: an ``InvalidRequestError`` subclass built as
``error(message, param=...)``, so a wrong field is a 400 whose ``param`` names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BodyFields:
    """Field checks raising ``error(message, param=param)``."""

    error: Callable[..., Exception]

    def string(self, value: Any, param: str, *, non_empty: bool = False) -> str:
        """A string (non-empty when asked)."""
        if not isinstance(value, str) or (non_empty and not value):
            raise self.error("must be a non-empty string" if non_empty else "must be a string", param=param)
        return value

    def strings(self, value: Any, param: str) -> list[str]:
        """A list of strings."""
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error("must be a list of strings", param=param)
        return value

    def positive_int(self, value: Any, param: str) -> int:
        """An integer ≥ 1 (not a boolean)."""
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.error("must be an integer ≥ 1", param=param)
        return value

    def number(self, value: Any, param: str) -> float:
        """A number (not a boolean)."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.error("must be a number", param=param)
        return value

    def boolean(self, value: Any, param: str) -> bool:
        """true or false."""
        if not isinstance(value, bool):
            raise self.error("must be true or false", param=param)
        return value
