"""A gateway config's routers replayed offline on an outcome table: what ``routeyard replay --config`` scores.

:func:`deployed_routers` asks each configured router for its replayed form
(``RouterConfig.replayed``, one method per router kind, in the kind's own module) and hands it an
:class:`OfflineRouterContext`: the table narrowed to the config's backends, the config's embedder, and
what a router needs of them —

- :meth:`~OfflineRouterContext.artifact_predictions`: a predictor artifact's quality and $ cost for every
  row, its models mapped to backends (``backends``) and so to the table's columns, with the columns the
  router may choose (a backend the table has, not in the router's ``exclude``);
- :meth:`~OfflineRouterContext.judge_scores`: a judge built from its config, as the gateway builds it,
  scoring every recorded answer of the rows replayed. A judge that asks a backend (agreement's second
  answer) gets that backend's recorded answer to the same prompt, at its recorded cost; one that asks
  for anything no table records (an LLM grader's grade) makes its router not replayable.

A router that cannot be replayed offline raises :class:`NotReplayableError`; it is reported with its
reason, never dropped silently. Backends of the config the table lacks, and the table's models that are
no backend, are reported in :class:`Deployment`. A config whose artifact does not fit (another
predictor kind, another embedder, no model among the table's backends) is a ``ValueError`` naming the
router.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from routeyard.arrays import BoolArray, FloatArray, IndexArray, Vectors
from routeyard.evaluation.replayed_routers import DeployedRouter
from routeyard.gateway.routers import NotReplayableError, RouterConfig
from routeyard.judges.chat_completer import TextReply
from routeyard.judges.judge import Answer, Judge
from routeyard.judges.kinds import JudgeConfig, JudgeContext, build_judge
from routeyard.predictor.artifact import Manifest, load_artifact
from routeyard.predictor.embedder import Embedder, embedding_text
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.quality_predictor import QualityCostPrediction
from routeyard.predictor.training import embed_prompts


@dataclass(frozen=True)
class ArtifactPredictions:
    """A predictor artifact's predictions over the table's columns: ``quality`` and ``cost`` (n, m; 0
    where the column is no model of the artifact), ``allowed`` (m,) the columns the router may choose, and
    the artifact's ``manifest``."""

    quality: FloatArray
    cost: FloatArray
    allowed: BoolArray
    manifest: Manifest


@dataclass
class OfflineRouterContext:
    """What replaying a configured router may use (see the module docstring): ``table`` (its models are
    backend names), the config's ``embedder`` and the ``rows`` that will be scored (judges score only
    those)."""

    table: OutcomeTable
    embedder: Embedder
    rows: IndexArray
    _embeddings: Vectors | None = field(default=None, init=False, repr=False)

    def column(self, backend: str) -> int | None:
        """The table's column of ``backend``, or None when the table does not have it."""
        return self.table.models.index(backend) if backend in self.table.models else None

    def artifact_predictions(
        self, artifact: Path, backend_of: dict[str, str], exclude: Sequence[str] = ()
    ) -> ArtifactPredictions:
        """The artifact's predictions mapped onto the table's columns (``backend_of``: model → backend).

        Raises ``ValueError`` when the artifact does not load with the embedder, and
        :class:`NotReplayableError` when none of its models is a backend the table has (and not
        excluded)."""
        prediction, manifest = self.predict(artifact)
        n, m = self.table.quality.shape
        quality, cost, allowed = np.zeros((n, m)), np.zeros((n, m)), np.zeros(m, dtype=bool)
        for j, model in enumerate(manifest.models):
            column = self.column(backend_of.get(model, model))
            if column is not None:
                quality[:, column], cost[:, column] = prediction.quality[:, j], prediction.cost[:, j]
                allowed[column] = backend_of.get(model, model) not in exclude
        if not allowed.any():
            raise NotReplayableError(
                f"none of its artifact's models ({', '.join(manifest.models)}) is a backend the table "
                f"has ({', '.join(self.table.models)}) and the router does not exclude"
            )
        return ArtifactPredictions(quality, cost, allowed, manifest)

    def predict(self, artifact: Path) -> tuple[QualityCostPrediction, Manifest]:
        """The artifact's predictions for every row, columns in its manifest's ``models`` order, and its
        manifest; raises ``ValueError`` when it does not load with the embedder."""
        predictor, manifest = load_artifact(artifact, self.embedder)
        if tuple(predictor.models) != tuple(manifest.models):
            raise ValueError(f"{artifact}: its predictor's models are not its manifest's")
        return predictor.predict(self.embeddings()), manifest

    def embeddings(self) -> Vectors:
        """Every prompt's embedding, computed once."""
        if self._embeddings is None:
            self._embeddings = embed_prompts(self.embedder, self.table.prompts)
        return self._embeddings

    def judge_scores(self, config: JudgeConfig, model_of: dict[str, str]) -> tuple[FloatArray, FloatArray]:
        """The judge ``config`` describes, scoring every recorded answer of :attr:`rows`: (n, m) scores
        (NaN elsewhere and where no answer is recorded) and (n, m) $ the grading cost.

        ``model_of`` maps a backend to the predictor's name for it (what the judge is told). Raises
        :class:`NotReplayableError` when the table holds no answers or the judge asks for something no
        table records."""
        if self.table.responses is None:
            raise NotReplayableError("its judge needs the recorded answers, and the table has none")
        answers = RecordedAnswers(self.table)
        judge = build_judge(config, JudgeContext(self.embedder, answers.completer))
        scores, costs = asyncio.run(self._score(judge, model_of))
        if answers.unrecorded:
            raise NotReplayableError(
                f"its judge {judge.name} asks a backend for what no table records "
                f"({answers.unrecorded} requests that are not a recorded prompt, e.g. an LLM grader's)"
            )
        return scores, costs

    async def _score(self, judge: Judge, model_of: dict[str, str]) -> tuple[FloatArray, FloatArray]:
        assert self.table.responses is not None
        scores, costs = np.full(self.table.quality.shape, np.nan), np.zeros(self.table.quality.shape)
        for i in self.rows:
            prompt = embedding_text(self.table.prompts[i])
            for j, backend in enumerate(self.table.models):
                response = self.table.responses[i, j]
                if response:
                    answer = Answer(response[-1], None, model_of.get(backend, backend))
                    judgement = await judge.judge(prompt, answer)
                    scores[i, j], costs[i, j] = judgement.score, judgement.cost_usd
        return scores, costs


