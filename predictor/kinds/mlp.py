"""The MLP quality predictor: a torch network from a prompt's embedding to each model's quality and cost.

Architecture (RouterBench's MLP router, with a cost head): d → hidden → ReLU → dropout → hidden → ReLU
→ 2m outputs. The first m are quality logits, trained with binary cross-entropy against the known
qualities only (a missing quality adds nothing to the loss); quality is their sigmoid. The last m
predict the standardised log cost, trained with mean squared error; cost is mapped back with
exp(mean + std × output).

Training holds out ``validation_fraction`` of the rows, runs Adam (with weight decay) for at most
``epochs`` passes, and stops when the held-out loss has not improved for ``patience`` epochs, keeping the
weights of the best epoch. Everything is seeded: the same data and seed give the same weights.

Training runs torch on one thread: on a network this small, intra-op threads cost more than they save,
and on a busy 2-core machine they spin. One training on 7,000 MiniLM-embedded rows took 5 s on one
thread against 172 s on two while another process held a core; cross-validated selection trains 15 times.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from routeyard.arrays import BoolArray, FloatArray, Vectors
from routeyard.predictor.kinds import PREDICTOR_KINDS, PredictorKind, TrainingSet
from routeyard.predictor.quality_predictor import QualityCostPrediction

WEIGHTS_FILE = "weights.pt"
SCALING_FILE = "scaling.npz"
_COST_FLOOR = 1e-6  # $; log(0) guard, far below any real call
_DROPOUT = 0.1


class MlpParameters(BaseModel):
    """The MLP kind's hyperparameters (the defaults of :meth:`MlpPredictor.train`)."""

    model_config = ConfigDict(extra="forbid")

    hidden: int = Field(default=256, ge=1, description="hidden width")
    epochs: int = Field(default=200, ge=1, description="most epochs (early stop on held-out rows)")
    learning_rate: float = Field(default=1e-3, gt=0.0, description="AdamW's learning rate")
    weight_decay: float = Field(default=1e-4, ge=0.0, description="AdamW's weight decay")
    batch_size: int = Field(default=256, ge=1, description="rows per step")
    validation_fraction: float = Field(
        default=0.1, gt=0.0, lt=1.0, description="share of the train rows held out for early stopping"
    )
    patience: int = Field(default=10, ge=1, description="epochs without improvement before stopping")
    seed: int = Field(default=0, description="initialisation and shuffling seed")


MLP_GRID: tuple[dict[str, Any], ...] = ({}, {"hidden": 64}, {"weight_decay": 1e-2})
"""The 3 points cross-validation searches, fixed a priori: the defaults, a narrower network, and the
defaults with strong weight decay. Kept to 3 because every point trains once per fold (15 trainings at 5
folds, each stopped early); ``routeyard train --folds 3`` or pinning ``--hidden`` makes it cheaper."""


def _network(dimension: int, hidden: int, n_models: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dimension, hidden),
        nn.ReLU(),
        nn.Dropout(_DROPOUT),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 2 * n_models),
    )


@dataclass(frozen=True)
class _Targets:
    """Training targets as tensors: quality, a 1/0 mask of known qualities, standardised log cost."""

    quality: torch.Tensor
    known: torch.Tensor
    log_cost: torch.Tensor


