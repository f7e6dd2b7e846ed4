"""Question answering on LoCoMo and LongMemEval: engramdb's context, a reader, a judge.

For each question the conversation is ingested into a fresh store exactly as the retrieval
runner does (its loaders and its ``_ingest``), then ``Memory.context(question)`` is given to a
*reader* model, which answers, and a *judge* model grades the answer against the gold one. The
judge prompts follow the published protocols, in our own words: LongMemEval's yes/no "does the
response contain the correct answer", with its variants for temporal reasoning (off-by-one day
counts pass), knowledge updates (the updated answer counts), preference questions (a rubric)
and abstention (``_abs`` questions: saying it cannot be answered is right); LoCoMo's generous
CORRECT/WRONG on meaning (category 5, adversarial, is left out as in the published LLM-judge
evaluations). Retrieval recall is computed in the same pass with the runner's metrics, so both
figures come from the same stores.

A result records the models, every prompt template once (with its hash, which each question
cites), and per question the context size and latency, the raw answer, the judge's raw reply
and verdict, and the tokens each model used (from ``LLM.usage``).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import importers
from ..embedders import Embedder
from ..errors import InvalidInput, LLMError
from ..llms import LLM, resolve_llm
from ..memory import Memory
from ..temporal import parse_timestamp
from . import metrics as m
from .runner import (
    SEARCH_LIMIT,
    Progress,
    _embedder,
    _groups,
    _ingest,
    _lme_scores,
    _locomo_scores,
    _machine,
    _options,
    _Scores,
    _words,
)

READER_SYSTEM = """\
You answer questions about a person from the memories of their past conversations, and from \
nothing else. The memories may hold a profile (who the person is now), facts (each with when it \
held; past ones are marked as no longer true) and dated excerpts of conversations. Work out \
dates from the dates given: "last year" in a message of 2023 means 2022. When the memories do \
not hold the answer, say that you don't know. Answer in a short phrase or one sentence, without \
explanation."""

READER_USER = """\
Memories:
{context}

The question is asked on {today}.
Question: {question}
Answer:"""

_LME_YES_NO = "Reply with only yes or no."

#: LongMemEval's judge, by kind: the default and its question-type variants.
LME_JUDGE: dict[str, str] = {
    "default": f"""\
You are grading a chat assistant's answer to a question about earlier conversations.

Question: {{question}}
Correct answer: {{gold}}
Assistant's answer: {{answer}}

Does the assistant's answer contain the correct answer? Say yes if it does, if it is \
equivalent to it, or if it goes through the steps that lead to it. Say no if it gives only \
part of what the correct answer needs, or something else. {_LME_YES_NO}""",
    "temporal-reasoning": f"""\
You are grading a chat assistant's answer to a question about earlier conversations.

Question: {{question}}
Correct answer: {{gold}}
Assistant's answer: {{answer}}

Does the assistant's answer contain the correct answer? Say yes if it does, if it is \
equivalent to it, or if it goes through the steps that lead to it. Say no if it gives only \
part of what the correct answer needs, or something else. A count of days, weeks or months \
that is off by one (19 days where the correct answer is 18) still counts as correct. \
{_LME_YES_NO}""",
    "knowledge-update": f"""\
You are grading a chat assistant's answer to a question about earlier conversations.

Question: {{question}}
Correct answer: {{gold}}
Assistant's answer: {{answer}}

Does the assistant's answer contain the correct answer? Say yes if it does, if it is \
equivalent to it, or if it goes through the steps that lead to it. The answer may also mention \
information that was true before: it still counts as correct as long as the up-to-date answer \
it gives is the correct one. Say no otherwise. {_LME_YES_NO}""",
    "single-session-preference": f"""\
You are grading a chat assistant's personalised response to a user's request.

Request: {{question}}
What a good response does: {{gold}}
Assistant's response: {{answer}}

Does the response do what is described? It need not cover every point: say yes as long as it \
remembers the user's personal information and uses it correctly. {_LME_YES_NO}""",
    "abstention": f"""\
You are grading a chat assistant's answer to a question that cannot be answered from the \
earlier conversations.

Question: {{question}}
Why it cannot be answered: {{gold}}
Assistant's answer: {{answer}}

Does the assistant recognise that the question cannot be answered? Say yes if it says so: for \
example that the information is missing or incomplete, or that it knows something related but \
not what was asked. Say no if it answers as though it knew. {_LME_YES_NO}""",
}

