"""The ONNX Runtime embedder: the sentence-transformers model exported once, then run without torch.

:func:`export_onnx` writes a directory::

    model.onnx         the transformer, token ids in, last hidden states out (dynamic batch and length)
    tokenizer.json     the model's fast tokenizer
    export.json        identity, window, dimension and pooling of the exported model

:class:`OnnxEmbedder` tokenizes with ``tokenizers`` (left truncation to the model's window), sorts the
texts by token count and runs ``onnxruntime`` on batches of similar length, each padded only to its own
longest text, so one long prompt does not pad a batch of short ones; it mean-pools over real tokens.
With ``threads`` given, ONNX Runtime's threads also stop spin-waiting between runs: a spinning thread
takes a core from the gateway's event loop. Its vectors
match the torch embedder's (cosine ≥ 0.9999, tested), so it shares its identity: an artifact trained with
one serves with the other. Only mean-pooling models can be exported.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from tokenizers import Encoding, Tokenizer

from routeyard.arrays import Vectors
from routeyard.predictor.directory_writes import replaced_directory
from routeyard.predictor.embedder import normalise_rows
from routeyard.predictor.embedding_model import DEFAULT_MODEL, EmbeddingModel, locate_model

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_FILE = "export.json"
EXPORT_FORMAT = 1
BATCH_SIZE = 64
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxExportError(ValueError):
    """A directory is not a usable ONNX export, or a model cannot be exported."""


@dataclass(frozen=True)
class ExportRecord:
    """What ``export.json`` records: the exported model's :attr:`Embedder.identity`, window and dimension."""

    format: int
    identity: str
    max_seq_length: int
    dimension: int


def export_onnx(model: str, out_dir: str | Path) -> Path:
    """Export ``model`` (packaged name or local directory) into ``out_dir``, replacing what was there.

    The directory appears whole or not at all. Needs torch and onnx (imported here only). Raises
    :class:`OnnxExportError` for a model that is not mean-pooled.
    """
    located = locate_model(model)
    if located.pooling != "mean":
        raise OnnxExportError(f"{located.name} uses {located.pooling} pooling; only mean pooling exports")
    out_dir = Path(out_dir)
    with replaced_directory(out_dir) as staging:
        _export_transformer(located, staging / MODEL_FILE)
        shutil.copyfile(located.path / TOKENIZER_FILE, staging / TOKENIZER_FILE)
        record = ExportRecord(EXPORT_FORMAT, located.identity, located.max_seq_length, located.dimension)
        (staging / EXPORT_FILE).write_text(json.dumps(asdict(record), indent=2) + "\n")
    return out_dir


def _export_transformer(model: EmbeddingModel, path: Path) -> None:
    """Trace the model's transformer to ONNX (opset 17) with dynamic batch and sequence axes."""
    import warnings

    import torch
    from sentence_transformers import SentenceTransformer

    from routeyard.predictor.sentence_embedder import quiet_model_loading

    class LastHiddenState(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            output = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            hidden: torch.Tensor = output.last_hidden_state
            return hidden

    with quiet_model_loading():
        transformer: Any = SentenceTransformer(str(model.path), device="cpu", local_files_only=True)[0]
    example = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, "last_hidden_state")}
    with warnings.catch_warnings():  # the tracer's notes on constant shapes do not apply to BERT inputs
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(transformer.auto_model).eval(),
            (example, torch.ones_like(example), torch.zeros_like(example)),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
        )


class OnnxEmbedder:
    """Embeds with an ONNX export of a mean-pooling sentence-transformers model (see the module docstring)."""

    def __init__(
        self, directory: str | Path, *, model: str | None = None, threads: int | None = None
    ) -> None:
        """Use the export in ``directory``, exporting ``model`` (default all-MiniLM-L6-v2) into it first
        when the directory holds no export. ``threads`` caps ONNX Runtime's threads (default: every core).

        Raises :class:`OnnxExportError` when the directory holds a damaged export, or an export of
        another model than ``model``.
        """
        directory = Path(directory)
        if not (directory / EXPORT_FILE).exists():
            export_onnx(model or DEFAULT_MODEL, directory)
        record = _read_export(directory)
        if model is not None and locate_model(model).identity != record.identity:
            raise OnnxExportError(
                f"{directory} holds an export of {record.identity!r}, not of {model!r}; "
                "export into another directory"
            )
        self.identity = record.identity
        self.cache_key = f"{self.identity}|onnx"
        self.dimension = record.dimension
        self._tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        self._tokenizer.enable_truncation(record.max_seq_length, direction="left")
        self._tokenizer.no_padding()  # the file's own padding (fixed 128) would count pads as tokens
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(directory / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        for rows in length_batches([len(e.ids) for e in encodings], BATCH_SIZE):
            out[rows] = self._embed_batch([encodings[row] for row in rows])
        return out

    def _embed_batch(self, encodings: list[Encoding]) -> Vectors:
        width = max(len(e.ids) for e in encodings)
        feeds = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in _INPUTS}
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            feeds["input_ids"][row, :length] = encoding.ids
            feeds["attention_mask"][row, :length] = 1
            feeds["token_type_ids"][row, :length] = encoding.type_ids
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        mask = feeds["attention_mask"][:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return normalise_rows(pooled)


def _read_export(directory: Path) -> ExportRecord:
    try:
        raw = json.loads((directory / EXPORT_FILE).read_text())
        record = ExportRecord(
            format=int(raw["format"]),
            identity=str(raw["identity"]),
            max_seq_length=int(raw["max_seq_length"]),
            dimension=int(raw["dimension"]),
        )
        if record.format != EXPORT_FORMAT:
            raise ValueError(f"format {record.format}, this routeyard reads {EXPORT_FORMAT}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OnnxExportError(
            f"{directory}: damaged or foreign ONNX export ({type(exc).__name__}: {exc}); "
            "re-export with `routeyard export-onnx --out DIR`"
        ) from exc
    if not (directory / MODEL_FILE).exists() or not (directory / TOKENIZER_FILE).exists():
        raise OnnxExportError(f"{directory}: ONNX export lacks {MODEL_FILE} or {TOKENIZER_FILE}; re-export")
    return record


def length_batches(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Row indices grouped into batches of at most ``size`` rows of similar ``lengths``: rows sorted by
    length, a new batch begun when it is full or when the next row is over twice the batch's shortest
    (padding to the longest then wastes at most half of a batch's work)."""
    batches: list[list[int]] = []
    for row in sorted(range(len(lengths)), key=lengths.__getitem__):
        batch = batches[-1] if batches else None
        if batch is None or len(batch) == size or lengths[row] > 2 * max(lengths[batch[0]], 1):
            batches.append([row])
        else:
            batch.append(row)
    return batches
