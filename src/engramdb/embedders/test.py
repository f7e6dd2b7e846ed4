"""A deterministic embedder for tests: hashed words and character trigrams, no model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from .base import Embedder, Vectors

_WORD = re.compile(r"\w+", re.UNICODE)


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, 1.0 if (value >> 63) & 1 else -1.0


class TestEmbedder(Embedder):
    """Texts sharing words land close together; identical texts get identical vectors.

    Stable across processes and platforms (blake2b, not ``hash()``), so stores written in one
    test run read back the same in another.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.name = f"test:hash-{dim}"
        self.batch_size = 256

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            lowered = text.lower()
            for word in _WORD.findall(lowered):
                index, sign = _bucket("w:" + word, self.dim)
                out[row, index] += 2.0 * sign
                padded = f"#{word}#"
                for i in range(len(padded) - 2):
                    index, sign = _bucket("c:" + padded[i : i + 3], self.dim)
                    out[row, index] += 0.5 * sign
        return out
