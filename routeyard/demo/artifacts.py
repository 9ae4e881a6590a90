"""The demo's two KNN artifacts: how they are named, found and built.

An artifact's directory name is ``<name>-<key>``, ``key`` a hash of everything it is made from: the
sample's train rows (:func:`routeyard.predictor.training.training_data_hash`), the embedder's identity
(a new distillation is a new key), how it is trained and its name. :func:`demo_artifact` returns the
first of

1. the prebuilt one shipped as package data under ``data/artifacts/`` (written by
   ``python -m routeyard.demo.build_artifacts``), when its key is the current one;
2. one built earlier into the cache directory;
3. one built now into the cache directory (≈ 20 s on 2 cores, with a progress bar on a terminal).

So a fresh install starts at once, and a changed sample or embedder still gets a matching artifact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from routeyard.evaluation.plan_outcomes import PlanTable, candidate_plans, plan_table
from routeyard.evaluation.selected_training import train_selected
from routeyard.predictor.artifact import save_artifact
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.predictor.training import train_rows, training_data_hash

DATA = Path(__file__).parent / "data"
SAMPLE_TABLE = DATA / "routerbench_0shot_subset.csv.gz"
"""The bundled RouterBench sample (package data; provenance in ``data/PROVENANCE.md``)."""
SAMPLE_SOURCE = "routeyard/demo/data/routerbench_0shot_subset.csv.gz"
"""The sample as a manifest's ``source`` names it: the same on every machine, so builds are identical."""
PACKAGED_ARTIFACTS = DATA / "artifacts"
"""The prebuilt artifacts (package data; provenance in ``data/artifacts/PROVENANCE.md``)."""
DEMO_PREDICTOR = "knn"
DEMO_TRAINING = "train_selected: 5-fold CV inside the train split, Zero guard"  # part of the key
MODEL_ARTIFACT, PLAN_ARTIFACT = "knn", "plans-knn"
ARTIFACT_NAMES = (MODEL_ARTIFACT, PLAN_ARTIFACT)


def load_sample(*, with_responses: bool = False) -> OutcomeTable:
    """The bundled sample, its ``source`` the machine-independent :data:`SAMPLE_SOURCE`."""
    table = load_routerbench_table(SAMPLE_TABLE, with_responses=with_responses)
    return dataclasses.replace(table, source=SAMPLE_SOURCE)


def artifact_directory_name(name: str, table: OutcomeTable, embedder_identity: str) -> str:
    """``<name>-<key>``: the key hashes the train rows of ``table``, the embedder, the training, the name."""
    rows, _split = train_rows(table)
    key = json.dumps(
        [training_data_hash(table, rows), embedder_identity, DEMO_TRAINING, name], sort_keys=True
    )
    return f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def demo_artifact(
    name: str, table: OutcomeTable, embedder: Embedder, cache_directory: Path, *, progress: bool = False
) -> Path:
    """The artifact ``name`` (in :data:`ARTIFACT_NAMES`) for ``table`` (the sample without answers) and
    ``embedder``: prebuilt, cached or built into ``cache_directory`` (module docstring)."""
    directory_name = artifact_directory_name(name, table, embedder.identity)
    for candidate in (PACKAGED_ARTIFACTS / directory_name, cache_directory / directory_name):
        if (candidate / "manifest.json").exists():
            return candidate
    built = cache_directory / directory_name
    print(f"building the demo {name} artifact from the RouterBench sample (no prebuilt one matches)…")
    build_artifact(name, table, embedder, built, progress=progress)
    return built


def build_artifact(
    name: str, table: OutcomeTable, embedder: Embedder, out: Path, *, progress: bool = False
) -> None:
    """Train the artifact ``name`` as ``routeyard train`` (``--plans`` for the plan one) does on the sample,
    and write it to ``out`` (replaced whole)."""
    outcomes = _OUTCOMES[name](table)
    result = train_selected(outcomes, embedder, DEMO_PREDICTOR, progress=progress)
    save_artifact(result.trained.predictor, result.trained.manifest, out)


def _model_outcomes(table: OutcomeTable) -> OutcomeTable:
    return table


def _plan_outcomes(table: OutcomeTable) -> PlanTable:
    """The sample's plan table: every model alone and the agreement pairs picked on its train split
    (the one place the demo reads the recorded answers)."""
    answered = load_sample(with_responses=True)
    return plan_table(answered, candidate_plans(answered, train_rows(answered)[0]))


_OUTCOMES: dict[str, Callable[[OutcomeTable], OutcomeTable | PlanTable]] = {
    MODEL_ARTIFACT: _model_outcomes,
    PLAN_ARTIFACT: _plan_outcomes,
}
