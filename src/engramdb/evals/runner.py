"""Run engramdb and the baselines on LoCoMo / LongMemEval and compute the README's metrics.

Each conversation (LoCoMo) or question haystack (LongMemEval) goes into a fresh store in a
temporary folder, exactly as a user would ingest it: one ``add`` per session, every turn with its
session's date and its turn id in metadata. Hits map back to turn ids through their sources.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import importers
from ..embedders import Embedder, resolve_embedder
from ..memory import Memory
from ..temporal import parse_timestamp
from ..types import Hit
from . import metrics as m
from .baselines import Baselines, Doc
from .cache import CachedEmbedder

Progress = Callable[[int, int], None]
#: Receives one JSON-ready record per question: what each system ranked (for error analysis).
Trace = Callable[[dict[str, Any]], None]
SEARCH_LIMIT = 50
LOCOMO_BUDGETS = (750, 1500)
LOCOMO_KS = (5, 10)
#: Question types whose answer is the latest of several values: scored on whether the newest
#: evidence session comes first.
UPDATE_TYPES = frozenset({"knowledge-update"})


def _embedder(spec: str | Embedder, cache_dir: str | Path | None) -> Embedder:
    inner = resolve_embedder(spec)
    if cache_dir is None:
        return inner
    return CachedEmbedder(inner, Path(cache_dir) / "embeddings.sqlite")


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def _words(hit: Hit) -> int:
    # What a reader needs at least: who said it and what. Baselines are counted the same way.
    who = hit.name or hit.role or ""
    return len(f"{who}: {hit.text}".split())


class _Scores:
    """Per-question metric values, grouped, averaged at the end."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, list[float]]] = {}

    def add(self, group: str, metric: str, value: float) -> None:
        self.values.setdefault(group, {}).setdefault(metric, []).append(value)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            g: {k: round(m.mean(v), 4) for k, v in ms.items()} | {"n": len(next(iter(ms.values())))}
            for g, ms in sorted(self.values.items())
        }


def _locomo_scores(
    scores: _Scores,
    groups: Iterable[str],
    turns: list[list[str]],
    words: list[int],
    evidence: set[str],
) -> None:
    for group in groups:
        for k in LOCOMO_KS:
            scores.add(group, f"recall@{k}", m.recall_at_k(turns, evidence, k))
        for budget in LOCOMO_BUDGETS:
            scores.add(
                group, f"recall@{budget}w", m.recall_within_words(words, turns, evidence, budget)
            )


#: The dev sets hold pasted documents longer than the default guard against runaway input
#: (LongMemEval_S has a 41,855-character turn); an evaluation takes every turn as it is.
EVAL_MAX_CONTENT_CHARS = 1_000_000


def _options(memory_options: dict[str, Any] | None) -> dict[str, Any]:
    return {"max_content_chars": EVAL_MAX_CONTENT_CHARS, **(memory_options or {})}


def _ingest(mem: Memory, conversations: list[importers.Conversation]) -> tuple[int, float]:
    """Add every session as a user would (one batch each); returns messages and seconds."""
    started = time.perf_counter()
    for conv in conversations:
        mem.add(conv.messages, user_id=conv.user_id, session_id=conv.session_id)
    return sum(len(c.messages) for c in conversations), time.perf_counter() - started


def _hit_trace(hit: Hit, session_key: str, turn_key: str) -> dict[str, Any]:
    return {
        "kind": hit.kind,
        "score": round(hit.score, 5),
        "explain": hit.explain,
        "session": hit.session_id,
        "sessions": [str(s.session_id) for s in hit.sources] if session_key else [],
        "turns": [str(s.metadata.get(turn_key)) for s in hit.sources],
        "text": hit.text[:200],
    }


