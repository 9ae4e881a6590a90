"""``routeyard export-onnx``: export the sentence-transformers embedder to ONNX once, ahead of time.

The export is one step of ≈ 10 s on 2 cores (loading torch and tracing the model); on a terminal a bar
shows it running, with the time it has taken, until it ends.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

TICK_SECONDS = 0.5


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
    with step_progress(f"export {args.model} to ONNX"):
        from routeyard.predictor.onnx_embedder import export_onnx  # torch and onnx load only for this command

        path = export_onnx(args.model, args.out)
    print(f"exported {args.model} to {path}")
    return 0


@contextmanager
def step_progress(description: str) -> Iterator[None]:
    """On a terminal, a one-step bar redrawn every :data:`TICK_SECONDS` (its elapsed time moving) while
    the block runs, complete when it ends; nothing elsewhere."""
    with tqdm(total=1, desc=description, unit="step", disable=not sys.stderr.isatty(), leave=False) as bar:
        done = threading.Event()
        ticker = threading.Thread(target=_tick, args=(bar, done), daemon=True)
        ticker.start()
        try:
            yield
            bar.update(1)
        finally:
            done.set()
            ticker.join()


def _tick(bar: tqdm[None], done: threading.Event) -> None:
    while not done.wait(TICK_SECONDS):  # ends when the step does
        bar.refresh()
