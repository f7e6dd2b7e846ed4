"""An in-memory, append-friendly matrix of one scope's vectors: the derived dense index.

The database is the source of truth; this is rebuilt from it whenever it is missing or stale.
An exact scan (one matrix-vector product) has perfect recall and is fast enough up to
:data:`~engramdb.backends.ann.ANN_MIN` vectors (a few milliseconds). A bigger scope gets an HNSW
index (:class:`~engramdb.backends.ann.Ann`) beside the matrix, built on a thread of its own so
that no search waits for it: searches stay exact until it is ready, and then go through it
whenever the filter leaves enough vectors to find (a narrow filter is scanned exactly). Once
ready it follows every append; removals are masked out of its results, and when they pile up
it is built again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from ..records import Scored, Vector
from .ann import ANN_MIN, BUILD_STEP, TOMBSTONES, Ann, beam, faiss_module
from .positions import Places, Positions, Window

log = logging.getLogger("engramdb")
#: A build stops catching up with appends on its thread once this few are left: the rest are
#: added while searches wait.
_CATCH_UP = 2048
_warned_no_faiss = False


class VectorSet(Positions):
    """Records' unit vectors by position, with amortised O(1) append and tombstone delete."""

    def __init__(self, dim: int, version: int = 0) -> None:
        super().__init__(version)
        self.dim = dim
        self._mat = np.zeros((self._rids.shape[0], dim), dtype=np.float32)
        self._ann: Ann | None = None
        self._building: threading.Thread | None = None
        self._seed: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]] | None = None
        self._cancel = threading.Event()
        self._failed = False
        #: Set when an HNSW index is ready (tests and benchmarks wait for it).
        self.ann_ready = threading.Event()
        #: Called on the build's thread once an HNSW index is ready (the store saves it).
        self.on_ann: Callable[[VectorSet], None] | None = None
        #: Removals so far: a saved graph is only current if none happened since.
        self.removals = 0

    def _grow_more(self, capacity: int) -> None:
        self._mat = np.resize(self._mat, (capacity, self.dim))

    def _removed(self, pos: int) -> None:
        self.removals += 1

    def add(self, items: Sequence[tuple[str, int, float, int]], vectors: Vector) -> None:
        """Append (id, rid, event time, kind code) rows with their vectors; an id already
        present is replaced."""
        if len({item[0] for item in items}) == len(items):
            self.extend(Places.of(items), vectors)
            return
        with self.lock:  # an id twice: the last one wins, as one by one
            for (ident, rid, when, kind), vec in zip(items, vectors, strict=True):
                self._put(self._append(ident, rid, when, kind), vec[None, :])

    def extend(self, places: Places, vectors: Vector) -> None:
        """Append records of distinct ids with their vectors (a load)."""
        if len(places) != len(vectors):
            raise ValueError("one vector per record")
        with self.lock:
            self._put(self._extend(places), vectors)

    def _put(self, start: int, vectors: Vector) -> None:
        self._mat[start : start + len(vectors)] = vectors
        if self._ann is not None:
            self._ann.add(vectors, np.arange(start, start + len(vectors), dtype=np.int64))

    # -- search --------------------------------------------------------------------------------

    def search_many(self, query: Vector, limit: int, windows: Sequence[Window]) -> list[Scored]:
        """The ``limit`` nearest records within each window (one scan when exact)."""
        with self.lock:
            n = self._n
            if n == 0 or limit <= 0 or not windows:
                return [[] for _ in windows]
            keeps = [self.mask(n, w) for w in windows]
            # A float64 query would upcast the matrix (10x slower).
            vector = np.asarray(query, dtype=np.float32)
            ann = self._index_for_search()
            if ann is None:
                return self._exact_many(vector, keeps, limit)
            return [self._approximate(ann, vector, keep, limit) for keep in keeps]

    def _exact_many(
        self, vector: Vector, keeps: list[npt.NDArray[np.bool_]], limit: int
    ) -> list[Scored]:
        n = len(keeps[0])
        union = keeps[0] if len(keeps) == 1 else np.logical_or.reduce(keeps)
        if np.count_nonzero(union) * 8 < n:  # a narrow filter (a session): score what it keeps
            wanted = np.flatnonzero(union)
            scores = np.zeros(n, dtype=np.float32)
            scores[wanted] = self._mat[wanted] @ vector
        else:
            scores = self._mat[:n] @ vector
        return [self.top(scores, keep, limit) for keep in keeps]

    def _approximate(
        self, ann: Ann, vector: Vector, keep: npt.NDArray[np.bool_], limit: int
    ) -> Scored:
        passing = int(np.count_nonzero(keep))
        ef = beam(limit, passing, len(keep))
        if ef is not None:
            found = ann.search(vector, limit, np.append(keep, False), ef)
            if len(found) >= min(limit, passing):
                # The index holds float16 copies: scores come from the float32 matrix.
                scores = self._mat[found] @ vector
                order = np.argsort(-scores, kind="stable")
                return [(self._ids[found[i]], float(scores[i])) for i in order.tolist()]
        return self._exact_many(vector, [keep], limit)[0]

    # -- the HNSW index ------------------------------------------------------------------------

    def seed(self, graph: npt.NDArray[np.uint8], positions: npt.NDArray[np.int64]) -> None:
        """Start the HNSW index, when one is built, from a saved graph over these positions
        (-1: a record gone since) instead of from nothing."""
        with self.lock:
            self._seed = (graph, positions)

    def _index_for_search(self) -> Ann | None:
        """The HNSW index if it should serve this search; starts building one when the scope
        is big enough and has none."""
        live = len(self._pos)
        ann = self._ann
        if ann is not None and ann.count - live > TOMBSTONES * ann.count:
            self._start_build()  # a new index over the live vectors; this one serves meanwhile
        if live < ANN_MIN:
            return None
        if ann is None:
            self._start_build()
        return ann

    def _start_build(self) -> None:
        if self._building is not None or self._failed:
            return
        if faiss_module() is None:
            _warn_no_faiss(len(self._pos))
            return
        self._cancel.clear()
        self._building = threading.Thread(target=self._build, name="engramdb-hnsw", daemon=True)
        self._building.start()

    @property
    def building(self) -> bool:
        """Whether an HNSW index is being built for this set."""
        return self._building is not None

    def stop(self) -> None:
        """Stop a build in progress at its next step (this set is no longer used, or the store
        is closing); a later search starts another."""
        self._cancel.set()

    def _build(self) -> None:
        try:
            built = self._built()
        except Exception:  # a faiss failure must not break searches: they stay exact
            log.exception("building the HNSW index of a scope failed; searches stay exact")
            self._failed = True
            built = False
        finally:
            self._building = None
        if built and self.on_ann is not None:
            self.on_ann(self)

    def _built(self) -> bool:
        """Build (or restore and extend) an index and attach it; whether it differs from the
        graph it was seeded with (then it is worth saving)."""
        with self.lock:
            matrix, n, seed, self._seed = self._mat, self._n, self._seed, None
            alive = self._alive[:n].copy()
        ann = _restored(seed, matrix)
        if ann is None:
            ann = Ann.new(self.dim)
        else:
            alive[ann.positions[ann.positions >= 0]] = False  # in the graph already
        seeded = ann.count
        done = n
        if not self._add(ann, matrix, np.flatnonzero(alive)):
            return False
        while True:  # appends made meanwhile, until few are left
            with self.lock:
                if self._n - done <= _CATCH_UP:
                    fresh = done + np.flatnonzero(self._alive[done : self._n])
                    ann.add(self._mat[fresh], fresh)
                    self._ann = ann
                    break
                matrix, n = self._mat, self._n
                fresh = done + np.flatnonzero(self._alive[done:n])
            if not self._add(ann, matrix, fresh):
                return False
            done = n
        self.ann_ready.set()
        return seed is None or ann.count > seeded

    def _add(self, ann: Ann, matrix: Vector, positions: npt.NDArray[np.intp]) -> bool:
        """Index positions in steps, without the lock: rows below the count read are never
        written again, and ``matrix`` is the array they were read from."""
        for start in range(0, len(positions), BUILD_STEP):
            if self._cancel.is_set():
                return False
            chunk = positions[start : start + BUILD_STEP].astype(np.int64)
            ann.add(matrix[chunk], chunk)
        return True

    def graph(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], int, int] | None:
        """What a saved HNSW index holds: its graph without vectors, the row id of each
        indexed vector (-1: gone), and the version and removal count it is current at."""
        ann = self._ann
        if ann is None:
            return None
        with self.lock:
            positions = ann.positions
            live = positions >= 0
            live[live] = self._alive[positions[live]]
            rids = np.where(live, self._rids[positions], -1)
            return ann.graph(live), rids, self.version, self.removals


def _restored(
    seed: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]] | None, matrix: Vector
) -> Ann | None:
    if seed is None:
        return None
    try:
        return Ann.restore(seed[0], seed[1], matrix)
    except (ValueError, RuntimeError) as exc:  # a cache, not data: build it again
        log.warning("a saved HNSW graph could not be used (%s); building it again", exc)
        return None


def _warn_no_faiss(size: int) -> None:
    global _warned_no_faiss
    if not _warned_no_faiss:
        _warned_no_faiss = True
        log.info(
            "a scope of %d vectors is searched exactly; pip install 'engramdb[faiss]' for an "
            "approximate index (faster above %d vectors)",
            size,
            ANN_MIN,
        )
