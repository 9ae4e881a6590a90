import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.synthetic import DATASETS, FULL_SIZE, MODELS, dataset_sizes, generate_synthetic_table

MODEL_NAMES = (
    "gpt-4-1106-preview",
    "gpt-3.5-turbo-1106",
    "claude-v2",
    "claude-v1",
    "claude-instant-v1",
    "meta/llama-2-70b-chat",
    "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
    "meta/code-llama-instruct-34b-chat",
    "WizardLM/WizardLM-13B-V1.2",
    "mistralai/mistral-7b-chat",
)
GPT4, MISTRAL7B = 0, 10


@pytest.fixture(scope="module")
def table():
    return generate_synthetic_table(seed=0)


# $ per 1M input / output tokens, in MODEL_NAMES order (docs/architecture.md §7, "Data at hand").
PRICES = [(10, 30), (1, 2), (8, 24), (8, 24), (0.8, 2.4), (0.9, 0.9), (0.6, 0.6), (0.8, 0.8)]
PRICES += [(0.776, 0.776), (0.3, 0.3), (0.2, 0.2)]


def test_full_scale_has_routerbench_shape_and_dataset_mix(table):
    assert table.models == MODEL_NAMES
    assert [(m.price_in, m.price_out) for m in MODELS] == PRICES
    assert (table.n_prompts, table.n_models) == (FULL_SIZE, 11)
    sizes = {d: len(table.rows_of(d)) for d in table.dataset_names}
    assert sizes["hellaswag"] == 10_042
    assert sizes["grade-school-math"] == 7_450
    assert sizes["arc-challenge"] == 1_470
    assert sizes["winogrande"] == 1_267
    assert sizes["mt-bench"] == 80
    assert 13_500 <= sizes["mmlu"] <= 14_500
    assert 400 <= sizes["mbpp"] <= 460
    assert sum(sizes.values()) == FULL_SIZE
    assert sizes == dataset_sizes(FULL_SIZE)


def test_sample_ids_name_the_eval_and_mmlu_spans_57_subjects(table):
    assert table.sample_ids[0] == "hellaswag.synthetic.0"
    assert all(re.fullmatch(r"[a-z0-9-]+\.synthetic\.\d+", s) for s in table.sample_ids)
    evals = np.array([s.split(".")[0] for s in table.sample_ids])
    mmlu = table.rows_of("mmlu")
    assert all(e.startswith("mmlu-") for e in evals[mmlu])
    assert len(set(evals[mmlu])) == 57
    assert "mmlu-anatomy" in set(evals[mmlu])
    others = np.setdiff1d(np.arange(table.n_prompts), mmlu)
    np.testing.assert_array_equal(evals[others], table.datasets[others])


def test_is_a_complete_valid_outcome_table(table):
    assert len(np.unique(table.sample_ids)) == table.n_prompts
    assert not table.missing.any()
    assert ((table.quality >= 0.0) & (table.quality <= 1.0)).all()
    assert (table.cost > 0.0).all()
    assert table.responses is None
    assert all(isinstance(p, tuple) and p and all(isinstance(t, str) and t for t in p) for p in table.prompts)
    assert all(len(p) == 2 for p in table.prompts[table.rows_of("mt-bench")])


@given(st.integers(min_value=len(DATASETS), max_value=3 * FULL_SIZE))
def test_sizes_scale_proportionally_and_keep_every_dataset(n):
    sizes = np.array(list(dataset_sizes(n).values()))
    exact = n * np.array([d.size for d in DATASETS]) / FULL_SIZE
    assert sizes.sum() == n
    assert (sizes >= 1).all()
    # Once even mt-bench's share is a whole row, rounding is the only deviation.
    tolerance = 1.0 if exact.min() >= 1.0 else len(DATASETS)
    assert np.abs(sizes - exact).max() < tolerance


def test_small_tables_follow_the_scaled_sizes():
    small = generate_synthetic_table(seed=5, n_prompts=200)
    assert small.n_prompts == 200
    assert {d: len(small.rows_of(d)) for d in small.dataset_names} == dataset_sizes(200)
    assert len(generate_synthetic_table(n_prompts=len(DATASETS)).dataset_names) == len(DATASETS)


def test_too_few_prompts_for_every_dataset_is_an_error():
    with pytest.raises(ValueError, match="at least 8"):
        generate_synthetic_table(n_prompts=7)


