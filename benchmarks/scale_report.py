"""The scale benchmark's tables and plot, from every ``docs/results/scale_<backend>.json``.

    python benchmarks/scale.py --report   # prints the tables; rewrites the part of
                                          # docs/benchmarks.md between the scale markers and
                                          # docs/results/scale.png

One column per backend and size, so a PostgreSQL run (``--store postgresql://...``) adds its
columns beside SQLite's. Only numbers from the result files appear.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs"
RESULTS = DOCS / "results"
START, END = "<!-- scale:start -->", "<!-- scale:end -->"
NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
Row = dict[str, Any]


def _ms(key: str) -> Callable[[Row], str]:
    def get(row: Row) -> str:
        found = row["probe"].get(key)
        return "—" if found is None else f"{found['p50']:.1f} / {found['p95']:.1f}"

    return get


def _cold(key: str) -> Callable[[Row], str]:
    return lambda row: f"{row[key]['open_s'] + row[key]['first_search_s']:.2f}"


def _recall(key: str, missing: str = "—") -> Callable[[Row], str]:
    def get(row: Row) -> str:
        found = row["probe"].get(key)
        return missing if found is None else f"{found['recall@10']:.3f} / {found['recall@100']:.3f}"

    return get


def _rss_per_memory(row: Row) -> str:
    p = row["probe"]
    grown = (p["rss_kib"]["VmRSS"] - p["rss_before_open_kib"]["VmRSS"]) * 1024
    return f"{grown / p['memories_loaded']:,.0f}"


#: (label, layouts it applies to, how to read it from a row)
METRICS: list[tuple[str, str, Callable[[Row], str]]] = [
    ("ingest, records/s (insert + vectors, 1,000 per transaction)", "one many",
     lambda r: f"{r['ingest']['per_s']:,.0f}"),
    ("lexical candidates (100), p50 / p95 ms", "one many", _ms("lexical_ms")),
    ("dense candidates (100), p50 / p95 ms", "one many", _ms("dense_ms")),
    ("dense, filtered to half the scope, p50 / p95 ms", "one many", _ms("dense_half_filtered_ms")),
    ("lexical recall@10 / @100 against an exact BM25 (40 searches)", "one many",
     _recall("lexical_recall", "exact")),
    ("dense recall@10 / @100 against an exact scan", "one", _recall("dense_recall")),
    ("first search in a scope not searched yet, p50 / p95 ms", "many",
     _ms("first_search_in_scope_ms")),
    ("Memory.search end to end (query embedding included), p50 / p95 ms", "one many",
     _ms("end_to_end_ms")),
    ("cold start after the import: open + first search, s", "one many", _cold("probe")),
    ("cold start again, with the index files left by the first, s", "one many",
     _cold("cold_with_files")),
    ("after that first open: dense index ready, s", "one",
     lambda r: f"{r['probe']['indexes_ready_s']:.0f}"),
    ("after a reopen with index files: dense index ready, s", "one",
     lambda r: f"{r['cold_with_files']['indexes_ready_s']:.1f}"),
    ("disk, bytes per memory (store and index files)", "one many",
     lambda r: f"{r['probe']['store_bytes'] / r['memories']:,.0f}"),
    ("resident memory per memory searched, bytes", "one many", _rss_per_memory),
    ("peak resident memory of the searching process, MB", "one many",
     lambda r: f"{r['probe'].get('rss_end_kib', r['probe']['rss_kib'])['VmHWM'] / 1024:,.0f}"),
    ("1-minute load average before measuring (2 cores)", "one many",
     lambda r: f"{r['load_avg_before_probe'][0]:.1f}"),
]  # fmt: skip


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def load() -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("scale_*.json"))]
    return sorted(found, key=lambda r: list(NAMES).index(r["backend"]) if r["backend"] in NAMES
                  else 99)  # fmt: skip


def table(results: list[dict[str, Any]], layout: str) -> str:
    columns = [(res, row) for res in results for row in res["rows"] if row["layout"] == layout]
    if not columns:
        return ""
    head = ["", *[f"{NAMES.get(res['backend'], res['backend'])} {_size(row['memories'])}"
                  for res, row in columns]]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, layouts, get in METRICS:
        if layout in layouts.split():
            lines.append("| " + " | ".join([label, *[get(row) for _, row in columns]]) + " |")
    return "\n".join(lines)


def _machine(res: dict[str, Any]) -> str:
    m = res["machine"]
    code = res.get("code", {})
    commit = code.get("commit", "code not recorded") + (
        " with uncommitted changes" if code.get("uncommitted_changes") else ""
    )
    threads = [f"{k}={m[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in m]
    server = res.get("server")
    if server:
        threads.append(
            f"server {server['server_version']}, shared_buffers {server['shared_buffers']}, "
            f"fsync {server['fsync']}, synchronous_commit {server['synchronous_commit']}"
        )
    layouts = f" ({res['layouts']})" if res.get("layouts") else ""
    return (
        f"{NAMES.get(res['backend'], res['backend'])}{layouts}: measured {res['date'][:10]} on "
        f"{m['cpus']} × {m['cpu_model']}, 1-minute load {m['load_avg_start'][0]:.1f} at the start "
        f"and {m.get('load_avg_end', ['?'])[0]:.1f} at the end; {commit}"
        + (f"; {', '.join(threads)}" if threads else "")
    )


def markdown(results: list[dict[str, Any]]) -> str:
    runs: list[str] = []
    for res in results:
        runs.append(f"- {_machine(res)}")
        for beside in res.get("concurrent_runs", []):  # another layout, run at the same time
            runs.append(f"- {_machine({**beside, 'backend': res['backend']})}")
        for earlier in res.get("earlier_runs", []):  # rows kept from it by --merge
            runs.append(f"- rows not measured again, from an earlier run: "
                        f"{_machine({**earlier, 'backend': res['backend']})}")  # fmt: skip
    parts = ["\n".join(runs)]
    for layout, title in (("one", "All memories in one scope (one user)"),
                          ("many", "Across many scopes (users of ~2,000 memories)")):  # fmt: skip
        body = table(results, layout)
        if body:
            parts.append(f"**{title}**\n\n{body}")
    return "\n\n".join(parts)


def plot(results: list[dict[str, Any]], path: Path) -> bool:
    """Search latency, cold start, memory and ingest against size; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))

    def cold(key: str) -> Callable[[Row], float]:
        return lambda r: float(r[key]["open_s"] + r[key]["first_search_s"])

    def p50(key: str) -> Callable[[Row], float]:
        return lambda r: float(r["probe"][key]["p50"])

    panels = [
        (axes[0][0], "search p50, ms", [("dense", p50("dense_ms")), ("lexical", p50("lexical_ms")),
                                        ("Memory.search", p50("end_to_end_ms"))]),
        (axes[0][1], "cold start (open + first search), s",
         [("after import", cold("probe")), ("with index files", cold("cold_with_files"))]),
        (axes[1][0], "bytes per memory", [
            ("disk", lambda r: r["probe"]["store_bytes"] / r["memories"]),
            ("RSS", lambda r: float(_rss_per_memory(r).replace(",", "")))]),
        (axes[1][1], "ingest, records/s", [("ingest", lambda r: r["ingest"]["per_s"])]),
    ]  # fmt: skip
    for ax, title, series in panels:
        for res in results:
            name = NAMES.get(res["backend"], res["backend"])
            for layout, style in (("one", "-"), ("many", "--")):
                rows = [r for r in res["rows"] if r["layout"] == layout]
                for label, get in series:
                    ax.plot([r["memories"] for r in rows], [get(r) for r in rows], style,
                            marker="o", label=f"{name} {label}, {layout} scope"
                            + ("" if layout == "one" else "s"))  # fmt: skip
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel("memories")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> None:
    results = load()
    if not results:
        print("no docs/results/scale_*.json yet: run benchmarks/scale.py first")
        return
    text = markdown(results)
    print(text)
    page = DOCS / "benchmarks.md"
    doc = page.read_text()
    if START in doc and END in doc:
        head, _, rest = doc.partition(START)
        _, _, tail = rest.partition(END)
        page.write_text(f"{head}{START}\n\n{text}\n\n{END}{tail}")
    if plot(results, RESULTS / "scale.png"):
        print(f"plot: {RESULTS / 'scale.png'}")
