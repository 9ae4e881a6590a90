"""The ``anthropic`` backend kind: Anthropic's native Messages API (``POST {base_url}/v1/messages``).

A chat-completion body is translated to a Messages request (:func:`messages_request_from_chat`: system
messages joined, tools, ``max_tokens`` or the backend's ``max_tokens_default``, which Anthropic requires);
the Message back to a chat completion (:func:`completion_from_message`), and a stream's events to
chat-completion chunks (:class:`CompletionChunkTranslator`), shaped by a :class:`StreamShaper` so that the
last carries ``usage`` and ``routeyard_cost_usd``. A body a Messages API cannot serve (``n`` > 1,
``logprobs``, a JSON ``response_format``, …) is an ``UpstreamRejectedError`` (400) naming the field,
before anything is sent.

It speaks on an :class:`~routeyard.gateway.backends.http_transport.HttpTransport`, as the ``openai`` kind
does, with the same fields, so retries, the deadline, the size limits, the breaker and the status table
are that module's (429, 5xx and Anthropic's 529 ``overloaded`` are retried, then fail over; 401, 403,
404 are the gateway's misconfiguration; another 4xx is the request's fault). The key travels only in the
``x-api-key`` header, with ``anthropic-version: 2023-06-01``.

Usage is Anthropic's: ``input_tokens`` (not cached), ``cache_creation_input_tokens`` (written to the
prompt cache), ``cache_read_input_tokens`` and ``output_tokens``, each at its own price
(:class:`MessagesPrice`); the reply's ``prompt_tokens`` is the sum of the three inputs, the reads also in
``prompt_tokens_details.cached_tokens``. Counts that are absent, negative, fractional or absurd are not
believed: the usage is then estimated (``usage.estimated``) and priced as plain input and output. A 2xx
body that is not a Message, a stream event that is not an event, an ``error`` event or a stream that ends
before ``message_stop`` is an ``UpstreamError`` (502), not retried.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import Field

from routeyard.gateway.anthropic_messages.backend_reply import completion_from_message
from routeyard.gateway.anthropic_messages.backend_request import messages_request_from_chat
from routeyard.gateway.anthropic_messages.backend_stream import CompletionChunkTranslator
from routeyard.gateway.anthropic_messages.errors import MessagesTranslationError
from routeyard.gateway.backends.backend import MAX_TOKENS, Reply, Usage
from routeyard.gateway.backends.circuit_breaker import CircuitBreaker
from routeyard.gateway.backends.http_backend_config import HttpBackendConfig, estimated_usage
from routeyard.gateway.backends.http_transport import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    HttpTransport,
    UpstreamLimits,
)
from routeyard.gateway.backends.kinds import BACKEND_KINDS, BackendContext, BackendKind
from routeyard.gateway.backends.stream_shaper import StreamShaper
from routeyard.gateway.errors import UpstreamError, UpstreamRejectedError
from routeyard.gateway.fast_json import loads_lenient
from routeyard.gateway.wire import content_text

ANTHROPIC_VERSION = "2023-06-01"
"""The ``anthropic-version`` header every request carries."""
CACHE_WRITE_TIMES_INPUT = 1.25
"""A cache write's price over the input price unless configured (Anthropic's 5-minute cache)."""
CACHE_READ_TIMES_INPUT = 0.1
"""A cache read's price over the input price unless configured."""


@dataclass(frozen=True)
class MessagesUsage:
    """The token counts of one Messages call, in Anthropic's terms."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @classmethod
    def from_json(cls, raw: Any) -> MessagesUsage | None:
        """The counts in an Anthropic ``usage`` object, or None when ``input_tokens`` or
        ``output_tokens`` is missing or any count is not an integer in [0, :data:`MAX_TOKENS`] (the cache
        counts may be absent or null: 0)."""
        if not isinstance(raw, dict):
            return None
        cache_written = raw.get("cache_creation_input_tokens") or 0
        cache_read = raw.get("cache_read_input_tokens") or 0
        counts = [
            _token_count(value)
            for value in (raw.get("input_tokens"), raw.get("output_tokens"), cache_written, cache_read)
        ]
        if any(count is None for count in counts):
            return None
        return cls(*(count or 0 for count in counts))

    def as_usage(self) -> Usage:
        """The seam's usage: every input token (cached or not) is a prompt token."""
        prompt = self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens
        return Usage(prompt, self.output_tokens)

    def as_json(self) -> dict[str, Any]:
        """OpenAI's ``usage`` object (with ``estimated`` false), the cache reads as ``cached_tokens``."""
        details = {"prompt_tokens_details": {"cached_tokens": self.cache_read_input_tokens}}
        return {**self.as_usage().as_json(), **details}