def test_same_seed_same_table_other_seed_other_table():
    a, b = generate_synthetic_table(seed=1, n_prompts=2000), generate_synthetic_table(seed=1, n_prompts=2000)
    for name in ("sample_ids", "datasets", "prompts", "quality", "cost"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = generate_synthetic_table(seed=2, n_prompts=2000)
    assert not np.array_equal(a.quality, c.quality)
    assert not np.array_equal(a.cost, c.cost)
    assert not np.array_equal(a.prompts, c.prompts)


def test_responses_are_short_consistent_and_change_nothing_else():
    plain = generate_synthetic_table(seed=3, n_prompts=3000)
    full = generate_synthetic_table(seed=3, n_prompts=3000, with_responses=True)
    for name in ("sample_ids", "prompts", "quality", "cost"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(full, name))
    assert full.responses is not None and full.responses.shape == full.quality.shape
    assert all(len(r) == 1 and 0 < len(r[0]) < 80 for r in full.responses.ravel())
    for dataset in ("mmlu", "grade-school-math", "winogrande"):
        for row in full.rows_of(dataset):
            right = full.responses[row][full.quality[row] == 1.0]
            wrong = full.responses[row][full.quality[row] == 0.0]
            assert len(set(right)) <= 1 and not set(right) & set(wrong)


def test_pooled_quality_and_cost_per_model_are_on_target(table):
    quality, cost = table.quality.mean(axis=0), table.cost.mean(axis=0)
    np.testing.assert_allclose(quality, [m.quality for m in MODELS], atol=0.02)
    assert quality[GPT4] == pytest.approx(0.78, abs=0.02) and quality.argmax() == GPT4
    assert quality[MISTRAL7B] == pytest.approx(0.31, abs=0.02) and quality.argmin() == MISTRAL7B
    assert cost[GPT4] == pytest.approx(0.0033, rel=0.15) and cost.argmax() == GPT4
    assert cost[MISTRAL7B] == pytest.approx(0.00005, rel=0.2) and cost.argmin() == MISTRAL7B


def tokens(table, model, price):
    """Total tokens of a model that charges ``price`` $/1M for input and output alike."""
    return table.cost[:, MODEL_NAMES.index(model)] * 1e6 / price


def test_cost_is_whole_tokens_times_list_price(table):
    llama = tokens(table, "meta/llama-2-70b-chat", 0.9)
    np.testing.assert_allclose(llama, np.rint(llama), atol=1e-6)
    assert llama.min() >= 2


def test_output_length_depends_on_model_and_dataset(table):
    # Same input tokens for both; mistral-7b is the chattier, and code answers are long.
    chatty = tokens(table, "mistralai/mistral-7b-chat", 0.2)
    extra = chatty - tokens(table, "mistralai/mixtral-8x7b-chat", 0.6)
    assert extra.mean() > 0
    assert extra[table.rows_of("mbpp")].mean() > 10 * extra[table.rows_of("mmlu")].mean()


def test_mt_bench_scores_are_tenths_and_the_rest_binary(table):
    judged = table.quality[table.rows_of("mt-bench")]
    np.testing.assert_allclose(judged * 10, np.rint(judged * 10), atol=1e-9)
    assert len(np.unique(judged)) > 2
    others = table.quality[table.datasets != "mt-bench"]
    assert set(np.unique(others)) == {0.0, 1.0}


def test_correctness_correlates_across_models_within_a_dataset(table):
    rows = table.rows_of("mmlu")
    correlation = np.corrcoef(table.quality[rows].T)
    off_diagonal = correlation[~np.eye(table.n_models, dtype=bool)]
    assert off_diagonal.min() > 0.1
    assert np.corrcoef(table.quality[:, GPT4], table.quality[:, MISTRAL7B])[0, 1] > 0.1


def test_the_best_model_depends_on_the_dataset_so_routing_pays(table):
    best = {d: table.quality[table.rows_of(d)].mean(axis=0).argmax() for d in table.dataset_names}
    assert len(set(best.values())) >= 2
    oracle = table.quality.max(axis=1).mean()
    assert oracle > table.quality.mean(axis=0).max() + 0.1


def test_prompt_words_hint_at_difficulty(table):
    mean_quality = {
        level: table.quality[[level in p[0] for p in table.prompts]].mean() for level in ("simple", "obscure")
    }
    assert mean_quality["simple"] > mean_quality["obscure"] + 0.3


def test_main_writes_a_table_file(tmp_path):
    pytest.importorskip("routeyard.predictor.routerbench_format")
    from benchmarks.synthetic import main

    out = tmp_path / "synthetic.csv.gz"
    assert main(["--out", str(out), "--n", "100", "--seed", "4", "--responses"]) == 0
    assert out.stat().st_size > 0
