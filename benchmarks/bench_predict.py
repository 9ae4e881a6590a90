"""Benchmark: what a learned router costs per request, and what training costs (issue 3).

1. Predict latency for ONE ~30-token prompt against a 36,497-row KNN index (384-d, the tuned settings
   k = 40, prior_k = 400): embed + FAISS search + quality/cost prediction, torch and ONNX Runtime
   embedders, p50 and p99 over varied prompts after a warm-up. Target: p50 ≤ 10 ms with ONNX. The index
   holds the full synthetic table's labels; its vectors are the table's prompts embedded with ONNX
   (``--random-index`` uses random unit vectors instead: exact search costs the same whatever the vectors).
2. Batched embedding throughput of short prompts (64 per call), torch and ONNX. Target: ≥ 200 prompts/s.
3. ``train`` on the full synthetic 36,497 × 11 table: embedding every prompt (ONNX, batched), then
   fitting KNN (building the index) and the MLP (early-stopped).

    python -m benchmarks.bench_predict [--queries 300] [--random-index] [--skip-train]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.load_prompts import SUBJECTS
from benchmarks.machine import describe_machine
from benchmarks.synthetic import FULL_SIZE, generate_synthetic_table
from routeyard.arrays import Vectors
from routeyard.predictor.embedder import Embedder, normalise_rows
from routeyard.predictor.kinds.knn import DEFAULT_PARAMETERS, KnnPredictor
from routeyard.predictor.kinds.mlp import MlpPredictor
from routeyard.predictor.onnx_embedder import OnnxEmbedder
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.sentence_embedder import SentenceTransformerEmbedder
from routeyard.predictor.training import embed_prompts


def short_prompts(n: int) -> list[str]:
    """n varied prompts of about 30 tokens each."""
    return [
        f"Explain {SUBJECTS[i % len(SUBJECTS)]} to a curious twelve-year-old in three short sentences, "
        f"with one concrete example and no jargon (question {i})."
        for i in range(n)
    ]


def predict_latency(embedder: Embedder, knn: KnnPredictor, prompts: list[str]) -> tuple[float, float]:
    """p50 and p99 in ms of embed + search + predict for one prompt at a time."""
    for prompt in prompts[:20]:
        knn.predict(embedder.embed([prompt]))
    times = []
    for prompt in prompts:
        start = time.perf_counter()
        knn.predict(embedder.embed([prompt]))
        times.append(time.perf_counter() - start)
    p50, p99 = np.percentile(np.array(times) * 1000.0, [50, 99])
    return float(p50), float(p99)


def index_vectors(table: OutcomeTable, onnx: Embedder, random_index: bool) -> tuple[Vectors, float]:
    if random_index:
        rng = np.random.default_rng(0)
        return normalise_rows(rng.normal(size=(table.n_prompts, onnx.dimension))), 0.0
    start = time.perf_counter()
    vectors = embed_prompts(onnx, table.prompts)
    return vectors, time.perf_counter() - start


def embedding_throughput(embedder: Embedder, prompts: list[str]) -> float:
    """Short prompts per second, embedded in batches of 64 after a warm-up batch."""
    embedder.embed(prompts[:64])
    start = time.perf_counter()
    for begin in range(0, len(prompts), 64):
        embedder.embed(prompts[begin : begin + 64])
    return len(prompts) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--queries", type=int, default=300, help="single-prompt queries per embedder")
    parser.add_argument("--random-index", action="store_true", help="index random vectors (skips train)")
    parser.add_argument("--skip-train", action="store_true", help="measure latency and throughput only")
    args = parser.parse_args(argv)
    print(f"machine: {describe_machine()}, torch {torch.__version__}")

    table = generate_synthetic_table(seed=0, n_prompts=FULL_SIZE)
    prompts = short_prompts(max(args.queries, 640))
    with tempfile.TemporaryDirectory() as tmp:
        onnx = OnnxEmbedder(Path(tmp) / "onnx")
        embedders: list[tuple[str, Embedder]] = [("onnx", onnx), ("torch", SentenceTransformerEmbedder())]
        vectors, embed_s = index_vectors(table, onnx, args.random_index)
        start = time.perf_counter()
        knn = KnnPredictor(
            vectors, table.quality, table.missing, table.cost, table.models, **DEFAULT_PARAMETERS
        )
        knn_fit_s = time.perf_counter() - start
        print(f"index: {table.n_prompts} × {vectors.shape[1]}, {DEFAULT_PARAMETERS}")
        for name, embedder in embedders:
            p50, p99 = predict_latency(embedder, knn, prompts[: args.queries])
            print(f"  predict one prompt ({name}): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        for name, embedder in embedders:
            rate = embedding_throughput(embedder, prompts)
            print(f"  embed short prompts in batches of 64 ({name}): {rate:.0f} prompts/s")
    if args.random_index or args.skip_train:
        return 0
    print(f"train on {table.n_prompts} × {table.n_models}:")
    print(
        f"  embed every prompt (onnx, batched): {embed_s:.1f} s ({table.n_prompts / embed_s:.0f} prompts/s)"
    )
    print(f"  fit knn (index build): {knn_fit_s:.2f} s")
    start = time.perf_counter()
    mlp = MlpPredictor.train(vectors, table.quality, table.missing, table.cost, table.models)
    mlp_s = time.perf_counter() - start
    print(f"  fit mlp: {mlp_s:.1f} s ({mlp.hyperparameters['epochs_run']} epochs, early-stopped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
