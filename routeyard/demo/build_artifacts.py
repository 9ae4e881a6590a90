"""Build the demo's prebuilt artifacts into ``routeyard/demo/data/artifacts/`` (package data).

    python -m routeyard.demo.build_artifacts          # rebuild, replace the shipped ones, write PROVENANCE.md
    python -m routeyard.demo.build_artifacts --check  # rebuild into a temporary directory, compare bytes

Run it after changing the sample, the static embedder (``routeyard distill-embedder``) or how the demo
trains: ``routeyard serve`` uses a shipped artifact only when its key (``routeyard.demo.artifacts``) is the
current one, and otherwise builds one into the cache on first start. The build reads only package data
(the sample and the shipped static MiniLM embedder), writes no embedding cache and downloads nothing;
the same inputs give the same bytes (``--check`` exits 1 and names the files that differ otherwise).
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from routeyard.demo.artifacts import (
    ARTIFACT_NAMES,
    DEMO_TRAINING,
    PACKAGED_ARTIFACTS,
    SAMPLE_SOURCE,
    SAMPLE_TABLE,
    artifact_directory_name,
    build_artifact,
    load_sample,
)
from routeyard.demo.config import DEMO_EMBEDDER
from routeyard.predictor.embedder_choice import make_embedder

PROVENANCE = "PROVENANCE.md"
_LIBRARIES = ("numpy", "faiss-cpu", "scikit-learn", "model2vec", "tokenizers")


def build_all(out: Path, *, progress: bool = False) -> list[Path]:
    """Build every demo artifact into ``out/<name>-<key>`` (``out`` emptied first), write ``out``'s
    PROVENANCE.md, and return the artifact directories."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    table = load_sample()
    embedder = make_embedder(DEMO_EMBEDDER, out, cached=False)  # no embedding cache in package data
    built = []
    for name in ARTIFACT_NAMES:
        directory = out / artifact_directory_name(name, table, embedder.identity)
        print(f"building {directory.name}…", file=sys.stderr)
        build_artifact(name, table, embedder, directory, progress=progress)
        built.append(directory)
    (out / PROVENANCE).write_text(_provenance(built, embedder.identity))
    return built


def differences(expected: Path, actual: Path) -> list[str]:
    """The relative paths of files that are in one tree and not the other, or differ in bytes."""
    names = {p.relative_to(root) for root in (expected, actual) for p in root.rglob("*") if p.is_file()}
    return sorted(
        str(name)
        for name in names
        if not ((expected / name).is_file() and (actual / name).is_file())
        or not filecmp.cmp(expected / name, actual / name, shallow=False)
    )


def _provenance(built: list[Path], embedder_identity: str) -> str:
    """PROVENANCE.md: what each artifact was built from, how, with which libraries, and its files' hashes."""
    lines = [
        "# Prebuilt demo artifacts",
        "",
        "Written by `python -m routeyard.demo.build_artifacts` (check: `--check`); do not edit by hand.",
        "`routeyard serve` (no `--config`) loads them when their key is the current one",
        "(`routeyard.demo.artifacts`), and builds matching ones into its cache otherwise.",
        "",
        f"- sample: `{SAMPLE_SOURCE}`, sha256 `{_sha256(SAMPLE_TABLE)}` (its provenance: `../PROVENANCE.md`)",
        f"- embedder: `{DEMO_EMBEDDER}`, identity `{embedder_identity}`",
        f"- training: {DEMO_TRAINING}, predictor kind knn; split seed 42, train fraction 0.7",
        "- libraries: " + ", ".join(f"{name} {version(name)}" for name in _LIBRARIES),
        "",
    ]
    for directory in built:
        lines.append(f"## {directory.name}")
        lines.append("")
        lines += [f"- `{p.name}` sha256 `{_sha256(p)}`" for p in sorted(directory.iterdir())]
        lines.append("")
    return "\n".join(lines)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m routeyard.demo.build_artifacts", description=__doc__)
    parser.add_argument("--check", action="store_true", help="rebuild elsewhere and compare; change nothing")
    parser.add_argument(
        "--out", type=Path, default=PACKAGED_ARTIFACTS, help="where to build (default: shipped)"
    )
    args = parser.parse_args(argv)
    progress = sys.stderr.isatty()
    if not args.check:
        built = build_all(args.out, progress=progress)
        size = sum(p.stat().st_size for d in built for p in d.iterdir())
        print(f"wrote {', '.join(d.name for d in built)} ({size / 1e6:.1f} MB) into {args.out}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        differing = differences(args.out, build_all(Path(scratch) / "artifacts", progress=progress)[0].parent)
    if differing:
        print(f"{args.out} differs from a rebuild in: {', '.join(differing)}", file=sys.stderr)
        return 1
    print(f"{args.out} is what the build makes, byte for byte")
    return 0


if __name__ == "__main__":
    sys.exit(main())
