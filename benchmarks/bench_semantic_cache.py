"""Benchmark: the semantic response cache's similarity threshold (issue 18): hit rate against quality lost.

A request whose prompt's routing embedding has cosine similarity ≥ t to a cached prompt's is answered with
the cached answer (``routeyard.gateway.response_cache``). This script measures, on the bundled RouterBench
sample, what each t in a grid would do, and chooses the default on the train split alone:

- **Split**: the replay harness's (``routeyard.predictor.split``, seed 42, 70/30 per dataset); each split
  is a cache of its own. Nothing is chosen by looking at the test split.
- **Arrivals**: a split's prompts arrive in a seeded random order (datasets mixed, as one gateway would
  see them); each looks up the *earlier* prompt nearest by cosine of the embedder's vectors of
  ``embedding_text(turns)`` (the gateway's routing text). At threshold t it is a hit when that cosine ≥ t.
- **Loss of a hit**, per model m: the quality of m's own recorded answer to the new prompt minus the
  quality of m's recorded answer to the neighbour, graded *for the new prompt*: by the new prompt's
  reference (``routeyard.demo.sample_prompts.reference_of``: the one final answer of its responses
  graded correct) with the gateway's reference grader (``routeyard.gateway.collection.grading
  .matches_reference``), which agrees with the table's own grades on every graded answer of the sample.
  An identical prompt text keeps the neighbour's recorded grade. A new prompt without a recoverable
  reference (every mbpp prompt: code is graded by tests the table does not hold; the few arc-challenge
  prompts no model answered right or whose right answers disagree) gives the cached answer quality 0:
  the worst case, so the loss is an upper bound there.
- **Figures per t**: hits and hit rate (hits / prompts of the split), the mean loss per hit over all
  models (each hit answered by each model: a router-agnostic figure) and for the best model on the train
  split (the one the Zero router and the demo's KNN router send most prompts to), each with a 95 %
  percentile bootstrap interval over the hits.
- **Choice**: among the t with at least ``--min-hits`` train hits whose two upper bounds are ≤ 1 point
  (0.01 of quality), the one with the largest train hit rate; ties go to the larger (stricter) t. The
  chosen t's hit rate and loss are then measured on the test split.

    python -m benchmarks.bench_semantic_cache [--embedder minilm-static] [--seed 0] [--out FILE]

Vectors come from the embedder's on-disk cache (``$ROUTEYARD_CACHE_DIR``, default ``~/.cache/routeyard``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.machine import describe_machine
from routeyard.arrays import BoolArray, FloatArray, IndexArray, Vectors
from routeyard.cli.embedders import DEFAULT_EMBEDDER, EMBEDDERS, embedder_named
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.demo.sample_prompts import reference_of
from routeyard.gateway.collection.grading import matches_reference
from routeyard.predictor.embedder import embedding_text, normalise_rows
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.predictor.split import DEFAULT_SEED, split_by_dataset

THRESHOLDS = (0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999, 0.99999, 1.0)
MAX_LOSS = 0.01  # 1 point of quality on the 0–1 scale: the target for a cached answer
MIN_HITS = 20  # fewer train hits than this make the bootstrap bound meaningless: such a t is not chosen
BOOTSTRAP_REPLICATES = 2000


@dataclass(frozen=True)
class Arrivals:
    """One split's prompts in arrival order, each with its nearest earlier prompt.

    ``rows`` are table rows in arrival order; ``neighbours[k]`` is the table row of the earlier prompt
    nearest to ``rows[k]`` (−1 for the first) and ``similarity[k]`` their cosine (−inf for the first);
    ``losses[k, m]`` is what model m loses on ``rows[k]`` when the neighbour's answer is served (0 for
    the first); ``proxied[k]`` is true when that cached answer was graded by the worst-case proxy.
    """

    rows: IndexArray
    neighbours: IndexArray
    similarity: FloatArray
    losses: FloatArray
    proxied: BoolArray


@dataclass(frozen=True)
class Interval:
    """A mean and its 95 % bootstrap interval (NaN without data)."""

    mean: float
    low: float
    high: float

    def text(self) -> str:
        """``+0.0123 [−0.0040, +0.0290]``, or ``—`` without data."""
        if np.isnan(self.mean):
            return "—"
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


@dataclass(frozen=True)
class ThresholdFigures:
    """What threshold ``threshold`` does on one split (see the module docstring)."""

    threshold: float
    prompts: int
    hits_by_dataset: dict[str, int]
    proxied: int
    loss_all_models: Interval
    loss_best_model: Interval

    @property
    def hits(self) -> int:
        """Hits over every dataset."""
        return sum(self.hits_by_dataset.values())

    @property
    def hit_rate(self) -> float:
        """Hits / prompts of the split."""
        return self.hits / self.prompts

    def within_target(self, min_hits: int) -> bool:
        """Whether it has ``min_hits`` hits and both loss upper bounds are ≤ :data:`MAX_LOSS`."""
        bounds = (self.loss_all_models.high, self.loss_best_model.high)
        return self.hits >= min_hits and all(bound <= MAX_LOSS for bound in bounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=SAMPLE_TABLE, help="a RouterBench table with responses")
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER, choices=EMBEDDERS)
    parser.add_argument("--seed", type=int, default=0, help="seeds the arrival order and the bootstrap")
    parser.add_argument("--min-hits", type=int, default=MIN_HITS, help="train hits a chosen t needs")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    report = semantic_cache_report(args.data, args.embedder, seed=args.seed, min_hits=args.min_hits)
    print(report)
    if args.out is not None:
        args.out.write_text(report + "\n")
    return 0


def semantic_cache_report(data: Path, embedder: str, *, seed: int, min_hits: int) -> str:
    """The markdown report (grid on train, the choice, its test figures) for the table at ``data``."""
    table = load_routerbench_table(data, with_responses=True)
    texts = [embedding_text(turns) for turns in table.prompts]
    vectors = normalise_rows(np.asarray(embedder_named(embedder).embed(texts)))
    references = [reference_of(table, row) for row in range(table.n_prompts)]
    splits = split_by_dataset(table, seed=DEFAULT_SEED)
    train = np.sort(np.concatenate([split.train for split in splits.values()]))
    test = np.sort(np.concatenate([split.test for split in splits.values()]))
    best = int(np.argmax(table.quality[train].mean(axis=0)))
    train_arrivals = simulate_arrivals(table, texts, vectors, references, train, seed)
    test_arrivals = simulate_arrivals(table, texts, vectors, references, test, seed)
    grid = [threshold_figures(table, train_arrivals, t, best, seed) for t in THRESHOLDS]
    chosen = choose_threshold(grid, min_hits)
    tested = threshold_figures(table, test_arrivals, chosen or THRESHOLDS[-1], best, seed)
    return render(table, embedder, seed, best, grid, chosen, tested, min_hits)


def simulate_arrivals(
    table: OutcomeTable,
    texts: Sequence[str],
    vectors: Vectors,
    references: Sequence[str | None],
    rows: IndexArray,
    seed: int,
) -> Arrivals:
    """``rows`` in a seeded random order, each with its nearest earlier prompt and the losses of serving
    that prompt's answers (see :class:`Arrivals`)."""
    order = rows[np.random.default_rng(seed).permutation(len(rows))]
    similarity = vectors[order] @ vectors[order].T
    similarity[np.triu_indices(len(order))] = -np.inf  # only earlier arrivals are in the cache
    nearest = np.argmax(similarity, axis=1)
    best = similarity[np.arange(len(order)), nearest].astype(np.float64)
    neighbours = np.where(np.isfinite(best), order[nearest], -1)
    losses = np.zeros((len(order), table.n_models))
    proxied = np.zeros(len(order), dtype=bool)
    for k in range(1, len(order)):
        new, old = int(order[k]), int(neighbours[k])
        cached, proxied[k] = cached_quality(table, texts, references, new, old)
        losses[k] = table.quality[new] - cached
    return Arrivals(order, neighbours, best, losses, proxied)


