"""The ``replay`` backend kind: one model's recorded responses from an outcome table (the demo's upstreams).

For a prompt the table holds (same turns), the answer is that model's recorded response and the cost its
recorded cost. For any other prompt, the answer is the recorded response to a stand-in prompt picked by a
hash of the text (deterministic, so the same prompt always gets the same answer) and the cost is the
recorded cost of that stand-in; the reply's ``routeyard_replay`` field says which sample was replayed
and whether it matched. Usage is estimated (the table records no token counts). A prompt's turns are the
text (:func:`content_text`) of its messages but the system ones, as the table stores prompts.

Built from a :class:`ReplayBackendConfig`, each table file is loaded once however many backends replay it.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any, Literal

from routeyard.gateway.backends.backend import Reply, Usage
from routeyard.gateway.backends.kinds import BACKEND_KINDS, BackendConfig, BackendContext, BackendKind
from routeyard.gateway.token_count import count_prompt_tokens, count_tokens
from routeyard.gateway.wire import content_text
from routeyard.predictor.embedder import embedding_text
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.routerbench_format import load_routerbench_table

_STREAM_WORDS_PER_CHUNK = 4


class ReplayBackendConfig(BackendConfig):
    """Answers with the recorded responses of ``model`` (default: the backend's name) in the RouterBench
    outcome table at ``replay_table``, which must hold responses."""

    kind: Literal["replay"] = "replay"
    replay_table: Path
    model: str | None = None

    @property
    def table_model(self) -> str:
        """The table's model whose answers are replayed (``model``, or the backend's name)."""
        return self.model or self.name

    def problems(self) -> list[str]:
        """A ``replay_table`` that does not exist."""
        return [] if self.replay_table.exists() else [f"replay_table {self.replay_table} does not exist"]


class ReplayBackend:
    """Model ``model`` of ``table`` (which must be loaded with responses) as a backend called ``name``."""

    def __init__(self, name: str, table: OutcomeTable, model: str) -> None:
        if table.responses is None:
            raise ValueError("a replay backend needs a table loaded with responses")
        if model not in table.models:
            raise ValueError(f"model {model!r} is not in the table {table.source}")
        self.name = name
        self._table = table
        self._column = table.models.index(model)
        self._answerable = [
            row for row in range(table.n_prompts) if table.responses[row, self._column] is not None
        ]
        if not self._answerable:
            raise ValueError(f"model {model!r} has no recorded response in {table.source}")
        self._rows = {embedding_text(turns): row for row, turns in enumerate(table.prompts)}

    async def complete(self, body: dict[str, Any]) -> Reply:
        turns = _turns(body)
        row, matched = self._row_for(turns)
        answer = self._answer(row)
        usage = Usage(count_prompt_tokens(turns), count_tokens(answer), estimated=True)
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
            ],
            "usage": usage.as_json(),
            "routeyard_replay": {"sample_id": str(self._table.sample_ids[row]), "matched_prompt": matched},
        }
        return Reply(body=payload, usage=usage, cost_usd=float(self._table.cost[row, self._column]))

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        reply = await self.complete(body)
        words = reply.body["choices"][0]["message"]["content"].split(" ")
        base = {"id": reply.body["id"], "object": "chat.completion.chunk", "created": reply.body["created"]}
        base["model"] = self.name
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
        for start in range(0, len(words), _STREAM_WORDS_PER_CHUNK):
            piece = " ".join(words[start : start + _STREAM_WORDS_PER_CHUNK])
            text = piece if start == 0 else " " + piece
            yield {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
        yield {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": reply.body["usage"],
            "routeyard_cost_usd": reply.cost_usd,
            "routeyard_replay": reply.body["routeyard_replay"],
        }

    def _row_for(self, turns: tuple[str, ...]) -> tuple[int, bool]:
        row = self._rows.get(embedding_text(turns))
        if row is not None and self._table.responses is not None and self._table.responses[row, self._column]:
            return row, True
        digest = int.from_bytes(hashlib.sha256(embedding_text(turns).encode()).digest()[:8], "little")
        return self._answerable[digest % len(self._answerable)], False

    def _answer(self, row: int) -> str:
        assert self._table.responses is not None  # checked in __init__
        return embedding_text(self._table.responses[row, self._column])


def _turns(body: dict[str, Any]) -> tuple[str, ...]:
    """The user-visible turns of a request body, as the table stores prompts."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    return tuple(content_text(m.get("content")) for m in messages if m.get("role") != "system")


@cache
def _table(path: Path) -> OutcomeTable:
    """The table at ``path`` with its responses, loaded once per path."""
    return load_routerbench_table(path, with_responses=True)


def _build(config: ReplayBackendConfig, context: BackendContext) -> ReplayBackend:
    return ReplayBackend(config.name, _table(config.replay_table), config.table_model)


BACKEND_KINDS.register(BackendKind(name="replay", config=ReplayBackendConfig, build=_build))
