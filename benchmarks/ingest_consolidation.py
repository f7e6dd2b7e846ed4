"""What fact extraction costs at ingest: messages/s with consolidation off and inline (offline
rules), alternated in one run so both see the same machine; LLM calls and tokens per 1,000 turns
counted with the deterministic test provider; and, given a local OpenAI-compatible server,
seconds per 1,000 turns against it.

    .venv/bin/python benchmarks/ingest_consolidation.py    # -> docs/results/...json
    .venv/bin/python benchmarks/ingest_consolidation.py \
        --server http://127.0.0.1:8080/v1 --server-model qwen
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from speed import _code, _machine, synthetic_messages

from engramdb import Memory
from engramdb.embedders import resolve_embedder
from engramdb.llms import LLM, resolve_llm
from engramdb.llms.test import TestLLM

BATCH = 50


def ingest(messages: list[dict[str, Any]], mode: str, embedder: Any, llm: LLM | None) -> float:
    """Seconds to add the messages in batches of 50 into a fresh store."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        Memory(Path(tmp) / "m.db", embedder=embedder, consolidate=mode, llm=llm) as mem,
    ):
        started = time.perf_counter()
        for start in range(0, len(messages), BATCH):
            mem.add(messages[start : start + BATCH], user_id="u", session_id=f"s{start}")
        seconds = time.perf_counter() - started
        facts = len(mem.facts(user_id="u", limit=1000).items)
    print(f"  {mode:7} {len(messages) / seconds:7.1f} msg/s  ({facts} current facts)", flush=True)
    return seconds


def offline(count: int, rounds: int, embedder_name: str) -> dict[str, Any]:
    messages = synthetic_messages(count)
    embedder = resolve_embedder(embedder_name)
    ingest(messages[:200], "off", embedder, None)  # warm the model and the caches
    seconds: dict[str, list[float]] = {"off": [], "inline": []}
    for _ in range(rounds):
        for mode in ("off", "inline"):
            seconds[mode].append(ingest(messages, mode, embedder, None))
    rates = {m: [count / s for s in values] for m, values in seconds.items()}
    return {
        "messages": count,
        "embedder": embedder.name,
        "msg_per_s": {m: sorted(round(r, 1) for r in v) for m, v in rates.items()},
        "msg_per_s_median": {m: round(statistics.median(v), 1) for m, v in rates.items()},
    }


def with_llm(count: int, llm: LLM, embedder_name: str) -> dict[str, Any]:
    messages = synthetic_messages(count)
    llm.usage.reset()
    seconds = ingest(messages, "inline", resolve_embedder(embedder_name), llm)
    usage = llm.usage
    per = 1000 / count
    return {
        "model": llm.name,
        "messages": count,
        "calls_per_1000": round(usage.calls * per, 1),
        "prompt_tokens_per_1000": round(usage.prompt_tokens * per),
        "completion_tokens_per_1000": round(usage.completion_tokens * per),
        "failures": usage.failures,
        "seconds_per_1000": round(seconds * per, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--embedder", default="local")
    parser.add_argument("--server", help="an OpenAI-compatible base URL, e.g. a llama.cpp server")
    parser.add_argument("--server-model", default="qwen")
    parser.add_argument("--server-messages", type=int, default=100)
    parser.add_argument("--out", default="docs/results/ingest_consolidation.json")
    args = parser.parse_args()
    machine = _machine()
    result: dict[str, Any] = {"date": datetime.now(UTC).isoformat(), "code": _code()}
    print("offline rules, consolidation off vs inline:", flush=True)
    result["offline"] = offline(args.messages, args.rounds, args.embedder)
    print("LLM path, test provider (token counts are whitespace words):", flush=True)
    result["test_llm"] = with_llm(1000, TestLLM(), "test")
    if args.server:
        import os

        os.environ["OPENAI_BASE_URL"] = args.server
        os.environ.setdefault("OPENAI_API_KEY", "local")
        server = resolve_llm(f"openai:{args.server_model}")
        assert server is not None
        print(f"LLM path, {args.server}:", flush=True)
        result["server_llm"] = with_llm(args.server_messages, server, "test")
    machine["load_avg_end"] = list(__import__("os").getloadavg())
    result["machine"] = machine
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "code"}, indent=2))


if __name__ == "__main__":
    main()
