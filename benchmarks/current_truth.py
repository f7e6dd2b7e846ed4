"""Current truth: does memory answer with what is true now, and with what was true then?

    python benchmarks/current_truth.py [--histories 40] [--seed 7] [--embedder local]
                                       [--out docs/results/current_truth.json]

Each history of ``truth_sets.py`` (one user, one attribute that changes once or twice across
sessions months apart, the old value talked about more than the new one) is recorded in a fresh
store, session by session. Then each question is asked three ways:

- ``search`` (limit 10): ``first_mention`` — the first hit, in rank order, that names any of the
  user's values names the right one (a hit naming both counts as right; none naming either
  counts as wrong); ``in_top3`` — the right value is named in the top three hits;
- ``context`` (300 tokens): ``context_present`` — the right value is in it;
  ``context_first`` — it is named before any wrong one;
- ``profile`` (when ``Memory`` has one; current questions only): ``profile_states`` — the
  current value is in it and no old one is.

"Right" is the current value for current questions, and for past ones (asked with ``as_of``
the day after the last session in which an older value held) that older value.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from truth_sets import History, Question, first_at, generate, mentions

from engramdb import Memory
from engramdb.embedders import Embedder, resolve_embedder

METRICS = ("first_mention", "in_top3", "context_present", "context_first", "profile_states")
CONTEXT_TOKENS = 300


def first_mention(texts: Iterable[str], right: str, wrong: Iterable[str]) -> bool:
    """Whether the first text naming any value names the right one."""
    decider = deciding(texts, right, wrong)
    return decider is not None and mentions(decider, right)


def deciding(texts: Iterable[str], right: str, wrong: Iterable[str]) -> str | None:
    """The first text that names the right value or a wrong one."""
    values = [right, *wrong]
    return next((t for t in texts if any(mentions(t, v) for v in values)), None)


def named_first(text: str, right: str, wrong: Iterable[str]) -> bool:
    """Whether ``right`` is in ``text`` and named before any wrong value."""
    at = first_at(text, right)
    if at is None:
        return False
    others = [w for w in (first_at(text, v) for v in wrong) if w is not None]
    return not others or at < min(others)


def states_only(text: str, right: str, wrong: Iterable[str]) -> bool:
    """Whether ``text`` names ``right`` and none of ``wrong``."""
    return mentions(text, right) and not any(mentions(text, w) for w in wrong)


def score(mem: Memory, history: History, question: Question) -> dict[str, Any]:
    """One question's outcome on every metric (``None`` where it does not apply)."""
    uid, right, wrong = history.user_id, question.expected, question.wrong
    hits = mem.search(question.text, user_id=uid, limit=10, as_of=question.as_of)
    texts = [h.text for h in hits]
    decider = deciding(texts, right, wrong)
    ctx = mem.context(question.text, user_id=uid, max_tokens=CONTEXT_TOKENS, as_of=question.as_of)
    return {
        "history": history.user_id,
        "attribute": history.attribute,
        "kind": question.kind,
        "question": question.text,
        "as_of": question.as_of,
        "expected": right,
        "wrong": list(wrong),
        "first_mention": first_mention(texts, right, wrong),
        # A change turn ("I left Globex and joined Hooli") names both values and counts as right.
        "decider_names_both": decider is not None
        and mentions(decider, right)
        and any(mentions(decider, w) for w in wrong),
        "in_top3": any(mentions(t, right) for t in texts[:3]),
        "context_present": mentions(ctx, right),
        "context_first": named_first(ctx, right, wrong),
        "profile_states": _profile(mem, uid, right, wrong) if question.kind == "current" else None,
        "top_hit": texts[0] if texts else None,
    }


def _profile(mem: Memory, uid: str, right: str, wrong: Iterable[str]) -> bool | None:
    # The profile arrives with fact extraction; until then this metric is null.
    profile_of = getattr(mem, "profile", None)
    if profile_of is None:
        return None
    profile = profile_of(user_id=uid)
    return states_only(str(getattr(profile, "text", profile)), right, wrong)


def run_history(history: History, embedder: Embedder, folder: Path) -> list[dict[str, Any]]:
    """Record one history in a fresh store and score its questions."""
    with Memory(folder / f"{history.user_id}.db", embedder=embedder) as mem:
        for session in history.sessions:
            mem.add(list(session.messages), user_id=history.user_id, session_id=session.session_id)
        return [score(mem, history, q) for q in history.questions]


def rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Share of rows right on each metric (``None`` when the metric did not apply)."""
    out: dict[str, Any] = {"n": len(rows)}
    for metric in METRICS:
        seen = [r[metric] for r in rows if r[metric] is not None]
        out[metric] = round(sum(seen) / len(seen), 3) if seen else None
    # How much of first_mention came from hits naming the old value and the new one together.
    out["first_mention_by_turn_naming_both"] = (
        round(sum(r["decider_names_both"] for r in rows) / len(rows), 3) if rows else None
    )
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates by question kind, overall and per attribute."""
    by_kind = {kind: [r for r in rows if r["kind"] == kind] for kind in ("current", "past")}
    per_attribute: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"current": [], "past": []}
    )
    for row in rows:
        per_attribute[row["attribute"]][row["kind"]].append(row)
    return {
        **{kind: rates(group) for kind, group in by_kind.items()},
        "per_attribute": {
            attr: {kind: rates(group) for kind, group in kinds.items()}
            for attr, kinds in sorted(per_attribute.items())
        },
    }


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def _code() -> dict[str, Any]:
    """The measured engramdb's commit, and whether its sources differ from it."""
    import engramdb

    src = Path(engramdb.__file__).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return {"path": str(src), "commit": None}
    return {"path": str(src), "commit": commit, "dirty": bool(git("status", "--porcelain", "."))}


def _table(result: dict[str, Any]) -> str:
    head = f"{'':<22}{'n':>5}" + "".join(f"{m:>17}" for m in METRICS)
    lines = [head]

    def line(label: str, r: dict[str, Any]) -> str:
        cells = "".join(f"{'-' if r[m] is None else f'{r[m]:.3f}':>17}" for m in METRICS)
        return f"{label:<22}{r['n']:>5}{cells}"

    for kind in ("current", "past"):
        lines.append(line(kind, result[kind]))
    for attr, kinds in result["per_attribute"].items():
        lines.append(line(f"  {attr} now", kinds["current"]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--histories", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--embedder", default="local", help="'local' (default) or 'test' (fast)")
    parser.add_argument("--out", default="docs/results/current_truth.json")
    args = parser.parse_args()
    started = time.perf_counter()
    machine, code = _machine(), _code()
    histories = generate(args.histories, args.seed)
    embedder = resolve_embedder(args.embedder)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for history in histories:
            rows.extend(run_history(history, embedder, Path(tmp)))
    result = {
        "benchmark": "current_truth",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "embedder": embedder.name,
        "machine": machine,
        "code": code,
        "seed": args.seed,
        "histories": len(histories),
        "messages": sum(len(s.messages) for h in histories for s in h.sessions),
        "context_tokens": CONTEXT_TOKENS,
        **summary(rows),
        "wall_s": round(time.perf_counter() - started, 1),
        "questions": rows,
    }
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(_table(result))
    print(
        f"{result['histories']} histories, {result['messages']} messages, {embedder.name}, ", end=""
    )
    print(f"{result['wall_s']} s -> {args.out}")


if __name__ == "__main__":
    main()
