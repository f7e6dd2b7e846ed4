# ruff: noqa: F811
"""The storage contract for semantic memory: facts and their validity, sources, extract jobs,
entities and mentions. Runs on every backend of ``test_contract.BACKENDS`` through its fixture."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_contract import ANA, BOB, OTHER_TENANT, _row, store  # noqa: F401

from engramdb.backends import Store
from engramdb.errors import MemoryNotFound
from engramdb.records import EntityLink, FactInfo, Filter

T0 = 1_700_000_000.0


def _fact(scope, value: str, when: float, sources: list[str], **fields):  # type: ignore[no-untyped-def]
    row = _row(scope, f"Ana lives in {value}", when, session=None, kind="fact")
    row.source_ids = sources
    row.fact = FactInfo(
        subject="Ana", attribute="lives_in", value=value, claim_kind="fact", single=True,
        ends=False, valid_from=when, **fields,
    )  # fmt: skip
    return row


def _seed(store: Store) -> tuple[str, str, str]:
    said = _row(ANA, "I live in Lisbon", T0)
    moved = _row(ANA, "I moved to Porto", T0 + 100)
    with store.transaction() as tx:
        tx.insert([said, moved], "test", extract=True)
        lisbon = _fact(ANA, "Lisbon", T0, [said.id])
        tx.insert([lisbon], "test")
    return said.id, moved.id, lisbon.id


def test_a_fact_is_stored_with_its_statement_sources_and_validity(store: Store) -> None:
    said, _, lisbon = _seed(store)
    (row,) = store.get("t1", [lisbon])
    assert row.kind == "fact" and row.source_ids == [said]
    assert row.fact is not None and (row.fact.value, row.fact.valid_to) == ("Lisbon", None)
    assert store.get("t2", [lisbon]) == []  # no other tenant sees it


def test_extract_jobs_are_queued_failed_finished_and_requeued(store: Store) -> None:
    said, moved, _ = _seed(store)
    assert {j.memory_id for j in store.jobs("t1", 10, "extract")} == {said, moved}
    with store.transaction() as tx:
        tx.fail_jobs("t1", [said], "boom", "extract")
        tx.finish_jobs("t1", [moved], "extract")
    (job,) = store.jobs("t1", 10, "extract")
    assert (job.memory_id, job.attempts, job.last_error) == (said, 1, "boom")
    with store.transaction() as tx:
        tx.requeue("t1", [moved], "extract")
    assert {j.memory_id for j in store.jobs("t1", 10, "extract")} == {said, moved}


def test_facts_about_a_subject_and_their_validity_history(store: Store) -> None:
    _, moved, lisbon = _seed(store)
    with store.transaction() as tx:
        porto = _fact(ANA, "Porto", T0 + 100, [moved])
        tx.insert([porto], "test")
        (old,) = tx.facts_about(ANA, "ana", ["lives_in"], "lisbon", 10)  # names normalized
        assert old.id == lisbon
        assert old.fact is not None
        ended = replace(old.fact, valid_to=T0 + 100, expired_at=T0 + 200, superseded_by=porto.id)
        tx.set_validity("t1", lisbon, ended, "supersede", "test", [moved])
        assert [r.id for r in tx.facts_about(ANA, "Ana", ["lives_in"], None, 10)] == [
            porto.id, lisbon,
        ]  # fmt: skip
        assert tx.facts_about(BOB, "Ana", ["lives_in"], None, 10) == []
        with pytest.raises(MemoryNotFound):
            tx.set_validity("t1", "nope", ended, "supersede", "test")
    (row,) = store.get("t1", [lisbon])
    assert row.fact is not None and row.fact.superseded_by == porto.id
    entry = store.history("t1", lisbon)[-1]
    assert entry.event == "supersede" and entry.after is not None
    assert entry.after["caused_by"] == [moved]
    current, _ = store.list(ANA, Filter(kinds=("fact",), current_facts=True), 10, None)
    assert [r.id for r in current] == [porto.id]
    then, _ = store.list(ANA, Filter(kinds=("fact",), facts_valid_at=T0 + 50), 10, None)
    assert [r.id for r in then] == [lisbon]
    assert store.outdated("t1", [r for r in [moved, "x"]], T0 + 300) == set()


def test_sources_added_removed_and_derived_records(store: Store) -> None:
    said, moved, lisbon = _seed(store)
    with store.transaction() as tx:
        assert tx.add_sources("t1", lisbon, [moved, said], "test") == [moved]
        assert dict(tx.derived("t1", [moved])) == {lisbon: 1}  # one other source left
        tx.remove_sources("t1", lisbon, [moved], "test")
        assert dict(tx.derived("t1", [said])) == {lisbon: 0}
    assert store.outdated("t1", [said], T0) == set()  # its fact still holds


def test_entities_mentions_and_their_purge(store: Store) -> None:
    said, moved, lisbon = _seed(store)
    link = EntityLink("e-1", "Lisbon", "place", "home", "Ana")
    with store.transaction() as tx:
        tx.link_entities(ANA, [lisbon, said], [link])
        tx.link_entities(ANA, [moved], [EntityLink("e-2", "lisbon", "place")])  # alias-free merge
    (entity,) = store.entities(ANA)
    assert (entity.id, entity.name, entity.relation, entity.mentions) == (
        "e-1",
        "Lisbon",
        "home",
        3,
    )
    assert store.entities(ANA, "LISBON")[0].id == "e-1"
    assert store.entities(BOB) == [] and store.entities(OTHER_TENANT) == []
    assert [m.name for m in store.mentions("t1", [said])[said]] == ["Lisbon"]
    with store.transaction() as tx:
        tx.unmention("t1", [moved])
        tx.delete("t1", [lisbon], "test")
    assert store.entities(ANA)[0].mentions == 1
    with store.transaction() as tx:
        tx.delete("t1", [said], "test")
    assert store.entities(ANA) == []  # purged with its last mention
