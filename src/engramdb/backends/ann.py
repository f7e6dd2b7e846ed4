"""An approximate nearest-neighbour index (HNSW, faiss) over one scope's vectors.

Below :data:`ANN_MIN` live vectors a scope is scanned exactly: one matrix-vector product is a few
milliseconds there and has perfect recall. Above it the scan grows linearly (~10 ms per 100k
384-d vectors on an idle core, ~100 ms at a million) while HNSW stays near a millisecond and a
half at a million, with recall@100 0.97 against the exact scan (docs/benchmarks.md, Scale).

The index is derived: :class:`~engramdb.backends.vectors.VectorSet` keeps the vectors (the
database's copy, in memory) and builds this beside them, positions as faiss ids. Vectors are
stored in it as float16 (half the memory of float32; the graph is only for finding candidates,
whose scores the caller recomputes from its float32 matrix). Its graph can be written without
the vectors (:meth:`Ann.graph`) and read back over the caller's vectors (:meth:`Ann.restore`), so
a cache file of it holds neighbour lists only, never a vector.

faiss is optional (the ``faiss`` extra): without it every scope is scanned exactly.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger("engramdb")

#: Live vectors in a scope from which searches go through HNSW (if faiss is installed). An exact
#: scan of 50k is ~5 ms and exact; an HNSW index costs a build on the side (~25 s of both cores
#: at 50k), ~0.9 KB of memory per vector and a little recall, which pays off only above that.
ANN_MIN = 50_000
#: Graph degree (twice this at the bottom layer). On 100k embeddings of synthetic chat turns
#: (benchmarks/scale_corpus.py) 16 found as much as 32 at k=100 (recall 0.978 against 0.982 with
#: a beam of 200), built 10 % faster, and makes half the graph to keep and save.
M = 16
#: Beam while building: 64 is a common setting; more slows the build more than it helps recall.
EF_CONSTRUCTION = 64
#: Beam while searching, for ``limit`` results: at least this, and at least twice ``limit``.
#: With 128 recall@100 was 0.961 on those 100k vectors, with 200 0.978 (0.996 at k=10); a
#: million vectors need the margin (docs/benchmarks.md).
EF_SEARCH = 200
#: The widest beam a filtered search may use before an exact scan of what passes is cheaper.
EF_MAX = 2048
#: A filter that passes fewer vectors than this is searched exactly over those vectors.
EXACT_ROWS = 20_000
#: Dead positions (deleted or replaced vectors) as a share of the index above which it is built
#: again from the live vectors: they cost memory and, as dead ends, recall.
TOMBSTONES = 0.2
#: Vectors per faiss call while building (a build checks between calls whether to stop).
BUILD_STEP = 8192

_faiss: Any = None
_faiss_missing = False


def faiss_module() -> Any | None:
    """faiss, or None when it is not installed (the bare install)."""
    global _faiss, _faiss_missing
    if _faiss is None and not _faiss_missing:
        try:
            _faiss = importlib.import_module("faiss")
        except ImportError:
            _faiss_missing = True
    return _faiss


def beam(limit: int, passing: int, total: int) -> int | None:
    """The search beam for ``limit`` results when ``passing`` of ``total`` indexed vectors pass
    the filter, or None when an exact scan of those is the better search: a filter that passes
    a fraction f of the graph leaves about f of a beam's candidates as results."""
    if passing <= EXACT_ROWS or passing <= limit:
        return None
    ef = int(max(EF_SEARCH, 2 * limit) * total / passing)
    return ef if ef <= EF_MAX else None