@contextmanager
def _folder(store_dir: str | Path | None) -> Iterator[Path]:
    """Where the stores go: kept in ``store_dir`` when given (to search them again), else a
    temporary folder removed afterwards."""
    if store_dir is not None:
        Path(store_dir).mkdir(parents=True, exist_ok=True)
        yield Path(store_dir)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def _store(
    folder: Path, name: str, store_url: str | None, emb: Embedder, options: dict[str, Any]
) -> Memory:
    """A fresh store for one conversation: a SQLite file in ``folder``, or, with
    ``store_url`` (PostgreSQL), a tenant of its own in that database."""
    if store_url is None:
        return Memory(folder / f"{name}.db", embedder=emb, **options)
    mem = Memory(store_url, embedder=emb, **{**options, "tenant": name})
    mem.purge_tenant()  # a tenant left by an earlier run
    return mem


def _groups(category: int) -> list[str]:
    if category == 5:
        return ["adversarial (5)"]
    return ["overall (1-4)", f"category {category}"]


def run_locomo(
    path: str | Path,
    *,
    embedder: str | Embedder = "local",
    limit_conversations: int | None = None,
    baselines: bool = True,
    progress: Progress | None = None,
    cache_dir: str | Path | None = None,
    memory_options: dict[str, Any] | None = None,
    trace: Trace | None = None,
    store_dir: str | Path | None = None,
    store_url: str | None = None,
) -> dict[str, Any]:
    """engramdb and the baselines on LoCoMo; returns a JSON-ready result.

    ``trace`` receives each question's rankings; ``store_dir`` keeps the stores;
    ``store_url`` puts them in one PostgreSQL database instead, a tenant each.
    """
    emb = _embedder(embedder, cache_dir)
    samples = importers.load_locomo(path)[:limit_conversations]
    ours, base = _Scores(), {"bm25": _Scores(), "dense": _Scores(), "hybrid": _Scores()}
    latencies: list[float] = []
    ingest_s, ingested = 0.0, 0
    total = sum(len(s["qa"]) for s in samples)
    done = 0
    with _folder(store_dir) as folder:
        for index, sample in enumerate(samples):
            conversations = list(importers.locomo_sample(sample, index, str(path)))
            with _store(folder, f"locomo-{index}", store_url, emb, _options(memory_options)) as mem:
                count, seconds = _ingest(mem, conversations)
                ingested, ingest_s = ingested + count, ingest_s + seconds
                docs = [_locomo_doc(c, msg) for c in conversations for msg in c.messages]
                bl = Baselines(docs, emb) if baselines else None
                for qa in sample["qa"]:
                    done += 1
                    evidence = {str(e) for e in qa.get("evidence") or []}
                    if not evidence:
                        continue
                    user = conversations[0].user_id
                    t0 = time.perf_counter()
                    hits = mem.search(str(qa["question"]), user_id=user, limit=SEARCH_LIMIT)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    turns = [[str(s.metadata.get("dia_id")) for s in h.sources] for h in hits]
                    groups = _groups(int(qa["category"]))
                    _locomo_scores(ours, groups, turns, [_words(h) for h in hits], evidence)
                    rankings = bl.rankings(str(qa["question"]), SEARCH_LIMIT) if bl else {}
                    for name, ranking in rankings.items():
                        _locomo_scores(
                            base[name],
                            groups,
                            [[docs[i].turn] for i in ranking],
                            [_doc_words(docs[i]) for i in ranking],
                            evidence,
                        )
                    if trace:
                        trace(
                            {
                                "conversation": index,
                                "question": str(qa["question"]),
                                "category": int(qa["category"]),
                                "evidence": sorted(evidence),
                                "engramdb": [_hit_trace(h, "", "dia_id") for h in hits],
                                **{n: [docs[i].turn for i in r] for n, r in rankings.items()},
                            }
                        )
                    if progress:
                        progress(done, total)
    return _result(
        "locomo",
        path,
        emb,
        ours,
        base if baselines else {},
        latencies,
        ingested,
        ingest_s,
        {"conversations": len(samples)},
    )


def _locomo_doc(conv: importers.Conversation, msg: dict[str, Any]) -> Doc:
    date = parse_timestamp(msg["timestamp"])
    return Doc(
        turn=str(msg["metadata"]["dia_id"]),
        session=str(conv.session_id),
        text=f"[{date:%-d %B %Y}] {msg.get('name') or msg['role']}: {msg['content']}",
    )


def _doc_words(doc: Doc) -> int:
    return len(doc.text.split("] ", 1)[-1].split())  # same basis as engramdb: no date prefix


