"""Reciprocal-rank fusion of candidate lists from several indexes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def rrf(
    lists: Mapping[str, Sequence[tuple[str, float]]],
    k: int,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[str, float, dict[str, int]]]:
    """Fuse ranked lists: score(d) = Σ weight / (k + rank). Returns (id, score, ranks), best first.

    RRF needs no score calibration between BM25 and cosine, which is why every index can add its
    candidates to the same fusion.
    """
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for name, items in lists.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        canonical = _canonical(items)
        for rank, (ident, _) in enumerate(canonical, start=1):
            scores[ident] = scores.get(ident, 0.0) + weight / (k + rank)
            ranks.setdefault(ident, {})[name] = rank
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(ident, score, ranks[ident]) for ident, score in ordered]


#: Scores closer than this are the same score: a matrix product gives two identical vectors
#: scores a few float32 ulps apart depending on the rows they sit in (~1e-8).
TIE = 1e-6


def _canonical(items: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Best first, equal scores by id, not by where an index happens to hold them: a store, its
    re-import and the store after another user's purge rank alike. Runs of scores each within
    :data:`TIE` of the next count as equal."""
    ordered = sorted(items, key=lambda item: (-item[1], item[0]))
    out: list[tuple[str, float]] = []
    run: list[tuple[str, float]] = []
    for item in ordered:
        if run and run[-1][1] - item[1] > TIE:
            out += sorted(run, key=lambda i: i[0])
            run = []
        run.append(item)
    return out + sorted(run, key=lambda i: i[0])
