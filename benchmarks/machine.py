"""One line describing the machine a benchmark ran on, for its output and RESULTS.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe_machine() -> str:
    """CPU model, core count and Python version, e.g. ``AMD EPYC, 2 cores, Python 3.11.7``."""
    return f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, or the architecture where that is unavailable."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.machine()
