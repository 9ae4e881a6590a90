"""The outcome table: what every model scored, and cost, on every prompt.

An :class:`OutcomeTable` holds n prompts × m models. It is what the loaders produce, what predictors
train on, and what the replay harness evaluates routers over. It is immutable; selecting rows gives a
new table that shares nothing mutable with the old one.

Missing quality (a model never graded on a prompt) is stored as ``0.0`` in :attr:`OutcomeTable.quality`
and flagged in :attr:`OutcomeTable.missing`, because the RouterBench spec counts it as 0 and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from routeyard.arrays import BoolArray, FloatArray, IndexArray, ObjectArray


class OutcomeTableError(ValueError):
    """A file or array cannot be an outcome table.

    The message names the file, and where it applies the column and the row (counted from 1 at the first
    data row), so a user can find and fix the cell. It never contains prompt or response text.
    """


@dataclass(frozen=True, eq=False)
class OutcomeTable:
    """n prompts × m models with quality in [0, 1], $ cost and optional answer text.

    Attributes:
        sample_ids: (n,) unique prompt identifiers (``str``).
        datasets: (n,) dataset of each prompt (``str``), e.g. ``"mmlu"``.
        prompts: (n,) object array; each element is a ``tuple[str, ...]`` of conversation turns.
        models: the m model names, in column order.
        quality: (n, m) float64 in [0, 1]; ``0.0`` where :attr:`missing` is true.
        missing: (n, m) bool; true where the model's quality on the prompt is unknown.
        cost: (n, m) float64 $ spent by the model answering the prompt, ≥ 0.
        responses: (n, m) object array; each element is the answer as a ``tuple[str, ...]`` of turns, or
            ``None`` where no answer was recorded; the whole attribute is ``None`` when not loaded.
        repairs: human-readable notes of every repair the loader made (dropped duplicates, rescaling).
        source: where the table came from (a path or a generator name), for reports and errors.
    """

    sample_ids: NDArray[np.str_]
    datasets: NDArray[np.str_]
    prompts: ObjectArray
    models: tuple[str, ...]
    quality: FloatArray
    missing: BoolArray
    cost: FloatArray
    responses: ObjectArray | None = None
    repairs: tuple[str, ...] = ()
    source: str = "<memory>"
    _dataset_index: dict[str, IndexArray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        n, m = len(self.sample_ids), len(self.models)
        expected = {
            "datasets": (self.datasets.shape, (n,)),
            "prompts": (self.prompts.shape, (n,)),
            "quality": (self.quality.shape, (n, m)),
            "missing": (self.missing.shape, (n, m)),
            "cost": (self.cost.shape, (n, m)),
        }
        if self.responses is not None:
            expected["responses"] = (self.responses.shape, (n, m))
        for name, (got, want) in expected.items():
            if got != want:
                raise OutcomeTableError(f"{self.source}: {name} has shape {got}, expected {want}")
        if m == 0:
            raise OutcomeTableError(f"{self.source}: no models")
        if len(set(self.models)) != m:
            raise OutcomeTableError(f"{self.source}: model names repeat: {list(self.models)}")
        if len(np.unique(self.sample_ids)) != n:
            raise OutcomeTableError(f"{self.source}: sample_ids are not unique")
        if n and (np.nanmin(self.quality) < 0.0 or np.nanmax(self.quality) > 1.0):
            raise OutcomeTableError(f"{self.source}: quality outside [0, 1]")
        if not np.isfinite(self.quality).all() or not np.isfinite(self.cost).all():
            raise OutcomeTableError(f"{self.source}: quality and cost must be finite")
        if n and self.cost.min() < 0.0:
            raise OutcomeTableError(f"{self.source}: negative cost")

    @property
    def n_prompts(self) -> int:
        return len(self.sample_ids)

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def dataset_names(self) -> list[str]:
        """The datasets present, sorted."""
        return sorted(self._indices_by_dataset())

    def rows_of(self, dataset: str) -> IndexArray:
        """Row indices of ``dataset``, ascending. Raises ``KeyError`` for an absent dataset."""
        return self._indices_by_dataset()[dataset]

    def select(self, rows: IndexArray | BoolArray) -> OutcomeTable:
        """A new table holding only ``rows`` (indices or a boolean mask), in the order given."""
        return OutcomeTable(
            sample_ids=self.sample_ids[rows],
            datasets=self.datasets[rows],
            prompts=self.prompts[rows],
            models=self.models,
            quality=self.quality[rows],
            missing=self.missing[rows],
            cost=self.cost[rows],
            responses=None if self.responses is None else self.responses[rows],
            repairs=self.repairs,
            source=self.source,
        )

    def _indices_by_dataset(self) -> dict[str, IndexArray]:
        if not self._dataset_index and self.n_prompts:
            names, inverse = np.unique(self.datasets, return_inverse=True)
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
            for i, name in enumerate(names):
                self._dataset_index[str(name)] = np.sort(order[bounds[i] : bounds[i + 1]])
        return self._dataset_index


def prompt_turns(value: Any) -> tuple[str, ...]:
    """Normalise one prompt (a string or a sequence of turns) into a tuple of turn strings."""
    if isinstance(value, str):
        return (value,)
    return tuple(str(turn) for turn in value)