LOCOMO_JUDGE = """\
You are grading an answer to a question about a long conversation between two people, \
against the gold answer.

Question: {question}
Gold answer: {gold}
Answer to grade: {answer}

Be generous. The answer is CORRECT if it means the same as the gold answer or contains it, \
even when it is longer, worded differently or adds detail. For a date or a time, it is CORRECT \
if it names the same day, month, year or period, in any format ("7 May" or "May 7th") or by a \
reference that comes to the same time. The answer is WRONG if it misses or contradicts the \
gold answer, or says it does not know.

Reply with JSON only: {{"reason": "<one sentence>", "label": "CORRECT" or "WRONG"}}"""

_LOCOMO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "label": {"type": "string"}},
    "required": ["label"],
}
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
#: How much a reader and a judge may write.
READER_MAX_TOKENS = 200
JUDGE_MAX_TOKENS = 200


def template_hash(template: str) -> str:
    """A short, stable name for a prompt template (the first 12 hex digits of its SHA-256)."""
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Question:
    """One question to answer and grade.

    Attributes:
        id: the dataset's id (LongMemEval ``question_id``; LoCoMo ``<sample>#<n>``).
        text: the question.
        gold: the gold answer (a rubric for preference questions, the reason for abstention).
        kind: which judge prompt grades it (a key of :data:`LME_JUDGE`, or ``"locomo"``).
        groups: the accuracy groups it counts in (``overall``, its category or type).
        user_id: whose memories answer it.
        today: when it is asked, as the reader is told.
    """

    id: str
    text: str
    gold: str
    kind: str
    groups: tuple[str, ...]
    user_id: str
    today: datetime


