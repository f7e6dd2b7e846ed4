"""Scale: ingest rate, search latency, disk, memory and cold start at 10k / 100k / 1M memories,
in one scope and across many scopes, on any backend.

    python benchmarks/scale.py [--store URL] [--sizes 10000,100000,1000000] [--layouts one,many]
                               [--pool 10000] [--out docs/results/scale_<backend>.json]
    python benchmarks/scale.py --report   # the table of docs/benchmarks.md and the plot

The corpus is synthetic (``scale_corpus.py``: many users, dated sessions, turns from templates),
with cached vectors. Records go in through the storage contract only, as an import does: one
``Store.transaction()`` inserts 1,000 records, the next stores their vectors (``put_vectors``).
Layouts: ``one`` puts every memory in one user's scope and grows it; ``many`` adds users of
~2,000 memories each (lognormal, 100 to 20,000). Each layout has a store of its own: with
several layouts ``--store`` must contain ``{layout}`` (default: a folder in the temp dir).

After each size, a fresh process opens the store and measures, for that layout's scope(s):
open + first search (the cold start after an import: no index files yet), the time until
the backend's background index builds are done (the ``indexes_building`` count of ``stats()``,
where a backend reports one), 200 lexical and 200 dense candidate searches (``limit=100``, what
``Memory.search`` asks for), 200 dense searches filtered to half the scope, 100
``Memory.search`` calls end to end (bundled embedder, query embedding included), the recall of
the dense candidates against an exact scan (layout ``one``), resident memory (VmRSS) and
the store's bytes (``stats()["bytes"]``). A second fresh process then measures the cold start
again, now with whatever the first one left behind (index files). Only the backend URL names
the backend: everything goes through ``resolve_store`` and the ``Store`` protocol.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scale_corpus import CACHE, TENANT, Corpus, Pool, cached_vectors, questions
from speed import _code, _machine, pct

from engramdb.backends import Store, resolve_store
from engramdb.embedders.local import LocalEmbedder
from engramdb.records import Filter, Row, Vector
from engramdb.types import Scope

EMBEDDER = LocalEmbedder.name
DIM = LocalEmbedder.dim
BIG = "big"
BATCH = 1000
CANDIDATES = 100
QUERIES = 200
END_TO_END = 100
#: Lexical searches checked against an exact BM25 over every posting (seconds each at 1M).
LEXICAL_TRUTH = 40
HALF = Filter(metadata=(("channel", "app"),))
#: Thread settings recorded with the results: on a busy 2-core machine, BLAS threads that wait
#: for each other made one exact scan of 6,000 vectors 20x slower (docs/benchmarks.md).
_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# -- the plan: who holds how many memories at each size -----------------------------------------


def user_sizes(seed: int = 3) -> Iterator[tuple[str, int]]:
    """Users of the ``many`` layout with their full sizes (lognormal around 2,000)."""
    rng = random.Random(seed)
    for k in range(10**7):
        yield f"u{k:06d}", int(min(20_000, max(100, rng.lognormvariate(math.log(1500), 0.8))))


def plan(layout: str, size: int, biggest: int) -> dict[str, tuple[int, int]]:
    """user -> (memories at this size, memories in the end) for a store of ``size``."""
    if layout == "one":
        return {BIG: (size, biggest)}
    out, total = {}, 0
    for user, full in user_sizes():
        if total >= size:
            break
        out[user] = (min(full, size - total), full)
        total += out[user][0]
    return out


# -- ingest ----------------------------------------------------------------------------------------


class Truth:
    """The exact top-100 of every query over all vectors written so far (for recall)."""

    def __init__(self, queries: npt.NDArray[np.float32], k: int = CANDIDATES) -> None:
        self.queries, self.k = queries, k
        self.scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        self.ids = np.zeros((len(queries), 0), dtype="<U36")

    def update(self, ids: list[str], vecs: npt.NDArray[np.float32]) -> None:
        scores = np.concatenate([self.scores, self.queries @ vecs.T], axis=1)
        new = np.broadcast_to(np.array(ids, dtype="<U36"), (len(scores), len(ids)))
        names = np.concatenate([self.ids, new], axis=1)
        keep = np.argsort(-scores, axis=1, kind="stable")[:, : self.k]
        self.scores = np.take_along_axis(scores, keep, 1)
        self.ids = np.take_along_axis(names, keep, 1)


def ingest(
    url: str, corpus: Corpus, have: dict[str, int], want: dict[str, tuple[int, int]],
    truth: Truth | None,
) -> tuple[int, float]:  # fmt: skip
    """Bring every user to its count; the records written and the seconds spent writing."""
    store = resolve_store(url, dim=DIM)
    written, seconds = 0, 0.0
    try:
        if store.get_meta("embedder") is None:  # what Memory checks when it opens the store
            with store.transaction() as tx:
                tx.set_meta("embedder", EMBEDDER)
                tx.set_meta("embedder_dim", str(DIM))
        for user, (count, full) in want.items():
            turns = corpus.turns(user, count - have.get(user, 0), expected=full)
            while batch := [t for _, t in zip(range(BATCH), turns, strict=False)]:
                seconds += _write(store, corpus, batch)
                written += len(batch)
                if truth is not None:
                    truth.update([r.id for r, _ in batch], np.stack([v for _, v in batch]))
            have[user] = count
    finally:
        store.close()
    return written, seconds


def _write(store: Store, corpus: Corpus, batch: list[tuple[Row, Vector]]) -> float:
    t0 = time.perf_counter()
    with store.transaction() as tx:
        tx.insert([row for row, _ in batch], "import")
    with store.transaction() as tx:
        tx.put_vectors(TENANT, [corpus.vector_item(row, vec) for row, vec in batch])
    return time.perf_counter() - t0


# -- measuring, in a fresh process -----------------------------------------------------------------


def rss_kib() -> dict[str, int]:
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def _timed(calls: list[Callable[[], object]]) -> tuple[list[float], list[object]]:
    ms, out = [], []
    for call in calls:
        t0 = time.perf_counter()
        out.append(call())
        ms.append((time.perf_counter() - t0) * 1000)
    return ms, out


def _summary(ms: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(ms), "p95": pct(ms, 95), "n": len(ms)}


def probe(job: dict[str, Any]) -> dict[str, Any]:
    """Open, first search, wait for index builds, then the timed searches (see the module doc)."""
    before = rss_kib()
    t0 = time.perf_counter()
    store = resolve_store(job["url"], dim=DIM)
    opened = time.perf_counter() - t0
    texts, vecs = job["queries"], np.load(job["query_vectors"])
    rng = random.Random(5)
    users = [rng.choice(job["users"]) for _ in range(QUERIES)]
    t1 = time.perf_counter()
    scope = Scope(TENANT, users[0], None)
    store.lexical(scope, texts[0], CANDIDATES, Filter())
    store.dense(scope, vecs[0], CANDIDATES, [Filter()])
    out: dict[str, Any] = {"open_s": opened, "first_search_s": time.perf_counter() - t1}
    waited, out["stats_call_s"] = _indexes_ready(store)
    out["indexes_ready_s"] = waited + opened + out["first_search_s"]
    if job.get("cold_only"):
        out["rss_kib"] = rss_kib()
        store.close()
        return out
    pairs = [(Scope(TENANT, u, None), i % len(texts)) for i, u in enumerate(users)]
    first_ms, _ = _timed([lambda s=s, i=i: store.lexical(s, texts[i], CANDIDATES, Filter())
                          for s, i in pairs])  # fmt: skip
    lexical_ms, lexical = _timed([lambda s=s, i=i: store.lexical(s, texts[i], CANDIDATES, Filter())
                                  for s, i in pairs])  # fmt: skip
    dense_ms, found = _timed([lambda s=s, i=i: store.dense(s, vecs[i], CANDIDATES, [Filter()])[0]
                              for s, i in pairs])  # fmt: skip
    half_ms, _ = _timed([lambda s=s, i=i: store.dense(s, vecs[i], CANDIDATES, [HALF])[0]
                         for s, i in pairs])  # fmt: skip
    out["rss_kib"] = rss_kib()  # the indexes, before Memory loads the embedding model
    out |= {
        "first_search_in_scope_ms": _summary(first_ms),
        "lexical_ms": _summary(lexical_ms),
        "dense_ms": _summary(dense_ms),
        "dense_half_filtered_ms": _summary(half_ms),
        "end_to_end_ms": _summary(_end_to_end(store, texts, users)),
    }
    if job.get("truth"):
        truth = np.load(job["truth"])
        out["dense_recall"] = _recall(found, [truth[i].tolist() for _, i in pairs])
    exact = getattr(store, "lexical_exact", None)  # PostgreSQL prunes; SQLite's BM25 is exact
    if exact is not None:
        exact_ids = [[h[0] for h in exact(s, texts[i], CANDIDATES, Filter())]
                     for s, i in pairs[:LEXICAL_TRUTH]]  # fmt: skip
        out["lexical_recall"] = _recall(lexical[:LEXICAL_TRUTH], exact_ids)
    out["rss_end_kib"] = rss_kib()
    out["rss_before_open_kib"] = before
    out["memories_loaded"] = sum(job["sizes"][u] for u in set(users))
    out["store_bytes"] = store.stats(TENANT)["bytes"]
    store.close()
    return out


def _indexes_ready(store: Store) -> tuple[float, float]:
    """Seconds until the store reports no index being built (0 when it never says), counted to
    the start of the ``stats()`` call that said so, and how long that call took (a count over
    the tenant's records: seconds at a million)."""
    t0 = time.perf_counter()
    while True:
        asked = time.perf_counter()
        building = store.stats(TENANT).get("indexes_building", 0)
        if not building:
            return asked - t0, time.perf_counter() - asked
        time.sleep(0.25)


def _end_to_end(store: Store, texts: list[str], users: list[str]) -> list[float]:
    from engramdb import Memory

    mem = Memory(store=store, embedder="local", tenant=TENANT)
    mem.search("warm up the model", user_id=users[0])
    ms, _ = _timed([lambda u=u, q=q: mem.search(q, user_id=u, limit=10)
                    for u, q in zip(users[:END_TO_END], texts, strict=False)])  # fmt: skip
    return ms


def _recall(found: list[Any], truths: list[list[str]]) -> dict[str, float]:
    """Mean share of each search's true top-k it found (k = 10, 100; truths aligned with it)."""
    at = {10: [], 100: []}  # type: dict[int, list[float]]
    for hits, truth in zip(found, truths, strict=True):
        ids, top10 = {h[0] for h in hits[:100]}, {h[0] for h in hits[:10]}
        for k, mine in ((10, top10), (100, ids)):
            if truth[:k]:
                at[k].append(len(mine & set(truth[:k])) / len(truth[:k]))
    return {f"recall@{k}": float(np.mean(v)) for k, v in at.items()}


def run_probe(job: dict[str, Any], folder: Path) -> dict[str, Any]:
    path = folder / "job.json"
    path.write_text(json.dumps(job))
    proc = subprocess.run(
        [sys.executable, __file__, "--probe", str(path)],
        capture_output=True, text=True, timeout=6 * 3600,
    )  # fmt: skip
    if proc.returncode:
        raise RuntimeError(f"the probe failed:\n{proc.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


# -- one layout ------------------------------------------------------------------------------------


@dataclass
class Queries:
    texts: list[str]
    path: Path  # their vectors, as .npy (for the probe)
    vectors: npt.NDArray[np.float32]


def run_layout(
    args: argparse.Namespace, layout: str, pool: Pool, work: Path, queries: Queries
) -> Iterator[dict[str, Any]]:
    """Grow the layout's store size by size; one row of measurements per size."""
    url = args.store.replace("{layout}", layout)
    _check_empty(url)
    corpus, have = Corpus(pool, EMBEDDER), dict[str, int]()
    truth = Truth(queries.vectors) if layout == "one" else None
    for size in args.sizes:
        want = plan(layout, size, max(args.sizes))
        written, seconds = ingest(url, corpus, have, want, truth)
        job: dict[str, Any] = {
            "url": url, "queries": queries.texts, "query_vectors": str(queries.path),
            "users": list(want), "sizes": {u: c for u, (c, _) in want.items()},
        }  # fmt: skip
        if truth is not None:
            np.save(work / "truth.npy", truth.ids)
            job["truth"] = str(work / "truth.npy")
        row: dict[str, Any] = {
            "layout": layout, "memories": size, "scopes": len(want),
            "date": datetime.now(UTC).isoformat(),
            "ingest": {"records": written, "seconds": seconds, "per_s": written / seconds},
            "load_avg_before_probe": list(os.getloadavg()),
        }  # fmt: skip
        row["probe"] = run_probe(job, work)
        row["cold_with_files"] = run_probe({**job, "cold_only": True}, work)
        yield row


def _check_empty(url: str) -> None:
    store = resolve_store(url, dim=DIM)
    try:
        if store.stats(TENANT)["memories"]:
            raise SystemExit(
                f"{url} already holds memories of tenant {TENANT!r}: give an empty store"
            )
    finally:
        store.close()


def _merged(out: Path, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with the rows of an earlier run at the sizes and layouts it did not measure
    (each row has its own date and load)."""
    if not out.exists():
        return result
    earlier = json.loads(out.read_text())
    done = {(r["layout"], r["memories"]) for r in result["rows"]}
    kept = [r for r in earlier["rows"] if (r["layout"], r["memories"]) not in done]
    order = {"one": 0, "many": 1}
    rows = sorted(kept + result["rows"], key=lambda r: (order.get(r["layout"], 2), r["memories"]))
    runs = earlier.get("earlier_runs", [])
    if earlier.get("date") != result["date"]:  # not this run's own previous write
        runs = [*runs, {k: earlier[k] for k in ("date", "machine", "code") if k in earlier}]
    return {**result, "rows": rows, "earlier_runs": runs}


def _default_store() -> str:
    return str(Path(tempfile.gettempdir()) / "engramdb-scale" / "{layout}.db")


def _server_settings(url: str) -> dict[str, str]:
    """The PostgreSQL server's version and the settings that move these figures."""
    import psycopg

    names = ["server_version", "shared_buffers", "work_mem", "maintenance_work_mem", "fsync",
             "synchronous_commit", "max_parallel_workers_per_gather"]  # fmt: skip
    with psycopg.connect(url.split("?")[0]) as conn:
        return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]


def _backend(url: str) -> str:
    return "postgres" if url.startswith(("postgresql://", "postgres://")) else "sqlite"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=_default_store())
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--layouts", default="one,many")
    parser.add_argument("--pool", type=int, default=10_000, help="sentences per side")
    parser.add_argument("--out", default=None)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--report", action="store_true", help="table and plot from the results")
    parser.add_argument(
        "--merge", action="store_true",
        help="keep the rows of --out at the layouts and sizes this run does not measure",
    )  # fmt: skip
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(json.loads(Path(args.probe).read_text()))))
        return
    if args.report:
        import scale_report

        scale_report.main()
        return
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    layouts = args.layouts.split(",")
    if len(layouts) > 1 and "{layout}" not in args.store:
        parser.error("with several layouts, --store must contain {layout} (one store each)")
    backend = _backend(args.store)
    out = Path(args.out or f"docs/results/scale_{backend}.json")
    if args.store == _default_store():
        for layout in layouts:  # our own scratch stores: start empty
            for old in Path(args.store.replace("{layout}", layout)).parent.glob(f"{layout}.db*"):
                old.unlink()
    pool = Pool.build(args.pool, EMBEDDER)
    texts = questions(QUERIES)
    queries = Queries(texts, CACHE / "scale-questions.npy",
                      cached_vectors(texts, EMBEDDER, f"questions{QUERIES}"))  # fmt: skip
    np.save(queries.path, queries.vectors)
    machine = _machine() | {k: os.environ[k] for k in _THREADS if k in os.environ}
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(), "backend": backend, "machine": machine,
        "code": _code(), "embedder": EMBEDDER, "pool_per_side": args.pool, "rows": [],
    }  # fmt: skip
    if backend == "postgres":
        result["server"] = _server_settings(args.store.replace("{layout}", "postgres"))
    with tempfile.TemporaryDirectory() as tmp:
        for layout in layouts:
            for row in run_layout(args, layout, pool, Path(tmp), queries):
                result["rows"].append(row)
                result["machine"]["load_avg_end"] = list(os.getloadavg())
                out.parent.mkdir(parents=True, exist_ok=True)
                written = _merged(out, result) if args.merge else result
                out.write_text(json.dumps(written, indent=2) + "\n")
                print(_line(row), flush=True)


def _line(row: dict[str, Any]) -> str:
    p, c = row["probe"], row["cold_with_files"]
    return (
        f"{row['layout']:>4} {row['memories']:>8,}: ingest {row['ingest']['per_s']:.0f}/s; "
        f"lexical p50 {p['lexical_ms']['p50']:.1f} ms, dense p50 {p['dense_ms']['p50']:.1f} ms, "
        f"Memory.search p50 {p['end_to_end_ms']['p50']:.1f} ms; cold start "
        f"{p['open_s'] + p['first_search_s']:.2f} s ({c['open_s'] + c['first_search_s']:.2f} s "
        f"with files); indexes ready {p['indexes_ready_s']:.0f} s; "
        f"{p['store_bytes'] / row['memories']:.0f} B/memory on disk"
    )


if __name__ == "__main__":
    main()
