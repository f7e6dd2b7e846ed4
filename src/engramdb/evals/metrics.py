"""The retrieval metrics of the dev-set README, as pure functions.

A ranked result is a list of hits; each hit is the list of turn ids behind it (its provenance)
and, for the budget metrics, its word count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime


def recall_at_k(hit_turns: Sequence[Sequence[str]], evidence: set[str], k: int) -> float:
    """Fraction of evidence turns among the turns behind the top-k hits."""
    if not evidence:
        raise ValueError("recall of a question without evidence is undefined")
    found = {t for turns in hit_turns[:k] for t in turns}
    return len(evidence & found) / len(evidence)


def recall_within_words(
    hit_words: Sequence[int], hit_turns: Sequence[Sequence[str]], evidence: set[str], budget: int
) -> float:
    """Recall of evidence behind the hits that fit, in rank order, within ``budget`` words.

    The walk stops at the first hit that would overflow the budget: the context is the ranked
    list cut at the budget, as an LLM reading it would receive.
    """
    if not evidence:
        raise ValueError("recall of a question without evidence is undefined")
    total, found = 0, set[str]()
    for words, turns in zip(hit_words, hit_turns, strict=True):
        if total + words > budget:
            break
        total += words
        found.update(turns)
    return len(evidence & found) / len(evidence)


def session_ranking(hit_sessions: Sequence[Sequence[str]]) -> list[str]:
    """Sessions in the order of the first hit that comes from each."""
    ranked: dict[str, None] = {}
    for sessions in hit_sessions:
        for session in sessions:
            ranked.setdefault(session, None)
    return list(ranked)


def recall_any_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """1 if some relevant item is in the top k, else 0."""
    return float(bool(relevant & set(ranked[:k])))


def recall_all_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """1 if every relevant item is in the top k, else 0."""
    return float(relevant <= set(ranked[:k]))


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """NDCG with binary relevance and a log2 discount."""
    dcg = sum(1 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def newest_evidence_first(ranked: Sequence[str], evidence_dates: Mapping[str, datetime]) -> float:
    """1 if, of the evidence sessions in the ranking, the first is the newest, else 0.

    For knowledge updates: the answer is the latest value, so the newest evidence session should
    come before the older ones it updates. ``evidence_dates`` maps each evidence session to its
    date (sessions tied for newest all count as newest); 0 when no evidence session is ranked.
    """
    if not evidence_dates:
        raise ValueError("a question without evidence sessions has no newest one")
    first = next((s for s in ranked if s in evidence_dates), None)
    if first is None:
        return 0.0
    return float(evidence_dates[first] == max(evidence_dates.values()))


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile by linear interpolation (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (NaN for no values)."""
    return sum(values) / len(values) if values else float("nan")
