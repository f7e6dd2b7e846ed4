"""Ingest throughput and search latency at 1k / 10k / 100k memories in one scope.

    python benchmarks/speed.py [--sizes 1000 10000 100000] [--embedder local] [--out FILE]

Messages are synthetic chat turns generated from a fixed seed (varied topics, names, places,
numbers), ingested in batches of 50 (a session's worth), with the query embedding included in
every search timing. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


def run_size(size: int, embedder: str, folder: Path) -> dict[str, Any]:
    messages = synthetic_messages(size)
    with Memory(folder / f"speed-{size}.db", embedder=embedder) as mem:
        mem.search("warm up", user_id="bench")  # load the model outside the timing
        started = time.perf_counter()
        for i in range(0, size, 50):
            mem.add(messages[i : i + 50], user_id="bench", session_id=f"s{i // 50}")
        ingest_s = time.perf_counter() - started
        mem.search("warm the index", user_id="bench")
        latencies = []
        for q in queries(200):
            t0 = time.perf_counter()
            mem.search(q, user_id="bench", limit=10)
            latencies.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        for j in range(20):
            mem.add(f"a single new message about the kayak, number {j}", user_id="bench")
        single_ms = (time.perf_counter() - t0) / 20 * 1000
        size_bytes = mem.stats()["bytes"]
    return {
        "memories": size,
        "ingest_msgs_per_s": size / ingest_s,
        "ingest_s": ingest_s,
        "single_add_ms": single_ms,
        "search_p50_ms": statistics.median(latencies),
        "search_p95_ms": pct(latencies, 95),
        "store_bytes": size_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--embedder", default="local")
    parser.add_argument("--out", default="docs/results/speed.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            row = run_size(size, args.embedder, Path(tmp))
            rows.append(row)
            print(
                f"{size:>7} memories: ingest {row['ingest_msgs_per_s']:.0f} msg/s, "
                f"single add {row['single_add_ms']:.1f} ms, search p50 "
                f"{row['search_p50_ms']:.1f} ms p95 {row['search_p95_ms']:.1f} ms, "
                f"{row['store_bytes'] / 1e6:.1f} MB",
                flush=True,
            )
    result = {
        "date": datetime.now(UTC).isoformat(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": __import__("os").cpu_count(),
        },
        "embedder": args.embedder,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
