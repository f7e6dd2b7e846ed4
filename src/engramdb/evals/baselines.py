"""The dev-set README's baselines, computed in the same run as engramdb.

Every turn is indexed as ``"[session date] speaker: text"``; BM25 is bm25s with English
stopwords, dense is cosine with the same embedder engramdb uses, hybrid is RRF (k = 60) of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..embedders import Embedder


@dataclass
class Doc:
    """One turn of the haystack."""

    turn: str
    session: str
    text: str  # "[date] speaker: text"


class Baselines:
    """BM25, dense and hybrid rankings over one haystack."""

    def __init__(self, docs: Sequence[Doc], embedder: Embedder) -> None:
        import bm25s

        self.docs = list(docs)
        self._embedder = embedder
        self._bm25 = bm25s.BM25()
        self._bm25.index(
            bm25s.tokenize([d.text for d in self.docs], stopwords="en", show_progress=False),
            show_progress=False,
        )
        self._vectors = embedder.embed([d.text for d in self.docs])

    def bm25(self, query: str, k: int) -> list[int]:
        import bm25s

        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab:
            return []
        k = min(k, len(self.docs))
        results, scores = self._bm25.retrieve(tokens, k=k, show_progress=False)
        return [int(i) for i, s in zip(results[0], scores[0], strict=True) if s > 0]

    def dense(self, query: str, k: int) -> list[int]:
        scores = self._vectors @ self._embedder.embed_one(query)
        return [int(i) for i in np.argsort(-scores)[:k]]

    def hybrid(self, query: str, k: int, rrf_k: int = 60) -> list[int]:
        fused: dict[int, float] = {}
        for ranking in (self.bm25(query, 100), self.dense(query, 100)):
            for rank, index in enumerate(ranking, start=1):
                fused[index] = fused.get(index, 0.0) + 1 / (rrf_k + rank)
        return sorted(fused, key=lambda i: -fused[i])[:k]

    def rankings(self, query: str, k: int) -> dict[str, list[int]]:
        """Each baseline's top-k doc indexes."""
        return {
            "bm25": self.bm25(query, k),
            "dense": self.dense(query, k),
            "hybrid": self.hybrid(query, k),
        }
