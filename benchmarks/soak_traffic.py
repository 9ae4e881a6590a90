"""The soak's traffic: clients sending a mix of requests to the gateway, and what they saw.

:func:`drive_traffic` runs ``concurrency`` clients, each drawing actions by :data:`ACTION_MIX` (unique
prompts, ``benchmarks/load_prompts.py``) until a deadline or a request count; every answer is noted in
a :class:`Tally` (statuses, the request ids answered, refusals, errors) that ``soak_measures`` checks
against the usage log.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.load_prompts import Turns, chat_bodies, new_run_id, prompt_pool, request_tag, with_tag

KNN_ROUTER, FIXED_ROUTER = "router-knn", "router-fixed"
ACTION_MIX = {
    "chat_routed": 0.35,  # the main router (KNN, or the fixed one with --router fixed), whole
    "stream_routed": 0.20,
    "chat_fixed": 0.08,  # the fixed router, whole
    "chat_backend": 0.07,  # a backend by name, whole
    "stream_backend": 0.05,
    "feedback": 0.10,  # on a request answered earlier
    "models": 0.05,  # GET /v1/models
    "bad_chat": 0.07,  # a chat request refused at the door (see BAD_CHATS)
    "bad_feedback": 0.03,  # a feedback refused (quality out of range)
}
BAD_CHATS = ("invalid_json", "no_messages", "unknown_model", "not_json_content_type")
LOGGED_ERROR_TYPES = ("upstream_error", "upstream_timeout")  # upstream failures: logged with a record


@dataclass
class Tally:
    """What the clients saw. ``statuses`` counts ``"<action> <status>"`` (``"<action> transport:<error>"`` for
    a request that got no HTTP answer); ``answered`` holds every request id a chat reply carried;
    ``refused`` counts chat requests refused at the door (counted in /metrics, by design not logged)."""

    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    answered: set[str] = field(default_factory=set)
    recent_ids: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=1000))
    refused: int = 0
    unlogged_errors: int = 0  # chat errors neither logged nor refused (a 500 internal error: a bug)
    stream_errors: int = 0  # answered streams that ended with an error event (the upstream cut it)
    feedback_accepted: int = 0

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())


@dataclass(frozen=True)
class Client:
    """One traffic client: its HTTP client, the gateway's URL, the model names it may use."""

    http: httpx.AsyncClient
    url: str
    routed_model: str
    backends: tuple[str, ...]


async def drive_traffic(
    client: Client, deadline: float, concurrency: int, max_requests: int, seed: int, tally: Tally
) -> None:
    """``concurrency`` clients, each sending one request after another (a kind drawn from
    :data:`ACTION_MIX`) until ``deadline`` (monotonic) or ``max_requests`` sent in all."""
    pools = {"short": prompt_pool("short"), "routerbench": prompt_pool("routerbench")}
    run_id = new_run_id()

    async def one_client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        actions, weights = list(ACTION_MIX), list(ACTION_MIX.values())
        n = 0
        while time.monotonic() < deadline and tally.total_sent < max_requests:
            n += 1
            action = rng.choices(actions, weights)[0]
            if action == "feedback" and not tally.recent_ids:  # nothing answered yet to rate
                action = "chat_routed"
            pool = pools["routerbench" if n % 4 == 0 else "short"]
            turns = pool[rng.randrange(len(pool))]
            tally.sent[action] += 1
            try:
                await perform(client, action, turns, request_tag(run_id, number, n), rng, tally)
            except httpx.HTTPError as exc:
                tally.statuses[f"{action} transport:{type(exc).__name__}"] += 1

    await asyncio.gather(*(one_client(number) for number in range(1, concurrency + 1)))


