"""PNG plots of the peers benchmark (runs in the peers' venv, which has matplotlib).

    python benchmarks/peers/plots.py [--results benchmarks/peers/results] [--quick]

Writes docs/benchmarks-peers/*.png (or results/quick/plots/ for --quick).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import LABEL, LME, LOCOMO, checkpoints, largest, load, plots_dir, quality

COLORS = {
    "engramdb": "#1b7837",
    "mem0": "#762a83",
    "chroma": "#2166ac",
    "chroma-raw": "#92c5de",
    "bm25": "#e08214",
}


def bars(ax, docs, dataset, metrics, title):  # type: ignore[no-untyped-def]
    systems = [s for s, d in docs.items() if quality(d, dataset)]
    width = 0.8 / max(len(systems), 1)
    for i, s in enumerate(systems):
        q = quality(docs[s], dataset) or {}
        xs = [j + i * width for j in range(len(metrics))]
        ax.bar(xs, [q.get(m, 0) for m in metrics], width, label=LABEL[s], color=COLORS.get(s))
    ax.set_xticks([j + width * (len(systems) - 1) / 2 for j in range(len(metrics))], metrics)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results = Path(args.results)
    docs = load(results)
    out = plots_dir(results, args.quick)
    out.mkdir(parents=True, exist_ok=True)

    if any(quality(d, "locomo") for d in docs.values()):
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        bars(axes[0], docs, "locomo", LOCOMO, "LoCoMo dev, categories 1-4: evidence recall")
        n = next(
            (
                d["workloads"]["quality"]["data"]["longmemeval"]["questions"]
                for d in docs.values()
                if quality(d, "longmemeval")
            ),
            "?",
        )
        bars(axes[1], docs, "longmemeval", LME, f"LongMemEval_S dev ({n} questions)")
        axes[0].legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        fig.savefig(out / "quality.png", dpi=110)
        plt.close(fig)

    scaled = {s: d for s, d in docs.items() if checkpoints(d)}
    if scaled:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for s, d in scaled.items():
            pts = checkpoints(d)
            ax.plot(
                [p["memories"] for p in pts],
                [p["ingest_msgs_per_s"] for p in pts],
                "o-",
                label=LABEL[s],
                color=COLORS.get(s),
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("messages in the store")
        ax.set_ylabel("ingest, messages/s (embedding included)")
        ax.set_title("Ingest throughput")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "ingest.png", dpi=110)
        plt.close(fig)

        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
        for ax, key, title in (
            (axes[0], "search_1", "1 client"),
            (axes[1], "search_8", "8 concurrent client threads"),
        ):
            for s, d in scaled.items():
                pts = checkpoints(d)
                xs = [p["memories"] for p in pts]
                color = COLORS.get(s)
                p50 = [p[key]["p50_ms"] for p in pts]
                ax.plot(xs, p50, "o-", color=color, label=f"{LABEL[s]} p50")
                ax.plot(xs, [p[key]["p95_ms"] for p in pts], "x--", color=color, alpha=0.6)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("memories in the scope")
            ax.set_title(f"Search latency, k=10 ({title}); dashed: p95")
            ax.grid(alpha=0.3, which="both")
        axes[0].set_ylabel("ms per query")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)

        fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
        names = list(scaled)
        big = {s: largest(d) for s, d in scaled.items()}
        colors = [COLORS.get(s) for s in names]
        labels = [f"{LABEL[s]}\n({big[s]['memories']:,})" for s in names]
        per_100k = [big[s]["disk_bytes"] / 2**20 * 100_000 / big[s]["memories"] for s in names]
        axes[0].bar(labels, per_100k, color=colors)
        axes[0].set_title("disk per 100k memories, MiB\n(size measured below; scaled linearly)")
        axes[1].bar(labels, [big[s].get("peak_rss_mib", 0) for s in names], color=colors)
        axes[1].set_title("peak RSS, MiB (whole process,\nat the size measured below)")
        cold = []
        for s in names:
            c = [p["cold_start"]["median"] for p in checkpoints(scaled[s]) if p.get("cold_start")]
            cold.append(c[0] if c and c[0] else 0)
        axes[2].bar([LABEL[s] for s in names], cold, color=colors)
        axes[2].set_title("cold start at 10k memories:\nimport + open + 1st query, s")
        for ax in axes:
            ax.tick_params(axis="x", labelsize=7)
            ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "footprint.png", dpi=110)
        plt.close(fig)
    print(f"plots in {out}")


if __name__ == "__main__":
    main()
