"""Predictor artifacts: a directory the gateway and the replay load a trained predictor from.

Layout::

    manifest.json     what the predictor is and what it was trained on (see :class:`Manifest`)
    index.faiss, labels.npz           (kind "knn")
    weights.pt, scaling.npz           (kind "mlp")
    zero_guard.npz                    (any kind, when a Zero guard is on: predictor/guard.py)

Loading checks the manifest before it trusts a byte: an unknown format version or kind, an embedder
of another identity or dimension, or damaged files are an :class:`ArtifactError` that says what
differs, never silent garbage.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from routeyard.predictor.directory_writes import replaced_directory
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.guard import load_guard
from routeyard.predictor.kinds import PREDICTOR_KINDS
from routeyard.predictor.quality_predictor import QualityPredictor

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"


class ArtifactError(ValueError):
    """A predictor artifact is missing, damaged, or does not fit the embedder it is used with."""


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` records.

    Attributes:
        format_version: :data:`FORMAT_VERSION` of the writer.
        kind: the predictor kind (a name in ``PREDICTOR_KINDS``).
        embedder_identity: :attr:`Embedder.identity` of the embedder the predictor was trained with.
        dimension: the embedding length.
        models: the model names, in prediction column order.
        hyperparameters: the predictor's own (k, weighting, hidden, epochs, …).
        training_data_sha256: hash of the training rows' ids, labels and costs (see predictor.training).
        split: how the training rows were chosen (seed, train fraction, rows per dataset).
        source: the outcome table the rows came from.
        selection: how the hyperparameters were chosen (``routeyard.evaluation.selection``: the grid, each
            point's cross-validated score inside the train split, the winner); empty when not searched.
        plans: for a plan artifact, each column's plan spec (``routeyard.policy.plans.plan_from_spec``) in
            ``models`` order, the columns being plans named by ``Plan.name``; empty when columns are models.
    """

    format_version: int
    kind: str
    embedder_identity: str
    dimension: int
    models: tuple[str, ...]
    hyperparameters: dict[str, Any]
    training_data_sha256: str
    split: dict[str, Any]
    source: str
    selection: dict[str, Any] = field(default_factory=dict)
    plans: tuple[dict[str, Any], ...] = ()


def save_artifact(predictor: QualityPredictor, manifest: Manifest, directory: str | Path) -> None:
    """Write ``predictor`` and ``manifest`` into ``directory``, replacing it whole (never half-written)."""
    with replaced_directory(Path(directory)) as staging:
        predictor.save(staging)
        (staging / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2) + "\n")


M = TypeVar("M", bound=Manifest)


def read_manifest_file(
    directory: str | Path,
    manifest_type: type[M],
    *,
    error: type[ValueError],
    what: str,
    format_version: int,
    retrain: str,
) -> M:
    """The ``manifest.json`` in ``directory`` as a ``manifest_type`` (a :class:`Manifest` or a subclass),
    checked for ``format_version``; every damage raises ``error``.

    ``what`` names the artifact in messages (``"predictor artifact"``), ``retrain`` the command that
    makes a new one.
    """
    path = Path(directory) / MANIFEST_FILE
    try:
        raw = json.loads(path.read_text())
        manifest = manifest_type(
            **{**raw, "models": tuple(raw["models"]), "plans": tuple(raw.get("plans", ()))}
        )
    except FileNotFoundError as exc:
        raise error(f"{directory}: not a {what} (no {MANIFEST_FILE})") from exc
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise error(f"{path}: damaged manifest ({type(exc).__name__})") from exc
    if manifest.format_version != format_version:
        raise error(
            f"{directory}: artifact format version {manifest.format_version}, this routeyard reads "
            f"{format_version}; retrain with `{retrain}`"
        )
    return manifest


def read_manifest(directory: str | Path) -> Manifest:
    """The manifest of the predictor artifact in ``directory``; raises :class:`ArtifactError`."""
    manifest = read_manifest_file(
        directory,
        Manifest,
        error=ArtifactError,
        what="predictor artifact",
        format_version=FORMAT_VERSION,
        retrain="routeyard train",
    )
    if manifest.kind not in PREDICTOR_KINDS:
        known = ", ".join(PREDICTOR_KINDS.names())
        raise ArtifactError(f"{directory}: unknown predictor kind {manifest.kind!r}; known: {known}")
    return manifest


def check_embedder(manifest: Manifest, embedder: Embedder, directory: str | Path) -> None:
    """Raise :class:`ArtifactError` unless ``embedder`` makes the vectors the artifact was trained on."""
    if embedder.identity != manifest.embedder_identity:
        raise ArtifactError(
            f"{directory}: trained with embedder {manifest.embedder_identity!r}, "
            f"but used with {embedder.identity!r}"
        )
    if embedder.dimension != manifest.dimension:
        raise ArtifactError(
            f"{directory}: trained on {manifest.dimension}-d embeddings, the embedder makes "
            f"{embedder.dimension}-d ones"
        )


def load_artifact(directory: str | Path, embedder: Embedder) -> tuple[QualityPredictor, Manifest]:
    """Load the predictor in ``directory`` for use with ``embedder``; raises :class:`ArtifactError`."""
    manifest = read_manifest(directory)
    check_embedder(manifest, embedder, directory)
    try:
        predictor = PREDICTOR_KINDS.get(manifest.kind).load(
            Path(directory), manifest.models, manifest.hyperparameters
        )
        predictor = load_guard(Path(directory), predictor)
    except (OSError, ValueError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{directory}: damaged {manifest.kind} files ({type(exc).__name__})") from exc
    if predictor.dimension != manifest.dimension:
        raise ArtifactError(
            f"{directory}: files hold {predictor.dimension}-d data, manifest says {manifest.dimension}"
        )
    return predictor, manifest
