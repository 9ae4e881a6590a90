"""The embedded default gateway: what ``routeyard serve`` runs with no ``--config``.

Eleven replay backends, one per RouterBench model of the bundled sample, answer with the model's recorded
responses and cost. Router ``router-knn`` (also ``auto``) routes with a KNN artifact trained on the
sample's train split with the static MiniLM embedder (``minilm-static``, the default) as ``routeyard
train`` trains (hyperparameters chosen by cross-validation inside the train split, a Zero guard where
it loses). Router ``router-plans`` chooses per prompt between one model and an agreement pair (two
cheap models called together, the best model when they disagree) with a KNN artifact trained on the
sample's plan outcomes. Both ship prebuilt as package data (``routeyard.demo.artifacts``,
``python -m routeyard.demo.build_artifacts``), so the first start loads them at once; they are keyed by
a hash of the training data, the embedder's identity (a new distillation is a new key) and how they are
trained, and built into the cache directory on first start (≈ 20 s on 2 cores) only when no prebuilt
one matches. Router ``router-cascade`` walks the same backends from the cheapest
predicted, escalating past answers the heuristic checks reject (empty, refusal, truncated) within
$0.01 per request. Usage is logged in memory. The settings are written to ``demo/routeyard.yaml`` in
the cache directory, so every uvicorn worker loads the same thing.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from routeyard.demo.artifacts import MODEL_ARTIFACT, PLAN_ARTIFACT, SAMPLE_TABLE, demo_artifact, load_sample
from routeyard.predictor.embedder_choice import make_embedder

__all__ = ["DEMO_CASCADE", "DEMO_EMBEDDER", "DEMO_PLANS", "DEMO_ROUTER", "SAMPLE_TABLE", "demo_config"]
DEMO_EMBEDDER = "minilm-static"
DEMO_ROUTER = "router-knn"
DEMO_WILLINGNESS_TO_PAY = 0.05  # $ per unit of quality: leave gpt-4 when a model ≥ 10× cheaper is close
DEMO_PLANS = "router-plans"
DEMO_CASCADE = "router-cascade"
DEMO_CASCADE_BUDGET_USD = 0.01


def demo_config(cache_dir: Path, *, progress: bool = False) -> Path:
    """Write the demo settings (``cache_dir/demo/routeyard.yaml``) and return their path; the artifacts
    are the prebuilt ones, or are built once into ``cache_dir/demo`` when none matches (module docstring)."""
    directory = cache_dir / "demo"
    directory.mkdir(parents=True, exist_ok=True)
    table = load_sample()  # answers only to build plans
    embedder = make_embedder(DEMO_EMBEDDER, cache_dir)  # ≈ 0.2 s: its identity keys the artifacts
    artifact = demo_artifact(MODEL_ARTIFACT, table, embedder, directory, progress=progress)
    plans = demo_artifact(PLAN_ARTIFACT, table, embedder, directory, progress=progress)
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