class _Run:
    """Answers and grades questions, and keeps what it measured."""

    def __init__(self, reader: LLM, judge: LLM, context_tokens: int | None) -> None:
        self.reader, self.judge, self.context_tokens = reader, judge, context_tokens
        self.accuracy, self.retrieval = _Scores(), _Scores()
        self.records: list[dict[str, Any]] = []
        self.latency: dict[str, list[float]] = {"context": [], "reader": [], "judge": []}

    def ask(self, mem: Memory, q: Question) -> None:
        """Context, answer and verdict for one question, recorded."""
        started = time.perf_counter()
        context = mem.context(q.text, user_id=q.user_id, max_tokens=self.context_tokens)
        context_ms = _ms(started)
        self.latency["context"].append(context_ms)
        record: dict[str, Any] = {
            "id": q.id,
            "question": q.text,
            "gold": q.gold,
            "groups": list(q.groups),
            "judge_prompt": template_hash(_judge_template(q.kind)),
            "context_chars": len(context),
            "context_ms": context_ms,
            "answer": None,
            "judge_reply": None,
            "verdict": None,
            "error": None,
        }
        try:
            self._answer_and_grade(q, context, record)
        except LLMError as exc:  # a failed call costs its question, not the run
            record["error"] = f"{type(exc).__name__}: {exc}"
        for group in q.groups:
            self.accuracy.add(group, "accuracy", float(record["verdict"] is True))
        self.records.append(record)

    def _answer_and_grade(self, q: Question, context: str, record: dict[str, Any]) -> None:
        prompt = READER_USER.format(context=context, today=_day(q.today), question=q.text)
        messages = [
            {"role": "system", "content": READER_SYSTEM},
            {"role": "user", "content": prompt},
        ]
        with _metered(self.reader, record, "reader", self.latency["reader"]):
            answer = self.reader.complete(messages, max_tokens=READER_MAX_TOKENS).text
        record["answer"] = answer
        with _metered(self.judge, record, "judge", self.latency["judge"]):
            record["judge_reply"], record["verdict"] = self._grade(q, _final(answer))

    def _grade(self, q: Question, answer: str) -> tuple[str, bool | None]:
        """The judge's raw reply and its verdict (None when it gave neither verdict)."""
        prompt = _judge_template(q.kind).format(question=q.text, gold=q.gold, answer=answer)
        messages = [{"role": "user", "content": prompt}]
        if q.kind == "locomo":
            value, completion = self.judge.complete_json(
                messages, _LOCOMO_SCHEMA, name="grade", max_tokens=JUDGE_MAX_TOKENS
            )
            label = str(value.get("label", "")).strip().upper()
            verdict = {"CORRECT": True, "WRONG": False}.get(label)
            return completion.text, verdict
        reply = self.judge.complete(messages, max_tokens=JUDGE_MAX_TOKENS).text
        found = _YES_NO.search(_final(reply))
        return reply, None if found is None else found.group(1).lower() == "yes"

    def result(
        self, dataset: str, path: str | Path, emb: Embedder, extra: dict[str, Any]
    ) -> dict[str, Any]:
        headline = "overall (1-4)" if dataset == "locomo" else "overall"
        accuracy, retrieval = self.accuracy.summary(), self.retrieval.summary()
        kinds = ("locomo",) if dataset == "locomo" else tuple(LME_JUDGE)
        return {
            "dataset": dataset,
            "path": str(path),
            "date": datetime.now(UTC).isoformat(),
            "machine": _machine(),
            "embedder": getattr(emb, "inner_name", emb.name),
            "reader": self.reader.name,
            "judge": self.judge.name,
            **extra,
            "prompts": {
                "reader": {
                    "hash": template_hash(READER_SYSTEM + READER_USER),
                    "system": READER_SYSTEM,
                    "user": READER_USER,
                },
                "judge": {
                    template_hash(_judge_template(k)): {"kind": k, "template": _judge_template(k)}
                    for k in kinds
                },
            },
            "accuracy": accuracy,
            "retrieval": retrieval,
            "usage": {"reader": self._usage("reader"), "judge": self._usage("judge")},
            "latency_ms": {name: _percentiles(values) for name, values in self.latency.items()},
            "errors": sum(1 for r in self.records if r["error"]),
            "unjudged": sum(1 for r in self.records if r["verdict"] is None),
            "summary": {
                "accuracy": accuracy.get(headline, {}),
                "retrieval": retrieval.get(headline, {}),
            },
            "per_question": self.records,
        }

    def _usage(self, role: str) -> dict[str, int]:
        keys = ("calls", "prompt_tokens", "completion_tokens", "failures")
        return {k: sum(int(r.get(role, {}).get(k, 0)) for r in self.records) for k in keys}


@contextmanager
def _metered(llm: LLM, record: dict[str, Any], role: str, latencies: list[float]) -> Iterator[None]:
    """Records a model's calls, tokens, failures and milliseconds over a block, from its usage
    (a failed call included)."""
    before, started = llm.usage.as_dict(), time.perf_counter()
    try:
        yield
    finally:
        after = llm.usage.as_dict()
        spent = {k: int(after[k] - before[k]) for k in after if k != "seconds"}
        record[role] = {**spent, "ms": _ms(started)}
        latencies.append(record[role]["ms"])


def _judge_template(kind: str) -> str:
    return LOCOMO_JUDGE if kind == "locomo" else LME_JUDGE[kind]


def _final(reply: str) -> str:
    """A reply without the reasoning a thinking model puts before ``</think>``."""
    return reply.rsplit("</think>", 1)[-1].strip()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _day(at: datetime) -> str:
    return f"{at:%A}, {at.day} {at:%B %Y}"


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "p50": round(m.percentile(values, 50), 2),
        "p95": round(m.percentile(values, 95), 2),
        "n": len(values),
    }


# --- datasets ---------------------------------------------------------------------------------


