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


def speed(result: dict[str, Any]) -> str:
    rows = [
        [
            f"{r['memories']:,}",
            f"{r['ingest_msgs_per_s']:.0f}",
            f"{r['single_add_ms']:.1f}",
            f"{r['search_p50_ms']:.1f}",
            f"{r['search_p95_ms']:.1f}",
            f"{r['store_bytes'] / 1e6:.1f}",
        ]
        for r in result["rows"]
    ]
    return (
        f"Measured {result['date'][:10]} on {result['machine']['platform']}, "
        f"{result['machine']['cpus']} CPUs, embedder `{result['embedder']}`:\n\n"
        + _table(
            [
                "memories in scope",
                "ingest msg/s (batches of 50)",
                "single add ms",
                "search p50 ms",
                "search p95 ms",
                "store MB",
            ],
            rows,
        )
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
        ("embedder.json", embedder),
    ):
        result = _load(name)
        parts.append(f"### {name}\n\n" + (render(result) if result else "not measured yet"))
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