def run_longmemeval(
    path: str | Path,
    *,
    embedder: str | Embedder = "local",
    limit_questions: int | None = None,
    baselines: bool = True,
    progress: Progress | None = None,
    cache_dir: str | Path | None = None,
    memory_options: dict[str, Any] | None = None,
    dense_baselines: bool = False,
    trace: Trace | None = None,
    store_dir: str | Path | None = None,
    store_url: str | None = None,
) -> dict[str, Any]:
    """engramdb and the baselines on LongMemEval (abstention questions skipped).

    BM25 indexes each turn as "[session id] role: content" (as first published); the dense and
    hybrid baselines (``dense_baselines``, off by default: the first run embeds every turn of
    every haystack, ~46k long texts) index "[session date] role: content" with the engramdb
    embedder, as the dev set's README does. ``trace`` receives each question's
    rankings; ``store_dir`` keeps the stores.
    """
    emb = _embedder(embedder, cache_dir)
    questions = [
        q for q in importers.load_longmemeval(path) if not str(q["question_id"]).endswith("_abs")
    ][:limit_questions]
    ours = _Scores()
    names = ["bm25", "dense", "hybrid"] if dense_baselines else ["bm25"]
    base = {name: _Scores() for name in names} if baselines else {}
    latencies: list[float] = []
    ingest_s, ingested = 0.0, 0
    with _folder(store_dir) as folder:
        for index, q in enumerate(questions):
            conversations = list(importers.longmemeval_question(q, str(path)))
            with _store(folder, f"lme-{index}", store_url, emb, _options(memory_options)) as mem:
                count, seconds = _ingest(mem, conversations)
                ingested, ingest_s = ingested + count, ingest_s + seconds
                t0 = time.perf_counter()
                hits = mem.search(
                    str(q["question"]),
                    user_id=str(q["question_id"]),
                    limit=SEARCH_LIMIT,
                    as_of=_asked(str(q["question_date"])),
                )
                latencies.append((time.perf_counter() - t0) * 1000)
            _lme_scores(
                ours,
                q,
                [[str(s.session_id) for s in h.sources] for h in hits],
                [[str(s.metadata.get("turn")) for s in h.sources] for h in hits],
            )
            rankings = _lme_baselines(conversations, str(q["question"]), emb, names) if base else {}
            for name, ranking in rankings.items():
                _lme_scores(
                    base[name], q, [[d.session] for d in ranking], [[d.turn] for d in ranking]
                )
            if trace:
                trace(_lme_trace(q, hits, rankings))
            if progress:
                progress(index + 1, len(questions))
    return _result(
        "longmemeval",
        path,
        emb,
        ours,
        base,
        latencies,
        ingested,
        ingest_s,
        {"questions": len(questions)},
    )


def _asked(question_date: str) -> datetime:
    """The moment a LongMemEval question is asked, for ``as_of``: the end of its day.

    The dataset's clock is right to the day only: 5 of the 93 dev questions (all
    temporal-reasoning) have evidence sessions stamped later on the day of the question, which
    an ``as_of`` to the minute puts out of reach (the baselines have no ``as_of`` at all).
    """
    return parse_timestamp(question_date).replace(hour=23, minute=59, second=59)


def _lme_baselines(
    conversations: list[importers.Conversation], query: str, emb: Embedder, names: list[str]
) -> dict[str, list[Doc]]:
    """Each baseline's ranked turns for one question's haystack."""
    by_id = [_lme_doc(c, msg, f"[{c.session_id}]") for c in conversations for msg in c.messages]
    rankings = {"bm25": [by_id[i] for i in _bm25_only(by_id, query)]}
    if "hybrid" in names:
        dated = [
            _lme_doc(c, msg, f"[{parse_timestamp(msg['timestamp']):%Y/%m/%d}]")
            for c in conversations
            for msg in c.messages
        ]
        found = Baselines(dated, emb)
        rankings["dense"] = [dated[i] for i in found.dense(query, SEARCH_LIMIT)]
        rankings["hybrid"] = [dated[i] for i in found.hybrid(query, SEARCH_LIMIT)]
    return rankings


