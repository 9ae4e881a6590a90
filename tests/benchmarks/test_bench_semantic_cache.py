import re

import numpy as np
import pytest

from benchmarks.bench_semantic_cache import (
    MAX_LOSS,
    THRESHOLDS,
    Interval,
    ThresholdFigures,
    cached_quality,
    choose_threshold,
    main,
    simulate_arrivals,
)
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.demo.sample_prompts import reference_of
from routeyard.predictor.embedder import embedding_text
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.routerbench_format import load_routerbench_table

ROW = re.compile(r"^\| (?P<t>[\d.]+) \| (?P<hits>\d+) \(.*?\) \| [\d.]+% \| (?P<loss>[+-][\d.]+) \[")


@pytest.fixture(scope="module")
def table():
    return load_routerbench_table(SAMPLE_TABLE, with_responses=True)


@pytest.fixture(scope="module")
def texts(table):
    return [embedding_text(turns) for turns in table.prompts]


@pytest.fixture(scope="module")
def references(table):
    return [reference_of(table, row) for row in range(table.n_prompts)]


def test_report_has_every_threshold_on_train_and_the_out_file_is_what_was_printed(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ROUTEYARD_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "semantic.md"
    assert main(["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_text() == printed
    rows = [ROW.match(line) for line in printed.splitlines()]
    grid = [row for row in rows if row is not None][: len(THRESHOLDS)]
    assert [float(row["t"]) for row in grid] == list(THRESHOLDS)
    hits = [int(row["hits"]) for row in grid]
    assert hits == sorted(hits, reverse=True) and hits[0] > 1000  # a looser t never hits less
    loose = {float(row["t"]): float(row["loss"]) for row in grid}
    assert loose[0.98] > MAX_LOSS  # near neighbours in the sample are different questions
    assert "Test split at" in printed


def test_a_cached_answer_is_graded_against_the_new_prompts_reference(table, texts, references):
    wino = table.rows_of("winogrande")
    a_rows = [int(r) for r in wino if references[r] == "A"]
    b_rows = [int(r) for r in wino if references[r] == "B"]
    new, other, same = a_rows[0], b_rows[0], a_rows[1]
    cached, proxied = cached_quality(table, texts, references, new, other)
    assert not proxied
    right_for_other = table.quality[other] == 1.0  # they answered "B": wrong for the new prompt
    assert right_for_other.any() and np.all(cached[right_for_other] == 0.0)
    cached, _ = cached_quality(table, texts, references, new, same)
    np.testing.assert_array_equal(cached, table.quality[same])  # same answer letter: same grade


def test_identical_prompts_keep_the_grade_and_no_reference_is_the_worst_case(table, texts, references):
    mbpp = [int(r) for r in table.rows_of("mbpp")]
    twins = [(i, j) for i in mbpp for j in mbpp if i < j and texts[i] == texts[j]]
    assert twins
    new, old = twins[0]
    cached, proxied = cached_quality(table, texts, references, new, old)
    np.testing.assert_array_equal(cached, table.quality[old])
    assert not proxied
    different = next(r for r in mbpp if texts[r] != texts[new])
    cached, proxied = cached_quality(table, texts, references, new, different)
    assert proxied and not cached.any()


def test_each_arrival_is_served_by_its_nearest_earlier_prompt(table, texts, references):
    rows = table.rows_of("winogrande")[:60]
    vectors = HashingEmbedder().embed(texts)
    arrivals = simulate_arrivals(table, texts, vectors, references, rows, seed=3)
    assert sorted(arrivals.rows) == sorted(rows) and arrivals.neighbours[0] == -1
    for k in range(1, len(rows)):
        earlier = arrivals.rows[:k]
        cosines = vectors[earlier] @ vectors[arrivals.rows[k]]
        assert arrivals.neighbours[k] in earlier
        assert arrivals.similarity[k] == pytest.approx(cosines.max(), abs=1e-6)


def _figures(threshold, hits, high_all, high_best=0.0):
    return ThresholdFigures(
        threshold=threshold,
        prompts=1000,
        hits_by_dataset={"d": hits},
        proxied=0,
        loss_all_models=Interval(0.0, -0.01, high_all),
        loss_best_model=Interval(0.0, -0.01, high_best),
    )


def test_the_choice_is_the_most_hits_within_the_loss_target_and_the_stricter_on_a_tie():
    grid = [
        _figures(0.9, 500, 0.2),  # too lossy
        _figures(0.95, 300, 0.009, high_best=0.05),  # the best model loses too much
        _figures(0.98, 120, 0.01),
        _figures(0.99, 120, 0.0),
        _figures(0.999, 10, 0.0),  # too few hits to bound the loss
    ]
    assert choose_threshold(grid, min_hits=20) == 0.99
    assert choose_threshold(grid[:2] + grid[4:], min_hits=20) is None