class Ann:
    """HNSW over some positions of a :class:`~engramdb.backends.vectors.VectorSet`.

    faiss numbers the vectors it holds 0, 1, 2... in the order they were added; ``positions``
    maps those numbers to the set's positions (-1: a vector whose record is gone). A rebuild
    indexes only live positions, so the set never renumbers its own.
    """

    def __init__(self, index: Any, storage: Any = None) -> None:
        self._index = index
        self._storage = storage  # a storage attached by restore(): this keeps it alive
        self._positions = np.full(max(1024, int(index.ntotal)), -1, dtype=np.int64)
        # Vector i at position i (a build over a fresh load): a filter needs no translating,
        # which at a million positions is most of what a search costs.
        self._identity = True

    @staticmethod
    def new(dim: int) -> Ann:
        faiss = _require()
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        return Ann(index)

    @staticmethod
    def restore(
        graph: npt.NDArray[np.uint8],
        positions: npt.NDArray[np.int64],
        matrix: npt.NDArray[np.float32],
    ) -> Ann:
        """The index written by :meth:`graph`, over ``matrix[positions[i]]`` as its vector
        ``i`` (a zero vector where the position is -1).

        Raises:
            ValueError: the graph is not one of ours, or not of ``len(positions)`` vectors.
        """
        faiss = _require()
        reader = faiss.VectorIOReader()
        faiss.copy_array_to_vector(np.ascontiguousarray(graph, dtype=np.uint8), reader.data)
        try:
            # read_index returns the concrete class (downcast_index here would free it).
            index = faiss.read_index(reader, faiss.IO_FLAG_SKIP_STORAGE)
        except RuntimeError as exc:
            raise ValueError(f"not an HNSW graph: {exc}") from exc
        if not isinstance(index, faiss.IndexHNSW) or index.ntotal != len(positions):
            raise ValueError("the graph does not match its positions")
        if index.d != matrix.shape[1] or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError("the graph is of other vectors")
        storage = faiss.IndexScalarQuantizer(
            index.d, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
        for start in range(0, len(positions), BUILD_STEP):
            storage.add(_rows(matrix, positions[start : start + BUILD_STEP]))
        index.own_fields = False
        index.storage = storage
        index.hnsw.efConstruction = EF_CONSTRUCTION
        ann = Ann(index, storage)
        ann._positions[: len(positions)] = positions
        ann._identity = bool(np.array_equal(positions, np.arange(len(positions))))
        return ann

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def positions(self) -> npt.NDArray[np.int64]:
        """The set's position of each indexed vector (-1: gone)."""
        return self._positions[: self.count]

    def add(self, rows: npt.NDArray[np.float32], positions: npt.NDArray[np.int64]) -> None:
        """Index these positions' vectors."""
        if not len(rows):
            return
        start, end = self.count, self.count + len(rows)
        if end > len(self._positions):
            grown = np.full(max(end + end // 4, 2 * len(self._positions)), -1, dtype=np.int64)
            grown[:start] = self._positions[:start]
            self._positions = grown
        self._index.add(np.ascontiguousarray(rows, dtype=np.float32))
        self._positions[start:end] = positions
        if self._identity and not np.array_equal(positions, np.arange(start, end)):
            self._identity = False

    def search(
        self, query: npt.NDArray[np.float32], limit: int, keep: npt.NDArray[np.bool_], ef: int
    ) -> npt.NDArray[np.int64]:
        """Positions of about the ``limit`` nearest vectors among the positions ``keep``
        marks, nearest first. ``keep`` has one more flag than there are positions, False:
        where a gone vector's -1 lands."""
        faiss = _require()
        wanted = keep[: self.count] if self._identity else keep[self.positions]
        bitmap = np.packbits(wanted, bitorder="little")
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        selector = faiss.IDSelectorBitmap(len(wanted), faiss.swig_ptr(bitmap))
        params.sel = selector
        _, found = self._index.search(query[None, :], limit, params=params)
        del selector, bitmap  # alive until here: faiss reads them during the search
        hits = found[0][found[0] >= 0]
        positions: npt.NDArray[np.int64] = self._positions[hits]
        return positions

    def graph(self, live: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
        """The index without its vectors: neighbour lists and layers. ``live`` flags the
        indexed vectors whose records still exist; the lists of the others are written empty,
        so the file keeps nothing derived from a deleted vector (the graph in memory is left
        as it was)."""
        faiss = _require()
        with _scrubbed(faiss, self._index.hnsw, live):
            writer = faiss.VectorIOWriter()
            faiss.write_index(self._index, writer, faiss.IO_FLAG_SKIP_STORAGE)
        data: npt.NDArray[np.uint8] = faiss.vector_to_array(writer.data)
        return data


def _rows(matrix: npt.NDArray[np.float32], positions: npt.NDArray[np.int64]) -> Any:
    rows = np.zeros((len(positions), matrix.shape[1]), dtype=np.float32)
    found = positions >= 0
    rows[found] = matrix[positions[found]]
    return rows


@contextlib.contextmanager
def _scrubbed(faiss: Any, hnsw: Any, live: npt.NDArray[np.bool_]) -> Iterator[None]:
    """Dead vectors' neighbour lists emptied, and a live entry point, for the duration."""
    dead = np.flatnonzero(~live)
    if not dead.size:
        yield
        return
    offsets = faiss.vector_to_array(hnsw.offsets).astype(np.int64)
    links = faiss.rev_swig_ptr(hnsw.neighbors.data(), hnsw.neighbors.size())
    spans = [(int(offsets[p]), int(offsets[p + 1])) for p in dead.tolist()]
    saved = [links[a:b].copy() for a, b in spans]
    entry, top = int(hnsw.entry_point), int(hnsw.max_level)
    for a, b in spans:
        links[a:b] = -1
    if not live[entry]:  # search starts there: another node of the highest layer left
        levels = np.where(live, faiss.vector_to_array(hnsw.levels)[: len(live)], 0)
        hnsw.entry_point = int(np.argmax(levels))
        hnsw.max_level = max(int(levels.max()) - 1, 0)
    try:
        yield
    finally:
        for (a, b), old in zip(spans, saved, strict=True):
            links[a:b] = old
        hnsw.entry_point, hnsw.max_level = entry, top


def _require() -> Any:
    faiss = faiss_module()
    if faiss is None:
        raise RuntimeError("faiss is not installed: pip install 'engramdb[faiss]'")
    return faiss
