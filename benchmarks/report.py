"""Render the measured results in docs/results/*.json as the tables of docs/benchmarks.md.

    python benchmarks/report.py            # print the tables
    python benchmarks/report.py --write    # replace the generated part of docs/benchmarks.md

Only numbers from the result files appear; nothing is typed in by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs"
RESULTS = DOCS / "results"
START, END = "<!-- generated:start -->", "<!-- generated:end -->"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _f(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _ingest(result: dict[str, Any]) -> str:
    if result.get("embedding_cache"):
        return (
            "Embeddings came from the evaluation cache, so the ingest rate is not a speed "
            "figure (see the speed benchmark); search p50 "
            f"{result['search_latency_ms']['p50']} ms, p95 "
            f"{result['search_latency_ms']['p95']} ms (query embedding included)."
        )
    return (
        f"Ingest {result['ingest']['messages_per_s']} messages/s "
        f"({result['ingest']['messages']} messages); search p50 "
        f"{result['search_latency_ms']['p50']} ms, p95 {result['search_latency_ms']['p95']} ms "
        "(query embedding included)."
    )


def locomo(result: dict[str, Any]) -> str:
    metrics = ["recall@5", "recall@10", "recall@750w", "recall@1500w"]
    rows = []
    for name, groups in [("engramdb", result["engramdb"]), *result["baselines"].items()]:
        overall = groups["overall (1-4)"]
        rows.append(
            [f"**{name}**" if name == "engramdb" else name, *[_f(overall[m]) for m in metrics]]
        )
    cats = [
        [g, str(v["n"]), *[_f(v[m]) for m in metrics]]
        for g, v in result["engramdb"].items()
        if g != "overall (1-4)"
    ]
    return (
        f"LoCoMo dev, categories 1–4 ({result['engramdb']['overall (1-4)']['n']} questions), "
        f"measured {result['date'][:10]}:\n\n"
        + _table(["system", *metrics], rows)
        + "\n\nengramdb by category:\n\n"
        + _table(["category", "n", *metrics], cats)
        + "\n\n"
        + _ingest(result)
    )


def longmemeval(result: dict[str, Any]) -> str:
    metrics = ["s_recall_any@5", "s_recall_all@5", "s_ndcg@5", "t_recall_all@10"]
    rows = []
    for name, groups in [("engramdb", result["engramdb"]), *result["baselines"].items()]:
        overall = groups["overall"]
        rows.append(
            [
                f"**{name}**" if name == "engramdb" else name,
                *[_f(overall.get(m, float("nan"))) for m in metrics],
            ]
        )
    types = [
        [g, str(v["n"]), *[_f(v.get(m, float("nan"))) for m in metrics]]
        for g, v in result["engramdb"].items()
        if g != "overall"
    ]
    return (
        f"LongMemEval_S dev ({result['engramdb']['overall']['n']} non-abstention questions), "
        f"measured {result['date'][:10]}:\n\n"
        + _table(["system", *metrics], rows)
        + "\n\nengramdb by question type:\n\n"
        + _table(["type", "n", *metrics], types)
        + "\n\n"
        + _ingest(result)
    )


#: What the consolidation comparison shows, per dataset: metrics and the headline group.
_SEMANTIC = {
    "locomo": (["recall@5", "recall@10", "recall@750w", "recall@1500w"], "overall (1-4)"),
    "longmemeval": (
        ["s_recall_any@5", "s_recall_all@5", "s_ndcg@5", "t_recall_all@10", "newest_first"],
        "overall",
    ),
}


def _on_off(on: dict[str, Any], off: dict[str, Any], metric: str) -> str:
    if metric not in on or metric not in off:
        return "—"
    delta = on[metric] - off[metric]
    return f"{on[metric]:.3f} / {off[metric]:.3f} ({delta:+.3f})"


def semantic(result: dict[str, Any]) -> str:
    """Consolidation on against off, from benchmarks/semantic_eval.py."""
    metrics, headline = _SEMANTIC[result["dataset"]]
    on, off = result["settings"]["on"], result["settings"]["off"]
    systems = [
        ("**engramdb, consolidation on**", on["engramdb"]),
        ("engramdb, consolidation off", off["engramdb"]),
        *result["baselines"].items(),
    ]
    # newest_first applies to knowledge updates only: shown in that row, not overall.
    overall = [m for m in metrics if m != "newest_first"]
    rows = [
        [name, *[_f(groups[headline].get(m, "—")) for m in overall]] for name, groups in systems
    ]
    groups = [g for g in on["engramdb"] if g != headline]
    by_group = [
        [g, str(on["engramdb"][g]["n"]), *[_on_off(on["engramdb"][g], off["engramdb"][g], m)
                                           for m in metrics]]
        for g in groups
    ]  # fmt: skip
    by_group = [r for r in by_group if any(c != "—" for c in r[2:])]
    ingest = "; ".join(
        f"consolidation {name}: {run['ingest']['messages']:,} messages in "
        f"{run['ingest']['seconds']:.0f} s ({run['ingest']['messages_per_s']} messages/s), "
        f"search p50 {run['search_latency_ms']['p50']:.1f} ms"
        for name, run in result["settings"].items()
    )
    if "questions" in result:
        size = f"{result['questions']} non-abstention questions"
    else:
        size = f"{result['conversations']} conversations, {on['engramdb'][headline]['n']} questions"
    code = _commit(result)
    source = result.get("code", {}).get("engramdb_source")
    if source and Path(source) != DOCS.parent / "src" / "engramdb":
        code += " (run from a copy of the working tree's src)"
    load = result.get("load_avg_end")
    return (
        f"Consolidation on (`consolidate=inline`, the default) against off, one run of "
        f"`benchmarks/semantic_eval.py` ({size}), finished "
        f"{result['date'][:16].replace('T', ' ')} UTC, {code}"
        + (f", 1-minute load {load[0]:.1f} at the end" if load else "")
        + ":\n\n"
        + _table(["system", *overall], rows)
        + "\n\nengramdb by group, consolidation on / off (on − off):\n\n"
        + _table(["group", "n", *metrics], by_group)
        + "\n\nIngest, both settings side by side in one run, embeddings from the evaluation cache "
        f"(a fact not seen before is embedded; the two settings share the CPU): {ingest}."
    )


def _ms(row: dict[str, Any], *path: str) -> str:
    value = _value(row, path)
    return "—" if value is None else f"{value:.1f}"


def _machine(result: dict[str, Any]) -> str:
    m = result["machine"]
    text = f"{m['platform']}, {m.get('cpu_model', 'CPU model not recorded')}, {m['cpus']} CPUs"
    if "load_avg_start" in m:
        text += (
            f", 1-minute load {m['load_avg_start'][0]:.1f} at the start and "
            f"{m['load_avg_end'][0]:.1f} at the end"
        )
    return text


def _commit(result: dict[str, Any]) -> str:
    code = result.get("code") or {}
    if "commit" not in code:
        return "code not recorded"
    extra = " with uncommitted changes" if code.get("uncommitted_changes") else ""
    return f"commit {code['commit']}{extra}"


def speed(result: dict[str, Any]) -> str:
    rows = [
        [
            f"{r['memories']:,}",
            f"`{r.get('embedder', result['embedder'])}`",
            f"{r['ingest_msgs_per_s']:.0f}",
            f"{r['single_add_ms']:.1f}",
            f"{r['search_p50_ms']:.1f}",
            f"{r['search_p95_ms']:.1f}",
            " / ".join(_ms(r, "filtered_p50_ms", k) for k in ("metadata", "kinds", "session")),
            _ms(r, "metadata_after_write_p50_ms"),
            "—" if r.get("cold_start_s") is None else f"{r['cold_start_s']:.2f}",
            f"{r['store_bytes'] / 1e6:.1f}",
        ]
        for r in result["rows"]
    ]
    return f"Measured {result['date'][:10]} on {_machine(result)}; {_commit(result)}:\n\n" + _table(
        [
            "memories in scope",
            "embedder",
            "ingest msg/s (batches of 50)",
            "single add ms",
            "search p50 ms",
            "search p95 ms",
            "filtered search p50 ms: metadata / kinds / session",
            "metadata filter right after a write, p50 ms",
            "cold start s (open + first search)",
            "store MB",
        ],
        rows,
    )


#: What the before/after table compares: label, how to read it from a row, whether higher wins.
_COMPARED: list[tuple[str, tuple[str, ...], bool]] = [
    ("ingest msg/s", ("ingest_msgs_per_s",), True),
    ("search p50 ms", ("search_p50_ms",), False),
    ("search p95 ms", ("search_p95_ms",), False),
    ("filtered p50 ms, metadata (half the scope)", ("filtered_p50_ms", "metadata"), False),
    ("filtered p50 ms, kinds", ("filtered_p50_ms", "kinds"), False),
    ("filtered p50 ms, session", ("filtered_p50_ms", "session"), False),
    ("metadata filter right after a write, p50 ms", ("metadata_after_write_p50_ms",), False),
    ("cold start s (open + first search)", ("cold_start_s",), False),
    ("store MB", ("store_bytes",), False),
]


def _value(row: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = row
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return None
    return float(value) / 1e6 if path == ("store_bytes",) else float(value)


def _verdict(ratio: float, better: bool) -> str:
    if abs(ratio - 1) < 0.1:
        return ""
    return " (better)" if better else " (worse)"


def speed_compare(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Before and after, the same harness on two versions of the code in one session."""
    old = {r["memories"]: r for r in before["rows"]}
    rows = []
    for r in after["rows"]:
        b = old.get(r["memories"])
        if b is None:
            continue
        for label, path, higher in _COMPARED:
            x, y = _value(b, path), _value(r, path)
            if x is None or y is None:
                continue
            ratio = y / x if x else float("nan")
            better = ratio > 1 if higher else ratio < 1
            digits = 2 if path == ("cold_start_s",) else 1
            rows.append(
                [
                    f"{r['memories']:,} (`{r.get('embedder', after['embedder'])}`)",
                    label,
                    f"{x:.{digits}f}",
                    f"{y:.{digits}f}",
                    f"{ratio:.2f}×" + _verdict(ratio, better),
                ]
            )
    return (
        f"The same harness (`benchmarks/speed.py`) on the code before ({_commit(before)}) and "
        f"after ({_commit(after)}), one after the other in one session on "
        f"{_machine(after).split(', 1-minute')[0]}: before finished {before['date'][11:16]} UTC "
        f"({_load_avg(before)}), after finished {after['date'][11:16]} UTC "
        f"({_load_avg(after)}):\n\n"
        + _table(["memories", "metric", "before", "after", "after ÷ before"], rows)
    )


