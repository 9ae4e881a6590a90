"""Shaping a backend's OpenAI chunks for the client, so that the last one carries usage and cost.

:class:`StreamShaper` passes chunks on one behind the upstream. When the client asked for usage
(``stream_options.include_usage``), the last chunk keeps OpenAI's shape (``choices: []`` and the usage);
when it did not, a trailing usage chunk without choices is merged into the chunk before it, so every
chunk the client sees has a choice. Either way the last carries ``usage`` and ``routeyard_cost_usd``.
"""

from __future__ import annotations

from typing import Any

from routeyard.gateway.backends.backend import Usage
from routeyard.gateway.wire import content_text


class StreamShaper:
    """Holds back the chunks not yet safe to pass on; gathers the answer's text and the upstream's usage.

    Feed it every OpenAI chunk (each with a ``choices`` list) with :meth:`add`, then, if it is not
    :attr:`empty`, end with :meth:`finish`.
    """

    def __init__(self, *, client_wants_usage: bool) -> None:
        self.client_wants_usage = client_wants_usage
        self.usage: Usage | None = None  # the upstream's believable usage, once a chunk brought one
        self._pending: list[dict[str, Any]] = []  # not passed on yet: a chunk, then choice-less ones
        self._texts: list[str] = []

    @property
    def empty(self) -> bool:
        """No chunk came: there is nothing to finish."""
        return not self._pending

    @property
    def answer(self) -> str:
        """The text of every choice's deltas so far, concatenated."""
        return "".join(self._texts)

    def add(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """Take the next upstream chunk; return the chunks now ready for the client. An unbelievable
        ``usage`` (:meth:`Usage.from_json`) is dropped from the chunk."""
        usage = Usage.from_json(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        elif chunk.get("usage") is not None:
            del chunk["usage"]  # unbelievable: not for the client either
        self._texts += [content_text((c.get("delta") or {}).get("content")) for c in chunk["choices"]]
        if chunk["choices"] or self.client_wants_usage:
            ready, self._pending = self._pending, [chunk]
            return ready
        self._pending.append(chunk)  # maybe the trailing usage chunk: held until something follows
        return []

    def finish(self, usage: dict[str, Any], cost_usd: float) -> list[dict[str, Any]]:
        """The chunks left, the last carrying ``usage`` and ``routeyard_cost_usd`` (see the module
        docstring for its shape)."""
        pending = self._pending
        if not self.client_wants_usage and pending[0]["choices"]:
            # the choice-less chunks after the last chunk with a choice (the usage chunk) merge into it
            merged = {key: value for chunk in pending[1:] for key, value in chunk.items()}
            ready, last = [], {**merged, **pending[0]}
        elif self.client_wants_usage and pending[-1]["choices"]:  # no usage chunk came: OpenAI's shape
            ready, final = pending, pending[-1]
            last = {k: final[k] for k in ("id", "object", "created", "model") if k in final}
            last["choices"] = []
        else:
            ready, last = pending[:-1], pending[-1]
        return [*ready, {**last, "usage": usage, "routeyard_cost_usd": cost_usd}]
