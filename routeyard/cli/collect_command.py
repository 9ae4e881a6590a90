"""``routeyard collect``: an outcome table for your own backends, each answering every prompt, graded.

Every input failure is a ValueError with one clear line (the CLI prints it and exits 2).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from routeyard.cli.arguments import names
from routeyard.gateway.assembly import build_backends
from routeyard.gateway.backends.backend import Backend
from routeyard.gateway.backends.connection_pools import ConnectionPools
from routeyard.gateway.collection.collector import Progress, collect
from routeyard.gateway.collection.grading import Grader, LlmGrader, ReferenceGrader, load_judge_grader
from routeyard.gateway.collection.outcome_file import OutcomeFile, open_outcome_file
from routeyard.gateway.collection.prompt_file import PromptRow, read_prompts
from routeyard.gateway.settings import GatewaySettings, load_settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "collect",
        help="have your backends answer a prompts file and write the graded long outcome table (for `train`)",
        description=(
            "Re-running with the same --out skips the prompt × backend pairs already there. A failed call "
            "is written with missing quality and its error class."
        ),
    )
    parser.add_argument("--config", type=Path, required=True, help="the gateway's routeyard.yaml")
    parser.add_argument("--prompts", type=Path, required=True, help=".jsonl, .csv or .parquet")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help=".csv or .jsonl (appended to), or .parquet (rows journalled beside it, rewritten at the end)",
    )
    parser.add_argument("--backends", type=names, help="comma-separated backend names (default: all)")
    parser.add_argument(
        "--grader",
        default="reference",
        help="reference (the prompts' reference answers), llm:<backend> (graded 0-10 by that backend) or "
        "judge:<artifact> (scored by a learned judge from `routeyard train-judge`)",
    )
    parser.add_argument("--max-usd", type=float, help="stop once this many $ are spent")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight per backend")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    if args.max_usd is not None and not args.max_usd > 0:
        raise ValueError("--max-usd must be a positive number of dollars")
    settings = load_settings(args.config)
    configured = [backend.name for backend in settings.backends]
    chosen = args.backends or tuple(configured)
    _check_known(chosen, configured, "--backends")
    grader = _grader_choice(args.grader, settings, configured)
    prompts = read_prompts(args.prompts)
    if args.grader == "reference":
        _check_references(prompts, args.prompts)
    try:
        with open_outcome_file(args.out) as out:  # closing writes every row collected
            progress = _collect(settings, prompts, chosen, grader, out, args)
    except KeyboardInterrupt:
        print(f"\ninterrupted: every row collected is in {args.out}; re-run to continue", file=sys.stderr)
        return 130
    print(_summary(progress, args.out))
    return 0


GraderChoice = Callable[[dict[str, Backend]], Grader]
"""Makes the grader once the backends are built (an LLM grader calls one of them)."""


def _collect(
    settings: GatewaySettings,
    prompts: list[PromptRow],
    chosen: tuple[str, ...],
    grader_choice: GraderChoice,
    out: OutcomeFile,
    args: argparse.Namespace,
) -> Progress:
    async def go(bar: tqdm[None]) -> Progress:
        async with ConnectionPools() as pools:
            backends = build_backends(settings, pools)
            answering: dict[str, Backend] = {name: backends[name] for name in chosen}
            return await collect(
                prompts,
                answering,
                grader_choice(backends),
                out,
                concurrency=args.concurrency,
                max_usd=args.max_usd,
                on_progress=lambda progress: _show(bar, progress),
            )

    total = len(prompts) * len(chosen)
    with tqdm(total=total, desc="collect", unit="pair", disable=not sys.stderr.isatty(), leave=False) as bar:
        return asyncio.run(go(bar))


def _grader_choice(grader: str, settings: GatewaySettings, configured: list[str]) -> GraderChoice:
    """The ``--grader`` asked for, checked now: a known backend, a learned judge that loads."""
    kind, _, target = grader.partition(":")
    if grader == "reference":
        return lambda backends: ReferenceGrader()
    if kind == "llm" and target:
        _check_known((target,), configured, "--grader")
        return lambda backends: LlmGrader(backends[target])
    if kind == "judge" and target:
        try:
            judge = load_judge_grader(Path(target), settings.embedder, settings.cache_dir.expanduser())
        except ValueError as exc:
            raise ValueError(f"--grader: {exc}") from None  # the message names the artifact
        return lambda backends: judge
    raise ValueError(f"--grader must be 'reference', 'llm:<backend>' or 'judge:<artifact>', not {grader!r}")


def _check_known(chosen: tuple[str, ...], configured: list[str], option: str) -> None:
    unknown = [name for name in chosen if name not in configured]
    if unknown:
        raise ValueError(
            f"{option}: no backend named {', '.join(unknown)} in the config "
            f"(configured: {', '.join(configured) or 'none'})"
        )


def _check_references(prompts: list[PromptRow], path: Path) -> None:
    for index, row in enumerate(prompts, start=1):
        if row.reference is None:
            raise ValueError(
                f"{path}: column 'reference', row {index}: empty, and --grader reference needs one "
                "(or grade with --grader llm:<backend> or judge:<artifact>)"
            )


def _show(bar: tqdm[None], progress: Progress) -> None:
    """Move the progress bar (on a terminal only) to ``progress``: pairs done, failed, $ spent."""
    bar.n = progress.done
    bar.set_postfix_str(f"{progress.failed} failed, ${progress.spent_usd:.4f}", refresh=False)
    bar.refresh()


def _summary(progress: Progress, out: Path) -> str:
    how_far = f"{progress.done}/{progress.total} prompt × backend pairs in {out}"
    spent = f"${progress.spent_usd:.4f} spent this run; {progress.failed} calls failed (missing quality)"
    if progress.stopped_by_budget:
        return f"stopped at the --max-usd budget: {how_far}; {spent}; re-run to continue"
    return f"done: {how_far}; {spent}"
