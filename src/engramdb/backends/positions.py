"""What the in-memory indexes of one scope share: a position per record, with the fields that
filters test, so a filter is a boolean mask over arrays rather than a set of ids per search.

Positions are append-only; a removed or replaced record leaves a dead position behind. Every
mutation and every scan holds the index's own lock, which is short: readers never wait for a
database write, only for another scan or an in-memory append of the same scope.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..records import KIND_CODES, Filter

_MIN_CAPACITY = 256


@dataclass(frozen=True)
class Window:
    """A filter as the indexes apply it: event-time bounds, kinds, and (for filters on stored
    fields such as session or metadata) the row ids the database matched."""

    since: float | None = None
    until: float | None = None
    kinds: tuple[int, ...] | None = None
    rids: npt.NDArray[np.int64] | None = None

    @staticmethod
    def of(flt: Filter, rids: npt.NDArray[np.int64] | None = None) -> Window:
        kinds = None if flt.kinds is None else tuple(KIND_CODES.get(k, -1) for k in flt.kinds)
        return Window(flt.since, flt.until, kinds, rids)


class Positions:
    """Ids, row ids, event times, kinds and liveness by position."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.lock = threading.RLock()
        self._n = 0
        self._rids = np.zeros(_MIN_CAPACITY, dtype=np.int64)
        self._times = np.zeros(_MIN_CAPACITY, dtype=np.float64)
        self._kinds = np.zeros(_MIN_CAPACITY, dtype=np.int8)
        self._alive = np.zeros(_MIN_CAPACITY, dtype=bool)
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, ident: object) -> bool:
        return ident in self._pos

    def _grow(self, need: int) -> None:
        cap = self._rids.shape[0]
        if need <= cap:
            return
        new_cap = max(need, cap * 2)
        self._rids = np.resize(self._rids, new_cap)
        self._times = np.resize(self._times, new_cap)
        self._kinds = np.resize(self._kinds, new_cap)
        alive = np.zeros(new_cap, dtype=bool)
        alive[:cap] = self._alive
        self._alive = alive
        self._grow_more(new_cap)

    def _grow_more(self, capacity: int) -> None:
        """Subclasses grow their own per-position arrays here."""

    def _append(self, ident: str, rid: int, when: float, kind: int) -> int:
        self.remove([ident])
        pos = self._n
        self._grow(pos + 1)
        self._rids[pos], self._times[pos], self._kinds[pos] = rid, when, kind
        self._alive[pos] = True
        self._ids.append(ident)
        self._pos[ident] = pos
        self._n = pos + 1
        return pos

    def remove(self, ids: list[str]) -> None:
        """Drop records by id (unknown ids are ignored)."""
        with self.lock:
            for ident in ids:
                pos = self._pos.pop(ident, None)
                if pos is not None:
                    self._alive[pos] = False
                    self._removed(pos)

    def _removed(self, pos: int) -> None:
        """Subclasses forget per-position statistics here."""

    def mask(self, n: int, window: Window) -> npt.NDArray[np.bool_]:
        """Live positions below ``n`` that pass the window."""
        keep = self._alive[:n].copy()
        if window.since is not None:
            keep &= self._times[:n] >= window.since
        if window.until is not None:
            keep &= self._times[:n] < window.until
        if window.kinds is not None:
            keep &= np.isin(self._kinds[:n], np.asarray(window.kinds, dtype=np.int8))
        if window.rids is not None:
            keep &= np.isin(self._rids[:n], window.rids, assume_unique=False)
        return keep

    def top(
        self, scores: npt.NDArray[np.float32], keep: npt.NDArray[np.bool_], limit: int
    ) -> list[tuple[str, float]]:
        """The ``limit`` best kept positions by score, best first (ties keep position order)."""
        candidates = np.flatnonzero(keep)
        if candidates.size == 0 or limit <= 0:
            return []
        if candidates.size > limit:
            best = np.argpartition(-scores[candidates], limit - 1)[:limit]
            candidates = candidates[best]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(self._ids[i], float(scores[i])) for i in order]