def _lme_doc(conv: importers.Conversation, msg: dict[str, Any], prefix: str) -> Doc:
    return Doc(
        turn=str(msg["metadata"]["turn"]),
        session=str(conv.session_id),
        text=f"{prefix} {msg['role']}: {msg['content']}",
    )


def _lme_trace(
    q: dict[str, Any], hits: list[Hit], rankings: dict[str, list[Doc]]
) -> dict[str, Any]:
    return {
        "question_id": str(q["question_id"]),
        "question_type": str(q["question_type"]),
        "question": str(q["question"]),
        "question_date": str(q["question_date"]),
        "answer_sessions": {
            str(s): str(d)
            for s, d in zip(q["haystack_session_ids"], q["haystack_dates"], strict=True)
            if s in set(q["answer_session_ids"])
        },
        "engramdb": [_hit_trace(h, "session", "turn") for h in hits],
        **{n: [[d.session, d.turn] for d in r] for n, r in rankings.items()},
    }


def _bm25_only(docs: list[Doc], query: str) -> list[int]:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize([d.text for d in docs], stopwords="en", show_progress=False),
        show_progress=False,
    )
    tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
    results, scores = retriever.retrieve(
        tokens, k=min(SEARCH_LIMIT, len(docs)), show_progress=False
    )
    return [int(i) for i, s in zip(results[0], scores[0], strict=True) if s > 0]


def _lme_scores(
    scores: _Scores, q: dict[str, Any], hit_sessions: list[list[str]], hit_turns: list[list[str]]
) -> None:
    relevant = {str(s) for s in q["answer_session_ids"]}
    ranked = m.session_ranking(hit_sessions)
    for group in ("overall", str(q["question_type"])):
        scores.add(group, "s_recall_any@5", m.recall_any_at_k(ranked, relevant, 5))
        scores.add(group, "s_recall_all@5", m.recall_all_at_k(ranked, relevant, 5))
        scores.add(group, "s_ndcg@5", m.ndcg_at_k(ranked, relevant, 5))
        evidence = {
            f"{sid}:{i}"
            for sid, session in zip(q["haystack_session_ids"], q["haystack_sessions"], strict=True)
            for i, turn in enumerate(session)
            if turn.get("has_answer")
        }
        if evidence:
            scores.add(
                group,
                "t_recall_all@10",
                float(evidence <= {t for turns in hit_turns[:10] for t in turns}),
            )
    if str(q["question_type"]) in UPDATE_TYPES:
        dates = {
            str(s): parse_timestamp(d)
            for s, d in zip(q["haystack_session_ids"], q["haystack_dates"], strict=True)
            if str(s) in relevant
        }
        scores.add(str(q["question_type"]), "newest_first", m.newest_evidence_first(ranked, dates))


def _result(
    dataset: str,
    path: str | Path,
    emb: Embedder,
    ours: _Scores,
    base: dict[str, _Scores],
    latencies: list[float],
    ingested: int,
    ingest_s: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    engram = ours.summary()
    baselines = {name: s.summary() for name, s in base.items()}
    headline = "overall (1-4)" if dataset == "locomo" else "overall"
    return {
        "dataset": dataset,
        "path": str(path),
        "date": datetime.now(UTC).isoformat(),
        "machine": _machine(),
        "embedder": getattr(emb, "inner_name", emb.name),
        "search_limit": SEARCH_LIMIT,
        # With a warm cache, ingest skips the embedder: its rate then says nothing of speed.
        "embedding_cache": isinstance(emb, CachedEmbedder),
        **extra,
        "engramdb": engram,
        "baselines": baselines,
        "ingest": {
            "messages": ingested,
            "seconds": round(ingest_s, 2),
            "messages_per_s": round(ingested / ingest_s, 1) if ingest_s else None,
        },
        "search_latency_ms": {
            "p50": round(m.percentile(latencies, 50), 2),
            "p95": round(m.percentile(latencies, 95), 2),
            "n": len(latencies),
        },
        "summary": {
            "engramdb": engram.get(headline, {}),
            **{name: b.get(headline, {}) for name, b in baselines.items()},
        },
    }
