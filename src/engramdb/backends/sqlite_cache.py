"""Index files beside a SQLite store: what a big scope's indexes cost to build, kept on disk.

A scope of a million memories takes seconds to index from the database (its BM25 postings) and
minutes (its HNSW graph); these files let the next process start from the last result instead.
They sit in the store's folder, named after the store file, so whatever reads or copies the
store's files sees them too::

    engram.db-lexical-<scope id>-<version>-<highest row id>.idx   BM25 postings (term hashes)
    engram.db-ann-<scope id>-<version>-<highest row id>.idx       HNSW neighbour lists

Both are derived: a missing, stale, foreign or corrupt file (checksummed) is ignored and the
index built from the database, as without files. A file is only written for a scope of at least
:data:`CACHE_MIN` records, and never holds a vector (the graph is read back over the vectors of
the database).

What keeps a file true to the database: it names the highest row id it covers. Row ids only
grow, so a later insert has a higher one and is read from the database on top of the file. A
commit that deletes a record, or rewrites the keys or vector of one the file covers, removes
the scope's file, in the commit's write lane: no file outlives a delete with that record's terms
or neighbour list in it. A file is only published (renamed into place) if the scope has not
changed underneath it: by another process (its version in the database is the one the index in
memory is at) or by a removal of this process since it was captured.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .ann import TOMBSTONES
from .lexical import ANALYZER, LexicalSet
from .positions import Places
from .vectors import VectorSet

log = logging.getLogger("engramdb")

#: Records a scope needs before its indexes are written to files: a smaller one loads from the
#: database in well under a second (docs/benchmarks.md).
CACHE_MIN = 50_000
#: A cached BM25 index is only topped up with records written since it, up to this share of
#: it: appending them one by one is slower than a fresh bulk build beyond that.
CATCH_UP_SHARE = 0.05
#: How long after a commit removed a scope's graph file the graph in memory is saved again.
RESAVE_AFTER_S = 5.0
_MAGIC = b"engramdb-index\n"
_FORMAT = 1
_ALIGN = 64

#: ``publish(scope_id, is_current, move)``: under the store's write lock, calls ``move`` if
#: ``is_current(the scope's version in the database)``; whether it did.
Publish = Callable[[int, Callable[[int], bool], Callable[[], None]], bool]
#: What a commit did to a scope, as (operation, row id or None) pairs.
Changes = Sequence[tuple[str, int | None]]


class IndexFiles:
    """The index files of one store."""

    def __init__(self, db_path: str, publish: Publish) -> None:
        self._folder = Path(db_path).parent
        self._prefix = Path(db_path).name
        self._publish = publish
        self._timers: dict[int, threading.Timer] = {}
        self._sets: dict[int, VectorSet] = {}  # the newest vector set of each scope
        self._lock = threading.Lock()
        self._closed = False
        self._writing = 0  # files being written: close() waits for them
        self._written = threading.Condition(self._lock)

    # -- dense ---------------------------------------------------------------------------------

    def new_vectors(self, scope_id: int, dim: int, version: int) -> VectorSet:
        """An empty vector set of the scope whose HNSW graph is saved here once built."""
        vset = VectorSet(dim, version)
        vset.on_ann = lambda built: self.save_graph(scope_id, built)
        with self._lock:
            older = self._sets.get(scope_id)
            self._sets[scope_id] = vset
        if older is not None:
            older.stop()  # replaced (reloaded): its build would be for nothing
        return vset

    def seed_graph(self, scope_id: int, vset: VectorSet) -> None:
        """Hand the scope's saved graph, if it still fits the records, to a freshly loaded
        vector set."""
        found = None if len(vset) < CACHE_MIN else self._read("ann", scope_id)
        if found is None:
            return
        header, arrays = found
        positions = vset.positions_of(np.asarray(arrays["rids"]))
        known = np.count_nonzero(positions >= 0)
        if header.get("dim") != vset.dim or known < (1 - TOMBSTONES) * len(positions):
            return  # of other vectors, or mostly gone: a new graph is better
        vset.seed(np.asarray(arrays["graph"]), positions)

    def save_graph(self, scope_id: int, vset: VectorSet) -> None:
        """Write the scope's HNSW graph (on the build's thread, or a timer's)."""
        captured = vset.graph()
        if captured is None or len(vset) < CACHE_MIN:
            return
        graph, rids, version, removals = captured
        arrays: dict[str, npt.NDArray[Any]] = {"rids": rids, "graph": graph}
        top = int(rids.max()) if len(rids) else 0
        header: dict[str, Any] = {"kind": "ann", "scope": scope_id, "dim": vset.dim}

        def current(db_version: int) -> bool:
            return db_version == vset.version and vset.removals == removals

        self._write("ann", scope_id, version, top, header, arrays, current)

    # -- lexical -------------------------------------------------------------------------------

    def lexical(
        self, scope_id: int, version: int, places: Places
    ) -> tuple[LexicalSet, Places] | None:
        """The scope's BM25 index from its file, and the places of records written since the
        file (to append); None when there is no usable file."""
        found = None if len(places) < CACHE_MIN else self._read("lexical", scope_id)
        if found is None:
            return None
        header, arrays = found
        rids = arrays["rids"]
        count = len(rids)
        fresh = len(places) - count
        if header.get("analyzer") != ANALYZER or fresh < 0 or fresh > CATCH_UP_SHARE * count:
            return None
        if not np.array_equal(places.rids[:count], rids):
            return None  # records the file covers were removed by a writer that left it
        try:
            lset = LexicalSet.restore(places.take(np.arange(count)), arrays, version)
        except (ValueError, KeyError):
            return None
        return lset, places.take(np.arange(count, len(places)))

    def save_lexical(self, scope_id: int, lset: LexicalSet, places: Places) -> None:
        """Write a freshly loaded BM25 index to a file, on a thread of its own."""
        if lset.loaded < CACHE_MIN or lset.loaded != len(places):
            return
        removals = lset.removals
        arrays: dict[str, npt.NDArray[Any]] = {"rids": places.rids, **lset.postings()}
        header: dict[str, Any] = {"kind": "lexical", "scope": scope_id, "analyzer": ANALYZER}
        top = int(places.rids.max())

        def current(db_version: int) -> bool:
            return db_version == lset.version and lset.removals == removals

        def write() -> None:
            self._write("lexical", scope_id, lset.version, top, header, arrays, current)

        threading.Thread(target=write, name="engramdb-index-file", daemon=True).start()

    # -- keeping files true to the database ------------------------------------------------------

    def after_commit(self, scope_id: int, changes: Changes, vset: VectorSet | None) -> None:
        """Remove the scope's files that a commit made untrue (in the commit's write lane)."""
        dropped = False
        for kind, path, top in self._files(scope_id):
            if _outdated(kind, top, changes):
                _unlink(path)
                dropped |= kind == "ann"
        if dropped and vset is not None:
            self._resave(scope_id, vset)

    def drop(self) -> None:
        """Remove every index file of the store (a purge, or vectors reset)."""
        heads = tuple(f"{self._prefix}-{kind}-" for kind in ("ann", "lexical"))
        with contextlib.suppress(OSError), os.scandir(self._folder) as entries:
            for entry in entries:
                if entry.name.startswith(heads):
                    _unlink(Path(entry.path))

    def flush(self, wait_s: float = 60.0) -> None:
        """Save now the graphs waiting to be saved again, and let files being written finish
        (the store is about to close: a file cut short would be left behind)."""
        with self._lock:
            pending, self._timers = self._timers, {}
            sets = list(self._sets.values())
        for vset in sets:
            vset.stop()  # a build not done by now is not saved
        for timer in pending.values():
            timer.cancel()
            timer.function(*timer.args, **timer.kwargs)
        with self._written:
            self._written.wait_for(lambda: self._writing == 0, timeout=wait_s)

    def close(self) -> None:
        """Stop builds and pending saves (the store is closing)."""
        with self._lock:
            self._closed = True
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            sets, self._sets = list(self._sets.values()), {}
        for vset in sets:
            vset.stop()

    def _resave(self, scope_id: int, vset: VectorSet) -> None:
        """Save the graph again soon: after a burst of deletes, once."""
        with self._lock:
            if self._closed or scope_id in self._timers:
                return

            def fire() -> None:
                with self._lock:
                    self._timers.pop(scope_id, None)
                self.save_graph(scope_id, vset)

            timer = threading.Timer(RESAVE_AFTER_S, fire)
            timer.daemon = True
            self._timers[scope_id] = timer
            timer.start()

    # -- files ---------------------------------------------------------------------------------

    def _files(self, scope_id: int) -> list[tuple[str, Path, int]]:
        """(kind, path, highest row id) of the scope's files, temporary ones included."""
        heads = {f"{self._prefix}-{kind}-{scope_id}-": kind for kind in ("ann", "lexical")}
        found = []
        with contextlib.suppress(OSError), os.scandir(self._folder) as entries:
            for entry in entries:
                for head, kind in heads.items():
                    if entry.name.startswith(head):
                        found.append((kind, Path(entry.path), _top_rid(entry.name)))
        return found

    def _read(
        self, kind: str, scope_id: int
    ) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]] | None:
        for found_kind, path, _ in self._files(scope_id):
            if path.suffix == ".tmp" and not _writer_alive(path):
                _unlink(path)  # left by a process that ended while writing it
            if found_kind != kind or path.suffix != ".idx":
                continue
            try:
                return read_file(path, kind, scope_id)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("index file %s is unusable (%s): building the index anew", path, exc)
                _unlink(path)
        return None

    def _write(
        self,
        kind: str,
        scope_id: int,
        version: int,
        top: int,
        header: dict[str, Any],
        arrays: dict[str, npt.NDArray[Any]],
        current: Callable[[int], bool],
    ) -> None:
        with self._lock:
            if self._closed:
                return
            self._writing += 1
        try:
            self._write_and_publish(kind, scope_id, version, top, header, arrays, current)
        finally:
            with self._written:
                self._writing -= 1
                self._written.notify_all()

    def _write_and_publish(
        self,
        kind: str,
        scope_id: int,
        version: int,
        top: int,
        header: dict[str, Any],
        arrays: dict[str, npt.NDArray[Any]],
        current: Callable[[int], bool],
    ) -> None:
        final = self._folder / f"{self._prefix}-{kind}-{scope_id}-{version}-{top}.idx"
        temp = final.with_name(f"{final.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            write_file(temp, header, arrays)
        except OSError as exc:
            log.warning("could not write index file %s: %s", final, exc)
            _unlink(temp)
            return

        def move() -> None:
            for other_kind, path, _ in self._files(scope_id):
                if other_kind == kind and path != temp:
                    _unlink(path)
            os.replace(temp, final)  # gone if a delete removed it meanwhile: not published

        try:
            published = self._publish(scope_id, current, move)
        except OSError:
            published = False
        if not published:
            _unlink(temp)


def store_bytes(db_path: str) -> int:
    """Bytes of the store's files: the database, its log and the index files (one may go away
    while counted: a delete removes index files)."""
    total, prefix = 0, Path(db_path).name
    with contextlib.suppress(OSError), os.scandir(Path(db_path).parent) as entries:
        for entry in entries:
            if entry.name.startswith(prefix):
                with contextlib.suppress(OSError):
                    total += entry.stat().st_size
    return total


def write_file(path: Path, header: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> None:
    """A header and arrays, each array aligned for memory mapping, with a checksum."""
    datas = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    layout, offset, crc = [], 0, 0
    for name, data in datas.items():
        layout.append([name, data.dtype.str, list(data.shape), offset])
        offset += _aligned(data.nbytes)
        crc = zlib.crc32(_bytes(data), crc)
    head = json.dumps({**header, "format": _FORMAT, "arrays": layout, "crc32": crc}).encode()
    start = _aligned(len(_MAGIC) + 8 + len(head))
    with open(path, "wb") as out:
        out.write(_MAGIC + len(head).to_bytes(8, "little") + head)
        out.write(b"\0" * (start - out.tell()))
        for data in datas.values():
            out.write(_bytes(data))
            out.write(b"\0" * (_aligned(data.nbytes) - data.nbytes))


def read_file(
    path: Path, kind: str, scope_id: int
) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The header and arrays (memory-mapped, read-only) of a file :func:`write_file` wrote.

    Raises:
        ValueError: not such a file, of another kind or scope, or its checksum is wrong.
    """
    with open(path, "rb") as f:
        if f.read(len(_MAGIC)) != _MAGIC:
            raise ValueError("not an engramdb index file")
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
        if header.get("format") != _FORMAT or header.get("kind") != kind:
            raise ValueError("another format or kind")
        if header.get("scope") != scope_id:
            raise ValueError("another scope's file")
        start = _aligned(len(_MAGIC) + 8 + size)
        arrays, crc = {}, 0
        for name, dtype, shape, offset in header["arrays"]:
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            f.seek(start + offset)
            crc = _crc(f, nbytes, crc)
            arrays[name] = (
                np.memmap(path, dtype=dtype, mode="r", offset=start + offset, shape=tuple(shape))
                if nbytes
                else np.zeros(shape, dtype=dtype)
            )
    if crc != header.get("crc32"):
        raise ValueError("checksum mismatch")
    return header, arrays


def _bytes(data: npt.NDArray[Any]) -> memoryview:
    """An array's bytes without a copy."""
    return data.reshape(-1).view(np.uint8).data


def _crc(f: Any, nbytes: int, crc: int) -> int:
    """The checksum continued over the next ``nbytes`` of ``f``, read in pieces (not mapped:
    a check must not make the whole file resident in this process)."""
    while nbytes > 0:
        piece = f.read(min(nbytes, 1 << 24))
        if not piece:
            raise ValueError("the file is cut short")
        crc = zlib.crc32(piece, crc)
        nbytes -= len(piece)
    return crc


def _outdated(kind: str, top: int, changes: Changes) -> bool:
    """Whether a commit's changes make a file of this kind untrue: a delete (its record may be
    in it), a dropped vector (graph), or new keys or a new vector for a record it covers."""
    rewritten = "vector" if kind == "ann" else "keys"
    for op, rid in changes:
        if op == "delete" or (op == "unvector" and kind == "ann"):
            return True
        if op == rewritten and rid is not None and rid <= top:
            return True
    return False


def _writer_alive(temp: Path) -> bool:
    """Whether the process that is writing a temporary file (its pid is in the name) runs."""
    try:
        pid = int(temp.name.rsplit(".", 2)[-2].split("-")[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except OSError:
        return True  # it exists but is not ours to signal
    return True


def _top_rid(name: str) -> int:
    try:
        return int(name.split(".idx")[0].rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1  # an unknown name: treated as covering nothing


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:  # kept: say so, as a delete must not leave data behind unnoticed
        log.warning("could not remove index file %s: %s", path, exc)