class MlpPredictor:
    """A trained network predicting quality and cost (see the module docstring). Build with :meth:`train`."""

    kind = "mlp"

    def __init__(
        self,
        network: nn.Sequential,
        models: tuple[str, ...],
        cost_mean: FloatArray,
        cost_std: FloatArray,
        hyperparameters: dict[str, Any],
    ) -> None:
        """Wrap a trained ``network``; ``cost_mean``/``cost_std`` (m,) undo the log-cost scaling."""
        self._network = network.eval()
        self.models = models
        self.dimension = int(hyperparameters["dimension"])
        self.hyperparameters = hyperparameters
        self._cost_mean = np.asarray(cost_mean, dtype=np.float64)
        self._cost_std = np.asarray(cost_std, dtype=np.float64)

    @classmethod
    def train(
        cls,
        embeddings: Vectors,
        quality: FloatArray,
        missing: BoolArray,
        cost: FloatArray,
        models: tuple[str, ...],
        *,
        hidden: int = 256,
        epochs: int = 200,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 256,
        validation_fraction: float = 0.1,
        patience: int = 10,
        seed: int = 0,
    ) -> MlpPredictor:
        """Fit on (n, d) ``embeddings`` and (n, m) labels. Raises ``ValueError`` on bad shapes or settings."""
        n, m = quality.shape
        if len(embeddings) != n or missing.shape != (n, m) or cost.shape != (n, m) or len(models) != m:
            raise ValueError(
                f"need (n, d) embeddings and (n, m) labels for m={len(models)} models; got "
                f"{embeddings.shape}, {quality.shape}, {missing.shape}, {cost.shape}"
            )
        if n < 2 or hidden < 1 or epochs < 1 or batch_size < 1 or patience < 1:
            raise ValueError("need n ≥ 2 rows and hidden, epochs, batch_size, patience ≥ 1")
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
        log_cost = np.log(np.maximum(cost, _COST_FLOOR))
        cost_mean, cost_std = log_cost.mean(axis=0), np.maximum(log_cost.std(axis=0), 1e-6)
        targets = _Targets(
            quality=torch.tensor(np.where(missing, 0.0, quality), dtype=torch.float32),
            known=torch.tensor(~missing, dtype=torch.float32),
            log_cost=torch.tensor((log_cost - cost_mean) / cost_std, dtype=torch.float32),
        )
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        order = torch.randperm(n, generator=generator)
        n_validation = max(1, round(n * validation_fraction))
        held_out, fitted = order[:n_validation], order[n_validation:]
        inputs = torch.tensor(np.asarray(embeddings, dtype=np.float32))
        network = _network(inputs.shape[1], hidden, m)
        optimiser = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=weight_decay)
        best_loss, best_state, best_epoch, epoch = float("inf"), network.state_dict(), 0, 0
        with _one_thread():  # see the module docstring
            for epoch in range(1, epochs + 1):
                network.train()
                shuffled = fitted[torch.randperm(len(fitted), generator=generator)]
                for start in range(0, len(shuffled), batch_size):
                    batch = shuffled[start : start + batch_size]
                    optimiser.zero_grad()
                    torch.autograd.backward(_loss(network(inputs[batch]), targets, batch))
                    optimiser.step()
                network.eval()
                with torch.no_grad():
                    validation_loss = float(_loss(network(inputs[held_out]), targets, held_out))
                if validation_loss < best_loss:
                    best_loss, best_epoch = validation_loss, epoch
                    best_state = {name: value.clone() for name, value in network.state_dict().items()}
                elif epoch - best_epoch >= patience:
                    break
        network.load_state_dict(best_state)
        hyperparameters = {
            "hidden": hidden,
            "epochs": epochs,
            "learning_rate": learning_rate,
            "weight_decay": weight_decay,
            "batch_size": batch_size,
            "validation_fraction": validation_fraction,
            "patience": patience,
            "seed": seed,
            "dimension": int(inputs.shape[1]),
            "epochs_run": epoch,
            "best_epoch": best_epoch,
            "best_validation_loss": best_loss,
        }
        return cls(network, models, cost_mean, cost_std, hyperparameters)

    def predict(self, embeddings: Vectors) -> QualityCostPrediction:
        queries = np.array(embeddings, dtype=np.float32)  # a copy: torch needs a writable array
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise ValueError(f"expected (n, {self.dimension}) embeddings, got {queries.shape}")
        with torch.no_grad():
            outputs = self._network(torch.from_numpy(queries)).double().numpy()
        m = len(self.models)
        quality = 1.0 / (1.0 + np.exp(-outputs[:, :m]))
        cost = np.exp(self._cost_mean + self._cost_std * outputs[:, m:])
        return QualityCostPrediction(quality=quality, cost=cost)

    def save(self, directory: Path) -> None:
        torch.save(self._network.state_dict(), directory / WEIGHTS_FILE)
        np.savez(directory / SCALING_FILE, cost_mean=self._cost_mean, cost_std=self._cost_std)

    @classmethod
    def load(cls, directory: Path, models: tuple[str, ...], hyperparameters: dict[str, Any]) -> MlpPredictor:
        """Read what :meth:`save` wrote (tensors only: ``weights_only`` loading runs no pickled code)."""
        network = _network(int(hyperparameters["dimension"]), int(hyperparameters["hidden"]), len(models))
        network.load_state_dict(torch.load(directory / WEIGHTS_FILE, weights_only=True))
        with np.load(directory / SCALING_FILE) as scaling:
            cost_mean, cost_std = scaling["cost_mean"], scaling["cost_std"]
        if cost_mean.shape != (len(models),) or cost_std.shape != (len(models),):
            raise ValueError(f"cost scaling for {cost_mean.shape} models, manifest names {len(models)}")
        return cls(network, models, cost_mean, cost_std, hyperparameters)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch's operators on one thread inside the block; the previous count is restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _loss(outputs: torch.Tensor, targets: _Targets, rows: torch.Tensor) -> torch.Tensor:
    """Masked quality BCE (mean over known cells) plus log-cost MSE, on ``rows`` of the targets."""
    m = targets.quality.shape[1]
    known = targets.known[rows]
    bce = nn.functional.binary_cross_entropy_with_logits(
        outputs[:, :m], targets.quality[rows], reduction="none"
    )
    quality_loss = (bce * known).sum() / known.sum().clamp(min=1.0)
    cost_loss = nn.functional.mse_loss(outputs[:, m:], targets.log_cost[rows])
    return quality_loss + cost_loss


def _train(data: TrainingSet, parameters: MlpParameters) -> MlpPredictor:
    return MlpPredictor.train(
        data.embeddings, data.quality, data.missing, data.cost, data.models, **parameters.model_dump()
    )


PREDICTOR_KINDS.register(
    PredictorKind(name="mlp", parameters=MlpParameters, train=_train, load=MlpPredictor.load, grid=MLP_GRID)
)
