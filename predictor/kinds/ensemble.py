"""The ensemble quality predictor: a weighted average of other kinds' predictions.

Each member kind (``members``, names in ``PREDICTOR_KINDS``) is trained on the same data with its own
default hyperparameters; predicted quality and $ cost are the ``weights``-weighted means of the
members' (equal weights unless given). Averaging predictors whose errors differ (a neighbourhood mean,
a region mean, a linear classifier) lowers the variance that makes a router leave the best model where
it should not. The artifact holds each member's own files in a subdirectory named after its kind,
loaded back through the registry.

The default members, cluster and logistic, led 5-fold cross-validated AIQ inside the RouterBench
sample's train split among the pairs and triples of knn, cluster, logistic and mlp (the knn member is
its kind's default: plain, unshrunk KNN, which added noise to every ensemble it joined).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from routeyard.arrays import Vectors
from routeyard.predictor.kinds import PREDICTOR_KINDS, PredictorKind, TrainingSet
from routeyard.predictor.quality_predictor import QualityCostPrediction, QualityPredictor

KIND = "ensemble"


class EnsembleParameters(BaseModel):
    """The ensemble kind's hyperparameters (the command line's defaults)."""

    model_config = ConfigDict(extra="forbid")

    members: str = Field(
        default="cluster,logistic",
        description="comma-separated predictor kinds averaged, each trained with its defaults",
    )
    weights: str = Field(
        default="", description="comma-separated weight ≥ 0 per member, in members' order (empty: equal)"
    )

    @field_validator("members")
    @classmethod
    def _distinct_other_kinds(cls, members: str) -> str:
        names = _names(members)
        if not names:
            raise ValueError("name at least one member kind")
        if len(set(names)) != len(names) or KIND in names:
            raise ValueError(f"members must be distinct kinds other than {KIND!r}, got {members!r}")
        return ",".join(names)

    @model_validator(mode="after")
    def _one_weight_per_member(self) -> EnsembleParameters:
        self.member_weights()
        return self

    def member_names(self) -> list[str]:
        """The member kinds, in order."""
        return _names(self.members)

    def member_weights(self) -> list[float]:
        """The members' weights normalised to sum 1, in :meth:`member_names` order; raises ``ValueError``
        unless ``weights`` holds one finite number ≥ 0 per member (or is empty: equal weights) and they do
        not sum to 0."""
        members = self.member_names()
        if not self.weights.strip():
            return [1.0 / len(members)] * len(members)
        try:
            weights = [float(w) for w in _names(self.weights)]
        except ValueError as exc:
            raise ValueError(f"weights must be numbers, got {self.weights!r}") from exc
        if len(weights) != len(members) or min(weights) < 0.0 or not np.isfinite(weights).all():
            raise ValueError(f"need one finite weight ≥ 0 per member of {members}, got {self.weights!r}")
        if sum(weights) <= 0.0:
            raise ValueError("the weights sum to 0")
        return [w / sum(weights) for w in weights]


class EnsemblePredictor:
    """The weighted mean of member predictors (see the module docstring)."""

    kind = KIND

    def __init__(
        self,
        members: dict[str, QualityPredictor],
        weights: list[float],
        models: tuple[str, ...],
        hyperparameters: dict[str, Any],
    ) -> None:
        """Average ``members`` (kind → predictor) with ``weights`` (summing to 1, in ``members``' order).
        Raises ``ValueError`` when a member predicts other models or expects another embedding length."""
        dimensions = {p.dimension for p in members.values()}
        if len(dimensions) != 1 or any(p.models != models for p in members.values()):
            raise ValueError(f"members must share models {list(models)} and one embedding length")
        if len(weights) != len(members):
            raise ValueError(f"{len(weights)} weights for {len(members)} members")
        self.models = models
        self.dimension = dimensions.pop()
        self.hyperparameters = hyperparameters
        self._members = members
        self._weights = weights

    @classmethod
    def train(cls, data: TrainingSet, parameters: EnsembleParameters) -> EnsemblePredictor:
        """Train every member kind on ``data`` with its defaults.

        Raises ``ValueError`` for an unknown member kind (before anything is trained), for data it cannot
        learn from (see :meth:`routeyard.predictor.kinds.TrainingSet.check`) or that a member
        refuses.
        """
        kinds = [PREDICTOR_KINDS.get(name) for name in parameters.member_names()]
        data.check()
        members = {kind.name: kind.train(data, kind.parameters()) for kind in kinds}
        hyperparameters = {
            **parameters.model_dump(),
            "member_hyperparameters": {name: p.hyperparameters for name, p in members.items()},
        }
        return cls(members, parameters.member_weights(), data.models, hyperparameters)

    def predict(self, embeddings: Vectors) -> QualityCostPrediction:
        predictions = [member.predict(embeddings) for member in self._members.values()]
        quality = sum(w * p.quality for w, p in zip(self._weights, predictions, strict=True))
        cost = sum(w * p.cost for w, p in zip(self._weights, predictions, strict=True))
        return QualityCostPrediction(
            quality=np.clip(np.asarray(quality), 0.0, 1.0), cost=np.maximum(np.asarray(cost), 0.0)
        )

    def save(self, directory: Path) -> None:
        for name, member in self._members.items():
            (directory / name).mkdir()
            member.save(directory / name)

    @classmethod
    def load(
        cls, directory: Path, models: tuple[str, ...], hyperparameters: dict[str, Any]
    ) -> EnsemblePredictor:
        """Load each member from its subdirectory through its kind's ``load``; raises what those raise,
        ``KeyError`` for a member missing from the hyperparameters, ``ValueError`` for bad ones."""
        parameters = EnsembleParameters(
            members=hyperparameters["members"], weights=hyperparameters["weights"]
        )
        recorded = hyperparameters["member_hyperparameters"]
        members = {
            name: PREDICTOR_KINDS.get(name).load(directory / name, models, recorded[name])
            for name in parameters.member_names()
        }
        return cls(members, parameters.member_weights(), models, hyperparameters)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


PREDICTOR_KINDS.register(
    PredictorKind(
        name=KIND,
        parameters=EnsembleParameters,
        train=EnsemblePredictor.train,
        load=EnsemblePredictor.load,
        grid=(
            {},
            {"members": "knn,cluster,logistic"},
            {"members": "knn,cluster,logistic", "weights": "1,2,2"},
            {"members": "knn,cluster"},
            {"members": "knn,logistic"},
        ),
    )
)
