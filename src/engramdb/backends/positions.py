"""What the in-memory indexes of one scope share: a position per record, with the fields that
filters test, so a filter is a boolean mask over arrays rather than a set of ids per search.

Positions are append-only; a removed or replaced record leaves a dead position behind. Every
mutation and every scan holds the index's own lock, which is short: readers never wait for a
database write, only for another scan or an in-memory append of the same scope.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
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


@dataclass(frozen=True)
class Places:
    """Many records' places at once, as columns (what a load appends): distinct ids, their row
    ids, event times and kind codes."""

    ids: list[str]
    rids: npt.NDArray[np.int64]
    times: npt.NDArray[np.float64]
    kinds: npt.NDArray[np.int8]

    @staticmethod
    def of(items: Sequence[tuple[str, int, float, int]]) -> Places:
        ids, rids, times, kinds = zip(*items, strict=True) if items else ((), (), (), ())
        return Places(
            list(ids),
            np.array(rids, dtype=np.int64),
            np.array(times, dtype=np.float64),
            np.array(kinds, dtype=np.int8),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.int64]) -> Places:
        """The places at these indexes."""
        ids = self.ids
        return Places(
            [ids[i] for i in index.tolist()],
            self.rids[index],
            self.times[index],
            self.kinds[index],
        )


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
        # Room to spare after a load too: the first write after a cold start must not copy the
        # whole matrix (150 MB at 100k x 384) to add one row.
        new_cap = max(need + need // 4, cap * 2)
        self._rids = np.resize(self._rids, new_cap)
        self._times = np.resize(self._times, new_cap)
        self._kinds = np.resize(self._kinds, new_cap)
        alive = np.zeros(new_cap, dtype=bool)
        alive[:cap] = self._alive
        self._alive = alive
        self._grow_more(new_cap)

    def _grow_more(self, capacity: int) -> None:
        """Subclasses grow their own per-position arrays here."""

    def reserve(self, capacity: int) -> None:
        """Make room for this many positions at once (a load that knows its size)."""
        with self.lock:
            self._grow(capacity)

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

    def _extend(self, places: Places) -> int:
        """Append many records at once; returns the first new position."""
        ids = places.ids
        if self._pos:
            self.remove([i for i in ids if i in self._pos])
        start, end = self._n, self._n + len(ids)
        self._grow(end)
        self._rids[start:end], self._times[start:end] = places.rids, places.times
        self._kinds[start:end] = places.kinds
        self._alive[start:end] = True
        self._ids.extend(ids)
        self._pos.update(zip(ids, range(start, end), strict=True))
        self._n = end
        return start

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

    def positions_of(self, rids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The live positions of these row ids (-1: none), in an index whose positions follow
        row ids (as a load appends them)."""
        with self.lock:
            have = self._rids[: self._n]
            if not self._n:
                return np.full(len(rids), -1, dtype=np.int64)
            at = np.searchsorted(have, rids).clip(0, self._n - 1)
            found = (have[at] == rids) & self._alive[at] & (rids >= 0)
            return np.where(found, at, -1).astype(np.int64)

    def mask(self, n: int, window: Window) -> npt.NDArray[np.bool_]:
        """Live positions below ``n`` that pass the window."""
        keep = self._alive[:n].copy()
        if window.since is not None:
            keep &= self._times[:n] >= window.since
        if window.until is not None:
            keep &= self._times[:n] < window.until
        if window.kinds is not None:
            keep &= np.isin(self._kinds[:n], np.asarray(window.kinds, dtype=np.int8))
        if window.rids is not None and n:
            keep &= _member(self._rids[:n], window.rids)
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


def _member(rids: npt.NDArray[np.int64], matched: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Which of ``rids`` are in ``matched``: through a table indexed by row id, ~10x faster than
    ``np.isin`` (which sorts) at 100k positions. SQLite hands out row ids counting up from 1, so
    the table is about as long as the store; ``np.isin`` covers row ids that are not."""
    top = int(rids.max())
    if rids.min() < 0 or top > 4 * rids.size + 1_000_000:
        return np.isin(rids, matched)
    table = np.zeros(top + 1, dtype=bool)
    table[matched[(matched >= 0) & (matched <= top)]] = True
    return table[rids]
