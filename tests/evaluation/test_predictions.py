import json

import numpy as np
import pandas as pd
import pytest

from routeyard.evaluation.predictions import PredictionsError, load_predictions
from routeyard.predictor.outcome_table import OutcomeTable

MODELS = ("cheap", "dear")


def table():
    prompts = np.empty(2, dtype=object)
    prompts[:] = [("a",), ("b",)]
    return OutcomeTable(
        sample_ids=np.array(["s0", "s1"]),
        datasets=np.array(["d", "d"]),
        prompts=prompts,
        models=MODELS,
        quality=np.zeros((2, 2)),
        missing=np.zeros((2, 2), dtype=bool),
        cost=np.ones((2, 2)),
    )


def rows():
    return [
        {"sample_id": s, "model": m, "predicted_quality": 0.1 * i, "predicted_cost": 0.01 * i}
        for i, (s, m) in enumerate([("s0", "cheap"), ("s0", "dear"), ("s1", "cheap"), ("s1", "dear")])
    ] + [{"sample_id": "other", "model": "cheap", "predicted_quality": 1.0, "predicted_cost": 1.0}]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_predictions_align_to_the_table_in_every_format(tmp_path, suffix):
    path = tmp_path / f"p{suffix}"
    frame = pd.DataFrame(rows())
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        path.write_text("\n".join(json.dumps(r) for r in rows()))
    predictions = load_predictions(path, table())
    np.testing.assert_allclose(predictions.quality, [[0.0, 0.1], [0.2, 0.3]])
    np.testing.assert_allclose(predictions.cost, [[0.0, 0.01], [0.02, 0.03]])
    assert predictions.name == "p"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns="predicted_cost"), "missing columns"),
        (lambda f: f.iloc[1:], "have no predicted_quality"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "more than once"),
        (lambda f: f.assign(predicted_quality=["x", 1, 1, 1, 1]), "row 0 is not a number"),
    ],
)
def test_bad_predictions_are_clear_errors(tmp_path, mutate, message):
    path = tmp_path / "p.csv"
    mutate(pd.DataFrame(rows())).to_csv(path, index=False)
    with pytest.raises(PredictionsError, match=message):
        load_predictions(path, table())


def test_unknown_extension(tmp_path):
    with pytest.raises(PredictionsError, match="unsupported extension"):
        load_predictions(tmp_path / "p.xlsx", table())
