"""Writing a directory whole or not at all: artifacts and ONNX exports are never seen half-written."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced_directory(directory: Path) -> Iterator[Path]:
    """Yield an empty staging directory beside ``directory``; on success it replaces ``directory``.

    On any exception the staging directory is removed and ``directory`` is left as it was.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        yield staging
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
