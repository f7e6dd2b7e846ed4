"""How long building one scope's BM25 index takes, three ways, at 100k records (no database).

    python benchmarks/lexical_load.py [--records 100000] [--out docs/results/lexical_load.json]

The records are the synthetic chat turns of ``speed.py``, each keyed with the turn before it as
the write path does. Each way runs three times; the median is kept:

- ``analyse + append``: tokenize and stem every key, then append document by document (what a
  cold start did before terms were stored with the records); the stemmer's memo starts empty
  each time, as in a fresh process;
- ``append stored terms``: the same appends with the terms already analysed (a lower bound for
  reading stored terms and appending them one record at a time);
- ``bulk load``: the stored form of the terms (what ``lexical_terms`` holds) joined and built
  in one pass with numpy (``LexicalSet.load``, what a cold start does now).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from speed import synthetic_messages

from engramdb import text
from engramdb.backends import lexical
from engramdb.backends.lexical import STORED, Doc, LexicalSet, encode_terms, key_terms
from engramdb.backends.positions import Places
from engramdb.records import Keys


def _keys(count: int) -> list[Keys]:
    turns = [m["content"] for m in synthetic_messages(count)]
    return [Keys(own, "Ana" if i else None, turns[i - 1][-300:] if i else "") for i, own in
            enumerate(turns)]  # fmt: skip


def _forget_analysis() -> None:
    text._STEMMER.memo.clear()
    lexical._IDS.clear()


def _timed(build: Callable[[], object], before: Callable[[], None] | None = None) -> float:
    runs = []
    for _ in range(3):
        if before is not None:
            before()
        t0 = time.perf_counter()
        build()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--out", default="docs/results/lexical_load.json")
    args = parser.parse_args()
    keys = _keys(args.records)
    places = [(f"m{i}", i + 1, float(i), 0) for i in range(len(keys))]
    terms = [key_terms(k) for k in keys]
    docs: list[Doc] = [(*p, t) for p, t in zip(places, terms, strict=True)]
    blobs = [encode_terms(t) for t in terms]

    def analyse_and_append() -> None:
        LexicalSet().add((*p, key_terms(k)) for p, k in zip(places, keys, strict=True))

    def bulk_load() -> None:
        stored = np.frombuffer(b"".join(blobs), dtype=STORED)
        counts = np.fromiter(map(len, blobs), np.int64, count=len(blobs)) // STORED.itemsize
        LexicalSet().load(Places.of(places), stored, counts)

    seconds = {
        "analyse + append": _timed(analyse_and_append, _forget_analysis),
        "append stored terms": _timed(lambda: LexicalSet().add(docs)),
        "bulk load": _timed(bulk_load),
    }
    for way, s in seconds.items():
        print(f"{way:>22}: {s:.3f} s", flush=True)
    result = {
        "date": datetime.now(UTC).isoformat(),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg": list(os.getloadavg()),
        },
        "records": len(keys),
        "postings": int(sum(len(t) for t in terms)),
        "seconds_median_of_3": seconds,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
