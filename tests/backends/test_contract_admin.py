# ruff: noqa: F811
"""The storage contract for what a server keeps beside the memories: API keys, webhooks and
their delivery log, the event feed, scope summaries, archiving and erasure. Runs on every
backend of ``test_contract.BACKENDS`` through its fixture."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from test_contract import ANA, BOB, OTHER_TENANT, _embed, _row, store  # noqa: F401

from engramdb.backends import Store
from engramdb.errors import MemoryNotFound
from engramdb.records import Filter
from engramdb.types import ApiKey, Delivery, Scope, Webhook

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _key(ident: str, tenant: str = "t1", role: str = "reader") -> ApiKey:
    return ApiKey(ident, tenant, "label", role, "ek_abc", NOW)


def _hook(ident: str, tenant: str = "t1") -> Webhook:
    return Webhook(ident, tenant, "http://127.0.0.1:9/hook", ["create"], NOW, 0)


def test_keys_are_found_by_hash_listed_per_tenant_and_revoked(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_key(_key("k1"), "hash-1")
        tx.insert_key(_key("k2", "t2", "admin"), "hash-2")
    found = store.api_key("hash-1")
    assert found is not None and (found.id, found.tenant, found.role) == ("k1", "t1", "reader")
    assert store.api_key("nope") is None
    assert [k.id for k in store.api_keys("t1")] == ["k1"]
    assert {k.id for k in store.api_keys(None)} == {"k1", "k2"}
    with store.transaction() as tx:
        assert not tx.revoke_key("k2", "t1")  # another tenant's key: untouched
        assert tx.revoke_key("k1", "t1")
        assert not tx.revoke_key("k1", "t1")  # already revoked
    revoked = store.api_key("hash-1")
    assert revoked is not None and revoked.revoked_at is not None
    kept = store.api_key("hash-2")
    assert kept is not None and kept.revoked_at is None


def test_events_are_the_tenants_history_in_order_and_keep_no_deleted_content(
    store: Store,
) -> None:
    a, b = _row(ANA, "first secret"), _row(ANA, "second")
    with store.transaction() as tx:
        tx.insert([a, b], "test")
        tx.insert([_row(OTHER_TENANT, "elsewhere")], "test")
    events = store.events("t1", 0, 100)
    assert [(e.event, e.memory_id) for e in events] == [("create", a.id), ("create", b.id)]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert [e.memory_id for e in store.events("t1", events[0].id, 100)] == [b.id]
    with store.transaction() as tx:
        tx.delete("t1", [a.id], "test")
    after = store.events("t1", 0, 100)
    assert [e.event for e in after if e.memory_id == a.id] == ["create", "delete"]
    assert all(e.before is None and e.after is None for e in after if e.memory_id == a.id)
    assert "elsewhere" not in repr(after)


def test_webhooks_start_after_the_newest_event_and_log_deliveries(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert([_row(ANA, "before")], "test")
    newest = store.events("t1", 0, 100)[-1].id
    with store.transaction() as tx:
        hook = tx.insert_webhook(_hook("h1"), "secret-1")
        tx.insert_webhook(_hook("h2", "t2"), "secret-2")
    assert hook.cursor == newest
    assert [(h.id, s) for h, s in store.webhooks("t1")] == [("h1", "secret-1")]
    assert {h.id for h, _ in store.webhooks(None)} == {"h1", "h2"}
    attempt = Delivery("t1", "h1", newest + 1, 1, "failed", 500, "boom", NOW)
    with store.transaction() as tx:
        tx.log_delivery(attempt, False)
        tx.log_delivery(Delivery("t1", "h1", newest + 1, 2, "delivered", 200, None, NOW), True)
    log = store.deliveries("t1", "h1", 10)
    assert [(d.attempt, d.status) for d in log] == [(2, "delivered"), (1, "failed")]
    assert store.webhooks("t1")[0][0].cursor == newest + 1
    assert store.deliveries("t2", "h1", 10) == []
    with store.transaction() as tx:
        assert not tx.delete_webhook("t2", "h1")
        assert tx.delete_webhook("t1", "h1")
    assert store.webhooks("t1") == [] and store.deliveries("t1", "h1", 10) == []


def test_a_delivery_lease_has_one_holder_until_it_runs_out(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_webhook(_hook("h1"), "s")
        tx.insert_webhook(_hook("h2", "t2"), "s")
    later = time.time() + 60

    def lease(holder: str, until: float = later, tenant: str = "t1", hook: str = "h1") -> bool:
        with store.transaction() as tx:
            return tx.lease_webhook(tenant, hook, holder, until)

    assert lease("one") and not lease("two") and lease("one")  # renewed by its holder only
    assert not lease("two", tenant="t2")  # another tenant cannot name this one
    assert lease("two", tenant="t2", hook="h2")
    with store.transaction() as tx:
        tx.release_webhook("t1", "h1", "two")  # not two's to give up
    assert not lease("two")
    with store.transaction() as tx:
        tx.release_webhook("t1", "h1", "one")
    assert lease("two", until=time.time() - 1)  # taken, and run out at once
    assert lease("one")
    assert not lease("one", hook="nope")
    with store.transaction() as tx:
        tx.delete_webhook("t1", "h1")
    assert not lease("one")
    # An attempt logged after its subscription was deleted leaves no row behind.
    with store.transaction() as tx:
        tx.log_delivery(Delivery("t1", "h1", 1, 1, "delivered", 200, None, NOW), True)
    assert store.deliveries("t1", "h1", 10) == []


def test_scopes_summarise_a_tenant(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert([_row(ANA, "one"), _row(ANA, "two"), _row(BOB, "three")], "test")
        tx.insert([_row(OTHER_TENANT, "four")], "test")
    found = {(s.user_id, s.memories) for s in store.scopes("t1")}
    assert found == {("ana", 2), ("bob", 1)}
    assert [(s.user_id, s.memories) for s in store.scopes("t2")] == [("ana", 1)]


def test_archived_records_are_flagged_filtered_and_brought_back(store: Store) -> None:
    a, b = _row(ANA, "kept"), _row(ANA, "put away")
    with store.transaction() as tx:
        tx.insert([a, b], "test")
        assert tx.set_archived("t1", b.id, 1_800_000_000.0, "test")
        assert not tx.set_archived("t1", b.id, 1_800_000_001.0, "test")  # already archived
        with pytest.raises(MemoryNotFound):
            tx.set_archived("t2", b.id, 1.0, "test")
    (row,) = store.get("t1", [b.id])
    assert row.archived_at == 1_800_000_000.0
    listed = store.list(ANA, Filter(archived=False), 10, None)[0]
    assert [r.id for r in listed] == [a.id]
    assert [r.id for r in store.list(ANA, Filter(archived=True), 10, None)[0]] == [b.id]
    assert len(store.list(ANA, Filter(), 10, None)[0]) == 2
    assert [e.event for e in store.history("t1", b.id)] == ["create", "archive"]
    with store.transaction() as tx:
        assert tx.set_archived("t1", b.id, None, "test")
    assert store.get("t1", [b.id])[0].archived_at is None


def test_purging_a_user_removes_every_scope_of_theirs_and_nothing_else(store: Store) -> None:
    ana_bot = Scope("t1", "ana", "bot")
    rows = [_row(ANA, "ana secret"), _row(ana_bot, "ana to bot"), _row(BOB, "bob stays")]
    with store.transaction() as tx:
        tx.insert(rows, "test", extract=True)
        tx.insert([_row(OTHER_TENANT, "ana elsewhere")], "test")
    _embed(store, "t1", rows)
    with store.transaction() as tx:
        receipt = tx.purge("t1", "ana", "test")
    assert (receipt["memories"], receipt["messages"], receipt["scopes"]) == (2, 2, 2)
    assert store.get("t1", [r.id for r in rows[:2]]) == []
    assert [s.user_id for s in store.scopes("t1")] == ["bob"]
    assert store.get("t1", [rows[2].id]) != []
    assert [s.user_id for s in store.scopes("t2")] == ["ana"]  # another tenant's ana stays
    assert all(e.after is None for e in store.events("t1", 0, 100) if e.memory_id != rows[2].id)
    assert {j.memory_id for j in store.jobs("t1", 100)} <= {rows[2].id}
    assert store.lexical(ANA, "secret", 10, Filter()) == []


def test_purging_a_tenant_removes_its_keys_webhooks_and_history(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert([_row(ANA, "one"), _row(BOB, "two")], "test")
        tx.insert([_row(OTHER_TENANT, "other")], "test")
        tx.insert_key(_key("k1"), "hash-1")
        tx.insert_key(_key("k2", "t2"), "hash-2")
        tx.insert_webhook(_hook("h1"), "s")
    with store.transaction() as tx:
        receipt = tx.purge("t1", None, "test")
    assert receipt["memories"] == 2 and receipt["api_keys"] == 1 and receipt["webhooks"] == 1
    assert store.scopes("t1") == [] and store.events("t1", 0, 100) == []
    assert store.api_key("hash-1") is None and store.api_key("hash-2") is not None
    assert store.webhooks("t1") == [] and len(store.scopes("t2")) == 1


def test_what_a_migration_reads_and_writes(store: Store) -> None:
    rows = [_row(ANA, "one"), _row(ANA, "two")]
    with store.transaction() as tx:
        tx.insert(rows, "test")
        tx.insert_key(_key("k1", "t3"), "hash-1")
    _embed(store, "t1", rows[:1])
    assert store.tenants() == ["t1", "t3"]
    vectors = store.vectors("t1", [r.id for r in rows])
    assert list(vectors) == [rows[0].id] and vectors[rows[0].id][0] == "h0"
    assert store.vectors("t2", [r.id for r in rows]) == {}
    assert [(k.id, d) for k, d in store.api_key_digests("t3")] == [("k1", "hash-1")]
    old = store.events("t1", 0, 100)
    with store.transaction() as tx:
        tx.replace_history("t1", old[:1])
    (kept,) = store.events("t1", 0, 100)
    assert (kept.memory_id, kept.event, kept.after, kept.at) == (
        old[0].memory_id, old[0].event, old[0].after, old[0].at,
    )  # fmt: skip


def test_job_leases_go_to_one_worker_and_pending_jobs_are_those_left(store: Store) -> None:
    rows = [_row(ANA, f"turn {n}") for n in range(4)]
    with store.transaction() as tx:
        tx.insert(rows, "test", extract=True)
        tx.insert([_row(OTHER_TENANT, "elsewhere")], "test", extract=True)
    with store.transaction() as tx:
        first = tx.lease_jobs("extract", 3, "a", 4_000_000_000.0)
    with store.transaction() as tx:
        second = tx.lease_jobs("extract", 10, "b", 4_000_000_000.0)
        assert tx.lease_jobs("extract", 10, "c", 4_000_000_000.0) == []
    assert len(first) == 3 and len(second) == 2
    assert {j.tenant for j in first + second} == {"t1", "t2"}
    assert not {j.memory_id for j in first} & {j.memory_id for j in second}
    ids = [r.id for r in rows]
    with store.transaction() as tx:
        tx.finish_jobs("t1", ids[:2], "extract")
        assert tx.pending_jobs("t1", ids, "extract") == set(ids[2:])
        assert tx.pending_jobs("t2", ids, "extract") == set()
