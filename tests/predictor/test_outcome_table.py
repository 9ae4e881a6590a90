from typing import Any

import numpy as np
import pytest

from routeyard.predictor.outcome_table import OutcomeTable, OutcomeTableError, prompt_turns
from routeyard.predictor.split import split_by_dataset


def table(n=10, datasets=None, **overrides):
    fields: dict[str, Any] = {
        "sample_ids": np.array([f"id{i}" for i in range(n)]),
        "datasets": np.array(datasets or ["a"] * n),
        "prompts": np.array([(f"p{i}",) for i in range(n)] + [None], dtype=object)[:-1],
        "models": ("m1", "m2"),
        "quality": np.tile([0.0, 1.0], (n, 1)),
        "missing": np.zeros((n, 2), dtype=bool),
        "cost": np.tile([0.1, 0.2], (n, 1)),
        "source": "test-table",
    }
    fields.update(overrides)
    return OutcomeTable(**fields)


def test_select_keeps_rows_in_the_order_given():
    t = table(5, datasets=["a", "b", "a", "b", "a"])
    picked = t.select(np.array([4, 0]))
    assert list(picked.sample_ids) == ["id4", "id0"] and picked.n_prompts == 2
    assert t.dataset_names == ["a", "b"] and list(t.rows_of("b")) == [1, 3]
    with pytest.raises(KeyError):
        t.rows_of("c")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quality": np.full((10, 2), 1.5)}, r"quality outside \[0, 1\]"),
        ({"cost": np.full((10, 2), -1.0)}, "negative cost"),
        ({"cost": np.full((10, 2), np.inf)}, "finite"),
        ({"sample_ids": np.array(["same"] * 10)}, "not unique"),
        ({"models": ("m1", "m1")}, "repeat"),
        ({"quality": np.zeros((10, 3))}, "quality has shape"),
    ],
)
def test_inconsistent_arrays_are_refused(overrides, message):
    with pytest.raises(OutcomeTableError, match=f"test-table: .*{message}"):
        table(**overrides)


def test_prompt_turns_accepts_text_or_turns():
    assert prompt_turns("hi") == ("hi",)
    assert prompt_turns(["a", "b"]) == ("a", "b")


def test_split_is_per_dataset_seeded_70_30_and_stable_when_data_is_added():
    datasets = ["a"] * 20 + ["b"] * 10
    t = table(30, datasets=datasets)
    splits = split_by_dataset(t)
    assert (len(splits["a"].train), len(splits["a"].test)) == (14, 6)
    assert (len(splits["b"].train), len(splits["b"].test)) == (7, 3)
    ids = np.unique(t.sample_ids[t.rows_of("a")])
    np.random.default_rng(42).shuffle(ids)
    assert set(t.sample_ids[splits["a"].train]) == set(ids[:14])
    only_a = split_by_dataset(t.select(t.rows_of("a")))
    assert set(t.sample_ids[splits["a"].test]) == set(t.sample_ids[only_a["a"].test])
    assert set(t.sample_ids[splits["a"].test]) != set(t.sample_ids[split_by_dataset(t, seed=1)["a"].test])
