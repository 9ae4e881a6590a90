"""The embedded default gateway: what ``routeyard serve`` runs with no ``--config``.

Eleven replay backends, one per RouterBench model of the bundled sample, answer with the model's recorded
responses and cost. Router ``router-knn`` (also ``auto``) routes with a KNN artifact trained on the
sample's train split with the static MiniLM embedder (``minilm-static``, the default) as ``routeyard
train`` trains (hyperparameters chosen by cross-validation inside the train split, a Zero guard where
it loses). Router ``router-plans`` chooses per prompt between one model and an agreement pair (two
cheap models called together, the best model when they disagree) with a KNN artifact trained on the
sample's plan outcomes. Both are built on first start (under a minute on 2 cores) and cached under the
cache directory, keyed by a hash of the training data, the embedder's identity (a new distillation is a
new key) and how they are trained. Router ``router-cascade`` walks the same backends from the cheapest
predicted, escalating past answers the heuristic checks reject (empty, refusal, truncated) within
$0.01 per request. Usage is logged in memory. The settings are written to ``demo/routeyard.yaml`` in
the cache directory, so every uvicorn worker loads the same thing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import yaml

from routeyard.evaluation.plan_outcomes import PlanTable, candidate_plans, plan_table
from routeyard.evaluation.selected_training import train_selected
from routeyard.predictor.artifact import save_artifact
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.embedder_choice import make_embedder
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.predictor.training import train_rows, training_data_hash

SAMPLE_TABLE = Path(__file__).parent / "data" / "routerbench_0shot_subset.csv.gz"
"""The bundled RouterBench sample (package data; provenance in ``data/PROVENANCE.md``)."""
DEMO_EMBEDDER = "minilm-static"
DEMO_ROUTER = "router-knn"
DEMO_WILLINGNESS_TO_PAY = 0.05  # $ per unit of quality: leave gpt-4 when a model ≥ 10× cheaper is close
DEMO_PLANS = "router-plans"
DEMO_PREDICTOR = "knn"
DEMO_TRAINING = "train_selected: 5-fold CV inside the train split, Zero guard"  # part of the cache key
DEMO_CASCADE = "router-cascade"
DEMO_CASCADE_BUDGET_USD = 0.01


def demo_config(cache_dir: Path, *, progress: bool = False) -> Path:
    """Build (once) the demo artifacts and write the demo settings; returns the settings file."""
    directory = cache_dir / "demo"
    table = load_routerbench_table(SAMPLE_TABLE, with_responses=False)  # answers only to build plans
    embedder = make_embedder(DEMO_EMBEDDER, cache_dir)  # ≈ 0.2 s: its identity keys the artifacts
    artifact = _artifact(directory, "knn", table, lambda: table, embedder, progress)
    plans = _artifact(directory, "plans-knn", table, _plan_outcomes, embedder, progress)
    settings: dict[str, object] = {
        "backends": [
            {"name": model, "kind": "replay", "replay_table": str(SAMPLE_TABLE)} for model in table.models
        ],
        "routers": [
            {
                "name": DEMO_ROUTER,
                "kind": "knn",
                "artifact": str(artifact),
                "willingness_to_pay": DEMO_WILLINGNESS_TO_PAY,
            },
            {
                "name": DEMO_PLANS,
                "kind": "plan",
                "artifact": str(plans),
                "willingness_to_pay": DEMO_WILLINGNESS_TO_PAY,
                "fallback": {"kind": "heuristics"},
            },
            {
                "name": DEMO_CASCADE,
                "kind": "cascade",
                "artifact": str(artifact),
                "judge": {"kind": "heuristics"},
                "budget_usd": DEMO_CASCADE_BUDGET_USD,
            },
        ],
        "default_router": DEMO_ROUTER,
        "embedder": DEMO_EMBEDDER,
        "cache_dir": str(cache_dir),
    }
    path = directory / "routeyard.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def _artifact(
    directory: Path,
    name: str,
    table: OutcomeTable,
    outcomes: Callable[[], OutcomeTable | PlanTable],
    embedder: Embedder,
    progress: bool,
) -> Path:
    """The artifact ``name`` trained as ``routeyard train`` does on ``outcomes()`` (the sample's model or
    plan table), built unless the cache holds one keyed by the sample's train rows and how it is made."""
    rows, _split = train_rows(table)
    key = json.dumps(
        [training_data_hash(table, rows), embedder.identity, DEMO_TRAINING, name], sort_keys=True
    )
    artifact = directory / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if not (artifact / "manifest.json").exists():
        print(f"building the demo {name} artifact from {len(rows)} RouterBench prompts (first start only)…")
        result = train_selected(outcomes(), embedder, DEMO_PREDICTOR, progress=progress)
        save_artifact(result.trained.predictor, result.trained.manifest, artifact)
    return artifact


def _plan_outcomes() -> PlanTable:
    """The sample's plan table: every model alone and the agreement pairs picked on its train split
    (the one place the demo reads the recorded answers)."""
    table = load_routerbench_table(SAMPLE_TABLE, with_responses=True)
    return plan_table(table, candidate_plans(table, train_rows(table)[0]))
