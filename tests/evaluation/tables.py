"""Small synthetic outcome tables of other shapes than RouterBench's: any number of models, graded or
binary quality, equal or spread costs, recorded multiple-choice answers."""

import numpy as np

from routeyard.predictor.outcome_table import OutcomeTable

LETTERS = "ABCD"


def synthetic_table(
    *,
    models: int = 3,
    per_dataset: int = 60,
    datasets: tuple[str, ...] = ("alpha", "beta"),
    graded: bool = False,
    equal_cost: float | None = None,
    seed: int = 0,
) -> OutcomeTable:
    """Model j has skill rising with j and costs ~10^(j / 2) × $0.0001 per prompt (every model exactly
    ``equal_cost`` on every prompt when given). Binary quality comes with a recorded answer per cell: the
    right letter (A) when correct, a wrong one otherwise; graded quality (judge-like scores in [0, 1])
    comes without answers."""
    rng = np.random.default_rng(seed)
    n = per_dataset * len(datasets)
    skill = np.linspace(0.3, 0.9, models)
    if graded:
        quality = np.clip(rng.normal(skill, 0.2, (n, models)), 0.0, 1.0)
    else:
        quality = (rng.random((n, models)) < skill).astype(float)
    if equal_cost is not None:
        cost = np.full((n, models), equal_cost)
    else:
        cost = 1e-4 * 10 ** (np.arange(models) / 2) * rng.uniform(0.5, 1.5, (n, models))
    names = tuple(f"m{j:02d}" for j in range(models))
    return OutcomeTable(
        sample_ids=np.array([f"s{i}" for i in range(n)]),
        datasets=np.repeat(np.array(datasets), per_dataset),
        prompts=_objects([("Which letter?",)] * n),
        models=names,
        quality=quality,
        missing=np.zeros((n, models), dtype=bool),
        cost=cost,
        responses=None if graded else _answers(quality, rng),
    )


def _answers(quality, rng):
    wrong = rng.choice(list(LETTERS[1:]), size=quality.shape)
    letters = np.where(quality == 1.0, "A", wrong)
    return _objects([[(f"The answer is {letter}",) for letter in row] for row in letters], quality.shape)


def _objects(items, shape=None):
    array = np.empty(shape or (len(items),), dtype=object)
    if shape is None:
        for i, item in enumerate(items):
            array[i] = item
    else:
        for index in np.ndindex(shape):
            array[index] = items[index[0]][index[1]]
    return array
