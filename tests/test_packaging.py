"""The wheel: one import namespace, `routeyard`, with gateway/, predictor/ and judges/ inside it.

gateway/, predictor/ and judges/ are top-level folders linked into routeyard/ (docs/architecture.md,
packaging); the wheel must carry them as routeyard/gateway/… and install nothing else at top level.
The wheel is built from a copy of the source tree, so the build's scratch files (build/, *.egg-info)
never land in the working tree, with the venv's setuptools and no index: no download, a few seconds.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# What a build must not see: tool caches, the venv, earlier builds (they are not part of the source).
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*_cache", ".hypothesis", "build", "dist", "*.egg-info", "replay-demo"
)
PIP_QUIET = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def pip(*arguments: str | Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *map(str, arguments)],
        capture_output=True,
        text=True,
        env=PIP_QUIET,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "routeyard-src"
    # symlinks=True keeps routeyard/gateway -> ../gateway a link, as in a clone: the build must follow it.
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    assert (source / "routeyard" / "gateway").is_symlink()
    out = tmp_path_factory.mktemp("wheel")
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", out, source)
    (built,) = out.glob("routeyard-*.whl")
    return built


def test_the_wheel_holds_only_the_routeyard_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    (dist_info,) = (top for top in tops if top.endswith(".dist-info"))
    assert tops == {"routeyard", dist_info}, sorted(tops)
    for needed in (
        "routeyard/gateway/app.py",
        "routeyard/gateway/dashboard.html",
        "routeyard/gateway/tracing/request_spans.py",
        "routeyard/predictor/kinds/knn.py",
        "routeyard/judges/judge.py",
        "routeyard/demo/data/routerbench_0shot_subset.csv.gz",
        "routeyard/predictor/static_model/model.safetensors",
        "routeyard/predictor/static_model/tokenizer.json",
    ):
        assert needed in names, needed


def test_the_wheel_declares_routeyard_as_its_only_top_level_name(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        top_levels = [name for name in archive.namelist() if name.endswith(".dist-info/top_level.txt")]
        for name in top_levels:  # optional in a wheel; setuptools writes it
            assert archive.read(name).decode().split() == ["routeyard"]


def test_installing_the_wheel_creates_only_routeyard_and_its_dist_info(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    pip("install", "--no-deps", "--no-index", "--target", target, wheel)
    entries = {entry.name for entry in target.iterdir()}
    (dist_info,) = (name for name in entries if name.endswith(".dist-info"))
    # bin/ is where pip --target puts the `routeyard` console script: a script, not an importable name.
    assert entries - {"bin"} == {"routeyard", dist_info}, sorted(entries)
    if "bin" in entries:
        assert {script.name for script in (target / "bin").iterdir()} == {"routeyard"}
    for linked in ("gateway", "predictor", "judges"):
        installed = target / "routeyard" / linked
        assert installed.is_dir() and not installed.is_symlink(), installed
        assert (installed / "__init__.py").is_file()


INSTALLED_CHECK = """
import json, routeyard
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.gateway.backends.kinds import BACKEND_KINDS
from routeyard.gateway.routers import ROUTER_KINDS
from routeyard.gateway.settings import GatewaySettings
from routeyard.judges.kinds import JUDGE_KINDS
from routeyard.predictor.kinds import PREDICTOR_KINDS
print(json.dumps({
    "package": routeyard.__file__,
    "sample": str(SAMPLE_TABLE) if SAMPLE_TABLE.is_file() else None,
    "kinds": [r.names() for r in (PREDICTOR_KINDS, JUDGE_KINDS, ROUTER_KINDS, BACKEND_KINDS)],
}))
"""


def test_the_installed_wheel_finds_its_kinds_and_its_data(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    pip("install", "--no-deps", "--no-index", "--target", target, wheel)
    # the wheel first on the path (its dependencies come from this venv), run away from the source tree
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", INSTALLED_CHECK],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["package"]).is_relative_to(target)
    assert found["sample"] is not None and Path(found["sample"]).is_relative_to(target)
    assert found["kinds"] == [
        ["cluster", "ensemble", "knn", "logistic", "mlp"],
        ["agreement", "heuristics", "learned", "llm"],
        ["cascade", "fixed", "plan", "predictive"],
        ["anthropic", "openai", "replay"],
    ]
