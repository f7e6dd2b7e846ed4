"""Finish a scale.py layout on PostgreSQL whose ingest was cut off at its last size (the server
died): the corpus is regenerated in the same order (it is deterministic), batches already stored
with their vectors are skipped, the rest written, then the last size is probed as scale.py
probes it, and its row replaced in the results. The ingest rate reported is that of the records
written here (the last stretch before the size), and says so; with nothing left to write, the
row keeps the ingest figures it had (a probe again, after a change of the search).

    python benchmarks/scale_resume.py postgresql://.../scale_one one OUT.json
"""

import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scale
from scale_corpus import CACHE, TENANT, Corpus, Pool, cached_vectors, questions

from engramdb.backends import resolve_store

url, layout, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
sizes = [10_000, 100_000, 1_000_000]
pool = Pool.build(10_000, scale.EMBEDDER)
texts = questions(scale.QUERIES)
queries = scale.Queries(
    texts,
    CACHE / "scale-questions.npy",
    cached_vectors(texts, scale.EMBEDDER, f"questions{scale.QUERIES}"),
)
np.save(queries.path, queries.vectors)
corpus, have = Corpus(pool, scale.EMBEDDER), {}
truth = scale.Truth(queries.vectors) if layout == "one" else None
store = resolve_store(url, dim=scale.DIM)
written, seconds, skipped = 0, 0.0, 0
for size in sizes:
    want = scale.plan(layout, size, max(sizes))
    for user, (count, full) in want.items():
        turns = corpus.turns(user, count - have.get(user, 0), expected=full)
        while batch := [t for _, t in zip(range(scale.BATCH), turns, strict=False)]:
            ids = [r.id for r, _ in batch]
            if size == max(sizes):
                with store._pool.connection() as conn:
                    done = conn.execute(
                        "SELECT count(*) FROM memories m JOIN vectors v ON v.tenant = m.tenant "
                        "AND v.rid = m.rid WHERE m.tenant = %s AND m.id = ANY(%s)",
                        (TENANT, ids),
                    ).fetchone()[0]
                if done == len(ids):
                    skipped += len(ids)
                else:
                    seconds += scale._write(store, corpus, batch)
                    written += len(batch)
            if truth is not None:
                truth.update(ids, np.stack([v for _, v in batch]))
        have[user] = count
store.close()
print(f"skipped {skipped}, wrote {written} in {seconds:.1f} s", flush=True)
size = max(sizes)
want = scale.plan(layout, size, size)
with tempfile.TemporaryDirectory() as tmp:
    work = Path(tmp)
    job = {
        "url": url,
        "queries": queries.texts,
        "query_vectors": str(queries.path),
        "users": list(want),
        "sizes": {u: c for u, (c, _) in want.items()},
    }
    if truth is not None:
        np.save(work / "truth.npy", truth.ids)
        job["truth"] = str(work / "truth.npy")
    row = {
        "layout": layout,
        "memories": size,
        "scopes": len(want),
        "date": datetime.now(UTC).isoformat(),
        "ingest": {
            "records": written,
            "seconds": seconds,
            "per_s": written / seconds,
            "note": f"the last {written:,} records only, written after the server died "
            f"at {size - written:,} (benchmarks/scale_resume.py)",
        }
        if written
        else next(
            r["ingest"] for r in json.loads(out.read_text())["rows"] if r["memories"] == size
        ),
        "load_avg_before_probe": list(os.getloadavg()),
        "code": scale._code(),
    }
    row["probe"] = scale.run_probe(job, work)
    row["cold_with_files"] = scale.run_probe({**job, "cold_only": True}, work)
result = json.loads(out.read_text())
result["rows"] = [r for r in result["rows"] if r["memories"] != size] + [row]
result["machine"]["load_avg_end"] = list(os.getloadavg())
out.write_text(json.dumps(result, indent=2) + "\n")
print(scale._line(row), flush=True)