def cached_quality(
    table: OutcomeTable, texts: Sequence[str], references: Sequence[str | None], new: int, old: int
) -> tuple[FloatArray, bool]:
    """Every model's quality on prompt ``new`` when answering with its recorded answer to prompt ``old``,
    and whether that is the worst-case proxy (quality 0: ``new`` has no recoverable reference)."""
    assert table.responses is not None
    if texts[new] == texts[old]:
        return table.quality[old].copy(), False
    reference = references[new]
    if reference is None:
        return np.zeros(table.n_models), True
    graded = [
        1.0 if response and matches_reference(response[-1], reference) else 0.0
        for response in table.responses[old]
    ]
    return np.array(graded), False


def threshold_figures(
    table: OutcomeTable, arrivals: Arrivals, threshold: float, best: int, seed: int
) -> ThresholdFigures:
    """Hits and losses of ``threshold`` on one split's arrivals (model ``best`` for the best-model loss)."""
    hit = arrivals.similarity >= threshold
    datasets = table.datasets[arrivals.rows[hit]]
    hits_by_dataset = {name: int(np.sum(datasets == name)) for name in table.dataset_names}
    losses = arrivals.losses[hit]
    rng = np.random.default_rng(seed)
    return ThresholdFigures(
        threshold=threshold,
        prompts=len(arrivals.rows),
        hits_by_dataset=hits_by_dataset,
        proxied=int(np.sum(arrivals.proxied[hit])),
        loss_all_models=bootstrap_mean(losses.mean(axis=1), rng),
        loss_best_model=bootstrap_mean(losses[:, best], rng),
    )


