"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, Ollama, vLLM)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import EmbedderError
from .base import Embedder, Vectors

_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class OpenAIEmbedder(Embedder):
    """Calls ``POST {base_url}/embeddings`` with ``{"model", "input"}``.

    Args:
        model: the endpoint's model name (``text-embedding-3-small``, ``nomic-embed-text``).
        base_url: default ``OPENAI_BASE_URL`` or ``https://api.openai.com/v1``.
        api_key: default ``OPENAI_API_KEY`` (local servers usually need none).
        dim: vector size; discovered from the first response when not given.
        retries: attempts on 429/5xx/timeouts, with exponential backoff.
    """

    batch_size = 64

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dim: int | None = None,
        timeout: float = 60.0,
        retries: int = 4,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise EmbedderError(
                "the openai embedder needs httpx: pip install 'engramdb[openai]'"
            ) from exc
        self.model = model
        self.base_url = (
            base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        ).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._retries = retries
        self.name = f"openai:{model}"
        # The store needs the dimension up front: ask the endpoint once if not told.
        self.dim = dim if dim is not None else int(self.embed_batch(["dimension probe"]).shape[1])

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        body = self._post({"model": self.model, "input": list(texts)})
        try:
            rows = sorted(body["data"], key=lambda item: item["index"])
            vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedderError(
                f"{self.base_url}/embeddings answered in an unexpected shape: {str(body)[:200]}"
            ) from exc
        return vectors

    def _post(self, payload: dict[str, Any]) -> Any:
        import httpx

        url = f"{self.base_url}/embeddings"
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = self._client.post(url, json=payload)
            except httpx.TransportError as exc:
                if last:
                    raise EmbedderError(f"cannot reach {url}: {exc}") from exc
            else:
                if response.status_code < 400:
                    return response.json()
                if response.status_code not in _RETRY_STATUS or last:
                    raise EmbedderError(
                        f"{url} answered {response.status_code}: {response.text[:300]}"
                    )
            time.sleep(min(0.5 * 2**attempt, 8.0))
        raise EmbedderError(f"{url}: no answer after {self._retries + 1} attempts")