def _load_avg(result: dict[str, Any]) -> str:
    m = result["machine"]
    if "load_avg_start" not in m:
        return "load not recorded"
    return f"1-minute load {m['load_avg_start'][0]:.1f} → {m['load_avg_end'][0]:.1f}"


def lexical_load(result: dict[str, Any]) -> str:
    seconds = result["seconds_median_of_3"]
    base = seconds["analyse + append"]
    rows = [[way, f"{s:.2f}", f"{s / base:.2f}"] for way, s in seconds.items()]
    m = result["machine"]
    return (
        f"Building one scope's BM25 index from {result['records']:,} records "
        f"({result['postings']:,} postings), measured {result['date'][:10]} on {m['platform']}, "
        f"{m['cpus']} CPUs (1-minute load {m['load_avg'][0]:.1f}):\n\n"
        + _table(["how", "seconds (median of 3)", "÷ analyse + append"], rows)
    )


def embedder(result: dict[str, Any]) -> str:
    rows = [
        [
            label,
            f"{result[key]['texts_per_s_median_of_3']:.0f}",
            f"{result[key]['query_ms_p50']:.1f}",
        ]
        for label, key in (
            ("fp32 graph (baseline, same weights)", "fp32 graph (baseline)"),
            ("int8 per-channel (bundled)", "int8 per-channel (bundled)"),
        )
    ]
    cos = result["cosine_to_fp32"]
    return (
        f"Measured {result['date'][:10]} on {result['machine']}, {result['texts']:,} synthetic "
        f"chat turns, batches of 32 sorted by length (1-minute load {result['load_avg'][0]:.1f}):"
        "\n\n"
        + _table(["graph", "texts/s (median of 3)", "one query ms (p50)"], rows)
        + f"\n\nSpeed-up {result['speedup']:.2f}×; int8 vectors vs fp32: cosine mean "
        f"{cos['mean']:.4f}, min {cos['min']:.4f}."
    )


def main() -> None:
    parts = []
    for name, render in (
        ("locomo_dev.json", locomo),
        ("longmemeval_dev.json", longmemeval),
        ("speed.json", speed),
        ("lexical_load.json", lexical_load),
        ("embedder.json", embedder),
        ("semantic_locomo_dev.json", semantic),
        ("semantic_longmemeval_dev.json", semantic),
    ):
        result = _load(name)
        parts.append(f"### {name}\n\n" + (render(result) if result else "not measured yet"))
        before = _load("speed_before.json")
        if name == "speed.json" and result and before:
            parts.append("### speed_before.json\n\n" + speed_compare(before, result))
    tables = "\n\n".join(parts) + "\n"
    if "--write" not in sys.argv:
        sys.stdout.write(tables)
        return
    page = DOCS / "benchmarks.md"
    text = page.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    page.write_text(f"{head}{START}\n\n{tables}\n{END}{tail}")


if __name__ == "__main__":
    main()
