"""The bundled embedder: all-MiniLM-L6-v2 on ONNX Runtime, offline, no torch.

The model ships inside this package (``model/``): the encoder as an int8 ONNX graph with one
scale per output channel, and its tokenizer. Both load on first use; nothing is built, cached or
fetched at run time. ``model/NOTICE.md`` credits the model and says how the graph was made
(:mod:`.onnx_build`, a developer tool).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedderError
from .base import Embedder, Vectors

MAX_TOKENS = 256  # the length all-MiniLM-L6-v2 was trained with
MODEL_DIR = Path(__file__).parent / "model"
# The version suffix names the graph layout; a change that moves vectors needs a new embedder
# name as well, or stores written with the old graph would mix two vector spaces.
MODEL_FILE = "all-MiniLM-L6-v2-int8pc-v1.onnx"
TOKENIZER_FILE = "tokenizer.json"
_REINSTALL = "reinstall engramdb: pip install --force-reinstall --no-deps engramdb"


def _model_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise EmbedderError(
            f"the bundled embedding model file {path} is missing: {_REINSTALL}"
            " (in a source checkout, rebuild it as engramdb/embedders/onnx_build.py says)"
        )
    return path


def _weights_folder() -> Path:
    # benchmarks/embedder.py builds its fp32 baseline from these weights.
    from .onnx_build import weights_folder

    return weights_folder()


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384-d, mean pooling), int8 weights (per-channel scales), on the CPU.

    The model loads on first use, so opening a store stays fast; one loaded model is shared by
    every instance in the process.
    """

    name = "local:all-MiniLM-L6-v2-int8pc"
    dim = 384
    batch_size = 32

    _shared: tuple[Any, Any] | None = None
    _lock = threading.Lock()
    #: One model run at a time per process: each run already uses every core, and overlapping
    #: runs only contend (8 client threads searching 10k memories on 2 cores: 64 searches/s
    #: with overlapping runs, 103 with this lock alone).
    _run_lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with LocalEmbedder._lock:
            if LocalEmbedder._shared is None:
                LocalEmbedder._shared = (_session(), _tokenizer())
            return LocalEmbedder._shared

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        session, tokenizer = self._load()
        encoded = tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        with LocalEmbedder._run_lock:
            hidden = session.run(None, feeds)[0]
        summed = (hidden * mask[..., None]).sum(axis=1)
        pooled: Vectors = (summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)).astype(
            np.float32
        )
        return pooled


def _session(folder: Path = MODEL_DIR) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise EmbedderError("onnxruntime is not installed: pip install onnxruntime") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads burn a core while idle and, on a busy machine, doubled query latency
    # (30 ms instead of 16 ms p50 with another process on the second core).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = _model_file(folder, MODEL_FILE)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise EmbedderError(f"cannot load the local embedding model: {exc}") from exc


def _tokenizer(folder: Path = MODEL_DIR) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_model_file(folder, TOKENIZER_FILE)))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding()
    return tokenizer
