"""Ingest throughput, search latency, cold start and filtered search at 1k / 10k / 100k memories in
one scope.

    python benchmarks/speed.py [--sizes 1000 10000 100000] [--embedder local]
                               [--test-embedder-from SIZE] [--out FILE]

Messages are synthetic chat turns generated from a fixed seed (varied topics, names, places,
numbers), ingested in batches of 50 (a session's worth, every other batch with the metadata
``{"topic": "a"}``, the others ``"b"``), with the query embedding included in every search timing.
Then, on the filled store: 200 unfiltered searches; 100 each filtered by metadata (half the
memories), by kinds (all of them) and by session (50 of them); 50 metadata-filtered searches each
right after a write to the scope; 20 single adds; and the cold start, three times: a fresh
interpreter imports engramdb, opens the store and runs one search (each phase timed). Sizes from
``--test-embedder-from`` on use the ``test`` embedder, so that 100k memories ingest in minutes:
their rates and latencies then leave out the model. Prints a table and writes JSON.

The harness uses only the public ``Memory`` API, so it measures older code too:
``PYTHONPATH=/path/to/old/src python benchmarks/speed.py --out before.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engramdb import Memory

NAMES = ["Ana", "Ben", "Chloé", "Dev", "Emeka", "Fatima", "Goro", "Hana", "Ivan", "Jules"]
PLACES = ["Lisbon", "Osaka", "Nairobi", "Toronto", "Krakow", "Lima", "Hanoi", "Oslo", "Accra"]
THINGS = [
    "guitar",
    "sourdough",
    "marathon",
    "chess club",
    "pottery class",
    "tax return",
    "garden",
    "new job",
    "bike repair",
    "piano recital",
    "camping trip",
    "book club",
    "dentist appointment",
    "birthday party",
    "job interview",
    "kayak",
    "cat",
    "roof",
]
VERBS = [
    "started",
    "finished",
    "planned",
    "cancelled",
    "talked about",
    "worried about",
    "bought",
    "sold",
    "fixed",
    "booked",
    "postponed",
    "celebrated",
]
WHEN = [
    "yesterday",
    "last week",
    "this morning",
    "two days ago",
    "last month",
    "on Saturday",
    "recently",
    "a while ago",
    "over the weekend",
    "tonight",
]
TEMPLATES = [
    "{name} {verb} the {thing} in {place} {when}.",
    "I {verb} my {thing} {when}, and {name} helped a lot.",
    "Do you remember when we {verb} the {thing}? That was in {place}.",
    "My friend {name} says the {thing} costs about {n} euros in {place}.",
    "{when} I {verb} the {thing}; it took {n} minutes.",
    "Not sure yet. {name} thinks the {thing} can wait until we are back from {place}.",
]


def synthetic_messages(count: int, seed: int = 13) -> list[dict[str, Any]]:
    """Deterministic, varied chat turns with timestamps an hour apart."""
    rng = random.Random(seed)
    start = datetime(2022, 1, 1, 9, 0, tzinfo=UTC)
    out = []
    for i in range(count):
        text = rng.choice(TEMPLATES).format(
            name=rng.choice(NAMES),
            verb=rng.choice(VERBS),
            thing=rng.choice(THINGS),
            place=rng.choice(PLACES),
            when=rng.choice(WHEN),
            n=rng.randint(2, 500),
        )
        out.append(
            {
                "role": "user" if i % 2 == 0 else "assistant",
                "content": f"{text} (#{i})",
                "timestamp": (start + timedelta(hours=i)).isoformat(),
            }
        )
    return out


def queries(count: int, seed: int = 99) -> list[str]:
    rng = random.Random(seed)
    forms = [
        "What did {name} do with the {thing}?",
        "When did I go to {place}?",
        "How much does the {thing} cost?",
        "What happened with the {thing} last week?",
        "Who helped with my {thing}?",
    ]
    return [
        rng.choice(forms).format(
            name=rng.choice(NAMES), thing=rng.choice(THINGS), place=rng.choice(PLACES)
        )
        for _ in range(count)
    ]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _latencies(mem: Memory, texts: list[str], **kwargs: Any) -> list[float]:
    out = []
    for q in texts:
        t0 = time.perf_counter()
        mem.search(q, user_id="bench", limit=10, **kwargs)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _after_writes(mem: Memory, texts: list[str], filters: dict[str, Any]) -> list[float]:
    """Filtered searches each right after a write to the scope, as an agent adds a turn and then
    searches: nothing derived from the previous write's state of the scope can be reused."""
    out = []
    for j, q in enumerate(texts):
        mem.add(
            f"one more note about the garden, number {j}", user_id="bench", metadata={"topic": "a"}
        )
        t0 = time.perf_counter()
        mem.search(q, user_id="bench", limit=10, filters=filters)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run_size(size: int, embedder: str, folder: Path) -> dict[str, Any]:
    from engramdb import Memory  # here, so that the cold-start probe times the import

    messages = synthetic_messages(size)
    path = folder / f"speed-{size}.db"
    topic_a = {"metadata": {"topic": "a"}}
    with Memory(path, embedder=embedder) as mem:
        mem.search("warm up", user_id="bench")  # load the model outside the timing
        started = time.perf_counter()
        for i in range(0, size, 50):
            topic = "a" if (i // 50) % 2 == 0 else "b"
            mem.add(
                messages[i : i + 50],
                user_id="bench",
                session_id=f"s{i // 50}",
                metadata={"topic": topic},
            )
        ingest_s = time.perf_counter() - started
        mem.search("warm the index", user_id="bench")
        latencies = _latencies(mem, queries(200))
        some = queries(100, seed=7)
        sessions = max(1, size // 50)
        filtered = {
            "metadata": _latencies(mem, some, filters=topic_a),
            "kinds": _latencies(mem, some, filters={"kinds": ["message"]}),
            "session": [
                _latencies(mem, [q], session_id=f"s{(k * 7919) % sessions}")[0]
                for k, q in enumerate(some)
            ],
        }
        t0 = time.perf_counter()
        for j in range(20):
            mem.add(f"a single new message about the kayak, number {j}", user_id="bench")
        single_ms = (time.perf_counter() - t0) / 20 * 1000
        after_write = _after_writes(mem, queries(50, seed=11), topic_a)
        size_bytes = mem.stats()["bytes"]
    cold = [cold_start(path, embedder) for _ in range(3)]
    return {
        "memories": size,
        "embedder": embedder,
        "ingest_msgs_per_s": size / ingest_s,
        "ingest_s": ingest_s,
        "single_add_ms": single_ms,
        "search_p50_ms": statistics.median(latencies),
        "search_p95_ms": pct(latencies, 95),
        "filtered_p50_ms": {k: statistics.median(v) for k, v in filtered.items()},
        "filtered_p95_ms": {k: pct(v, 95) for k, v in filtered.items()},
        "metadata_after_write_p50_ms": statistics.median(after_write),
        "cold_start_s": statistics.median(c["open_s"] + c["first_search_s"] for c in cold),
        "cold_start_runs": cold,
        "store_bytes": size_bytes,
    }


def cold_start(path: Path, embedder: str) -> dict[str, float]:
    """Import, open and first search in a fresh interpreter (the same Python and PYTHONPATH)."""
    proc = subprocess.run(
        [sys.executable, __file__, "--probe", str(path), "--embedder", embedder],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    timings: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return timings


def probe(path: str, embedder: str) -> None:
    t0 = time.perf_counter()
    import engramdb

    t1 = time.perf_counter()
    mem = engramdb.Memory(path, embedder=embedder)
    t2 = time.perf_counter()
    mem.search("What did Ana do with the kayak last week?", user_id="bench", limit=10)
    t3 = time.perf_counter()
    mem.close()
    print(json.dumps({"import_s": t1 - t0, "open_s": t2 - t1, "first_search_s": t3 - t2}))


def _machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    models = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
        if line.startswith("model name")
    ]
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu_model": models[0] if models else platform.processor(),
        "load_avg_start": list(os.getloadavg()),
    }


def _code() -> dict[str, Any]:
    """Which engramdb was measured: its folder and, if it is a git checkout, the commit."""
    import engramdb

    src = Path(engramdb.__file__).resolve().parent
    found: dict[str, Any] = {"path": str(src)}
    try:
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--", "."],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        found.update(commit=commit, uncommitted_changes=bool(dirty))
    except (OSError, subprocess.CalledProcessError):
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--embedder", default="local")
    parser.add_argument(
        "--test-embedder-from",
        type=int,
        default=None,
        help="sizes from this one on use the 'test' embedder (no model: fast ingest)",
    )
    parser.add_argument("--out", default="docs/results/speed.json")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe, args.embedder)
        return
    machine, code = _machine(), _code()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            large = args.test_embedder_from is not None and size >= args.test_embedder_from
            row = run_size(size, "test" if large else args.embedder, Path(tmp))
            rows.append(row)
            f = row["filtered_p50_ms"]
            print(
                f"{size:>7} memories ({row['embedder']}): ingest {row['ingest_msgs_per_s']:.0f} "
                f"msg/s, single add {row['single_add_ms']:.1f} ms, search p50 "
                f"{row['search_p50_ms']:.1f} ms p95 {row['search_p95_ms']:.1f} ms; filtered p50 "
                f"metadata {f['metadata']:.1f} kinds {f['kinds']:.1f} session "
                f"{f['session']:.1f} ms, metadata after a write "
                f"{row['metadata_after_write_p50_ms']:.1f} ms; cold start "
                f"{row['cold_start_s']:.2f} s; {row['store_bytes'] / 1e6:.1f} MB",
                flush=True,
            )
    machine["load_avg_end"] = list(os.getloadavg())
    result = {
        "date": datetime.now(UTC).isoformat(),
        "machine": machine,
        "code": code,
        "embedder": args.embedder,
        "test_embedder_from": args.test_embedder_from,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
