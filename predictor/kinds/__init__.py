"""Predictor kinds: one module here per kind of ``QualityPredictor`` (predictor/quality_predictor.py).

A kind module registers a :class:`PredictorKind` in :data:`PREDICTOR_KINDS` when it is imported: its name
(what ``routeyard train --predictor`` and a router's ``kind`` say, and what an artifact's manifest
records), its hyperparameters as a pydantic model (defaults, bounds and help; the command line's options
are made from it), how to train one on a :class:`TrainingSet`, and how to load one from an artifact
directory. A new kind is one new module in this package (or in another distribution, through the
entry-point group ``routeyard.predictor``); nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from routeyard.arrays import BoolArray, FloatArray, Vectors
from routeyard.predictor.quality_predictor import QualityPredictor
from routeyard.registry import Registry


@dataclass(frozen=True)
class TrainingSet:
    """What a predictor learns from: (n, d) L2-normalised ``embeddings`` of n prompts and, for the m
    ``models``, (n, m) ``quality`` in [0, 1], the (n, m) ``missing`` mask of unknown qualities and the
    (n, m) $ ``cost``."""

    embeddings: Vectors
    quality: FloatArray
    missing: BoolArray
    cost: FloatArray
    models: tuple[str, ...]

    def check(self) -> None:
        """Raise ``ValueError`` unless the set can be learnt from: (n, d) finite embeddings with n ≥ 1,
        (n, m) labels for its m ≥ 1 models, known qualities in [0, 1], finite costs ≥ 0, and at least one
        known quality per model."""
        n, m = len(self.embeddings), len(self.models)
        if self.embeddings.ndim != 2 or n == 0:
            raise ValueError(f"need (n, d) embeddings of n ≥ 1 prompts, got {self.embeddings.shape}")
        if m == 0 or any(a.shape != (n, m) for a in (self.quality, self.missing, self.cost)):
            raise ValueError(
                f"need (n, m) quality, missing and cost for n={n} prompts and m={m} ≥ 1 models; got "
                f"{self.quality.shape}, {self.missing.shape}, {self.cost.shape}"
            )
        if not np.isfinite(self.embeddings).all():
            raise ValueError("embeddings hold NaN or infinite values")
        known = self.quality[~self.missing]
        if not (np.isfinite(known) & (known >= 0.0) & (known <= 1.0)).all():
            raise ValueError("known qualities must lie in [0, 1]")
        if not (np.isfinite(self.cost) & (self.cost >= 0.0)).all():
            raise ValueError("costs must be finite and ≥ 0")
        ungraded = [self.models[j] for j in np.flatnonzero(self.missing.all(axis=0))]
        if ungraded:
            raise ValueError(f"no known quality for models {ungraded}: nothing to learn them from")


@dataclass(frozen=True)
class PredictorKind:
    """A kind of predictor (see the module docstring).

    Attributes:
        name: the kind's name, e.g. ``"knn"``.
        parameters: its hyperparameters; every field has a default and a ``description``.
        train: ``train(data, parameters)`` fits one; raises ``ValueError`` for data it cannot learn from.
        load: ``load(directory, models, hyperparameters)`` reads what the predictor's ``save`` wrote, given
            the manifest's model names and hyperparameters; raises ``OSError``, ``ValueError``,
            ``KeyError``, ``RuntimeError`` or ``EOFError`` on damaged files.
        grid: the small grid model selection searches by cross-validation inside the train split: each
            entry a partial set of hyperparameters (the rest default); empty means the defaults only.
    """

    name: str
    parameters: type[BaseModel]
    train: Callable[[TrainingSet, Any], QualityPredictor]
    load: Callable[[Path, tuple[str, ...], dict[str, Any]], QualityPredictor]
    grid: tuple[Mapping[str, Any], ...] = ()


PREDICTOR_KINDS: Registry[PredictorKind] = Registry("predictor", __name__)
"""Every predictor kind, by name."""
