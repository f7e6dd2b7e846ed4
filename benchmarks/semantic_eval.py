"""Consolidation on against off, on the LoCoMo and LongMemEval dev sets, in one run.

    python benchmarks/semantic_eval.py --cache-dir benchmarks/.cache
    python benchmarks/semantic_eval.py --lme-limit 10 --trace-dir /tmp/semtrace   # quick

Both settings use the same embedder, embedding cache and machine; the baselines (which do not
depend on the setting) are computed once, in the "off" evaluation. ``--jobs 2`` runs the two
settings of a dataset side by side in two processes (their ingest seconds then share the CPU
alike). Results go to docs/results/semantic_locomo_dev.json and semantic_longmemeval_dev.json;
``--trace-dir`` writes each question's rankings as JSON lines, for error analysis.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import engramdb
from engramdb.evals.runner import run_locomo, run_longmemeval

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
RESULTS = ROOT / "docs" / "results"
#: The setting compared: the default (facts extracted inline) and none.
SETTINGS = {"on": {"consolidate": "inline"}, "off": {"consolidate": "off"}}
#: The Makefile's LME_LIMIT: every non-abstention question of the dev set.
LME_LIMIT = 93


class _TraceWriter:
    """Appends each question's record to a JSON-lines file (picklable, for worker processes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def __call__(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps(record, default=str) + "\n")


def _cache(cache_dir: Path, setting: str, jobs: int) -> Path:
    """Each concurrent job gets its own copy of the cache: one SQLite writer per file."""
    if jobs == 1:
        return cache_dir
    own = cache_dir.with_name(f"{cache_dir.name}-{setting}")
    source = cache_dir / "embeddings.sqlite"
    if source.exists() and not (own / "embeddings.sqlite").exists():
        own.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, own / "embeddings.sqlite")
    return own


def _evaluate(dataset: str, setting: str, args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "cache_dir": _cache(Path(args.cache_dir), setting, args.jobs),
        "memory_options": SETTINGS[setting],
        "baselines": setting == "off",
    }
    if args.trace_dir:
        kwargs["trace"] = _TraceWriter(Path(args.trace_dir) / f"{dataset}_{setting}.jsonl")
    if args.keep_stores:
        kwargs["store_dir"] = Path(args.keep_stores) / f"{dataset}_{setting}"
    if dataset == "locomo":
        return run_locomo(args.locomo, limit_conversations=args.locomo_limit, **kwargs)
    return run_longmemeval(
        args.longmemeval,
        limit_questions=args.lme_limit,
        dense_baselines=args.lme_dense_baselines,
        **kwargs,
    )


def _code() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        return subprocess.run(
            ["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        # PYTHONPATH may point at another tree (a snapshot, an older checkout): say which ran.
        "engramdb_source": str(Path(engramdb.__file__).parent),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def _combined(
    dataset: str, runs: dict[str, dict[str, Any]], started: str, code: dict[str, Any]
) -> dict[str, Any]:
    off = runs["off"]
    keep = ("dataset", "path", "machine", "embedder", "search_limit", "embedding_cache")
    return {
        **{k: off[k] for k in keep},
        "date": datetime.now(UTC).isoformat(),
        "started": started,
        "code": code,
        "load_avg_end": list(os.getloadavg()),
        **{k: off[k] for k in ("conversations", "questions") if k in off},
        "settings": {
            name: {
                "memory_options": SETTINGS[name],
                "engramdb": run["engramdb"],
                "ingest": run["ingest"],
                "search_latency_ms": run["search_latency_ms"],
            }
            for name, run in runs.items()
        },
        "baselines": off["baselines"],
    }


def _run(dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    started, code = datetime.now(UTC).isoformat(), _code()  # the code as it was when it began
    if args.jobs == 1:
        runs = {s: _evaluate(dataset, s, args) for s in SETTINGS}
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {s: pool.submit(_evaluate, dataset, s, args) for s in SETTINGS}
            runs = {s: f.result() for s, f in futures.items()}
    return _combined(dataset, runs, started, code)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--locomo", default=str(BENCH / "locomo_dev.json"))
    parser.add_argument("--longmemeval", default=str(BENCH / "longmemeval_s_dev.json.gz"))
    parser.add_argument("--datasets", default="locomo,longmemeval")
    parser.add_argument("--locomo-limit", type=int, default=None, help="conversations")
    parser.add_argument("--lme-limit", type=int, default=LME_LIMIT, help="questions")
    parser.add_argument(
        "--lme-dense-baselines",
        action="store_true",
        help="dense and hybrid baselines on LongMemEval too (the first run embeds ~46k turns)",
    )
    parser.add_argument("--cache-dir", default=str(ROOT / "benchmarks" / ".cache"))
    parser.add_argument("--jobs", type=int, default=1, choices=(1, 2))
    parser.add_argument("--trace-dir", default=None)
    parser.add_argument("--keep-stores", default=None, help="folder to keep the stores in")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    outputs: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
        "locomo": ("semantic_locomo_dev.json", lambda: _run("locomo", args)),
        "longmemeval": ("semantic_longmemeval_dev.json", lambda: _run("longmemeval", args)),
    }
    for dataset in args.datasets.split(","):
        name, run = outputs[dataset]
        result = run()
        out = Path(args.out_dir) / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
