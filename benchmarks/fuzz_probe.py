"""What the gateway fuzzer sends (issue 15): a :class:`Probe`, one request (through the openai SDK,
httpx or as bytes on a socket), to a :class:`FuzzTarget`, a running gateway and what the fuzzer may
know about it; and what both kinds of probe share: the paths, JSON, a valid chat body, the SDK's
arguments.

The probes are requests generated from the gateway's schemas (``benchmarks/fuzz_generated_probes.py``
and ``benchmarks/fuzz_schema.py``) and a fixed set of malformed ones
(``benchmarks/fuzz_malformed_probes.py``). How they are sent is ``benchmarks/fuzz_sender.py``, how
answers are judged ``benchmarks/fuzz_checks.py``; ``benchmarks/fuzz_gateway.py`` runs them all at full
count and ``tests/gateway/test_fuzz.py`` at a bounded one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CHAT_PATH = "/v1/chat/completions"
FEEDBACK_PATH = "/v1/feedback"
SDK_FIELDS = ("model", "messages", "stream", "max_tokens", "max_completion_tokens", "n")
"""The chat fields passed to the SDK's ``create`` by name; every other field goes in ``extra_body``."""
JSON = "application/json"


@dataclass(frozen=True)
class FuzzTarget:
    """A running gateway and what the fuzzer may know about it.

    Attributes:
        url: ``http://host:port`` of the gateway (no ``/v1``).
        client_key: the Bearer token the API takes (None: the gateway authenticates no client).
        admin_key: the admin endpoints' key (None: none configured).
        answering_models: models served that answer (echo backends, routers over them).
        failing_models: models served whose upstream fails as documented (502, 503, 504).
        secrets: strings no answer may contain (upstream keys, the client and admin keys).
    """

    url: str
    client_key: str | None
    admin_key: str | None
    answering_models: tuple[str, ...]
    failing_models: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80

    def placeholders(self) -> dict[str, str]:
        """What stands for each secret in a reproducer: ``<client key>``, ``<admin key>``,
        ``<secret N>``."""
        named = {self.client_key: "<client key>", self.admin_key: "<admin key>"}
        return {secret: named.get(secret) or f"<secret {i}>" for i, secret in enumerate(self.secrets)}


@dataclass(frozen=True)
class Probe:
    """One request to send.

    ``raw`` (bytes sent as-is on a socket) wins over everything else; else ``sdk_request`` (the keyword
    arguments of the openai SDK's ``chat.completions.create``); else ``method``, ``path``, ``headers``
    and ``body`` go through httpx (``chunked``: the body is streamed without a ``content-length``).
    A probe with ``answer_expected`` False leaves before the gateway could answer; one with
    ``must_refuse`` is past any sane limit, and an answer under 400 to it is a problem.
    """

    family: str
    method: str = "POST"
    path: str = CHAT_PATH
    headers: tuple[tuple[str, str | bytes], ...] = ()
    body: bytes = b""
    chunked: bool = False
    sdk_request: Mapping[str, Any] | None = field(default=None, compare=False)
    raw: bytes | None = None
    answer_expected: bool = True
    must_refuse: bool = False

    def describe(self, secrets: Mapping[str, str] | None = None) -> str:
        """The request as a short reproducer: each secret in ``secrets`` (value → placeholder) masked, a
        long body cut (its length given)."""
        if self.raw is not None:
            text = _cut(self.raw)
        elif self.sdk_request is not None:
            text = f"openai SDK chat.completions.create(**{dict(self.sdk_request)!r})"
        else:
            headers = "".join(f"\n{name}: {_cut(_as_bytes(value), 200)}" for name, value in self.headers)
            chunked = " (chunked)" if self.chunked else ""
            text = f"{self.method} {self.path}{headers}\n\n{_cut(self.body)}{chunked}"
        for secret, placeholder in (secrets or {}).items():
            text = text.replace(secret, placeholder)
        return f"[{self.family}] {text}"


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1", "replace")


def _cut(data: bytes, limit: int = 400) -> str:
    shown = repr(data[:limit])[2:-1]
    return shown if len(data) <= limit else f"{shown}… ({len(data):,} bytes)"


def sdk_arguments(body: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the openai SDK's ``chat.completions.create`` that send ``body``."""
    arguments = {name: body[name] for name in SDK_FIELDS if name in body}
    extra = {name: value for name, value in body.items() if name not in SDK_FIELDS}
    return {**arguments, "extra_body": extra} if extra else arguments


def encoded(value: Any) -> bytes:
    """``value`` as JSON bytes."""
    return json.dumps(value).encode("utf-8")


def hello_chat(target: FuzzTarget) -> dict[str, Any]:
    """A chat completion body: one user message, ``hi``, to the target's first answering model."""
    return {"model": target.answering_models[0], "messages": [{"role": "user", "content": "hi"}]}
