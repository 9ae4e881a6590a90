"""Benchmark: which embedder should route by default (issue 14)? Routing quality against speed.

On the bundled RouterBench sample, for each embedder:

- **CV AIQ**: the pooled AIQ, by 5-fold cross-validation *inside the train split*, of the KNN grid's
  winner (``routeyard.evaluation.selected_training.train_selected``: the selection record's winning
  point, mean over folds of the mean over datasets). This is what the decision reads.
- **test AIQ** (for information): the pooled AIQ on the test split of that trained KNN router
  (``wtp-knn``, Zero guard included), scored as ``routeyard replay --train knn`` scores it.
- **speed** with one compute thread, uncached: ms per text for a unique ~30-token prompt and a
  RouterBench-length one (an arc-challenge 5-shot prompt, ≈ 500 words), alone (median of single calls)
  and in a batch of 32 (median batch time / 32).

Decision rule: the default is the fastest embedder (ms alone on the short prompt) whose CV AIQ is within
0.003 of the best CV AIQ. Prompts already embedded by an embedder are read from the cache
(``$ROUTEYARD_CACHE_DIR``, default ``~/.cache/routeyard``); the timings never use it.

    python -m benchmarks.bench_embedders [--embedders minilm-static,minilm,minilm-onnx,hashing]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.machine import describe_machine
from routeyard.cli.embedders import cache_dir
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.evaluation.learned import learned_predictions
from routeyard.evaluation.replay import replay
from routeyard.evaluation.replayed_routers import ReplaySettings
from routeyard.evaluation.selection import Selection
from routeyard.predictor.embedder import Embedder, embedding_text
from routeyard.predictor.embedder_choice import EMBEDDERS, make_embedder
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.predictor.split import DEFAULT_SEED
from routeyard.predictor.static_embedder import StaticEmbedder

TOLERANCE = 0.003  # pooled CV AIQ an embedder may lose to the best and still be the default
UNTRUNCATED = "minilm-static (all tokens)"  # the static embedder without its 256-token window
SINGLE_CALLS = 30
BATCHES = 3
BATCH = 32
SHORT_WORDS = "Which of these gases do plants take in from the air to make their food during photosynthesis?"


@dataclass(frozen=True)
class EmbedderFigures:
    name: str
    cv_aiq: float
    test_aiq: float
    ms_short_alone: float
    ms_short_batch: float
    ms_long_alone: float
    ms_long_batch: float


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--embedders", default=",".join(EMBEDDERS), help="comma-separated names")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.embedders.split(",") if name.strip()]

    table = load_routerbench_table(SAMPLE_TABLE, with_responses=False)
    long_prompt = _routerbench_length_prompt(table)
    figures, zero = [], (0.0, 0.0)
    for name in [*names, *([UNTRUNCATED] if "minilm-static" in names else [])]:
        cv_aiq, test_aiq, zero = _routing_quality(table, _embedder(name, cached=True))
        speed = _speeds(_embedder(name, cached=False), long_prompt)
        figures.append(EmbedderFigures(name, cv_aiq, test_aiq, *speed))
        print(f"measured {name}", flush=True)
    print(f"machine: {describe_machine()}")
    print(
        f"table: {SAMPLE_TABLE.name}, {table.n_prompts} prompts; long prompt {len(long_prompt.split())} words"
    )
    print(_table(figures))
    print(f"Zero router (the same for every embedder): CV AIQ {zero[0]:.4f}, test AIQ {zero[1]:.4f}")
    print(_verdict(figures))
    return 0


def _embedder(name: str, *, cached: bool) -> Embedder:
    if name == UNTRUNCATED:
        return StaticEmbedder(max_tokens=None, threads=1)  # uncached: it embeds the sample in seconds
    return make_embedder(name, cache_dir(), cached=cached, threads=1)


def _routing_quality(table: OutcomeTable, embedder: Embedder) -> tuple[float, float, tuple[float, float]]:
    """Pooled AIQ of the selected KNN by CV inside the train split, of the trained KNN on the test split,
    and (CV, test) of the Zero router."""
    selections: list[Selection] = []
    predictions = learned_predictions(
        table,
        embedder,
        train={"knn": {}},
        seed=DEFAULT_SEED,
        warn=print,
        on_selection=lambda _name, selection: selections.append(selection),
    )
    (selection,) = selections
    report = replay(table, ReplaySettings(routers=("zero", "predictions")), predictions=tuple(predictions))
    (knn,) = (router for router in report.pooled.routers if router.curve.router == "wtp-knn")
    zero = (selection.zero_cv_aiq, report.pooled.zero_aiq)
    return selection.points[selection.winner_index].cv_aiq, knn.aiq, zero


def _routerbench_length_prompt(table: OutcomeTable) -> str:
    """The median-length arc-challenge prompt (5-shot, ≈ 500 words)."""
    texts = [embedding_text(turns) for turns in table.prompts[table.datasets == "arc-challenge"]]
    lengths = [len(text.split()) for text in texts]
    return texts[int(np.argsort(lengths)[len(lengths) // 2])]


def _speeds(embedder: Embedder, long_prompt: str) -> tuple[float, float, float, float]:
    """ms per text: short alone, short in a batch of 32, long alone, long in a batch of 32."""
    counter = iter(range(10**9))

    def unique(text: str) -> list[str]:  # a new number per text: no cache anywhere can answer
        return [f"{text} (case {next(counter)})"]

    embedder.embed(unique(SHORT_WORDS) + unique(long_prompt))  # warm-up: lazy initialisation
    out = []
    for text in (SHORT_WORDS, long_prompt):
        out.append(_median_ms(embedder, [unique(text) for _ in range(SINGLE_CALLS)]))
        batches = [[t for _ in range(BATCH) for t in unique(text)] for _ in range(BATCHES)]
        out.append(_median_ms(embedder, batches) / BATCH)
    return out[0], out[1], out[2], out[3]


def _median_ms(embedder: Embedder, calls: Sequence[list[str]]) -> float:
    seconds = []
    for texts in calls:
        start = time.perf_counter()
        embedder.embed(texts)
        seconds.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(seconds)


def _table(figures: list[EmbedderFigures]) -> str:
    lines = [
        "| embedder | CV AIQ (train split) | test AIQ | ms/text short alone | short batch 32 | "
        "long alone | long batch 32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f.name} | {f.cv_aiq:.4f} | {f.test_aiq:.4f} | {f.ms_short_alone:.2f} | "
            f"{f.ms_short_batch:.2f} | {f.ms_long_alone:.2f} | {f.ms_long_batch:.2f} |"
        )
    return "\n".join(lines)


def _verdict(figures: list[EmbedderFigures]) -> str:
    candidates = [f for f in figures if f.name != UNTRUNCATED]
    best = max(f.cv_aiq for f in candidates)
    eligible = [f for f in candidates if f.cv_aiq >= best - TOLERANCE]
    winner = min(eligible, key=lambda f: f.ms_short_alone)
    return (
        f"verdict: best CV AIQ {best:.4f}; within {TOLERANCE} of it: "
        f"{', '.join(f.name for f in eligible)}; fastest of those (short prompt, alone): {winner.name}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
