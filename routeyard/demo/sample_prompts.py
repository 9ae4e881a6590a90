"""Prompts with reference answers from the bundled RouterBench sample: the input of ``routeyard collect``
in the README's end-to-end example, so it runs offline.

``python -m routeyard.demo.sample_prompts --dataset arc-challenge --count 60 --out prompts.jsonl`` writes
one JSON object a line: ``sample_id``, ``dataset``, ``prompt`` (its turns as chat messages) and
``reference``. A prompt's reference is the final answer (``routeyard.judges.answer_extraction``) of the
sample's recorded responses graded correct (quality 1), when they all give the same one; a prompt with no
correct response, or whose correct ones disagree or cannot be read, is skipped. Prompts are taken in a
seeded random order, so ``--count`` is a sample, not the first rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from routeyard.demo.config import SAMPLE_TABLE
from routeyard.judges.answer_extraction import extract_answer
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.routerbench_format import load_routerbench_table


def sample_prompts(table: OutcomeTable, dataset: str, count: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """Up to ``count`` prompts of ``dataset`` with their reference (see the module docstring); raises
    ``KeyError`` for a dataset the table lacks and ``ValueError`` for a table without responses."""
    if table.responses is None:
        raise ValueError(f"{table.source}: references come from the recorded responses")
    rows = table.rows_of(dataset).copy()
    np.random.default_rng(seed).shuffle(rows)
    prompts = []
    for i in rows:
        reference = reference_of(table, int(i))
        if reference is not None:
            turns = table.prompts[i]
            messages = [{"role": "user", "content": turn} for turn in turns]
            prompts.append(
                {
                    "sample_id": str(table.sample_ids[i]),
                    "dataset": dataset,
                    "prompt": messages,
                    "reference": reference,
                }
            )
        if len(prompts) == count:
            break
    return prompts


def reference_of(table: OutcomeTable, row: int) -> str | None:
    """The one final answer of the row's responses graded correct, or None."""
    assert table.responses is not None
    answers = {
        extract_answer(response[-1])
        for response, quality in zip(table.responses[row], table.quality[row], strict=True)
        if response and quality == 1.0
    }
    answer = answers.pop() if len(answers) == 1 else None
    return answer.value if answer is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m routeyard.demo.sample_prompts", description=__doc__)
    parser.add_argument("--dataset", default="arc-challenge", help="a dataset of the bundled sample")
    parser.add_argument("--count", type=int, default=60, help="how many prompts (at most)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="the .jsonl file to write")
    args = parser.parse_args(argv)
    table = load_routerbench_table(SAMPLE_TABLE, with_responses=True)
    if args.dataset not in table.dataset_names:
        parser.error(f"--dataset: the sample has {', '.join(table.dataset_names)}")
    prompts = sample_prompts(table, args.dataset, args.count, seed=args.seed)
    args.out.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    print(f"wrote {len(prompts)} prompts of {args.dataset} with references to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
