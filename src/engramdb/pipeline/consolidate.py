"""Consolidation: episodes -> claims -> reconciled facts, entities and mentions.

Runs from the 'extract' jobs that ``add`` commits with its episodes: inline right after the
episodes by default, or later from :meth:`Consolidator.process`. Extraction happens outside any
transaction (it may call an LLM); the facts it yields, the entities they name and the end of the
episodes' jobs are then written in one transaction, so a crash in between leaves the jobs pending
and a rerun does the work once (the jobs are gone after it, and a repeated claim only confirms
the fact it repeats). A failing extractor (an LLM that is down or never answers in valid JSON) is
recorded on the jobs and reported, never a silently empty result.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ..backends.base import Store, Transaction
from ..errors import EngramError
from ..llms import LLM
from ..records import Claim, EntityLink, Row
from ..types import Scope
from .extract_rules import extract_rules
from .ingest import Ingest
from .reconcile import Decisions, reconcile

log = logging.getLogger("engramdb")

#: Turns (messages) a claim extractor reads: the batch's rows, and who said each as a name.
Extractor = Callable[[Sequence[Row], Callable[[Row], str | None]], list[Claim]]
#: Messages consolidated per extraction call and transaction.
BATCH = 200


@dataclass
class ConsolidationReport:
    """What a consolidation run did."""

    messages: int = 0
    claims: int = 0
    added: int = 0
    confirmed: int = 0
    superseded: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class Consolidator:
    """Extract claims from messages and fold them into the scope's facts."""

    def __init__(self, store: Store, ingest: Ingest, extractor: Extractor, actor: str) -> None:
        self.store = store
        self.ingest = ingest
        self.extractor = extractor
        self.actor = actor

    def run(self, tenant: str, ids: Sequence[str]) -> ConsolidationReport:
        """Consolidate these messages (their extract jobs end here, done or failed)."""
        report = ConsolidationReport()
        rows = [r for r in self.store.get(tenant, ids) if r.kind == "message"]
        by_scope: dict[Scope, list[Row]] = {}
        for row in sorted(rows, key=lambda r: (r.occurred_at, r.recorded_at)):
            by_scope.setdefault(row.scope, []).append(row)
        for scope, group in by_scope.items():
            for start in range(0, len(group), BATCH):
                self._batch(scope, group[start : start + BATCH], report)
        return report

    def process(
        self,
        tenant: str | None,
        limit: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> ConsolidationReport:
        """Run pending extract jobs, oldest first (failed ones one message at a time);
        ``progress(done, total)`` after each batch."""
        total = ConsolidationReport()
        jobs = self.store.jobs(tenant, limit, "extract")
        batches: list[tuple[str, list[str], bool]] = []  # (tenant, ids, retried alone)
        for job in jobs:
            last = batches[-1] if batches else None
            if job.attempts or last is None or last[2] or last[0] != job.tenant:
                batches.append((job.tenant, [job.memory_id], bool(job.attempts)))
            elif len(last[1]) < BATCH:
                last[1].append(job.memory_id)
            else:
                batches.append((job.tenant, [job.memory_id], False))
        done = 0
        for job_tenant, ids, _ in batches:
            _merge(total, self.run(job_tenant, ids))
            done += len(ids)
            if progress is not None:
                progress(done, len(jobs))
        return total

    def _batch(self, scope: Scope, rows: list[Row], report: ConsolidationReport) -> None:
        ids = [r.id for r in rows]
        try:
            claims = self.extractor(rows, subject_namer(scope))
        except Exception as exc:  # an LLM or a rule failing: recorded on the jobs, reported
            self._failed(scope.tenant, ids, exc, report)
            return
        decisions = Decisions()
        now = time.time()
        offsets = {r.id: r.tz_offset for r in rows}
        # Facts are recorded in the order they were said, a microsecond apart: two that became
        # true at the same moment are told apart by which was said later, whether their messages
        # are consolidated together (one add(), one worker lease) or one by one.
        said = {r.id: r.occurred_at for r in rows}
        spoken = sorted(claims, key=lambda c: max((said.get(s, 0.0) for s in c.source_ids),
                                                   default=0.0))  # fmt: skip
        with self.store.transaction() as tx:
            # Deleted meanwhile, or consolidated meanwhile by another worker: skipped.
            alive = {r.id for r in tx.get(scope.tenant, ids)}
            alive &= tx.pending_jobs(scope.tenant, ids, "extract")
            # In the order they were said, as if each message had been consolidated on its own:
            # a batch tells the story one by one would.
            for i, claim in enumerate(spoken):
                sources = tuple(s for s in claim.source_ids if s in alive)
                if not sources:
                    continue
                claim = replace(claim, source_ids=sources)
                fact_id = reconcile(
                    tx, scope, claim, tz_offset=offsets.get(sources[0]), now=now + i * 1e-6,
                    actor=self.actor, out=decisions,
                )  # fmt: skip
                if fact_id is not None:
                    _link(tx, scope, claim, [fact_id, *sources])
            tx.finish_jobs(scope.tenant, [i for i in ids if i in alive], "extract")
        report.messages += len(rows)
        report.claims += len(claims)
        report.added += len(decisions.added)
        report.confirmed += len(decisions.confirmed)
        report.superseded += len(decisions.superseded)
        if decisions.added or decisions.restated:
            embedded = self.ingest.embed(scope.tenant, [*decisions.added, *decisions.restated])
            report.errors += embedded.errors

    def _failed(
        self, tenant: str, ids: Sequence[str], exc: Exception, report: ConsolidationReport
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        log.warning(
            "engramdb: extracting facts from %d message(s) failed (%s); the messages are stored, "
            "and Memory.process() retries the extraction",
            len(ids),
            error,
        )
        report.failed += len(ids)
        report.errors.append(error)
        try:
            with self.store.transaction() as tx:
                tx.fail_jobs(tenant, ids, error[:500], "extract")
        except EngramError as store_exc:
            log.warning("engramdb: could not record the failure either (%s)", store_exc)


def extractor_for(llm: LLM | None) -> Extractor:
    """The LLM's extraction when there is one, else the offline rules."""
    if llm is None:
        return lambda rows, namer: extract_rules(rows, subject_for=namer)

    def with_llm(rows: Sequence[Row], namer: Callable[[Row], str | None]) -> list[Claim]:
        from .extract_llm import extract_with_llm

        return extract_with_llm(llm, rows, subject_for=namer)

    return with_llm


def subject_namer(scope: Scope) -> Callable[[Row], str | None]:
    """Who a user's message speaks for, as a name: the message's ``name``, else the user id
    when it reads as a name ("maya" -> "Maya"), else "The user". Other roles: None."""
    fallback = _display(scope.user_id)

    def name(row: Row) -> str | None:
        if row.role != "user":
            return None
        return row.name or fallback

    return name


def _display(user_id: str | None) -> str:
    """A user id that reads as a person's name ("maya", "mary_jane"), capitalised; anything
    else (an id like "u-1842" or "e47becba") is "The user"."""
    words = (user_id or "").replace("_", " ").replace("-", " ").split()
    if 1 <= len(words) <= 3 and all(_NAME_WORD.fullmatch(w) and _VOWELS.search(w) for w in words):
        return " ".join(w.capitalize() for w in words)
    return "The user"


_NAME_WORD = re.compile(r"[^\W\d_]{2,20}")
_VOWELS = re.compile(r"[aeiouyáàâãéèêíóôõúü]", re.IGNORECASE)


def _link(tx: Transaction, scope: Scope, claim: Claim, memory_ids: list[str]) -> None:
    links = [
        EntityLink(
            new_id=str(uuid.uuid4()),
            name=ref.name,
            type=ref.type,
            relation=ref.relation,
            relation_of=claim.subject if ref.relation else None,
        )
        for ref in claim.entities
        if ref.name.strip()
    ]
    if links:
        tx.link_entities(scope, memory_ids, links)


def _merge(total: ConsolidationReport, part: ConsolidationReport) -> None:
    for name in ("messages", "claims", "added", "confirmed", "superseded", "failed"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.errors += part.errors