def _token_count(value: Any) -> int | None:
    """``value`` as a believable token count (an integer, or an integral float, in [0, MAX_TOKENS])."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():  # is_integer() is False for inf and nan
        value = int(value)
    return value if isinstance(value, int) and 0 <= value <= MAX_TOKENS else None


@dataclass(frozen=True)
class MessagesPrice:
    """$ per million tokens of each of Anthropic's four counts."""

    input_usd_per_million: float = 0.0
    output_usd_per_million: float = 0.0
    cache_write_usd_per_million: float = 0.0
    cache_read_usd_per_million: float = 0.0

    def cost(self, usage: MessagesUsage) -> float:
        """$ for ``usage``."""
        return (
            usage.input_tokens * self.input_usd_per_million
            + usage.output_tokens * self.output_usd_per_million
            + usage.cache_creation_input_tokens * self.cache_write_usd_per_million
            + usage.cache_read_input_tokens * self.cache_read_usd_per_million
        ) / 1e6

    def cost_estimated(self, usage: Usage) -> float:
        """$ for an estimated ``usage``: its prompt tokens at the input price."""
        return (
            usage.prompt_tokens * self.input_usd_per_million
            + usage.completion_tokens * self.output_usd_per_million
        ) / 1e6


class AnthropicBackendConfig(HttpBackendConfig):
    """Anthropic's Messages API at ``base_url`` serving ``model`` (the backend's name when unset).

    ``api_key_env`` names the environment variable holding the key (sent as ``x-api-key``; none: no
    key header). ``max_tokens_default`` is sent when a request sets neither ``max_tokens`` nor
    ``max_completion_tokens``. Prices are $ per million tokens; the cache prices default to
    :data:`CACHE_WRITE_TIMES_INPUT` and :data:`CACHE_READ_TIMES_INPUT` times the input price. The
    timeouts, ``retries``, ``max_connections`` and byte limits mean what they mean for an ``openai``
    backend.
    """

    kind: Literal["anthropic"] = "anthropic"
    base_url: str = "https://api.anthropic.com"
    max_tokens_default: int = Field(default=4096, ge=1)
    cache_write_usd_per_million: float | None = Field(default=None, ge=0.0)
    cache_read_usd_per_million: float | None = Field(default=None, ge=0.0)

    @property
    def price(self) -> MessagesPrice:
        """The four prices, the cache ones defaulted from the input price."""
        write, read = self.cache_write_usd_per_million, self.cache_read_usd_per_million
        return MessagesPrice(
            self.input_usd_per_million,
            self.output_usd_per_million,
            self.input_usd_per_million * CACHE_WRITE_TIMES_INPUT if write is None else write,
            self.input_usd_per_million * CACHE_READ_TIMES_INPUT if read is None else read,
        )

    def problems(self) -> list[str]:
        """A non-HTTP ``base_url``; an ``api_key_env`` that is unset."""
        return self.http_problems(self.base_url)