async def perform(
    client: Client, action: str, turns: Turns, tag: str, rng: random.Random, tally: Tally
) -> None:
    """Send one request of kind ``action`` (its prompt ``turns``, tagged ``tag``) and tally the outcome."""
    if action == "models":
        response = await client.http.get(client.url + "/v1/models")
        tally.statuses[f"{action} {response.status_code}"] += 1
    elif action in ("feedback", "bad_feedback"):
        await send_feedback(client, action, rng, tally)
    elif action == "bad_chat":
        await send_bad_chat(client, rng.choice(BAD_CHATS), tally)
    else:
        model = chat_model(client, action, rng)
        body = with_tag(chat_bodies(model, [turns])[0], tag)
        if action.startswith("stream"):
            await send_stream(client, action, {**body, "stream": True}, tally)
        else:
            await send_whole(client, action, body, tally)


def chat_model(client: Client, action: str, rng: random.Random) -> str:
    """The ``model`` a chat action names: the main router, the fixed router, or a backend at random."""
    if action in ("chat_routed", "stream_routed"):
        return client.routed_model
    if action == "chat_fixed":
        return FIXED_ROUTER
    return rng.choice(client.backends)


async def send_whole(client: Client, action: str, body: dict[str, Any], tally: Tally) -> None:
    """A whole chat completion: its status, and its request id when it has one."""
    response = await client.http.post(client.url + "/v1/chat/completions", json=body)
    tally.statuses[f"{action} {response.status_code}"] += 1
    _note_reply(response, tally)


async def send_stream(client: Client, action: str, body: dict[str, Any], tally: Tally) -> None:
    """A streamed chat completion, read to its end: its status, its request id, and whether it ended
    with an error event."""
    async with client.http.stream("POST", client.url + "/v1/chat/completions", json=body) as response:
        if response.status_code == 200:
            _note_reply(response, tally)  # its headers carry the id: noted even if the body fails
            async for line in response.aiter_lines():
                if line.startswith('data: {"error"'):
                    tally.stream_errors += 1
        else:
            await response.aread()
            _note_reply(response, tally)
    tally.statuses[f"{action} {response.status_code}"] += 1


def _note_reply(response: httpx.Response, tally: Tally) -> None:
    """Keep the reply's request id (an answer), or classify its error: logged (an upstream failure),
    refused at the door, or neither."""
    request_id = response.headers.get("x-routeyard-request-id")
    if request_id is not None:
        tally.answered.add(request_id)
        tally.recent_ids.append(request_id)
        return
    error = _error_of(response)
    code = str(error.get("code") or "")
    if (
        error.get("type") in LOGGED_ERROR_TYPES
        or code.startswith("upstream_")
        or code == "backend_unavailable"
    ):
        return
    if error.get("type") == "server_error":
        tally.unlogged_errors += 1
    else:
        tally.refused += 1


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


async def send_bad_chat(client: Client, variant: str, tally: Tally) -> None:
    """A chat request the gateway must refuse at the door (one of :data:`BAD_CHATS`)."""
    message = [{"role": "user", "content": "a request that is refused"}]
    content, headers = {
        "invalid_json": (b'{"model": "x", "messages": [', {"content-type": "application/json"}),
        "no_messages": (
            json.dumps({"model": client.routed_model}).encode(),
            {"content-type": "application/json"},
        ),
        "unknown_model": (
            json.dumps({"model": "no-such-model", "messages": message}).encode(),
            {"content-type": "application/json"},
        ),
        "not_json_content_type": (
            json.dumps({"model": client.routed_model, "messages": message}).encode(),
            {"content-type": "text/plain"},
        ),
    }[variant]
    response = await client.http.post(client.url + "/v1/chat/completions", content=content, headers=headers)
    tally.statuses[f"bad_chat {response.status_code}"] += 1
    _note_reply(response, tally)


async def send_feedback(client: Client, action: str, rng: random.Random, tally: Tally) -> None:
    """Feedback on a request answered earlier (``feedback``) or with a quality out of range
    (``bad_feedback``)."""
    request_id = rng.choice(tally.recent_ids) if tally.recent_ids else f"req_{0:032x}"
    quality = round(rng.random(), 3) if action == "feedback" else 1.5
    response = await client.http.post(
        client.url + "/v1/feedback", json={"request_id": request_id, "quality": quality}
    )
    tally.statuses[f"{action} {response.status_code}"] += 1
    if action == "feedback" and response.status_code == 202:
        tally.feedback_accepted += 1
