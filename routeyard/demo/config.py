"""The embedded default gateway: what ``routeyard serve`` runs with no ``--config``.

Eleven replay backends, one per RouterBench model of the bundled sample, answer with the model's recorded
responses and cost. Router ``router-knn`` (also ``auto``) routes with a KNN artifact trained on the
sample's train split with the ONNX MiniLM embedder, built on first start (about a minute on 2 cores) and
cached under the cache directory, keyed by a hash of the training data, embedder and settings. Router
``router-cascade`` walks the same backends from the cheapest predicted, escalating past answers the
heuristic checks reject (empty, refusal, truncated) within $0.01 per request. Usage is
logged in memory. The settings are written to ``demo/routeyard.yaml`` in the cache directory, so every
uvicorn worker loads the same thing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from routeyard.predictor.artifact import save_artifact
from routeyard.predictor.embedder_choice import make_embedder
from routeyard.predictor.kinds.knn import TUNED_PARAMETERS
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.predictor.training import train_predictor, train_rows, training_data_hash

SAMPLE_TABLE = Path(__file__).parent / "data" / "routerbench_0shot_subset.csv.gz"
"""The bundled RouterBench sample (package data; provenance in ``data/PROVENANCE.md``)."""
DEMO_EMBEDDER = "minilm-onnx"
DEMO_ROUTER = "router-knn"
DEMO_WILLINGNESS_TO_PAY = 0.05  # $ per unit of quality: leave gpt-4 when a model ≥ 10× cheaper is close
DEMO_CASCADE = "router-cascade"
DEMO_CASCADE_BUDGET_USD = 0.01


def demo_config(cache_dir: Path, *, progress: bool = False) -> Path:
    """Build (once) the demo artifact and write the demo settings; returns the settings file."""
    directory = cache_dir / "demo"
    table = load_routerbench_table(SAMPLE_TABLE, with_responses=False)
    rows, _split = train_rows(table)
    key = json.dumps([training_data_hash(table, rows), DEMO_EMBEDDER, TUNED_PARAMETERS], sort_keys=True)
    artifact = directory / f"knn-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if not (artifact / "manifest.json").exists():
        print(f"building the demo KNN artifact from {len(rows)} RouterBench prompts (first start only)…")
        embedder = make_embedder(DEMO_EMBEDDER, cache_dir)
        trained = train_predictor(table, embedder, "knn", hyperparameters=TUNED_PARAMETERS, progress=progress)
        save_artifact(trained.predictor, trained.manifest, artifact)
    settings = {
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