def _locomo_questions(
    sample: Mapping[str, Any], conversations: list[importers.Conversation]
) -> Iterator[tuple[Question, dict[str, Any]]]:
    """The gradable questions of a LoCoMo sample (categories 1-4), with their raw records."""
    user = str(conversations[0].user_id)
    today = max(parse_timestamp(msg["timestamp"]) for c in conversations for msg in c.messages)
    for n, qa in enumerate(sample["qa"]):
        category = int(qa["category"])
        if category == 5 or "answer" not in qa:
            continue
        yield (
            Question(
                id=f"{user}#{n}",
                text=str(qa["question"]),
                gold=str(qa["answer"]),
                kind="locomo",
                groups=tuple(_groups(category)),
                user_id=user,
                today=today,
            ),
            qa,
        )


def _lme_question(q: Mapping[str, Any]) -> Question:
    qid, qtype = str(q["question_id"]), str(q["question_type"])
    abstains = qid.endswith("_abs")
    kind = "abstention" if abstains else (qtype if qtype in LME_JUDGE else "default")
    return Question(
        id=qid,
        text=str(q["question"]),
        gold=str(q["answer"]),
        kind=kind,
        groups=("overall", qtype, *(("abstention",) if abstains else ())),
        user_id=qid,
        today=parse_timestamp(q["question_date"]),
    )


def _models(reader: str | LLM, judge: str | LLM) -> tuple[LLM, LLM]:
    found = resolve_llm(reader), resolve_llm(judge)
    if found[0] is None or found[1] is None:
        raise InvalidInput("a QA evaluation needs a reader and a judge model, e.g. 'openai:gpt-4o'")
    return found[0], found[1]


def _close(spec: str | LLM, llm: LLM) -> None:
    if isinstance(spec, str):  # made here: ours to close
        llm.close()


