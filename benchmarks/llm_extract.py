"""Cost of LLM extraction: calls, tokens and seconds per 1,000 chat turns, against a given server.

    python benchmarks/llm_extract.py --base-url http://127.0.0.1:8000/v1 --model qwen \
        [--turns 60] [--batch 20] [--out docs/results/llm_extract.json]
    python benchmarks/llm_extract.py --llm test          # the plumbing only, no model

Turns are the seeded synthetic chat turns of benchmarks/speed.py (two people, Alex and Sam,
alternate; both are sources, since Sam's turns are the ones holding facts), sent in batches of
``--batch`` messages, as ``add`` batches would be; each batch is one ``extract_with_llm`` call
(more if it is over 6,000 characters). A batch that fails after its retries is counted and
reported, not hidden.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import synthetic_messages

from engramdb.errors import LLMError
from engramdb.llms import LLM, resolve_llm
from engramdb.llms.openai import OpenAILLM
from engramdb.pipeline.extract_llm import extract_with_llm
from engramdb.pipeline.messages import prepare
from engramdb.records import Row
from engramdb.types import Scope


def _llm(args: argparse.Namespace) -> LLM:
    if args.llm:
        llm = resolve_llm(args.llm)
        assert llm is not None
        return llm
    return OpenAILLM(args.model, base_url=args.base_url, api_key=args.api_key, timeout=args.timeout)


def _batches(turns: int, size: int) -> list[list[Row]]:
    rows = prepare(
        synthetic_messages(turns),
        scope=Scope(user_id="bench"),
        session_id="bench",
        metadata=None,
        max_chars=100_000,
        now=datetime.now(UTC),
    )
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _speaker(row: Row) -> str | None:
    # The synthetic "assistant" turns read like a second person's ("I planned my marathon"), and
    # the user turns are mostly questions: both speak as people, so output costs are realistic.
    return "Alex" if row.role == "user" else "Sam"


def run(llm: LLM, turns: int, batch: int) -> dict[str, Any]:
    """Extract over the synthetic turns; totals and per-1,000-turn figures."""
    llm.usage.reset()
    claims = failed = 0
    errors: list[str] = []
    started = time.perf_counter()
    for rows in _batches(turns, batch):
        try:
            claims += len(extract_with_llm(llm, rows, subject_for=_speaker))
        except LLMError as exc:
            failed += 1
            errors.append(str(exc)[:300])
    wall = time.perf_counter() - started
    usage = llm.usage.as_dict()
    scale = 1000 / turns
    return {
        "llm": llm.name,
        "turns": turns,
        "batch": batch,
        "claims": claims,
        "failed_batches": failed,
        "errors": errors,
        "wall_seconds": round(wall, 2),
        "usage": usage,
        "per_1000_turns": {
            "calls": round(usage["calls"] * scale, 1),
            "prompt_tokens": round(usage["prompt_tokens"] * scale),
            "completion_tokens": round(usage["completion_tokens"] * scale),
            "seconds": round(wall * scale, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llm", help="a resolve_llm name instead of --base-url/--model")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="qwen")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(_llm(args), args.turns, args.batch)
    result["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    per = result["per_1000_turns"]
    print(
        f"{result['llm']}: {args.turns} turns in {result['wall_seconds']} s, "
        f"{result['claims']} claims, {result['failed_batches']} failed batch(es)\n"
        f"per 1,000 turns: {per['calls']} calls, {per['prompt_tokens']} prompt + "
        f"{per['completion_tokens']} completion tokens, {per['seconds']} s"
    )
    for error in result["errors"]:
        print(f"  failed: {error}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
