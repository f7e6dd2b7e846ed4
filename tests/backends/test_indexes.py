"""The derived in-memory indexes: BM25 postings and the dense matrix."""

from __future__ import annotations

import numpy as np

from engramdb.backends.lexical import LexicalSet, tokens
from engramdb.backends.vectors import VectorSet


def test_tokens_stem_fold_accents_and_drop_stopwords() -> None:
    assert tokens("The Support Groups of Inês were running") == ["support", "group", "ine", "run"]


def test_bm25_prefers_rare_terms_and_own_words_over_quoted_ones() -> None:
    lex = LexicalSet()
    lex.add(
        [
            ("a", 1.0, "I love pottery class"),
            ("b", 2.0, "Sounds fun!\n(after Ana: I love pottery class)"),
            ("c", 3.0, "class schedule for the week"),
        ]
    )
    ranked = [i for i, _ in lex.search("pottery class", 10, None, None, None)]
    assert ranked[:2] == ["a", "b"]
    assert set(ranked) == {"a", "b", "c"}


def test_bm25_respects_time_window_allowed_set_and_removal() -> None:
    lex = LexicalSet()
    lex.add([(f"m{i}", float(i), f"note {i} about kayaks") for i in range(10)])
    window = [i for i, _ in lex.search("kayak", 10, 3.0, 6.0, None)]
    assert sorted(window) == ["m3", "m4", "m5"]
    assert [i for i, _ in lex.search("kayak", 10, None, None, {"m7"})] == ["m7"]
    lex.remove(["m7"])
    assert "m7" not in [i for i, _ in lex.search("kayak", 10, None, None, None)]
    assert lex.search("unrelated", 10, None, None, None) == []


def test_vector_set_grows_replaces_and_filters() -> None:
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(600, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vs = VectorSet(8)
    vs.add([f"v{i}" for i in range(600)], np.arange(600, dtype=np.float64), vecs)
    (best, score), *_ = vs.search(vecs[42], 3, None, None, None)
    assert best == "v42" and abs(score - 1.0) < 1e-5
    vs.add(["v42"], np.array([42.0]), -vecs[42:43])  # replaced: now the opposite direction
    assert vs.search(vecs[42], 1, None, None, None)[0][0] != "v42"
    assert len(vs) == 600
    assert all(100 <= int(i[1:]) < 200 for i, _ in vs.search(vecs[0], 50, 100.0, 200.0, None))
