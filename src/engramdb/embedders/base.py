"""The embedding-model protocol.

A provider implements one method, :meth:`Embedder.embed_batch`; the base class does batching
(length-sorted, so padding stays small), validation and normalisation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..errors import EmbedderError

Vectors = npt.NDArray[np.float32]


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    Attributes:
        name: identity of the vector space, stored with the vectors (``"local:all-MiniLM-L6-v2"``).
            Two embedders with the same name must produce interchangeable vectors.
        dim: vector dimension.
        batch_size: how many texts one ``embed_batch`` call receives at most.
    """

    name: str
    dim: int
    batch_size: int = 32

    @abstractmethod
    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """Embed at most ``batch_size`` texts; returns an array of shape ``(len(texts), dim)``."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed any number of texts, in batches of similar length; rows are unit length."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            vecs = np.asarray(self.embed_batch([texts[i] for i in idx]), dtype=np.float32)
            if vecs.shape != (len(idx), self.dim):
                raise EmbedderError(
                    f"embedder {self.name!r} returned shape {vecs.shape}, "
                    f"expected {(len(idx), self.dim)}"
                )
            out[idx] = vecs
        return normalize(out)

    def embed_one(self, text: str) -> Vectors:
        """Embed a single text (a query); returns a vector of shape ``(dim,)``."""
        row: Vectors = self.embed([text])[0]
        return row


def normalize(vecs: Vectors) -> Vectors:
    """Scale rows to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    scaled: Vectors = (vecs / norms).astype(np.float32, copy=False)
    return scaled
