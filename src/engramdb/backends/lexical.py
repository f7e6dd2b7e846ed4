"""An in-memory BM25 index of one scope's keys: the derived lexical index.

Like the dense matrix, it is rebuilt from the database when missing or stale, and kept in step
with this process's writes. Scoring walks only the postings of the query's terms with numpy, so
a query costs microseconds per matching document; SQLite FTS5's bm25() cost several per match and
dominated search time at 10k memories (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from ..records import Scored
from ..text import tokens
from .positions import Positions, Window

K1 = 1.2
B = 0.75
#: How much a word of the quoted previous turn counts against a word of the record itself: a
#: reply is found through what it answers, but the turn that said it first ranks above it.
CONTEXT_WEIGHT = 0.5


def weighted_terms(own: str, context: str) -> dict[str, float]:
    """Term frequencies of a key: the record's own words count 1, quoted ones ``CONTEXT_WEIGHT``."""
    terms: dict[str, float] = {}
    for part, weight in ((own, 1.0), (context, CONTEXT_WEIGHT)):
        for term in tokens(part):
            terms[term] = terms.get(term, 0.0) + weight
    return terms


#: One document: (id, rid, event time, kind code, own key, quoted context).
Doc = tuple[str, int, float, int, str, str]


class LexicalSet(Positions):
    """BM25 over documents with append and tombstone delete."""

    def __init__(self, version: int = 0) -> None:
        super().__init__(version)
        self._lengths = np.zeros(self._rids.shape[0], dtype=np.float32)
        self._postings: dict[str, tuple[list[int], list[float]]] = {}
        # Posting lists as arrays, built on first use; each remembers how many postings it holds
        # so that one built before an append is never used after it.
        self._arrays: dict[str, tuple[int, npt.NDArray[np.int64], npt.NDArray[np.float32]]] = {}
        self._total_length = 0.0

    def _grow_more(self, capacity: int) -> None:
        self._lengths = np.resize(self._lengths, capacity)

    def _removed(self, pos: int) -> None:
        self._total_length -= float(self._lengths[pos])

    def add(self, docs: Iterable[Doc]) -> None:
        """Append documents; an id already present is replaced."""
        with self.lock:
            for ident, rid, when, kind, own, context in docs:
                pos = self._append(ident, rid, when, kind)
                terms = weighted_terms(own, context)
                length = sum(terms.values())
                self._lengths[pos] = length
                self._total_length += length
                for term, tf in terms.items():
                    docs_, tfs = self._postings.setdefault(term, ([], []))
                    docs_.append(pos)
                    tfs.append(tf)

    def _posting(self, term: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        docs, tfs = self._postings[term]
        cached = self._arrays.get(term)
        if cached is None or cached[0] != len(docs):
            cached = (len(docs), np.array(docs, dtype=np.int64), np.array(tfs, dtype=np.float32))
            self._arrays[term] = cached
        return cached[1], cached[2]

    def search(self, query: str, limit: int, window: Window) -> Scored:
        """Top live documents by BM25 for the query's terms, within the window."""
        with self.lock:
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
                idf = np.log(1 + (live - len(docs) + 0.5) / (len(docs) + 0.5))
                scores[docs] += idf * tfs * (K1 + 1) / (tfs + norm[docs])
            return self.top(scores, self.mask(n, window) & (scores > 0), limit)
