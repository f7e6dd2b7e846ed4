"""The storage contract every backend implements.

The facade (:class:`engramdb.Memory`) validates, embeds and ranks; a backend only stores rows and
answers candidate queries inside one scope. Keep this protocol small: a new backend (PostgreSQL)
implements exactly these methods and passes the same contract tests.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..types import HistoryEntry, Scope

Vector = npt.NDArray[np.float32]


@dataclass
class Row:
    """A memory as stored. Times are epoch seconds (UTC)."""

    id: str
    scope: Scope
    kind: str
    session_id: str | None
    role: str | None
    name: str | None
    text: str
    occurred_at: float
    recorded_at: float
    updated_at: float
    metadata: dict[str, Any]
    time_mentions: builtins.list[dict[str, Any]]
    content_hash: str
    index_text: str = ""
    source_ids: builtins.list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Filter:
    """Restrictions applied inside candidate search (all optional, all ANDed).

    ``since``/``until`` bound the event time (``until`` is exclusive); ``metadata`` is equality on
    top-level keys of the record's metadata.
    """

    since: float | None = None
    until: float | None = None
    session_id: str | None = None
    kinds: tuple[str, ...] | None = None
    metadata: tuple[tuple[str, Any], ...] = ()


Scored = list[tuple[str, float]]


class Store(Protocol):
    """Durable storage of memories, their vectors, lexical index and history."""

    path: str

    def get_meta(self, key: str) -> str | None:
        """A store-level setting (schema version, embedder name), or None."""

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-level setting."""

    def existing(self, scope: Scope, keys: Sequence[tuple[str | None, str]]) -> dict[str, str]:
        """Which ``(session_id, content_hash)`` pairs are stored: content_hash → memory id."""

    def cached_vectors(self, embed_hashes: Sequence[str]) -> dict[str, Vector]:
        """Vectors already computed for these embedded-text hashes (an embedding cache)."""

    def insert(
        self, rows: Sequence[Row], vectors: Vector, embed_hashes: Sequence[str], actor: str
    ) -> None:
        """Store rows with their vectors, index entries and 'create' history, atomically."""

    def get(self, ids: Sequence[str], tenant: str) -> builtins.list[Row]:
        """Rows by id (any order; unknown ids are left out)."""

    def list(
        self,
        scope: Scope,
        *,
        session_id: str | None,
        kind: str | None,
        limit: int,
        after: str | None,
    ) -> builtins.list[Row]:
        """Rows of a scope in insertion order, starting after the id ``after``."""

    def iter_rows(self, tenant: str, scope: Scope | None) -> Iterator[Row]:
        """Every row of a tenant (or of one scope), in insertion order: for export."""

    def update(self, row: Row, vector: Vector | None, embed_hash: str | None, actor: str) -> None:
        """Replace a row's text/metadata (and vector when given), with 'update' history."""

    def delete(self, ids: Sequence[str], tenant: str, actor: str) -> int:
        """Purge rows, their index entries and vectors, and redact their history."""

    def delete_scope(self, scope: Scope, actor: str) -> int:
        """Purge every row of a scope; returns how many."""

    def history(self, memory_id: str, tenant: str) -> builtins.list[HistoryEntry]:
        """Every change of a memory, oldest first."""

    def lexical(self, scope: Scope, terms: Sequence[str], limit: int, flt: Filter) -> Scored:
        """Best rows for a bag of query terms (BM25-like; higher is better)."""

    def dense(
        self, scope: Scope, query: Vector, limit: int, filters: Sequence[Filter]
    ) -> builtins.list[Scored]:
        """Nearest rows to a unit query vector (cosine; higher is better), ranked separately
        under each filter: one pass over the vectors serves several candidate lists."""

    def previous_message(
        self,
        scope: Scope,
        session_id: str | None,
        at: float,
        exclude_hashes: Sequence[str] = (),
        before_id: str | None = None,
    ) -> Row | None:
        """The last message of a session before ``at`` (or before the message ``before_id``)."""

    def following(self, memory_id: str, tenant: str) -> Row | None:
        """The message after this one in its session."""

    def reindex(self, row: Row, vector: Vector, embed_hash: str) -> None:
        """Replace a row's index key and vector (derived data: no history)."""

    def neighbours(
        self, ids: Sequence[str], tenant: str, span: int
    ) -> dict[str, builtins.list[Row]]:
        """Up to ``span`` messages before and after each id within its session, in order."""

    def embed_texts(self, batch: int = 512) -> Iterator[builtins.list[tuple[str, str]]]:
        """Batches of (id, index text) of every row: for re-embedding with a new model."""

    def replace_vectors(
        self, ids: Sequence[str], vectors: Vector, embed_hashes: Sequence[str]
    ) -> None:
        """Overwrite the vectors of existing rows (re-embedding)."""

    def stats(self, tenant: str) -> dict[str, Any]:
        """Counts and sizes."""

    def close(self) -> None:
        """Release connections; further calls fail."""