def bootstrap_mean(values: FloatArray, rng: np.random.Generator) -> Interval:
    """The mean of ``values`` with its 95 % percentile bootstrap interval (NaN for no values)."""
    if len(values) == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    draws = rng.integers(0, len(values), size=(BOOTSTRAP_REPLICATES, len(values)))
    means = values[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(values.mean()), float(low), float(high))


def choose_threshold(grid: Sequence[ThresholdFigures], min_hits: int) -> float | None:
    """The t of largest train hit rate within the loss target (ties: the larger t), or None."""
    eligible = [figures for figures in grid if figures.within_target(min_hits)]
    if not eligible:
        return None
    return max(eligible, key=lambda figures: (figures.hits, figures.threshold)).threshold


def render(
    table: OutcomeTable,
    embedder: str,
    seed: int,
    best: int,
    grid: Sequence[ThresholdFigures],
    chosen: float | None,
    tested: ThresholdFigures,
    min_hits: int,
) -> str:
    """The markdown report: setting, the train grid, the choice and ``tested``, its test figures (without a
    choice: the strictest t's, for information)."""
    names = " / ".join(table.dataset_names)
    lines = [
        f"Semantic cache threshold on {Path(table.source).name}: embedder `{embedder}`, arrival seed {seed}, "
        f"split seed {DEFAULT_SEED}; machine: {describe_machine()}.",
        f"Loss = quality of the model's own answer − quality of the cached (neighbour's) answer graded for "
        f"the new prompt, per hit; best model on train: {table.models[best]}. 95 % bootstrap intervals.",
        "",
        f"| t | train hits ({names}) | hit rate | loss/hit, mean of {table.n_models} models | "
        f"loss/hit, {table.models[best]} | hits graded by the worst-case proxy |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [_row(figures) for figures in grid]
    lines.append("")
    if chosen is None:
        lines.append(
            f"**No t chosen**: no t in the grid has ≥ {min_hits} train hits with both loss upper bounds "
            f"≤ {MAX_LOSS:g}. Test split at the strictest t, for information only:"
        )
    else:
        lines.append(f"Chosen on train: **t = {chosen:g}**. Test split at that t:")
    lines += ["", lines[3].replace("train hits", "test hits"), lines[4], _row(tested)]
    return "\n".join(lines)


def _row(figures: ThresholdFigures) -> str:
    counts = " / ".join(str(count) for count in figures.hits_by_dataset.values())
    return (
        f"| {figures.threshold:g} | {figures.hits} ({counts}) | {figures.hit_rate:.2%} | "
        f"{figures.loss_all_models.text()} | {figures.loss_best_model.text()} | {figures.proxied} |"
    )


if __name__ == "__main__":
    sys.exit(main())
