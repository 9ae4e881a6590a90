"""Argument helpers shared by the commands: the outcome-table and embedder options."""

from __future__ import annotations

import argparse
from pathlib import Path

from routeyard.cli.embedders import DEFAULT_EMBEDDER, EMBEDDERS
from routeyard.predictor.long_format import load_long_table
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.routerbench_format import load_routerbench_table


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data FILE`` and ``--format routerbench|long``."""
    parser.add_argument("--data", type=Path, required=True, help="outcome table file")
    parser.add_argument(
        "--format",
        choices=("routerbench", "long"),
        default="routerbench",
        help="RouterBench wide format (.pkl/.csv/.csv.gz/.parquet) or long format (.csv/.jsonl/.parquet)",
    )


def add_embedder_arguments(parser: argparse.ArgumentParser) -> None:
    """``--embedder NAME`` and ``--no-cache``."""
    parser.add_argument(
        "--embedder",
        choices=EMBEDDERS,
        default=DEFAULT_EMBEDDER,
        help=(
            f"prompt embedder (default: {DEFAULT_EMBEDDER}, static MiniLM vectors; "
            "minilm-onnx is the transformer, faster than minilm)"
        ),
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="do not read or write the on-disk embedding cache"
    )


def load_table(path: Path, data_format: str, *, with_responses: bool = False) -> OutcomeTable:
    """The outcome table at ``path`` in ``data_format``; raises ``OutcomeTableError``."""
    if data_format == "long":
        return load_long_table(path)
    return load_routerbench_table(path, with_responses=with_responses)


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())
