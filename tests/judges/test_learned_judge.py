"""The learned judge: trained on recorded answers it tells good from bad, and survives a round trip."""

import asyncio
import json

import numpy as np
import pytest

from routeyard.judges.judge import Answer
from routeyard.judges.judge_training import held_out_rows, judged_cells, score_cells, score_table, train_judge
from routeyard.judges.kinds.learned import JudgeArtifactError, LearnedJudge
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.outcome_table import OutcomeTable

GOOD = "The sum is {s}, computed by adding both numbers carefully."
BAD = "Perhaps banana, I really have no idea what numbers are."


def objects(items):
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


def answers_table(n=120):
    """Two datasets of sums; two models that each answer half the prompts of each well (so neither the
    model nor the dataset alone says anything)."""
    prompts = [f"What is {i} plus {i + 3}?" for i in range(n)]
    good = np.array([[i % 2 == 0, i % 2 == 1] for i in range(n)])
    responses = np.empty((n, 2), dtype=object)
    for i in range(n):
        for j in range(2):
            responses[i, j] = (GOOD.format(s=2 * i + 3) if good[i, j] else BAD,)
    return OutcomeTable(
        sample_ids=np.array([f"s{i}" for i in range(n)]),
        datasets=np.array(["small-sums" if i % 4 < 2 else "other-sums" for i in range(n)]),
        prompts=objects([(p,) for p in prompts]),
        models=("left", "right"),
        quality=good.astype(float),
        missing=np.zeros((n, 2), dtype=bool),
        cost=np.full((n, 2), 0.001),
        responses=responses,
    )


@pytest.fixture(scope="module")
def trained():
    return train_judge(answers_table(), HashingEmbedder(), regularisation=1.0)


def test_it_tells_good_answers_from_bad_on_prompts_it_never_saw(trained):
    table = answers_table()
    scores, good = score_cells(trained, table, judged_cells(table, held_out_rows(table)))
    assert len(scores) == 2 * 36
    assert scores[good].min() > 0.5 > scores[~good].max()
    assert trained.manifest.metrics["test_split"]["roc_auc"] == 1.0
    by_dataset = trained.manifest.metrics["test_split_by_dataset"]
    assert {name: rates["n"] for name, rates in by_dataset.items()} == {"other-sums": 36, "small-sums": 36}
    assert all(
        rates["false_accept_rate"] == rates["false_reject_rate"] == 0.0 for rates in by_dataset.values()
    )
    assert trained.manifest.split["judged_answers"] == 2 * 84


def test_the_async_judge_scores_one_answer(trained):
    good = asyncio.run(trained.judge("What is 1000 plus 1003?", Answer(GOOD.format(s=2003), model="left")))
    bad = asyncio.run(trained.judge("What is 1000 plus 1003?", Answer(BAD, model="someone-else")))
    assert good.score > 0.5 > bad.score and good.confident


def test_the_artifact_round_trip_gives_identical_scores(trained, tmp_path):
    trained.save(tmp_path / "judge")
    loaded = LearnedJudge.load(tmp_path / "judge", HashingEmbedder())
    table = answers_table()
    rows = np.arange(table.n_prompts)
    np.testing.assert_array_equal(score_table(loaded, table, rows), score_table(trained, table, rows))
    manifest = json.loads((tmp_path / "judge" / "manifest.json").read_text())
    assert manifest["kind"] == "learned-judge" and manifest["models"] == ["left", "right"]


def test_a_judge_of_another_embedder_or_a_damaged_one_is_refused(trained, tmp_path):
    trained.save(tmp_path / "judge")
    with pytest.raises(JudgeArtifactError, match="trained with embedder"):
        LearnedJudge.load(tmp_path / "judge", HashingEmbedder(dimension=128))
    (tmp_path / "judge" / "weights.npz").write_bytes(b"not numpy")
    with pytest.raises(JudgeArtifactError, match=r"damaged weights\.npz"):
        LearnedJudge.load(tmp_path / "judge", HashingEmbedder())
    with pytest.raises(JudgeArtifactError, match="not a learned-judge artifact"):
        LearnedJudge.load(tmp_path / "nothing", HashingEmbedder())


def test_a_judge_of_another_format_version_is_refused(trained, tmp_path):
    trained.save(tmp_path / "judge")
    manifest_file = tmp_path / "judge" / "manifest.json"
    manifest_file.write_text(json.dumps({**json.loads(manifest_file.read_text()), "format_version": 99}))
    with pytest.raises(JudgeArtifactError, match=r"format version 99.*retrain"):
        LearnedJudge.load(tmp_path / "judge", HashingEmbedder())


def test_a_table_without_answers_or_with_one_class_cannot_train_a_judge():
    table = answers_table()
    with pytest.raises(ValueError, match="no recorded responses"):
        train_judge(OutcomeTable(**{**_fields(table), "responses": None}), HashingEmbedder())
    all_good = OutcomeTable(**{**_fields(table), "quality": np.ones((table.n_prompts, 2))})
    with pytest.raises(ValueError, match="all good or all bad"):
        train_judge(all_good, HashingEmbedder())


def _fields(table):
    names = ("sample_ids", "datasets", "prompts", "models", "quality", "missing", "cost", "responses")
    return {name: getattr(table, name) for name in names}