class RecordedAnswers:
    """Backends as a judge sees them offline: asked a recorded prompt, a backend answers with its
    recorded response at its recorded cost; anything else is counted in :attr:`unrecorded` and fails."""

    def __init__(self, table: OutcomeTable) -> None:
        self._table = table
        self._row_of = {embedding_text(turns): i for i, turns in enumerate(table.prompts)}
        self.unrecorded = 0

    def completer(self, backend: str) -> RecordedBackend:
        """The recorded answers of ``backend``; raises ValueError when the table does not have it."""
        if backend not in self._table.models:
            raise ValueError(f"judge backend {backend!r} is not in the table")
        return RecordedBackend(self, backend, self._table.models.index(backend))

    def reply(self, column: int, messages: list[dict[str, str]]) -> TextReply:
        """The recorded answer of ``column`` to the prompt ``messages`` hold; raises LookupError when it is
        not a recorded prompt or there is no answer."""
        assert self._table.responses is not None
        text = "\n\n".join(str(m.get("content", "")) for m in messages if m.get("role") != "system")
        row = self._row_of.get(text)
        response = self._table.responses[row, column] if row is not None else None
        if not response:
            self.unrecorded += row is None
            raise LookupError("no recorded answer to this request")
        return TextReply(response[-1], float(self._table.cost[row, column]))


@dataclass
class RecordedBackend:
    """One backend's recorded answers (a ``ChatCompleter``)."""

    answers: RecordedAnswers
    name: str
    column: int

    async def complete_text(self, messages: list[dict[str, str]]) -> TextReply:
        return self.answers.reply(self.column, messages)


@dataclass(frozen=True)
class Deployment:
    """A config's routers replayed on a table: the ``routers`` that could be, the ``skipped`` ones with
    why (router → reason), the ``table`` narrowed to the config's backends, the config's backends it
    lacks (``missing_backends``) and its models that are no backend (``unused_models``, left out)."""

    routers: tuple[DeployedRouter, ...]
    skipped: dict[str, str]
    table: OutcomeTable
    missing_backends: tuple[str, ...]
    unused_models: tuple[str, ...]


def deployed_routers(
    routers: Sequence[RouterConfig],
    backends: Sequence[str],
    table: OutcomeTable,
    embedder: Embedder,
    rows: IndexArray,
) -> Deployment:
    """Every router of ``routers`` replayed on ``table`` narrowed to ``backends`` (the config's), judges
    scoring ``rows``. Raises ``ValueError`` when the table has none of the backends, or naming the router
    for a config that does not fit its artifact."""
    narrowed = narrowed_to(table, backends)
    context = OfflineRouterContext(narrowed, embedder, rows)
    replayed, skipped = [], {}
    for config in routers:
        try:
            replayed.append(config.replayed(context))
        except NotReplayableError as exc:
            skipped[config.name] = str(exc)
        except ValueError as exc:
            raise ValueError(f"router {config.name}: {exc}") from exc
    missing = tuple(b for b in backends if b not in table.models)
    unused = tuple(m for m in table.models if m not in backends)
    return Deployment(tuple(replayed), skipped, narrowed, missing, unused)


def narrowed_to(table: OutcomeTable, backends: Sequence[str]) -> OutcomeTable:
    """``table`` with only the columns that are among ``backends``, in the table's order; raises
    ``ValueError`` when none is."""
    columns = [j for j, model in enumerate(table.models) if model in backends]
    if not columns:
        raise ValueError(
            f"{table.source}: none of its models ({', '.join(table.models)}) is a backend of the config "
            f"({', '.join(backends)}); name backends after the table's models"
        )
    return replace(
        table,
        models=tuple(table.models[j] for j in columns),
        quality=table.quality[:, columns],
        missing=table.missing[:, columns],
        cost=table.cost[:, columns],
        responses=None if table.responses is None else table.responses[:, columns],
    )
