"""LiteLLM proxy 1.106.2, the peer gateway the load benchmark compares routeyard with.

It lives in a virtual environment of its own (``<cache>/litellm-1.106.2``, ≈ 750 MB, about a minute to
install from the package index) so its many pinned dependencies never touch routeyard's. It starts
offline: ``LITELLM_LOCAL_MODEL_COST_MAP=True`` keeps it from fetching its price list, and a master key
is required by the proxy. Its one model, ``mock``, forwards to the benchmark's mock upstream, the way
routeyard's passthrough does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

LITELLM_VERSION = "1.106.2"
MASTER_KEY = "sk-routeyard-bench"
MODEL = "mock"
READY_PATH = "/health/liveliness"


def install_litellm(cache_dir: Path) -> Path:
    """The ``litellm`` executable, installing the pinned proxy into its own venv on first use."""
    venv = cache_dir / f"litellm-{LITELLM_VERSION}"
    executable = venv / "bin" / "litellm"
    marker = venv / ".installed"
    if not marker.exists():
        print(
            f"installing LiteLLM proxy {LITELLM_VERSION} into {venv} (once, about a minute)", file=sys.stderr
        )
        subprocess.run(["python3", "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"]
        installed = subprocess.run(pip, capture_output=True, text=True)
        if installed.returncode != 0:
            raise RuntimeError(f"installing LiteLLM failed:\n{installed.stderr[-3000:]}")
        marker.touch()
    return executable


def litellm_config(directory: Path, upstream_url: str) -> Path:
    """A proxy config whose model ``mock`` is the OpenAI-compatible server at ``upstream_url``."""
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": "openai/echo",
                    "api_base": upstream_url + "/v1",
                    "api_key": "unused",
                },
            }
        ],
        "litellm_settings": {"telemetry": False},
    }
    path = directory / "litellm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def litellm_command(executable: Path, config: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that start the proxy offline on 127.0.0.1:``port``."""
    env = {**os.environ, "LITELLM_MASTER_KEY": MASTER_KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [str(executable), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    return command, env
