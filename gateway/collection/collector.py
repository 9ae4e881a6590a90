"""Every chosen backend answers every prompt, graded and appended to the outcome file, within a budget.

Calls go through the gateway's own :class:`Backend` objects (retries, circuit breaker, cost from the
upstream's usage). Each backend has ``concurrency`` workers, so at most that many of its calls are in
flight. Pairs already in the file are skipped. Once the $ spent (answers and LLM grading) reaches
``max_usd`` no new call starts; calls in flight finish and are written. A call that fails is written
with missing quality and its error class (``UpstreamError`` subclasses; an answer the grader could not
grade is ``grader:<class>``), never as quality 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from routeyard.gateway.backends.backend import Backend
from routeyard.gateway.collection.grading import Grader, UngradableError, reply_text
from routeyard.gateway.collection.outcome_file import OutcomeFile, OutcomeRow
from routeyard.gateway.collection.prompt_file import PromptRow
from routeyard.gateway.errors import UpstreamError


@dataclass
class Progress:
    """How far a collection got: pairs done of the total (including those found in the file), $ spent."""

    total: int
    done: int = 0
    failed: int = 0
    spent_usd: float = 0.0
    stopped_by_budget: bool = False


async def collect(
    prompts: Sequence[PromptRow],
    backends: dict[str, Backend],
    grader: Grader,
    out: OutcomeFile,
    *,
    concurrency: int,
    max_usd: float | None,
    on_progress: Callable[[Progress], None] = lambda progress: None,
) -> Progress:
    """Collect every pair not yet in ``out`` (see the module docstring); returns the progress."""
    progress = Progress(total=len(prompts) * len(backends))
    progress.done = sum((row.sample_id, name) in out.done for row in prompts for name in backends)

    def budget_left() -> bool:
        if max_usd is not None and progress.spent_usd >= max_usd:
            progress.stopped_by_budget = True
            return False
        return True

    async def worker(name: str, queue: list[PromptRow]) -> None:
        while queue and budget_left():
            row = queue.pop()
            outcome, spent = await _outcome(row, name, backends[name], grader)
            progress.spent_usd += spent
            progress.done += 1
            progress.failed += outcome.quality is None
            out.add(outcome)
            on_progress(progress)

    workers = []
    for name in backends:
        queue = [row for row in reversed(prompts) if (row.sample_id, name) not in out.done]
        workers += [worker(name, queue) for _ in range(concurrency)]
    await asyncio.gather(*workers)
    return progress


async def _outcome(row: PromptRow, name: str, backend: Backend, grader: Grader) -> tuple[OutcomeRow, float]:
    """The outcome row of ``backend`` answering ``row``, and the $ it cost (answer and grading)."""
    try:
        reply = await backend.complete({"messages": [dict(m) for m in row.messages]})
    except UpstreamError as exc:
        return _row(row, name, None, 0.0, None, type(exc).__name__), 0.0
    answer = reply_text(reply.body)
    try:
        quality, grading_cost = await grader.grade(row, answer, name)
    except (UpstreamError, UngradableError) as exc:
        return _row(row, name, None, reply.cost_usd, answer, f"grader:{type(exc).__name__}"), reply.cost_usd
    return _row(row, name, quality, reply.cost_usd, answer, None), reply.cost_usd + grading_cost


def _row(
    row: PromptRow, name: str, quality: float | None, cost: float, response: str | None, error: str | None
) -> OutcomeRow:
    return OutcomeRow(row.sample_id, row.dataset, row.turns, name, quality, cost, response, error)
