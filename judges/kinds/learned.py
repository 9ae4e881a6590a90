"""The learned judge: a logistic model over embeddings of the prompt and the answer, saved as an artifact.

Features of an (prompt, answer, model) triple: the prompt's embedding p, the answer's embedding a, their
elementwise product p ⊙ a (how the answer relates to *this* question), and a one-hot of the answering
model among those seen in training (zeros for an unknown model). Each feature is standardised with the
training set's mean and spread; the score is the logistic of a linear function of them, P(quality ≥ ½).
Training lives in ``routeyard.judges.judge_training``; this module scores and stores, and registers the
judge kind ``learned`` (:class:`LearnedJudgeConfig`: the artifact to load).

Artifact layout (a directory, written whole or not at all)::

    manifest.json   kind "learned-judge", format version, embedder identity and dimension, models,
                    hyperparameters, training-data hash, split, source, held-out metrics
    weights.npz     coef (f,), intercept (), mean (f,), scale (f,)

Loading checks the manifest and the files before trusting them: anything off is a :class:`JudgeArtifactError`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from routeyard.arrays import FloatArray
from routeyard.judges.judge import Answer, Judgement
from routeyard.judges.kinds import JUDGE_KINDS, JudgeConfig, JudgeContext, JudgeKind
from routeyard.predictor.artifact import MANIFEST_FILE, Manifest, read_manifest_file
from routeyard.predictor.directory_writes import replaced_directory
from routeyard.predictor.embedder import Embedder

FORMAT_VERSION = 1
KIND = "learned-judge"
WEIGHTS_FILE = "weights.npz"


class JudgeArtifactError(ValueError):
    """A learned-judge artifact is missing, damaged, or does not fit the embedder it is used with."""


@dataclass(frozen=True)
class JudgeManifest(Manifest):
    """What ``manifest.json`` records: a predictor artifact's fields (``predictor.artifact.Manifest``)
    and the judge's error rates on held-out answers (``metrics``)."""

    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogisticWeights:
    """A standardised logistic model: score = σ(((x − mean) / scale) · coef + intercept)."""

    coef: FloatArray
    intercept: float
    mean: FloatArray
    scale: FloatArray

    def probabilities(self, features: FloatArray) -> FloatArray:
        """(n,) scores in [0, 1] for (n, f) features."""
        logits = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0))), dtype=np.float64)


def judge_features(
    prompt_vectors: NDArray[np.floating],
    answer_vectors: NDArray[np.floating],
    model_columns: Sequence[int | None],
    n_models: int,
) -> FloatArray:
    """(n, 3d + m) features: [p, a, p ⊙ a, one-hot(model)]; a ``None`` column is an unknown model."""
    p, a = np.asarray(prompt_vectors, np.float64), np.asarray(answer_vectors, np.float64)
    one_hot = np.zeros((len(p), n_models))
    for row, column in enumerate(model_columns):
        if column is not None:
            one_hot[row, column] = 1.0
    return np.concatenate([p, a, p * a, one_hot], axis=1)


class LearnedJudge:
    """Scores answers with trained :class:`LogisticWeights` over ``embedder``'s vectors."""

    def __init__(self, embedder: Embedder, weights: LogisticWeights, manifest: JudgeManifest) -> None:
        self.name = "learned"
        self.embedder = embedder
        self.weights = weights
        self.manifest = manifest
        self._column = {model: j for j, model in enumerate(manifest.models)}

    def score_many(self, prompts: Sequence[str], answers: Sequence[Answer]) -> FloatArray:
        """(n,) scores of ``answers[i]`` to ``prompts[i]``, embedding everything in two batched calls."""
        if len(prompts) != len(answers):
            raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
        if not prompts:
            return np.zeros(0)
        columns = [self._column.get(a.model) if a.model is not None else None for a in answers]
        features = judge_features(
            self.embedder.embed(list(prompts)),
            self.embedder.embed([a.text for a in answers]),
            columns,
            len(self.manifest.models),
        )
        return self.weights.probabilities(features)

    async def judge(self, prompt: str, answer: Answer) -> Judgement:
        """The score of one answer, computed off the event loop."""
        (score,) = await asyncio.to_thread(self.score_many, [prompt], [answer])
        return Judgement(float(score), f"learned judge: P(good) {score:.2f}")

    def save(self, directory: str | Path) -> None:
        """Write the artifact to ``directory``, replacing it whole."""
        with replaced_directory(Path(directory)) as staging:
            np.savez(
                staging / WEIGHTS_FILE,
                coef=self.weights.coef,
                intercept=np.float64(self.weights.intercept),
                mean=self.weights.mean,
                scale=self.weights.scale,
            )
            (staging / MANIFEST_FILE).write_text(json.dumps(asdict(self.manifest), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path, embedder: Embedder) -> LearnedJudge:
        """The judge saved in ``directory``, for use with ``embedder``; raises JudgeArtifactError."""
        manifest = read_judge_manifest(directory)
        if (embedder.identity, embedder.dimension) != (manifest.embedder_identity, manifest.dimension):
            raise JudgeArtifactError(
                f"{directory}: trained with embedder {manifest.embedder_identity!r} "
                f"({manifest.dimension}-d), used with {embedder.identity!r} ({embedder.dimension}-d)"
            )
        try:
            with np.load(Path(directory) / WEIGHTS_FILE, allow_pickle=False) as files:
                weights = LogisticWeights(
                    files["coef"], float(files["intercept"]), files["mean"], files["scale"]
                )
        except (OSError, ValueError, KeyError) as exc:
            raise JudgeArtifactError(f"{directory}: damaged {WEIGHTS_FILE} ({type(exc).__name__})") from exc
        expected = 3 * manifest.dimension + len(manifest.models)
        if not weights.coef.shape == weights.mean.shape == weights.scale.shape == (expected,):
            raise JudgeArtifactError(f"{directory}: weights do not hold {expected} features")
        return cls(embedder, weights, manifest)


def read_judge_manifest(directory: str | Path) -> JudgeManifest:
    """The manifest of the learned-judge artifact in ``directory``; raises :class:`JudgeArtifactError`."""
    manifest = read_manifest_file(
        directory,
        JudgeManifest,
        error=JudgeArtifactError,
        what="learned-judge artifact",
        format_version=FORMAT_VERSION,
        retrain="routeyard train-judge",
    )
    if manifest.kind != KIND:
        raise JudgeArtifactError(f"{directory}: a {manifest.kind!r} artifact, not a {KIND!r}")
    return manifest


class LearnedJudgeConfig(JudgeConfig):
    """``kind: learned``: the learned judge saved in ``artifact`` by ``routeyard train-judge``."""

    kind: Literal["learned"] = "learned"
    artifact: Path

    def problems(self, backends: set[str]) -> list[str]:
        """The artifact must be a directory holding a readable learned-judge manifest."""
        if not self.artifact.is_dir():
            return [f"artifact {self.artifact} is not a directory"]
        try:
            read_judge_manifest(self.artifact)
        except JudgeArtifactError as exc:
            return [str(exc)]
        return []


def build_learned_judge(config: LearnedJudgeConfig, context: JudgeContext) -> LearnedJudge:
    """The learned judge in ``config.artifact`` over ``context.embedder``; raises JudgeArtifactError."""
    return LearnedJudge.load(config.artifact, context.embedder)


JUDGE_KINDS.register(JudgeKind("learned", LearnedJudgeConfig, build_learned_judge))
