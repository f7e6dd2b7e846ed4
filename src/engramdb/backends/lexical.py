"""An in-memory BM25 index of one scope's keys: the derived lexical index.

Like the dense matrix, it is rebuilt from the database when missing or stale, and kept in step
with this process's writes. Scoring walks only the postings of the query's terms with numpy, so
a query costs microseconds per matching document; SQLite FTS5's bm25() cost several per match and
dominated search time at 10k memories (docs/benchmarks.md).

Analysing text (tokens, Porter2 stems) was most of a cold start: ~3 of the ~4 s that the first
search after opening a store of 100k memories took. So every write stores its record's weighted
terms beside it (:func:`encode_terms`, the SQLite table ``lexical_terms``), and a load reads them
and builds the postings in bulk with numpy (:meth:`LexicalSet.load`): appending the stored terms
record by record would still take over half as long as analysing them again, the bulk build
under a tenth (docs/benchmarks.md). Terms are stored and indexed as 64-bit hashes, not strings,
so a load makes no Python object per posting (1.6M of them at 100k memories): 3x faster than
with the terms as text. Two distinct terms share a hash with odds of ~3e-8 at a million distinct
terms; they would then find each other's records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from ..records import Keys, Scored
from ..text import tokens
from .positions import Places, Positions, Window

K1 = 1.2
B = 0.75
#: How much a word of the quoted previous turn counts against a word of the record itself: a
#: reply is found through what it answers, but the turn that said it first ranks above it.
CONTEXT_WEIGHT = 0.5
#: Names the analysis that persisted terms were made with. Change it whenever ``tokens()``,
#: :func:`weighted_terms` or :func:`term_id` would give other terms for the same key: a store
#: analysed otherwise is analysed again when opened (a test pins what this name stands for).
ANALYZER = "porter2+stopwords/context0.5/blake2b64"

#: Weighted term frequencies of one key.
Terms = dict[str, float]
#: One document: (id, rid, event time, kind code, weighted terms).
Doc = tuple[str, int, float, int, Terms]
#: How a key's terms are stored: (term id, frequency) pairs, 12 bytes each.
STORED = np.dtype([("term", "<i8"), ("tf", "<f4")])

_EMPTY_POS = np.zeros(0, dtype=np.int64)
_EMPTY_TF = np.zeros(0, dtype=np.float32)
_IDS: dict[str, int] = {}


def term_id(term: str) -> int:
    """A term's stable 64-bit id (the same in every process and on every platform)."""
    found = _IDS.get(term)
    if found is None:
        digest = hashlib.blake2b(term.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        found = int.from_bytes(digest, "little", signed=True)
        if len(_IDS) > 500_000:
            _IDS.clear()
        _IDS[term] = found
    return found


def weighted_terms(own: str, context: str) -> Terms:
    """Term frequencies of a key: the record's own words count 1, quoted ones ``CONTEXT_WEIGHT``."""
    terms: Terms = {}
    for part, weight in ((own, 1.0), (context, CONTEXT_WEIGHT)):
        for term in tokens(part):
            terms[term] = terms.get(term, 0.0) + weight
    return terms


def key_terms(keys: Keys) -> Terms:
    """The weighted terms a record is found by lexically."""
    return weighted_terms(keys.own, keys.quoted())


def encode_terms(terms: Terms) -> bytes:
    """The stored form of a key's terms: an array of :data:`STORED` pairs."""
    packed = np.empty(len(terms), dtype=STORED)
    packed["term"] = [term_id(t) for t in terms]
    packed["tf"] = list(terms.values())
    return packed.tobytes()


class LexicalSet(Positions):
    """BM25 over documents with append and tombstone delete.

    Postings live in two parts: those of a bulk :meth:`load`, as arrays grouped by term (what a
    cold start builds), and those appended since, as lists per term (what this process's writes
    add).
    """

    def __init__(self, version: int = 0) -> None:
        super().__init__(version)
        self._lengths = np.zeros(self._rids.shape[0], dtype=np.float32)
        self._total_length = 0.0
        # The load's postings: term id, position and frequency of each, grouped (see load()).
        self._low = 0
        self._groups = _EMPTY_POS  # group i's postings are bounds[i]:bounds[i + 1]
        self._bounds = np.zeros(1, dtype=np.int64)
        self._bulk_terms = _EMPTY_POS
        self._bulk_pos = _EMPTY_POS
        self._bulk_tfs = _EMPTY_TF
        self._tail: dict[int, tuple[list[int], list[float]]] = {}
        # Posting lists as arrays, built on first use; each remembers how many appended postings
        # it holds so that one built before an append is never used after it.
        self._arrays: dict[int, tuple[int, npt.NDArray[np.int64], npt.NDArray[np.float32]]] = {}
        #: Removals so far: the bulk postings are only what a cache file may keep if none
        #: happened since the load (a removed record's postings stay in them).
        self.removals = 0
        self._bulk_n, self._bulk_total = 0, 0.0  # the records load() indexed, and their length

    def _grow_more(self, capacity: int) -> None:
        self._lengths = np.resize(self._lengths, capacity)

    def _removed(self, pos: int) -> None:
        self._total_length -= float(self._lengths[pos])
        self.removals += 1

    def add(self, docs: Iterable[Doc]) -> None:
        """Append documents; an id already present is replaced."""
        with self.lock:
            for ident, rid, when, kind, terms in docs:
                pos = self._append(ident, rid, when, kind)
                self._post(pos, [term_id(t) for t in terms], list(terms.values()))

    def append_stored(
        self, places: Places, stored: npt.NDArray[np.void], counts: npt.NDArray[np.int64]
    ) -> None:
        """Append records of distinct ids, new to the index, with their terms in the stored
        form (what a load from a cache file adds for the records written since the file)."""
        with self.lock:
            start = self._extend(places)
            ends = np.cumsum(counts).tolist()
            terms, tfs = stored["term"].tolist(), stored["tf"].tolist()
            for i, end in enumerate(ends):
                begin = end - int(counts[i])
                self._post(start + i, terms[begin:end], tfs[begin:end])

    def _post(self, pos: int, terms: list[int], tfs: list[float]) -> None:
        length = sum(tfs)
        self._lengths[pos] = length
        self._total_length += length
        for tid, tf in zip(terms, tfs, strict=True):
            docs_, tfs_ = self._tail.setdefault(tid, ([], []))
            docs_.append(pos)
            tfs_.append(tf)

    def load(
        self, places: Places, stored: npt.NDArray[np.void], counts: npt.NDArray[np.int64]
    ) -> None:
        """Fill an empty index in bulk: record ``i`` of ``places`` has the next ``counts[i]``
        of the ``stored`` (term id, frequency) pairs.

        One sort instead of a list append per posting: at 100k records this builds the postings
        several times faster than :meth:`add` would from the same terms.
        """
        if len(counts) != len(places) or int(counts.sum()) != len(stored):
            raise ValueError("stored terms and counts disagree")
        with self.lock:
            if self._n:
                raise ValueError("load() fills an empty index only")
            start = self._extend(places)
            doc = np.repeat(np.arange(start, start + len(places), dtype=np.int64), counts)
            tfs = stored["tf"].astype(np.float32)
            lengths = np.bincount(doc - start, weights=tfs, minlength=len(places))
            self._lengths[start : start + len(places)] = lengths
            self._total_length += float(lengths.sum())
            self._bulk_n, self._bulk_total = len(places), self._total_length
            if not len(stored):
                return
            # Postings grouped by the high bits of their term id, in position order within a
            # group: a sort of (high bits | posting index) keys, which numpy runs ~2x faster
            # than an argsort of the ids. Two terms of one group are told apart by their full
            # ids when a query reads the group (_posting).
            terms = stored["term"].astype(np.int64)
            self._low = (1 << int(len(terms) - 1).bit_length()) - 1
            keys = np.sort((terms & ~self._low) | np.arange(len(terms), dtype=np.int64))
            order, groups = keys & self._low, keys & ~self._low
            firsts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
            self._groups = groups[firsts]
            self._bounds = np.append(firsts, len(terms)).astype(np.int64)
            self._bulk_terms = terms[order]
            self._bulk_pos, self._bulk_tfs = doc[order], tfs[order]
            self._arrays.clear()

    def postings(self) -> dict[str, npt.NDArray[Any]]:
        """The loaded postings and per-record lengths as arrays: what a cache file keeps to
        :meth:`restore` this index without sorting again."""
        with self.lock:
            return {
                "low": np.array([self._low], dtype=np.int64),
                "total": np.array([self._bulk_total], dtype=np.float64),
                "groups": self._groups,
                "bounds": self._bounds,
                "terms": self._bulk_terms,
                "positions": self._bulk_pos,
                "tfs": self._bulk_tfs,
                "lengths": self._lengths[: self._bulk_n].copy(),
            }

    @property
    def loaded(self) -> int:
        """How many records the bulk postings cover (positions ``0..loaded-1``)."""
        return self._bulk_n

    @staticmethod
    def restore(places: Places, arrays: dict[str, npt.NDArray[Any]], version: int) -> LexicalSet:
        """An index of ``places`` from :meth:`postings` of an index of the same records in the
        same order (the arrays may be memory-mapped: they are only read).

        Raises:
            ValueError: the arrays do not fit ``places``.
        """
        lengths = arrays["lengths"]
        if len(lengths) != len(places) or len(arrays["bounds"]) != len(arrays["groups"]) + 1:
            raise ValueError("cached postings of other records")
        lset = LexicalSet(version)
        lset.reserve(len(places))
        lset._extend(places)
        lset._lengths[: len(places)] = lengths
        lset._total_length = lset._bulk_total = float(arrays["total"][0])
        lset._bulk_n = len(places)
        lset._low = int(arrays["low"][0])
        lset._groups, lset._bounds = arrays["groups"], arrays["bounds"]
        lset._bulk_terms, lset._bulk_pos = arrays["terms"], arrays["positions"]
        lset._bulk_tfs = arrays["tfs"]
        return lset

    def _bulk(self, tid: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]] | None:
        group = tid & ~self._low
        i = int(np.searchsorted(self._groups, group))
        if i == self._groups.size or int(self._groups[i]) != group:
            return None
        lo, hi = self._bounds[i], self._bounds[i + 1]
        docs, tfs = self._bulk_pos[lo:hi], self._bulk_tfs[lo:hi]
        same = self._bulk_terms[lo:hi] == tid
        if not same.all():  # another term shares the group
            docs, tfs = docs[same], tfs[same]
        return (docs, tfs) if docs.size else None

    def _posting(self, tid: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]] | None:
        tail = self._tail.get(tid)
        appended = 0 if tail is None else len(tail[0])
        cached = self._arrays.get(tid)
        if cached is not None and cached[0] == appended:
            return cached[1], cached[2]
        bulk = self._bulk(tid)
        if bulk is None and tail is None:
            return None
        docs, tfs = bulk if bulk is not None else (_EMPTY_POS, _EMPTY_TF)
        if tail is not None:
            docs = np.concatenate([docs, np.array(tail[0], dtype=np.int64)])
            tfs = np.concatenate([tfs, np.array(tail[1], dtype=np.float32)])
        self._arrays[tid] = (appended, docs, tfs)
        return docs, tfs

    def search(self, query: str, limit: int, window: Window) -> Scored:
        """Top live documents by BM25 for the query's terms, within the window."""
        with self.lock:
            live = len(self._pos)
            postings = [self._posting(term_id(t)) for t in dict.fromkeys(tokens(query))]
            found = [p for p in postings if p is not None]
            if not live or not found or limit <= 0:
                return []
            n = self._n
            avg = max(self._total_length / live, 1.0)
            scores = np.zeros(n, dtype=np.float32)
            alive = self._alive[:n]
            for docs, tfs in found:
                # Postings of removed or replaced records stay until a reload: counted, they
                # would push a common term's idf below zero after a few updates.
                df = int(np.count_nonzero(alive[docs]))
                idf = np.log(1 + (live - df + 0.5) / (df + 0.5))
                norm = K1 * (1 - B + B * self._lengths[docs] / avg)  # at the postings only
                scores[docs] += idf * tfs * (K1 + 1) / (tfs + norm)
            return self.top(scores, self.mask(n, window) & (scores > 0), limit)
