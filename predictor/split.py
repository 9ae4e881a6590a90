"""The RouterBench train/test split: per dataset, seeded, by sample_id.

For each dataset (sorted by name), its sorted unique sample_ids (``numpy.unique``) are shuffled in place
by a fresh ``numpy.random.default_rng(seed)``; the first ``int(train_fraction * n)`` are train, the rest
test. Because the split is by sample_id and each dataset has its own generator, adding a dataset or
rows of another dataset never moves a prompt between train and test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routeyard.arrays import IndexArray
from routeyard.predictor.outcome_table import OutcomeTable

DEFAULT_SEED = 42
DEFAULT_TRAIN_FRACTION = 0.7


@dataclass(frozen=True)
class DatasetSplit:
    """Row indices (into the table that was split) of one dataset's train and test prompts."""

    dataset: str
    train: IndexArray
    test: IndexArray


def split_by_dataset(
    table: OutcomeTable, *, seed: int = DEFAULT_SEED, train_fraction: float = DEFAULT_TRAIN_FRACTION
) -> dict[str, DatasetSplit]:
    """Split every dataset of ``table`` into train and test rows, as the module docstring specifies.

    Returns a dict from dataset name (sorted) to its :class:`DatasetSplit`; train and test indices are
    sorted ascending. Raises ``ValueError`` when ``train_fraction`` is not in [0, 1].
    """
    if not 0.0 <= train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in [0, 1], got {train_fraction}")
    splits: dict[str, DatasetSplit] = {}
    for dataset in table.dataset_names:
        rows = table.rows_of(dataset)
        ids = np.unique(table.sample_ids[rows])
        np.random.default_rng(seed).shuffle(ids)
        train_ids = ids[: int(train_fraction * len(ids))]
        is_train = np.isin(table.sample_ids[rows], train_ids)
        splits[dataset] = DatasetSplit(dataset, train=rows[is_train], test=rows[~is_train])
    return splits
