"""``routeyard distill-embedder``: distil all-MiniLM-L6-v2 into a static embedder with model2vec.

routeyard ships one distillation (``minilm-static``); this command makes another, e.g. with more
dimensions or from a local sentence-transformers model. It needs the ``distill`` extra (torch,
transformers) and takes ≈ 15 s on 2 cores with a progress bar; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from routeyard.predictor.embedding_model import DEFAULT_MODEL
from routeyard.predictor.static_distillation import DEFAULT_DIMS, DEFAULT_DTYPE, DTYPES


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "distill-embedder",
        help="distil a sentence-transformers model into static token vectors (model2vec)",
        description="Writes a model2vec directory with distillation.json and PROVENANCE.md; "
        "load it with StaticEmbedder(DIR) or sentence-transformers' StaticEmbedding.from_model2vec(DIR).",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write (replaced if present)")
    parser.add_argument(
        "--dims", type=int, default=DEFAULT_DIMS, help=f"PCA dimensions kept (default {DEFAULT_DIMS})"
    )
    parser.add_argument(
        "--dtype", choices=DTYPES, default=DEFAULT_DTYPE, help=f"storage (default {DEFAULT_DTYPE})"
    )
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="packaged model name or local sentence-transformers dir"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from routeyard.predictor.static_distillation import distill_static_model

    print(f"distilling {args.model} into {args.dims} dimensions ({args.dtype})…", file=sys.stderr)
    record = distill_static_model(args.out, model=args.model, dims=args.dims, dtype=args.dtype)
    print(f"wrote {args.out} (model.safetensors sha256 {record.weights_sha256})")
    return 0
