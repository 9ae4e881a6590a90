"""Fixtures the command tests share: a slice of the bundled sample and a KNN artifact trained on it."""

import pytest

from routeyard.cli.main import main
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.predictor.routerbench_format import load_routerbench_table, write_routerbench_table

CHEAP, MIDDLE, DEAR = "mistralai/mixtral-8x7b-chat", "gpt-3.5-turbo-1106", "gpt-4-1106-preview"
"""Three of the sample's models, by price."""


@pytest.fixture(scope="session")
def arc(tmp_path_factory):
    """The bundled sample's arc-challenge rows, with their recorded answers, as a RouterBench file."""
    table = load_routerbench_table(SAMPLE_TABLE)
    path = tmp_path_factory.mktemp("arc") / "arc.csv.gz"
    write_routerbench_table(table.select(table.rows_of("arc-challenge")), path)
    return path


@pytest.fixture(scope="session")
def knn(arc, tmp_path_factory):
    """A KNN artifact trained on it over the hashing embedder (every model of the sample)."""
    out = tmp_path_factory.mktemp("artifact") / "knn"
    args = ["train", "--data", str(arc), "--predictor", "knn", "--embedder", "hashing", "--no-search"]
    assert main([*args, "--out", str(out)]) == 0
    return out
