"""``routeyard export-onnx``: export the sentence-transformers embedder to ONNX once, ahead of time."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "export-onnx",
        help="export a sentence-transformers model for the ONNX Runtime embedder",
        description="Export once; `--embedder minilm-onnx` otherwise exports on first use into the cache.",
    )
    parser.add_argument(
        "--model", default="all-MiniLM-L6-v2", help="packaged model name or local sentence-transformers dir"
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for model.onnx and tokenizer")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from routeyard.predictor.onnx_embedder import export_onnx  # torch and onnx load only for this command

    path = export_onnx(args.model, args.out)
    print(f"exported {args.model} to {path}")
    return 0
