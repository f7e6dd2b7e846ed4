"""The write path after validation: episode first, then derived work from durable jobs.

``add`` commits the episodes, their keys and an embed job each in one transaction, then runs the
jobs (inline by default). A failing embedder, or a crash between the two steps, leaves every
episode stored, searchable by its words, and its job pending: :meth:`Ingest.process` (or
``Memory.process()`` / ``engram process``) finishes it. Corrections and deletes re-key the turn
after the changed one inside their own transaction, and drop its vector there, since it was
computed from text that is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..backends.base import Store, Transaction
from ..embedders import Embedder
from ..errors import MemoryNotFound, StoreError
from ..records import Row, Vector
from ..types import Scope
from .keys import embed_hash, embed_text, with_previous
from .reconcile import Decisions, relink

log = logging.getLogger("engramdb")
#: Records embedded per embedder call and per vector transaction.
EMBED_BATCH = 256


@dataclass
class ProcessReport:
    """What a run of pending work did."""

    done: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    #: Messages whose facts were extracted, and facts added by that.
    extracted: int = 0
    facts_added: int = 0


class Ingest:
    """Episodes -> keys -> jobs -> vectors, over one store and one embedder."""

    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    # -- episodes ------------------------------------------------------------------------------

    def add(
        self, rows: Sequence[Row], actor: str, *, inline: bool = True, extract: bool = False
    ) -> list[tuple[str, bool]]:
        """Store episodes (one transaction, with an extract job each when ``extract``) and embed
        the new ones; for each, the id it is stored under and whether it was new."""
        tenant = rows[0].scope.tenant
        with self.store.transaction() as tx:
            previous = tx.previous(rows[0].scope, rows[0].session_id, rows[0].occurred_at)
            for row in rows:  # the batch's own order: right for a conversation sent in order
                row.keys = with_previous(row.keys.own, previous)
                previous = row
            stored = tx.insert(rows, actor, extract=extract)
            new = [row for row, (_, created) in zip(rows, stored, strict=True) if created]
            rekeyed = self._follow_time_order(tx, new)
        if inline and (new or rekeyed):
            self.embed(tenant, [r.id for r in new] + rekeyed)
        return stored

    def _follow_time_order(self, tx: Transaction, new: Sequence[Row]) -> list[str]:
        """Give each new message the turn before it *in time* as its context, and the stored turn
        after it this message as its own: a batch sent out of order, or an older history
        imported between stored turns, is keyed the way delete and update will re-key it.
        Returns the stored records whose keys changed."""
        rekeyed: list[str] = []
        for row in new:
            tenant = row.scope.tenant
            before, after = tx.neighbours(tenant, row.id)
            keys = with_previous(row.keys.own, before)
            if keys != row.keys:
                tx.set_keys(tenant, row.id, keys)
                row.keys = keys
            if after is not None:
                follows = with_previous(after.keys.own, row)
                if follows != after.keys:
                    tx.set_keys(tenant, after.id, follows)
                    rekeyed.append(after.id)
        return [i for i in dict.fromkeys(rekeyed) if i not in {r.id for r in new}]

    def update(
        self,
        tenant: str,
        memory_id: str,
        change: Callable[[Row], bool],
        actor: str,
        *,
        rederive: bool = False,
    ) -> list[str]:
        """Apply ``change`` to a record inside one transaction (it returns whether the text
        changed; keys are rebuilt from the row's own key), re-keying the next turn with it:
        concurrent corrections never undo each other. The facts that rested on a corrected
        message are purged, and (``rederive``) the extraction of it and of those facts' other
        sources queued again; returns the ids queued.

        Raises:
            MemoryNotFound: no such record (or it was deleted meanwhile).
        """
        with self.store.transaction() as tx:
            found = tx.get(tenant, [memory_id])
            if not found:
                raise MemoryNotFound(memory_id)
            row = found[0]
            text_changed = change(row)
            before, after = tx.neighbours(tenant, row.id)
            if row.kind == "message":
                row.keys = with_previous(row.keys.own, before)
            tx.update(row, actor)
            stale: list[str] = []
            again: list[str] = []
            if text_changed:
                tx.stale(tenant, [row.id])
                stale.append(row.id)
                if row.kind == "message":  # its facts said what it no longer says
                    again = self._purge_with_derived(
                        tx, tenant, [row.id], actor, keep=True, rederive=rederive
                    )
                if after is not None:
                    tx.set_keys(tenant, after.id, with_previous(after.keys.own, row))
                    stale.append(after.id)
        if stale:
            self.embed(tenant, stale)
        return again

    def delete(
        self, tenant: str, memory_id: str, actor: str, *, rederive: bool = False
    ) -> list[str]:
        """Purge a record and the facts derived from it, and re-key the turn after it, in one
        transaction; the timelines those facts were on are recomputed (a fact they had
        superseded is current again). Returns the messages whose extraction was queued again
        (``rederive``: the other sources of the purged facts)."""
        with self.store.transaction() as tx:
            before, after = tx.neighbours(tenant, memory_id)
            if not tx.get(tenant, [memory_id]):
                raise MemoryNotFound(memory_id)
            again = self._purge_with_derived(tx, tenant, [memory_id], actor, rederive=rederive)
            if after is not None:
                tx.set_keys(tenant, after.id, with_previous(after.keys.own, before))
        if after is not None:
            self.embed(tenant, [after.id])
        return again

    @staticmethod
    def _purge_with_derived(
        tx: Transaction,
        tenant: str,
        ids: Sequence[str],
        actor: str,
        *,
        keep: bool = False,
        rederive: bool = False,
    ) -> list[str]:
        """Delete records (unless ``keep``: a correction) with every fact derived from them,
        even in part: a fact's text and start may come from any of its sources, so nothing of
        it may outlive one. Their timelines are recomputed (a fact they had superseded is
        current again), and with ``rederive`` the extraction of their other sources (and of a
        corrected record) is queued again; returns those records' ids."""
        derived = [d for d, _ in tx.derived(tenant, ids)]
        facts = [r for r in tx.get(tenant, derived) if r.fact is not None]
        gone = set(ids)
        others = sorted({s for f in facts for s in f.source_ids} - gone)
        tx.delete(tenant, derived if keep else [*ids, *derived], actor)
        if keep:
            tx.unmention(tenant, ids)
        now = time.time()
        for row in facts:
            assert row.fact is not None
            relink(tx, row.scope, row.fact, now, actor, Decisions())
        if not rederive:
            return []
        again = [*others, *(ids if keep else [])]
        tx.requeue(tenant, again, "extract")
        return again

    def delete_scope(self, scope: Scope, actor: str) -> int:
        with self.store.transaction() as tx:
            return len(tx.delete_scope(scope, actor))

    def import_rows(self, rows: Sequence[Row], actor: str) -> list[str]:
        """Store exported records as they are (ids, times, keys); the ids of the new ones."""
        if not rows:
            return []
        with self.store.transaction() as tx:
            stored = tx.insert(rows, actor)
        new = [row.id for row, (_, created) in zip(rows, stored, strict=True) if created]
        fresh = set(new)
        carried = [r for r in rows if r.id in fresh and self._fits(r)]
        if carried:  # vectors an export or a migration brought: stored, not computed again
            with self.store.transaction() as tx:
                for tenant in {r.scope.tenant for r in carried}:
                    tx.put_vectors(tenant, [
                        (r.id, r.keys, r.embedding[0], r.embedding[1])  # type: ignore[index]
                        for r in carried if r.scope.tenant == tenant
                    ])  # fmt: skip
        done = {r.id for r in carried}
        by_tenant: dict[str, list[str]] = {}
        for row in rows:
            if row.id in fresh and row.id not in done:
                by_tenant.setdefault(row.scope.tenant, []).append(row.id)
        for tenant, ids in by_tenant.items():
            self.embed(tenant, ids)
        return new

    def _fits(self, row: Row) -> bool:
        """Whether a carried vector can be stored as it is: this embedder's size, and the hash
        this embedder gives the record's key (else the key changed since: embed again)."""
        if row.embedding is None or row.embedding[1].shape != (self.embedder.dim,):
            return False
        return row.embedding[0] == embed_hash(self.embedder.name, embed_text(row.keys))

    def link_sources(self, tenant: str, sources: Mapping[str, Sequence[str]]) -> None:
        """Link imported records to their sources once all are stored (already linked ones are
        left as they are; no history: the import recorded their creation)."""
        if not sources:
            return
        with self.store.transaction() as tx:
            present = {r.id for r in tx.get(tenant, list(sources))}  # deleted meanwhile: skip
            for memory_id, source_ids in sources.items():
                if memory_id in present:
                    tx.add_sources(tenant, memory_id, source_ids, "import", history=False)

    # -- derived work --------------------------------------------------------------------------

    def embed(self, tenant: str, ids: Sequence[str]) -> ProcessReport:
        """Compute and store the vectors of records; a failure is recorded on their jobs."""
        report = ProcessReport()
        for start in range(0, len(ids), EMBED_BATCH):
            self._embed_batch(tenant, ids[start : start + EMBED_BATCH], report)
        return report

    def _embed_batch(self, tenant: str, ids: Sequence[str], report: ProcessReport) -> None:
        rows = self.store.get(tenant, ids)
        if not rows:
            return
        texts = [embed_text(r.keys) for r in rows]
        hashes = [embed_hash(self.embedder.name, t) for t in texts]
        try:
            vectors = self._vectors(texts, hashes)
        except Exception as exc:  # any embedder failure: recorded, never a lost episode
            self._failed(tenant, rows, exc, report)
            return
        items = [(r.id, r.keys, hashes[i], vectors[i]) for i, r in enumerate(rows)]
        try:
            with self.store.transaction() as tx:
                report.done += tx.put_vectors(tenant, items)
        except StoreError as exc:  # e.g. a full disk: the episodes are safe, the jobs stay
            self._failed(tenant, rows, exc, report, record=False)

    def _failed(
        self,
        tenant: str,
        rows: Sequence[Row],
        exc: Exception,
        report: ProcessReport,
        *,
        record: bool = True,
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        log.warning(
            "engramdb: embedding %d record(s) failed (%s); they are stored and found by their "
            "words, and Memory.process() retries them",
            len(rows),
            error,
        )
        report.failed += len(rows)
        report.errors.append(error)
        if not record:
            return
        # A job keeps its own error only when it failed alone: a batch's error message may quote
        # another record's text (services echo rejected input), which must go with that record.
        kept = error if len(rows) == 1 else f"{type(exc).__name__} (in a batch of {len(rows)})"
        try:
            with self.store.transaction() as tx:
                tx.fail_jobs(tenant, [r.id for r in rows], kept[:500])
        except StoreError as store_exc:
            log.warning("engramdb: could not record the failure either (%s)", store_exc)

    def _vectors(self, texts: list[str], hashes: list[str]) -> Vector:
        cached = self.store.cached_vectors(hashes)
        todo = [i for i, h in enumerate(hashes) if h not in cached]
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        if todo:
            fresh = np.asarray(self.embedder.embed([texts[i] for i in todo]), dtype=np.float32)
            if fresh.shape != (len(todo), self.embedder.dim) or not np.isfinite(fresh).all():
                raise ValueError(
                    f"embedder {self.embedder.name} returned an array of shape {fresh.shape} "
                    f"(or non-finite values) for {len(todo)} texts of dimension {self.embedder.dim}"
                )
            out[todo] = fresh
        for i, h in enumerate(hashes):
            if h in cached:
                out[i] = cached[h]
        return out

    def process(self, tenant: str | None, limit: int) -> ProcessReport:
        """Run up to ``limit`` pending jobs (every tenant's when ``tenant`` is None). Jobs that
        failed before run one record at a time, so one record the embedder rejects cannot keep
        the others from finishing."""
        report = ProcessReport()
        fresh: dict[str, list[str]] = {}
        for job in self.store.jobs(tenant, limit, "embed"):
            if job.attempts:
                self._merge(report, self.embed(job.tenant, [job.memory_id]))
            else:
                fresh.setdefault(job.tenant, []).append(job.memory_id)
        for job_tenant, ids in fresh.items():
            self._merge(report, self.embed(job_tenant, ids))
        return report

    @staticmethod
    def _merge(report: ProcessReport, part: ProcessReport) -> None:
        report.done += part.done
        report.failed += part.failed
        report.errors += part.errors
