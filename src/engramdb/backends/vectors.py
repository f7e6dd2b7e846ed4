"""An in-memory, append-friendly matrix of one scope's vectors: the derived dense index.

The database is the source of truth; this is rebuilt from it whenever it is missing or stale.
Exact search (one matrix-vector product) is fast enough here for a scope of 100k memories
(a few milliseconds) and has perfect recall, so no approximate index is needed at this size.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .base import Vector

_MIN_CAPACITY = 256


class VectorSet:
    """Rows of (id, event time, unit vector) with amortised O(1) append and tombstone delete."""

    def __init__(self, dim: int, version: int = 0) -> None:
        self.dim = dim
        self.version = version
        self._n = 0
        self._mat = np.zeros((_MIN_CAPACITY, dim), dtype=np.float32)
        self._times = np.zeros(_MIN_CAPACITY, dtype=np.float64)
        self._alive = np.zeros(_MIN_CAPACITY, dtype=bool)
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._pos)

    def _grow(self, need: int) -> None:
        cap = self._mat.shape[0]
        if need <= cap:
            return
        new_cap = max(need, cap * 2)
        self._mat = np.resize(self._mat, (new_cap, self.dim))
        self._times = np.resize(self._times, new_cap)
        alive = np.zeros(new_cap, dtype=bool)
        alive[:cap] = self._alive
        self._alive = alive

    def add(self, ids: list[str], times: npt.NDArray[np.float64], vectors: Vector) -> None:
        """Append rows; an id already present is replaced (its old row is dropped)."""
        self.remove(ids)
        start = self._n
        self._grow(start + len(ids))
        end = start + len(ids)
        self._mat[start:end] = vectors
        self._times[start:end] = times
        self._alive[start:end] = True
        for offset, ident in enumerate(ids):
            self._pos[ident] = start + offset
        self._ids.extend(ids)
        self._n = end

    def remove(self, ids: list[str]) -> None:
        """Drop rows by id (unknown ids are ignored)."""
        for ident in ids:
            pos = self._pos.pop(ident, None)
            if pos is not None:
                self._alive[pos] = False

    def search(
        self,
        query: Vector,
        limit: int,
        since: float | None,
        until: float | None,
        allowed: set[str] | None,
    ) -> list[tuple[str, float]]:
        """Top rows by cosine among live rows in the time window (and in ``allowed``)."""
        return self.search_many(query, limit, [(since, until, allowed)])[0]

    def search_many(
        self,
        query: Vector,
        limit: int,
        windows: list[tuple[float | None, float | None, set[str] | None]],
    ) -> list[list[tuple[str, float]]]:
        """One scan of the matrix, ranked separately within each (since, until, allowed)."""
        n = self._n
        if n == 0 or limit <= 0:
            return [[] for _ in windows]
        # The expensive part, done once. A float64 query would upcast the whole matrix (10x slower).
        scores = self._mat[:n] @ np.asarray(query, dtype=np.float32)
        return [self._top(scores, n, limit, *window) for window in windows]

    def _top(
        self,
        raw: npt.NDArray[np.float32],
        n: int,
        limit: int,
        since: float | None,
        until: float | None,
        allowed: set[str] | None,
    ) -> list[tuple[str, float]]:
        mask = self._alive[:n].copy()
        if since is not None:
            mask &= self._times[:n] >= since
        if until is not None:
            mask &= self._times[:n] < until
        if allowed is not None:
            allowed_mask = np.zeros(n, dtype=bool)
            allowed_mask[[p for i in allowed if (p := self._pos.get(i, n)) < n]] = True
            mask &= allowed_mask
        scores = np.where(mask, raw, -np.inf)
        k = min(limit, int(mask.sum()))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")][:k]
        return [(self._ids[i], float(scores[i])) for i in top]
