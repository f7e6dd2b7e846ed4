"""Throughput and agreement of the bundled embedder against its own fp32 graph, same run.

    python benchmarks/embedder.py [--texts 1000] [--out docs/results/embedder.json]

Both graphs are built from the same MiniLM weights (engramdb.embedders.onnx_build): the fp32 one
is the baseline (what an unquantized export gives), the int8 per-channel one is what engramdb
ships. Texts are the seeded synthetic chat turns of benchmarks/speed.py, embedded in batches of 32
sorted by length, exactly as ``Embedder.embed`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import synthetic_messages

from engramdb.embedders import local, onnx_build
from engramdb.embedders.base import Embedder, Vectors


class _GraphEmbedder(Embedder):
    """The local embedder's pooling over an arbitrary ONNX file."""

    dim = 384

    def __init__(self, path: Path, name: str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = local._tokenizer()
        self.name = name

    def embed_batch(self, texts: Any) -> Vectors:
        encoded = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, feeds)[0]
        pooled: Vectors = ((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)).astype(
            np.float32
        )
        return pooled


def measure(emb: Embedder, texts: list[str], queries: list[str]) -> tuple[dict[str, Any], Vectors]:
    emb.embed(texts[:32])  # warm up
    rates = []
    vectors = emb.embed(texts)
    for _ in range(3):
        t0 = time.perf_counter()
        vectors = emb.embed(texts)
        rates.append(len(texts) / (time.perf_counter() - t0))
    latencies = []
    for q in queries:
        t0 = time.perf_counter()
        emb.embed_one(q)
        latencies.append((time.perf_counter() - t0) * 1000)
    return {
        "texts_per_s_median_of_3": round(statistics.median(rates), 1),
        "query_ms_p50": round(statistics.median(latencies), 2),
    }, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--out", default="docs/results/embedder.json")
    args = parser.parse_args()
    texts = [m["content"] for m in synthetic_messages(args.texts)]
    queries = [f"What did I say about item {i} last week?" for i in range(100)]
    weights = local._weights_folder() / "model.safetensors"
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = Path(tmp) / "fp32.onnx"
        import onnx

        onnx.save(onnx_build.build_fp32(onnx_build.read_safetensors(weights)), str(fp32_path))
        fp32, fp32_vecs = measure(_GraphEmbedder(fp32_path, "fp32"), texts, queries)
        int8, int8_vecs = measure(local.LocalEmbedder(), texts, queries)
    cosines = np.sum(fp32_vecs * int8_vecs, axis=1)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "load_avg": os.getloadavg(),
        "texts": len(texts),
        "fp32 graph (baseline)": fp32,
        "int8 per-channel (bundled)": int8,
        "speedup": round(int8["texts_per_s_median_of_3"] / fp32["texts_per_s_median_of_3"], 2),
        "cosine_to_fp32": {
            "mean": round(float(cosines.mean()), 4),
            "min": round(float(cosines.min()), 4),
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
