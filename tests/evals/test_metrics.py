"""The README's metrics on hand-computed examples."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from engramdb.evals import metrics as m


def test_recall_at_k_counts_turns_behind_the_top_hits() -> None:
    hits = [["a"], ["b", "c"], ["d"]]
    assert m.recall_at_k(hits, {"c", "d"}, 2) == 0.5
    assert m.recall_at_k(hits, {"c", "d"}, 3) == 1.0


def test_budget_walk_stops_at_the_first_hit_that_does_not_fit() -> None:
    words, turns = [400, 500, 100, 10], [["a"], ["b"], ["c"], ["d"]]
    assert m.recall_within_words(words, turns, {"a", "c"}, 750) == 0.5
    assert m.recall_within_words(words, turns, {"a", "b", "c"}, 1000) == 1.0


def test_session_metrics() -> None:
    ranked = m.session_ranking([["s3"], ["s1"], ["s3"], ["s2"]])
    assert ranked == ["s3", "s1", "s2"]
    assert m.recall_any_at_k(ranked, {"s2"}, 2) == 0.0
    assert m.recall_all_at_k(ranked, {"s1", "s3"}, 2) == 1.0
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m.ndcg_at_k(ranked, {"s1", "s9"}, 5) == pytest.approx(expected)


def test_percentile_interpolates() -> None:
    assert m.percentile([1, 2, 3, 4], 50) == 2.5
    assert m.percentile([5], 95) == 5


def test_undefined_recall_is_an_error() -> None:
    with pytest.raises(ValueError):
        m.recall_at_k([["a"]], set(), 1)


def test_newest_evidence_first_looks_only_at_evidence_sessions() -> None:
    dates = {"old": datetime(2023, 1, 5), "new": datetime(2023, 3, 1)}
    # Other sessions ranked before the evidence do not matter; only the first evidence one does.
    assert m.newest_evidence_first(["x", "new", "old"], dates) == 1.0
    assert m.newest_evidence_first(["x", "old", "y", "new"], dates) == 0.0
    # The newest found alone still counts; no evidence session in the ranking is a miss.
    assert m.newest_evidence_first(["new"], dates) == 1.0
    assert m.newest_evidence_first(["x", "y"], dates) == 0.0


def test_newest_evidence_first_counts_ties_for_newest() -> None:
    day = datetime(2023, 3, 1)
    assert m.newest_evidence_first(["b", "a"], {"a": day, "b": day}) == 1.0
    with pytest.raises(ValueError):
        m.newest_evidence_first(["a"], {})
