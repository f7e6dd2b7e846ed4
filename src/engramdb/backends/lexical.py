"""An in-memory BM25 index of one scope's index keys: the derived lexical index.

Like the dense matrix, it is rebuilt from the database when missing or stale, and kept in step
with this process's writes. Scoring walks only the postings of the query's terms with numpy, so
a query costs microseconds per matching document; SQLite FTS5's bm25() cost several per match and
dominated search time at 10k memories (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from ..pipeline.messages import CONTEXT_MARK
from ..text import tokens

K1 = 1.2
B = 0.75
_MIN_CAPACITY = 256


#: How much a word of the quoted previous turn counts against a word of the message itself: a
#: reply is found through what it answers, but the turn that said it first ranks above it.
CONTEXT_WEIGHT = 0.5


def _weighted_terms(text: str) -> dict[str, float]:
    own, _, context = text.partition(CONTEXT_MARK)
    terms: dict[str, float] = {}
    for part, weight in ((own, 1.0), (context, CONTEXT_WEIGHT)):
        for term in tokens(part):
            terms[term] = terms.get(term, 0.0) + weight
    return terms


class LexicalSet:
    """BM25 over documents (id, event time, text) with append and tombstone delete."""

    def __init__(self, version: int = 0) -> None:
        self.version = version
        self._n = 0
        self._lengths = np.zeros(_MIN_CAPACITY, dtype=np.float32)
        self._times = np.zeros(_MIN_CAPACITY, dtype=np.float64)
        self._alive = np.zeros(_MIN_CAPACITY, dtype=bool)
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._postings: dict[str, tuple[list[int], list[float]]] = {}
        self._arrays: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = {}
        self._total_length = 0.0

    def __len__(self) -> int:
        return len(self._pos)

    def _grow(self, need: int) -> None:
        cap = self._lengths.shape[0]
        if need <= cap:
            return
        new_cap = max(need, cap * 2)
        self._lengths = np.resize(self._lengths, new_cap)
        self._times = np.resize(self._times, new_cap)
        alive = np.zeros(new_cap, dtype=bool)
        alive[:cap] = self._alive
        self._alive = alive

    def add(self, docs: Iterable[tuple[str, float, str]]) -> None:
        """Append (id, event time, text) documents; an id already present is replaced."""
        for ident, when, text in docs:
            self.remove([ident])
            pos = self._n
            self._grow(pos + 1)
            terms = _weighted_terms(text)
            length = sum(terms.values())
            self._lengths[pos], self._times[pos], self._alive[pos] = length, when, True
            self._total_length += length
            for term, tf in terms.items():
                docs_, tfs = self._postings.setdefault(term, ([], []))
                docs_.append(pos)
                tfs.append(tf)
                self._arrays.pop(term, None)
            self._ids.append(ident)
            self._pos[ident] = pos
            self._n = pos + 1

    def remove(self, ids: Sequence[str]) -> None:
        """Drop documents by id (unknown ids are ignored)."""
        for ident in ids:
            pos = self._pos.pop(ident, None)
            if pos is not None:
                self._alive[pos] = False
                self._total_length -= float(self._lengths[pos])

    def _posting(self, term: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        arrays = self._arrays.get(term)
        if arrays is None:
            docs, tfs = self._postings[term]
            arrays = (np.array(docs, dtype=np.int64), np.array(tfs, dtype=np.float32))
            self._arrays[term] = arrays
        return arrays

    def search(
        self,
        query: str,
        limit: int,
        since: float | None,
        until: float | None,
        allowed: set[str] | None,
    ) -> list[tuple[str, float]]:
        """Top live documents by BM25 for the query's terms, within the time window."""
        live = len(self._pos)
        terms = [t for t in dict.fromkeys(tokens(query)) if t in self._postings]
        if not live or not terms or limit <= 0:
            return []
        n = self._n
        avg = max(self._total_length / live, 1.0)
        norm = K1 * (1 - B + B * self._lengths[:n] / avg)
        scores = np.zeros(n, dtype=np.float32)
        for term in terms:
            docs, tfs = self._posting(term)
            df = len(docs)
            if df and docs[-1] >= n:  # a concurrent add grew the postings after we read n
                keep = docs < n
                docs, tfs = docs[keep], tfs[keep]
            idf = np.log(1 + (live - df + 0.5) / (df + 0.5))
            scores[docs] += idf * tfs * (K1 + 1) / (tfs + norm[docs])
        mask = self._alive[:n] & (scores > 0)
        if since is not None:
            mask &= self._times[:n] >= since
        if until is not None:
            mask &= self._times[:n] < until
        if allowed is not None:
            keep = np.zeros(n, dtype=bool)
            keep[[p for i in allowed if (p := self._pos.get(i, n)) < n]] = True
            mask &= keep
        candidates = np.flatnonzero(mask)
        if candidates.size > limit:
            top = np.argpartition(-scores[candidates], limit - 1)[:limit]
            candidates = candidates[top]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(self._ids[i], float(scores[i])) for i in order]