class AnthropicBackend:
    """A Messages API at ``base_url`` serving ``upstream_model`` (see the module docstring).

    ``pool`` is the backend's own connection pool; ``timeout``, ``limits``, ``retries`` and ``breaker`` are
    the :class:`HttpTransport`'s.
    """

    def __init__(
        self,
        name: str,
        pool: httpx.AsyncBaseTransport,
        *,
        base_url: str,
        upstream_model: str,
        api_key: str | None = None,
        max_tokens_default: int = 4096,
        price: MessagesPrice | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: UpstreamLimits = DEFAULT_LIMITS,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self.upstream_model = upstream_model
        self.max_tokens_default = max_tokens_default
        self.price = price or MessagesPrice()
        headers = {"anthropic-version": ANTHROPIC_VERSION, **({"x-api-key": api_key} if api_key else {})}
        self._transport = HttpTransport(
            name,
            pool,
            url=base_url.rstrip("/") + "/v1/messages",
            headers=headers,
            timeout=timeout,
            limits=limits,
            retries=retries,
            breaker=breaker,
        )
        self.breaker = self._transport.breaker

    async def complete(self, body: dict[str, Any]) -> Reply:
        """The whole completion for ``body``; the reply's body always has a believable ``usage``."""
        request = self._request(body, stream=False)
        with self._transport.breaker_verdict():
            response = await self._transport.post(request)
            payload, raw_usage = self._completion(await self._transport.read_body(response))
        counted = MessagesUsage.from_json(raw_usage)
        usage, cost = self._usage_and_cost(counted, body, _answer_texts(payload))
        payload["usage"] = counted.as_json() if counted else usage.as_json()
        return Reply(body=payload, usage=usage, cost_usd=cost)

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The completion for ``body`` as chunks; the last carries ``usage`` and ``routeyard_cost_usd``."""
        options = body.get("stream_options")
        options = options if isinstance(options, dict) else {}
        request = self._request(body, stream=True)
        translator = CompletionChunkTranslator(model=self.upstream_model)
        shaper = StreamShaper(client_wants_usage=options.get("include_usage") is True)
        with self._transport.breaker_verdict():
            response = await self._transport.post(request)
            async with contextlib.aclosing(self._transport.lines(response)) as lines:
                async for line in lines:
                    for chunk in self._chunks(translator, line):
                        for ready in shaper.add(chunk):
                            yield ready
                    if translator.ended:
                        break
                else:
                    raise UpstreamError(
                        f"backend {self.name} cut its answer (no message_stop before its end)"
                    )
            if shaper.empty:
                raise UpstreamError(f"backend {self.name} sent an empty stream")
        counted = MessagesUsage.from_json(translator.usage)
        usage, cost = self._usage_and_cost(counted, body, [shaper.answer])
        for ready in shaper.finish(counted.as_json() if counted else usage.as_json(), cost):
            yield ready

    def _request(self, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        """The Messages request for ``body``; raises UpstreamRejectedError (400) for what it cannot be."""
        chat = {**body, "model": self.upstream_model, "stream": stream}
        try:
            return messages_request_from_chat(chat, default_max_tokens=self.max_tokens_default)
        except MessagesTranslationError as exc:
            raise UpstreamRejectedError(f"backend {self.name}: {exc.message}", status=400) from exc

    def _completion(self, content: bytes) -> tuple[dict[str, Any], Any]:
        """The chat completion for the upstream's Message, and the Message's own ``usage``; raises
        UpstreamError."""
        try:
            message = loads_lenient(content)
            completion = completion_from_message(message)
        except UpstreamError as exc:
            raise UpstreamError(f"backend {self.name} returned an answer that is not a Message") from exc
        except (ValueError, RecursionError) as exc:
            raise UpstreamError(f"backend {self.name} returned a malformed Message") from exc
        return completion, message.get("usage")

    def _chunks(self, translator: CompletionChunkTranslator, line: str) -> list[dict[str, Any]]:
        """The chunks of one SSE line (none but for ``data:`` lines); raises UpstreamError."""
        if not line.startswith("data:"):
            return []
        try:
            return translator.translate(loads_lenient(line[5:].strip()))
        except UpstreamError as exc:
            raise UpstreamError(f"backend {self.name}: {exc.message}") from exc
        except (ValueError, RecursionError) as exc:
            raise UpstreamError(f"backend {self.name} sent a malformed stream event") from exc

    def _usage_and_cost(
        self, counted: MessagesUsage | None, body: dict[str, Any], answers: list[str]
    ) -> tuple[Usage, float]:
        if counted is not None:
            return counted.as_usage(), self.price.cost(counted)
        estimated = estimated_usage(body, answers)
        return estimated, self.price.cost_estimated(estimated)


def _build(config: AnthropicBackendConfig, context: BackendContext) -> AnthropicBackend:
    return AnthropicBackend(
        config.name,
        base_url=config.base_url,
        upstream_model=config.upstream_model,
        api_key=config.api_key(),
        max_tokens_default=config.max_tokens_default,
        price=config.price,
        **config.transport_options(context),
    )


BACKEND_KINDS.register(BackendKind(name="anthropic", config=AnthropicBackendConfig, build=_build))


def _answer_texts(payload: dict[str, Any]) -> list[str]:
    return [content_text(c["message"].get("content")) for c in payload["choices"]]
