"""The read path: candidates from every source -> fusion -> rerank -> rows.

Candidate sources are pluggable: each turns an analysed query into ranked lists under the
caller's filter. Lexical and dense (with a time-window list when the query names a time) are the
sources today; facts, entities and summaries will be added beside them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..backends.base import Store
from ..records import Filter, Row, Scored, Vector
from ..types import Scope, TimeMention
from .fuse import rrf
from .query import Query, analyse
from .rerank import rerank

#: A question about a time window also matches what was said shortly after it ("yesterday I...").
TIME_SLACK = timedelta(days=2)


class CandidateSource(Protocol):
    """One way of finding candidates: named ranked lists for a query under a filter."""

    def candidates(
        self, store: Store, scope: Scope, query: Query, vector: Vector | None, n: int, flt: Filter
    ) -> dict[str, Scored]:
        """Named candidate lists; ``vector`` is None when the query could not be embedded."""
        ...


class LexicalSource:
    """BM25 over the records' keys."""

    def candidates(
        self, store: Store, scope: Scope, query: Query, vector: Vector | None, n: int, flt: Filter
    ) -> dict[str, Scored]:
        if not query.terms:
            return {"lexical": []}
        return {"lexical": store.lexical(scope, " ".join(query.terms), n, flt)}


class DenseSource:
    """Cosine over the records' vectors, and within the query's time window when it names one:
    one scan of the vectors serves both lists."""

    def candidates(
        self, store: Store, scope: Scope, query: Query, vector: Vector | None, n: int, flt: Filter
    ) -> dict[str, Scored]:
        if vector is None:
            return {}
        if query.time is None:
            return {"dense": store.dense(scope, vector, n, [flt])[0]}
        dense, timed = store.dense(scope, vector, n, [flt, narrow(flt, query.time)])
        return {"dense": dense, "time": timed}


def narrow(flt: Filter, window: TimeMention) -> Filter:
    """The filter restricted to a time window (and the slack after it)."""
    since = window.start.timestamp()
    try:
        until = (window.end + TIME_SLACK).timestamp()
    except OverflowError:  # a window at the end of year 9999 has no slack after it
        until = window.end.timestamp()
    return replace(
        flt,
        since=max(since, flt.since if flt.since is not None else since),
        until=min(until, flt.until if flt.until is not None else until),
    )


@dataclass(frozen=True)
class Ranking:
    """Fusion settings."""

    candidates: int
    rrf_k: int
    weights: dict[str, float]


_DEFAULT_GATE: threading.BoundedSemaphore | None = None
_GATE_LOCK = threading.Lock()


def default_gate() -> threading.BoundedSemaphore:
    """The process's shared gate for search CPU work, sized at half the cores.

    Searches are CPU-bound (index scans, fusion, reranking in Python): more of them at once than
    half the cores only makes each wait for the others. On 2 cores, 8 client threads searching
    10k memories got 64 searches/s without it and the embedder's run lock, 160-180 with them
    (1 thread: 155-200/s). Pass your own to ``Memory(search_gate=...)`` to size it otherwise.
    """
    global _DEFAULT_GATE
    with _GATE_LOCK:
        if _DEFAULT_GATE is None:
            _DEFAULT_GATE = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 2))
        return _DEFAULT_GATE


class Retriever:
    """Candidates from every source, fused by reciprocal rank, reranked."""

    def __init__(
        self,
        store: Store,
        ranking: Ranking,
        gate: AbstractContextManager[Any],
        sources: Sequence[CandidateSource] = (LexicalSource(), DenseSource()),
    ) -> None:
        self.store = store
        self.ranking = ranking
        self.gate = gate
        self.sources = list(sources)

    def search(
        self,
        scope: Scope,
        text: str,
        vector: Vector | None,
        moment: datetime,
        limit: int,
        flt: Filter,
    ) -> list[tuple[Row, float, dict[str, int]]]:
        """The best rows for a query, best first, with their scores and ranks per list."""
        with self.gate:
            query = analyse(text, moment)
            n = max(self.ranking.candidates, limit)
            lists: dict[str, Scored] = {}
            for source in self.sources:
                lists.update(source.candidates(self.store, scope, query, vector, n, flt))
            fused = rrf(lists, self.ranking.rrf_k, self.ranking.weights)[: max(limit * 2, 50)]
            at = moment.timestamp()
            # An archived record is kept, but out of every answer; a fact reads as it was known
            # at the moment asked about (an end learned later is not known then).
            rows = {
                r.id: known_at(r, at)
                for r in self.store.get(scope.tenant, [f[0] for f in fused])
                if r.archived_at is None
            }
            for ident in self._learned_after(scope.tenant, rows, at):
                del rows[ident]  # rerank skips candidates without a row
            # A question about a period reads the past as it was; otherwise a turn whose every
            # statement has since been superseded is stale evidence.
            stale = (
                set()
                if query.time is not None
                else self.store.outdated(scope.tenant, list(rows), at)
            )
            ranked = rerank(text, query.time, fused, rows, at, stale)[:limit]
            return [(rows[ident], score, ranks) for ident, score, ranks in ranked]

    def _learned_after(self, tenant: str, rows: dict[str, Row], at: float) -> set[str]:
        """Facts none of whose sources had been said by ``at``.

        A fact's event time is when it holds in the world ("ordered the gift on 20 February"),
        which can precede the turn that told it; as of a moment before that turn, the fact was
        not known yet, and searching as of then must not return it.
        """
        facts = [r for r in rows.values() if r.fact is not None and r.source_ids]
        if not facts:
            return set()
        wanted = [ident for r in facts for ident in r.source_ids]
        said = {r.id: r.occurred_at for r in self.store.get(tenant, wanted)}
        return {
            r.id
            for r in facts
            if min((said[i] for i in r.source_ids if i in said), default=at) > at
        }


def known_at(row: Row, at: float) -> Row:
    """A row as engramdb knew it at ``at``: a fact without the end it only learned later."""
    if row.fact is None:
        return row
    fact = row.fact.known_at(at)
    return row if fact is row.fact else replace(row, fact=fact)