def run_locomo_qa(
    path: str | Path,
    *,
    reader: str | LLM,
    judge: str | LLM,
    embedder: str | Embedder = "local",
    limit: int | None = None,
    context_tokens: int | None = None,
    progress: Progress | None = None,
    cache_dir: str | Path | None = None,
    memory_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Answer-and-judge accuracy on LoCoMo (categories 1-4), beside retrieval recall.

    Args:
        path: a LoCoMo JSON file.
        reader: the model that answers from the context (a name for ``resolve_llm`` or an LLM).
        judge: the model that grades the answers.
        embedder: as for :class:`~engramdb.Memory`.
        limit: answer only the first N gradable questions (whole conversations are ingested).
        context_tokens: the context budget (default: the ``context_tokens`` setting).
        progress: ``progress(done, total)`` after each question.
        cache_dir: keep embeddings here between runs.
        memory_options: settings of each store (e.g. ``{"llm": ..., "consolidate": ...}``).

    Raises:
        InvalidInput: no reader or judge. ImportFormatError: the file is not LoCoMo.
    """
    emb = _embedder(embedder, cache_dir)
    reader_llm, judge_llm = _models(reader, judge)
    run = _Run(reader_llm, judge_llm, context_tokens)
    samples = importers.load_locomo(path)
    plan = _locomo_plan(samples, path, limit)
    total = sum(len(questions) for _, _, questions in plan)
    done, ingested, ingest_s = 0, 0, 0.0
    extra: dict[str, Any] = {}
    options = _options(memory_options)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for index, conversations, questions in plan:
                with Memory(Path(tmp) / f"qa-{index}.db", embedder=emb, **options) as mem:
                    count, seconds = _ingest(mem, conversations)
                    ingested, ingest_s = ingested + count, ingest_s + seconds
                    extra = _store_settings(mem, context_tokens)
                    for q, qa in questions:
                        _locomo_recall(run.retrieval, mem, q, qa)
                        run.ask(mem, q)
                        done += 1
                        if progress:
                            progress(done, total)
    finally:
        _close(reader, reader_llm)
        _close(judge, judge_llm)
    return run.result(
        "locomo",
        path,
        emb,
        {
            **extra,
            "conversations": len(plan),
            "questions": done,
            "ingest": _ingest_report(ingested, ingest_s),
        },
    )


def _locomo_plan(
    samples: list[dict[str, Any]], path: str | Path, limit: int | None
) -> list[tuple[int, list[importers.Conversation], list[tuple[Question, dict[str, Any]]]]]:
    """The conversations to ingest and their questions, up to ``limit`` questions in all."""
    plan = []
    left = limit
    for index, sample in enumerate(samples):
        if left is not None and left <= 0:
            break
        conversations = list(importers.locomo_sample(sample, index, str(path)))
        questions = list(_locomo_questions(sample, conversations))[:left]
        if left is not None:
            left -= len(questions)
        if questions:
            plan.append((index, conversations, questions))
    return plan


def _locomo_recall(scores: _Scores, mem: Memory, q: Question, qa: Mapping[str, Any]) -> None:
    """The retrieval runner's recall figures for one LoCoMo question."""
    evidence = {str(e) for e in qa.get("evidence") or []}
    if not evidence:
        return
    hits = mem.search(q.text, user_id=q.user_id, limit=SEARCH_LIMIT)
    turns = [[str(s.metadata.get("dia_id")) for s in h.sources] for h in hits]
    _locomo_scores(scores, q.groups, turns, [_words(h) for h in hits], evidence)


def run_longmemeval_qa(
    path: str | Path,
    *,
    reader: str | LLM,
    judge: str | LLM,
    embedder: str | Embedder = "local",
    limit: int | None = None,
    context_tokens: int | None = None,
    progress: Progress | None = None,
    cache_dir: str | Path | None = None,
    memory_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Answer-and-judge accuracy on LongMemEval, abstention questions included, beside
    retrieval recall (of the answerable questions, as the retrieval runner computes it).

    Arguments as for :func:`run_locomo_qa`; ``limit`` takes the first N questions.
    """
    emb = _embedder(embedder, cache_dir)
    reader_llm, judge_llm = _models(reader, judge)
    run = _Run(reader_llm, judge_llm, context_tokens)
    questions = importers.load_longmemeval(path)[:limit]
    ingested, ingest_s = 0, 0.0
    extra: dict[str, Any] = {}
    options = _options(memory_options)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for index, raw in enumerate(questions):
                conversations = list(importers.longmemeval_question(raw, str(path)))
                q = _lme_question(raw)
                with Memory(Path(tmp) / f"qa-{index}.db", embedder=emb, **options) as mem:
                    count, seconds = _ingest(mem, conversations)
                    ingested, ingest_s = ingested + count, ingest_s + seconds
                    extra = _store_settings(mem, context_tokens)
                    if q.kind != "abstention":
                        _lme_recall(run.retrieval, mem, q, raw)
                    run.ask(mem, q)
                if progress:
                    progress(index + 1, len(questions))
    finally:
        _close(reader, reader_llm)
        _close(judge, judge_llm)
    return run.result(
        "longmemeval",
        path,
        emb,
        {**extra, "questions": len(questions), "ingest": _ingest_report(ingested, ingest_s)},
    )


def _lme_recall(scores: _Scores, mem: Memory, q: Question, raw: dict[str, Any]) -> None:
    """The retrieval runner's recall figures for one LongMemEval question."""
    hits = mem.search(q.text, user_id=q.user_id, limit=SEARCH_LIMIT, as_of=q.today)
    _lme_scores(
        scores,
        raw,
        [[str(s.session_id) for s in h.sources] for h in hits],
        [[str(s.metadata.get("turn")) for s in h.sources] for h in hits],
    )


def _store_settings(mem: Memory, context_tokens: int | None) -> dict[str, Any]:
    """How the stores extracted facts and how much context the reader got."""
    return {
        "extraction_llm": mem.llm.name if mem.llm is not None else None,
        "consolidate": mem.settings["consolidate"],
        "context_tokens": context_tokens or mem.settings["context_tokens"],
    }


def _ingest_report(messages: int, seconds: float) -> dict[str, Any]:
    return {"messages": messages, "seconds": round(seconds, 2)}


#: Every runner by dataset name, for the CLI.
RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "locomo": run_locomo_qa,
    "longmemeval": run_longmemeval_qa,
}
