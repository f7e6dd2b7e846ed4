"""The derived in-memory indexes: BM25 postings and the dense matrix, filtered by masks."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engramdb.backends import lexical
from engramdb.backends.lexical import Doc, LexicalSet, weighted_terms
from engramdb.backends.positions import Places, Window
from engramdb.backends.vectors import VectorSet
from engramdb.text import tokens

ALL = Window()


def _doc(ident: str, rid: int, when: float, own: str, quoted: str = "", kind: int = 0) -> Doc:
    return (ident, rid, when, kind, weighted_terms(own, quoted))


def test_tokens_stem_fold_accents_and_drop_stopwords() -> None:
    assert tokens("The Support Groups of Inês were running") == ["support", "group", "ine", "run"]


def test_bm25_prefers_rare_terms_and_own_words_over_quoted_ones() -> None:
    lex = LexicalSet()
    lex.add(
        [
            _doc("a", 1, 1.0, "I love pottery class"),
            _doc("b", 2, 2.0, "Sounds fun!", "Ana I love pottery class"),
            _doc("c", 3, 3.0, "class schedule for the week"),
        ]
    )
    ranked = [i for i, _ in lex.search("pottery class", 10, ALL)]
    assert ranked[:2] == ["a", "b"]
    assert set(ranked) == {"a", "b", "c"}


def test_bm25_respects_time_kinds_rows_and_removal() -> None:
    lex = LexicalSet()
    lex.add(
        [_doc(f"m{i}", 100 + i, float(i), f"note {i} about kayaks", kind=i % 2) for i in range(10)]
    )
    window = [i for i, _ in lex.search("kayak", 10, Window(since=3.0, until=6.0))]
    assert sorted(window) == ["m3", "m4", "m5"]
    rows = Window(rids=np.array([107], dtype=np.int64))
    assert [i for i, _ in lex.search("kayak", 10, rows)] == ["m7"]
    odd = {i for i, _ in lex.search("kayak", 10, Window(kinds=(1,)))}
    assert odd == {f"m{i}" for i in range(1, 10, 2)}
    lex.remove(["m7"])
    assert "m7" not in [i for i, _ in lex.search("kayak", 10, ALL)]
    assert lex.search("unrelated", 10, ALL) == []


def test_bm25_posting_arrays_never_miss_a_later_append() -> None:
    lex = LexicalSet()
    lex.add([_doc("a", 1, 1.0, "kayak trip")])
    assert [i for i, _ in lex.search("kayak", 10, ALL)] == ["a"]  # caches the posting array
    lex.add([_doc("b", 2, 2.0, "kayak again")])
    assert {i for i, _ in lex.search("kayak", 10, ALL)} == {"a", "b"}


def test_bm25_search_during_appends_sees_a_consistent_index() -> None:
    lex = LexicalSet()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        for i in range(3000):
            lex.add([_doc(f"w{i}", i + 1, float(i), f"kayak note {i}")])
        stop.set()

    def reader() -> None:
        try:
            while not stop.is_set():
                found = lex.search("kayak", 5, ALL)
                assert len(found) <= 5
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(lex.search("kayak", 5000, ALL)) == 3000


def test_vector_set_grows_replaces_and_filters() -> None:
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(600, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vs = VectorSet(8)
    vs.add([(f"v{i}", i + 1, float(i), 0) for i in range(600)], vecs)
    (best, score), *_ = vs.search_many(vecs[42], 3, [ALL])[0]
    assert best == "v42" and abs(score - 1.0) < 1e-5
    vs.add([("v42", 43, 42.0, 0)], -vecs[42:43])  # replaced: now the opposite direction
    assert vs.search_many(vecs[42], 1, [ALL])[0][0][0] != "v42"
    assert len(vs) == 600
    window = Window(since=100.0, until=200.0)
    assert all(100 <= int(i[1:]) < 200 for i, _ in vs.search_many(vecs[0], 50, [window])[0])
    full, timed = vs.search_many(vecs[0], 5, [ALL, window])
    assert full[0][0] == "v0" and timed[0][0] != "v0"


def test_a_replaced_record_does_not_count_twice_in_a_terms_rarity() -> None:
    lex = LexicalSet()
    lex.add([_doc(f"m{i}", i + 1, float(i), f"kayak note {i}") for i in range(3)])
    lex.add([_doc("m0", 1, 0.0, "kayak note again")])  # replaced: the old posting stays behind
    assert {i for i, _ in lex.search("kayak", 10, ALL)} == {"m0", "m1", "m2"}


def test_bulk_postings_keep_terms_that_share_a_group_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ids that differ only in their low bits land in one group of the load's sort.
    monkeypatch.setitem(lexical._IDS, "zzcollidea", 0x5100)
    monkeypatch.setitem(lexical._IDS, "zzcollideb", 0x5101)
    docs = [
        ("a", 1, 1.0, 0, {"zzcollidea": 1.0, "kayak": 1.0}),
        ("b", 2, 2.0, 0, {"zzcollideb": 2.0}),
        ("c", 3, 3.0, 0, {"zzcollideb": 1.0, "zzcollidea": 0.5}),
    ]
    blobs = [lexical.encode_terms(d[4]) for d in docs]
    loaded = LexicalSet()
    loaded.load(
        Places.of([d[:4] for d in docs]),
        np.frombuffer(b"".join(blobs), dtype=lexical.STORED),
        np.array([len(b) // lexical.STORED.itemsize for b in blobs], dtype=np.int64),
    )
    assert loaded._low >= 1
    appended = LexicalSet()
    appended.add(docs)
    for query in ("zzcollidea", "zzcollideb", "kayak", "zzcollidea zzcollideb"):
        assert loaded.search(query, 10, ALL) == appended.search(query, 10, ALL)
    assert {i for i, _ in loaded.search("zzcollidea", 10, ALL)} == {"a", "c"}


def test_a_narrow_filter_scores_only_the_vectors_it_keeps_and_ranks_them_the_same() -> None:
    rng = np.random.default_rng(4)
    vecs = rng.normal(size=(800, 8)).astype(np.float32)
    vs = VectorSet(8)
    vs.add([(f"v{i}", i + 1, float(i), 0) for i in range(800)], vecs)
    narrow = Window(rids=np.array([5, 17, 300, 799], dtype=np.int64))  # 4 of 800
    wide = Window(since=100.0)
    got_narrow, got_wide = vs.search_many(vecs[16], 3, [narrow, wide])
    scores = vecs @ vecs[16]
    expect = sorted([4, 16, 299, 798], key=lambda i: -scores[i])[:3]
    assert [i for i, _ in got_narrow] == [f"v{i}" for i in expect]
    assert [s for _, s in got_narrow] == pytest.approx([float(scores[i]) for i in expect], 1e-5)
    assert [i for i, _ in got_wide] == [f"v{i}" for i in (np.argsort(-scores[100:])[:3] + 100)]
    (alone,) = vs.search_many(vecs[16], 3, [narrow])  # scored alone: the narrow path
    assert [i for i, _ in alone] == [i for i, _ in got_narrow]
    assert [s for _, s in alone] == pytest.approx([s for _, s in got_narrow], 1e-5)
