"""Semantic memory as a demanding user meets it: facts on a bi-temporal timeline, with sources.

Real SQLite files, the offline rule extractor (or the deterministic TestLLM), multi-session
histories with explicit timestamps.
"""

from __future__ import annotations

import importlib.util
import io
import json
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engramdb import Memory
from engramdb.errors import EngramError, InvalidInput, MissingScope
from engramdb.llms.test import TestLLM
from engramdb.types import MemoryRecord

USER = "maya"  # the rules name her "Maya"
JAN = "2024-01-10T10:00:00Z"
FEB = "2024-02-01T10:00:00Z"
MAY29 = "2024-05-29T10:00:00Z"  # "yesterday" = 28 May
JUN = "2024-06-01T10:00:00Z"
AUG = "2024-08-01T10:00:00Z"
SEP = "2024-09-01T10:00:00Z"


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def say(mem: Memory, text: str, when: str, user: str = USER, **kw: object) -> str:
    return mem.add({"role": "user", "content": text, "timestamp": when}, user_id=user, **kw)[0]


def all_facts(mem: Memory, user: str = USER, attribute: str | None = None) -> list[MemoryRecord]:
    out: list[MemoryRecord] = []
    cursor = None
    while True:
        page = mem.facts(user_id=user, include_expired=True, limit=1000, cursor=cursor)
        out += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    if attribute is not None:
        out = [f for f in out if f.attribute == attribute]
    return sorted(out, key=lambda f: (f.valid_from, f.recorded_at))


def current(mem: Memory, attribute: str, user: str = USER) -> list[MemoryRecord]:
    return [f for f in mem.facts(user_id=user, limit=1000).items if f.attribute == attribute]


def sources(fact: MemoryRecord) -> set[str]:
    return {s.id for s in fact.sources}


def timeline(mem: Memory, attribute: str = "lives_in", user: str = USER) -> list[tuple]:
    """(value, valid_from, valid_to) of a line, oldest first."""
    return [(f.value, f.valid_from, f.valid_to) for f in all_facts(mem, user, attribute)]


def files_text(folder: Path) -> bytes:
    # Every byte of the store's files (as tests/test_defects.py::_files_text).
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> Path:
    folder = tmp_path / "db"
    folder.mkdir()
    return folder / "store.db"


@pytest.fixture
def mem(store: Path):
    with Memory(store, embedder="test") as m:
        yield m


# -- extraction: sources and absolute dates --------------------------------------------------------


def test_a_move_supersedes_the_old_city_keeping_it_whole(mem: Memory) -> None:
    lisbon_msg = say(mem, "I live in Lisbon", JAN)
    before = time.time()
    porto_msg = say(mem, "I moved to Porto yesterday", MAY29)
    after = time.time()

    lisbon, porto = all_facts(mem, attribute="lives_in")
    assert (lisbon.value, porto.value) == ("Lisbon", "Porto")
    # the new fact: an absolute date, its source, current
    assert "28 May 2024" in porto.text and "yesterday" not in porto.text
    assert porto.valid_from == datetime(2024, 5, 28, tzinfo=UTC)
    assert porto.valid_to is None and porto.superseded_by is None and porto.expired_at is None
    assert sources(porto) == {porto_msg}
    # the old one: kept, text and sources intact, ended when Porto became true
    assert lisbon.text == "Maya lives in Lisbon"
    assert sources(lisbon) == {lisbon_msg}
    assert lisbon.valid_from == at(JAN)
    assert lisbon.valid_to == datetime(2024, 5, 28, tzinfo=UTC)
    assert lisbon.superseded_by == porto.id
    assert lisbon.expired_at is not None
    assert before - 1 <= lisbon.expired_at.timestamp() <= after + 1  # when we learned it
    # only the current value by default, in facts() and in the profile
    assert [f.value for f in current(mem, "lives_in")] == ["Porto"]
    prof = mem.profile(user_id=USER)
    assert [e.value for e in prof.entries if e.attribute == "lives_in"] == ["Porto"]
    assert "Lisbon" not in prof.text and "Porto" in prof.text
    # history shows each step of the old fact
    steps = [h.event for h in mem.history(lisbon.id)]
    assert steps == ["create", "supersede"]
    sup = mem.history(lisbon.id)[-1]
    assert sup.after is not None and sup.after["superseded_by"] == porto.id


def test_a_relative_and_her_job_become_entities_and_facts_about_her(mem: Memory) -> None:
    msg = say(mem, "My sister Inês works at Google", FEB)
    facts = {(f.subject, f.attribute, f.value) for f in all_facts(mem)}
    assert ("Maya", "sister", "Inês") in facts
    assert ("Inês", "works_at", "Google") in facts
    ines = mem.entities(user_id=USER, name="Inês")
    assert len(ines) == 1
    assert ines[0].type == "person" and ines[0].relation == "sister"
    assert ines[0].relation_of == "Maya" and msg in ines[0].memory_ids
    # Inês's job is not Maya's: the profile is the speaker's
    prof = mem.profile(user_id=USER)
    assert not any(e.attribute == "works_at" for e in prof.entries)
    assert any(e.attribute == "sister" and e.value == "Inês" for e in prof.entries)


def test_her_job_change_supersedes_the_old_employer(mem: Memory) -> None:
    say(mem, "My sister Inês works at Google", FEB)
    joined = say(mem, "Inês works at Meta now", JUN)
    google, meta = all_facts(mem, attribute="works_at")
    assert (google.subject, google.value, meta.value) == ("Inês", "Google", "Meta")
    assert google.superseded_by == meta.id and google.valid_to == at(JUN)
    assert sources(meta) == {joined}
    assert [f.value for f in current(mem, "works_at")] == ["Meta"]


def test_left_and_joined_in_one_sentence(mem: Memory) -> None:
    say(mem, "My sister Inês works at Google", FEB)
    say(mem, "Inês left Google and joined Meta", JUN)
    assert [f.value for f in current(mem, "works_at")] == ["Meta"]
    google = all_facts(mem, attribute="works_at")[0]
    assert google.value == "Google" and google.valid_to == at(JUN)


def test_two_changes_in_a_row_chain_the_timeline(mem: Memory) -> None:
    say(mem, "I live in Lisbon", JAN)
    say(mem, "I moved to Porto yesterday", MAY29)
    say(mem, "I moved to Braga", AUG)
    lisbon, porto, braga = all_facts(mem, attribute="lives_in")
    assert [lisbon.value, porto.value, braga.value] == ["Lisbon", "Porto", "Braga"]
    assert lisbon.superseded_by == porto.id and porto.superseded_by == braga.id
    assert lisbon.valid_to == porto.valid_from and porto.valid_to == braga.valid_from
    assert braga.valid_to is None
    assert [f.value for f in current(mem, "lives_in")] == ["Braga"]


def test_a_move_back_is_a_third_fact_and_current(mem: Memory) -> None:
    say(mem, "I live in Lisbon", JAN)
    say(mem, "I moved to Porto yesterday", MAY29)
    say(mem, "I moved back to Lisbon", SEP)
    assert timeline(mem) == [
        ("Lisbon", at(JAN), datetime(2024, 5, 28, tzinfo=UTC)),
        ("Porto", datetime(2024, 5, 28, tzinfo=UTC), at(SEP)),
        ("Lisbon", at(SEP), None),
    ]
    assert [f.value for f in current(mem, "lives_in")] == ["Lisbon"]
    prof = mem.profile(user_id=USER)
    assert [e.value for e in prof.entries if e.attribute == "lives_in"] == ["Lisbon"]


ABA = [
    ("I live in Lisbon", JAN),
    ("I moved to Porto", "2024-05-01T10:00:00Z"),
    ("I moved back to Lisbon", SEP),
]
ABA_TIMELINE = [
    ("Lisbon", at(JAN), at("2024-05-01T10:00:00Z")),
    ("Porto", at("2024-05-01T10:00:00Z"), at(SEP)),
    ("Lisbon", at(SEP), None),
]


@pytest.mark.parametrize(
    "order",
    [
        (0, 1, 2),
        (1, 0, 2),
        (1, 2, 0),
        (2, 1, 0),
        (0, 2, 1),
        (2, 0, 1),
    ],
)
def test_a_to_b_to_a_in_any_arrival_order(mem: Memory, order: Sequence[int]) -> None:
    for i in order:
        say(mem, *ABA[i])
    assert timeline(mem) == ABA_TIMELINE
    assert [f.value for f in current(mem, "lives_in")] == ["Lisbon"]


def test_an_older_message_imported_later_lands_in_its_place(mem: Memory) -> None:
    say(mem, "I moved to Porto yesterday", MAY29)
    old = say(mem, "I live in Lisbon", JAN)
    lisbon, porto = all_facts(mem, attribute="lives_in")
    assert lisbon.value == "Lisbon" and sources(lisbon) == {old}
    # superseded on arrival: it ended when Porto began, we learned both now
    assert lisbon.valid_to == datetime(2024, 5, 28, tzinfo=UTC)
    assert lisbon.superseded_by == porto.id and lisbon.expired_at is not None
    assert porto.valid_to is None
    assert [f.value for f in current(mem, "lives_in")] == ["Porto"]
    assert [h.event for h in mem.history(lisbon.id)] == ["create", "supersede"]
    # and a repeat of Porto stated before we knew it moves its start back
    earlier = say(mem, "I live in Porto", "2024-04-01T10:00:00Z")
    lisbon, porto = all_facts(mem, attribute="lives_in")
    assert porto.valid_from == at("2024-04-01T10:00:00Z") and earlier in sources(porto)
    assert lisbon.valid_to == porto.valid_from


def test_five_phrasings_are_one_fact_with_five_sources(mem: Memory) -> None:
    phrasings = [
        "I live in Porto",
        "I'm based in Porto",
        "I reside in Porto",
        "i live in porto now",
        "I currently live in Porto",
    ]
    ids = [say(mem, t, f"2024-0{i + 2}-01T10:00:00Z") for i, t in enumerate(phrasings)]
    facts = all_facts(mem, attribute="lives_in")
    assert len(facts) == 1
    assert sources(facts[0]) == set(ids)
    assert facts[0].valid_from == at("2024-02-01T10:00:00Z") and facts[0].valid_to is None
    assert [h.event for h in mem.history(facts[0].id)] == ["create"] + ["confirm"] * 4
    # the very same event sent again is not a sixth source
    again = say(mem, "I live in Porto", "2024-02-01T10:00:00Z")
    assert again == ids[0]
    assert len(all_facts(mem, attribute="lives_in")[0].sources) == 5
    assert [e.mentions for e in mem.entities(user_id=USER, name="Porto")] == [6]


# -- deletes -------------------------------------------------------------------------------------


def test_deleting_the_newest_source_restores_the_old_city(mem: Memory, store: Path) -> None:
    say(mem, "I live in Lisbon", JAN)
    move = say(mem, "I moved to Zorblaxton yesterday", MAY29)
    assert b"Zorblaxton" in files_text(store.parent)
    mem.delete(move)
    facts = all_facts(mem, attribute="lives_in")
    assert [f.value for f in facts] == ["Lisbon"]
    lisbon = facts[0]
    assert lisbon.valid_to is None and lisbon.superseded_by is None and lisbon.expired_at is None
    assert [h.event for h in mem.history(lisbon.id)] == ["create", "supersede", "restore"]
    assert [e.value for e in mem.profile(user_id=USER).entries] == ["Lisbon"]
    assert mem.entities(user_id=USER, name="Zorblaxton") == []
    assert mem.search("Zorblaxton", user_id=USER) == [] or all(
        "Zorblaxton" not in h.text for h in mem.search("Zorblaxton", user_id=USER)
    )
    assert b"Zorblaxton" not in files_text(store.parent)


def test_deleting_a_middle_source_keeps_the_fact(mem: Memory) -> None:
    ids = [say(mem, "I live in Porto", f"2024-0{m}-01T10:00:00Z") for m in (2, 3, 4)]
    mem.delete(ids[1])
    (fact,) = all_facts(mem, attribute="lives_in")
    assert sources(fact) == {ids[0], ids[2]}
    assert fact.valid_from == at("2024-02-01T10:00:00Z") and fact.valid_to is None


def test_deleting_the_only_source_of_a_middle_fact_rechains(mem: Memory) -> None:
    say(mem, "I live in Lisbon", JAN)
    porto = say(mem, "I moved to Porto", "2024-05-01T10:00:00Z")
    say(mem, "I moved to Braga", AUG)
    mem.delete(porto)
    lisbon, braga = all_facts(mem, attribute="lives_in")
    assert (lisbon.value, braga.value) == ("Lisbon", "Braga")
    assert lisbon.superseded_by == braga.id and lisbon.valid_to == at(AUG)
    assert braga.valid_to is None


def test_deleting_the_earliest_source_forgets_what_only_it_said(mem: Memory, store: Path) -> None:
    first = say(mem, "I moved to Porto yesterday", MAY29)  # "since 28 May 2024"
    later = say(mem, "I live in Porto", "2024-07-01T10:00:00Z")
    mem.delete(first)
    (fact,) = all_facts(mem, attribute="lives_in")
    assert sources(fact) == {later}
    assert fact.valid_from == at("2024-07-01T10:00:00Z")
    assert "28 May" not in fact.text
    mem.close()
    assert b"28 May 2024" not in files_text(store.parent)


def test_after_deleting_the_earliest_source_the_latest_statement_is_current(mem: Memory) -> None:
    first = say(mem, "I moved to Porto", "2024-01-11T10:00:00Z")
    say(mem, "I live in Porto", "2024-02-10T10:00:00Z")
    mem.delete(first)
    say(mem, "I live in Lisbon", "2024-01-21T10:00:00Z")  # an older message, imported now
    assert [f.value for f in current(mem, "lives_in")] == ["Porto"]


def test_deleting_b_of_a_to_b_to_a_leaves_one_current_city(mem: Memory) -> None:
    say(mem, "I live in Lisbon", JAN)
    porto = say(mem, "I moved to Porto yesterday", MAY29)
    say(mem, "I moved back to Lisbon", SEP)
    mem.delete(porto)
    assert len(current(mem, "lives_in")) == 1
    assert [e.value for e in mem.profile(user_id=USER).entries] == ["Lisbon"]


def test_delete_all_leaves_no_fact_entity_or_byte(mem: Memory, store: Path) -> None:
    say(mem, "I live in Lisbon", JAN)
    say(mem, "I moved to Quenfordia yesterday", MAY29)
    say(mem, "My sister Xiomara works at Google", FEB)
    other = say(mem, "I live in Lisbon", JAN, user="tom")
    assert mem.delete_all(user_id=USER) == 7  # 3 messages, 4 facts
    assert all_facts(mem) == [] and mem.entities(user_id=USER) == []
    prof = mem.profile(user_id=USER)
    assert prof.entries == [] and prof.text == ""
    assert "Lisbon" not in mem.context("where do I live?", user_id=USER)
    # the other user is untouched
    assert [sources(f) for f in all_facts(mem, user="tom")] == [{other}]
    assert [e.name for e in mem.entities(user_id="tom")] == ["Lisbon"]
    mem.close()
    data = files_text(store.parent)
    assert b"Quenfordia" not in data and b"Xiomara" not in data


# -- corrections -----------------------------------------------------------------------------------


def test_correcting_a_message_replaces_its_facts(mem: Memory) -> None:
    say(mem, "I live in Lisbon", JAN)
    typo = say(mem, "I moved to Porto yesterday", MAY29)
    mem.update(typo, text="I moved to Braga yesterday")
    assert timeline(mem) == [
        ("Lisbon", at(JAN), datetime(2024, 5, 28, tzinfo=UTC)),
        ("Braga", datetime(2024, 5, 28, tzinfo=UTC), None),
    ]
    assert [f.value for f in current(mem, "lives_in")] == ["Braga"]
    assert "Porto" not in mem.profile(user_id=USER).text


def test_correcting_a_message_drops_the_entities_of_its_old_text(mem: Memory) -> None:
    typo = say(mem, "I live in Zorblax", JAN)
    mem.update(typo, text="I live in Quenford")
    assert [f.value for f in all_facts(mem)] == ["Quenford"]
    assert [e.name for e in mem.entities(user_id=USER)] == ["Quenford"]


def test_a_corrected_message_stops_being_a_source(mem: Memory) -> None:
    ids = [say(mem, "I live in Porto", f"2024-0{m}-01T10:00:00Z") for m in (2, 3, 4)]
    mem.update(ids[0], text="I love sushi")
    porto = all_facts(mem, attribute="lives_in")[0]
    assert sources(porto) == {ids[1], ids[2]}
    assert porto.valid_from == at("2024-03-01T10:00:00Z")


# -- reading the timeline --------------------------------------------------------------------------


@pytest.fixture
def moved(mem: Memory) -> Memory:
    say(mem, "I live in Lisbon", JAN)
    say(mem, "I moved to Porto yesterday", MAY29)
    return mem


def test_search_as_of_returns_what_was_true_then(moved: Memory) -> None:
    then = moved.search("where does Maya live", user_id=USER, as_of="2024-03-01T00:00:00Z")
    facts = [h for h in then if h.kind == "fact"]
    assert [h.value for h in facts] == ["Lisbon"]
    assert all(h.occurred_at <= at("2024-03-01T00:00:00Z") for h in then)
    now = moved.search("where does Maya live", user_id=USER)
    ranked = [h.value for h in now if h.kind == "fact"]
    assert ranked[0] == "Porto"  # the current fact above the ended one
    assert "Lisbon" in ranked
    ended = next(h for h in now if h.kind == "fact" and h.value == "Lisbon")
    assert ended.valid_to == datetime(2024, 5, 28, tzinfo=UTC)
    # as_of a moment after the move: Porto holds, Lisbon is found only as past
    june = moved.search("where does Maya live", user_id=USER, as_of=JUN)
    assert next(h.value for h in june if h.kind == "fact") == "Porto"


def test_search_without_expired_facts_leaves_ended_ones_out(moved: Memory) -> None:
    live = moved.search("where does Maya live", user_id=USER, include_expired=False)
    assert [h.value for h in live if h.kind == "fact"] == ["Porto"]
    then = moved.search("Lisbon", user_id=USER, include_expired=False, as_of=JUN)
    assert "Lisbon" not in [h.value for h in then if h.kind == "fact"]


def test_facts_as_of_and_include_expired(moved: Memory) -> None:
    assert [f.value for f in moved.facts(user_id=USER, as_of="2024-03-01").items] == ["Lisbon"]
    assert [f.value for f in moved.facts(user_id=USER, as_of="2024-05-28T00:00:00Z").items] == [
        "Porto"
    ]
    assert moved.facts(user_id=USER, as_of="2023-01-01").items == []
    assert [f.value for f in moved.facts(user_id=USER).items] == ["Porto"]
    assert {f.value for f in moved.facts(user_id=USER, include_expired=True).items} == {
        "Lisbon",
        "Porto",
    }


def test_context_is_profile_then_facts_then_episodes(moved: Memory) -> None:
    say(moved, "My sister Inês works at Google", FEB)
    text = moved.context("where does Maya live and where does Inês work?", user_id=USER)
    p, f, e = text.find("Profile of Maya"), text.find("Inês works at Google"), text.find("user:")
    assert -1 < p < f < e, text
    assert "Lisbon" in text[f:e]  # the ended fact is there, marked as no longer true
    assert "no longer true" in text
    past = moved.context("where does Maya live?", user_id=USER, as_of="2024-03-01T00:00:00Z")
    assert "Profile of" not in past and "Porto" not in past and "Lisbon" in past


def test_profile_is_current_and_bounded(store: Path) -> None:
    with Memory(store, embedder="test", profile_chars=120) as mem:
        say(mem, "I live in Lisbon", JAN)
        say(mem, "I moved to Porto yesterday", MAY29)
        for i, food in enumerate(["sushi", "ramen", "tapas", "pho", "dumplings", "tacos"]):
            say(mem, f"I love {food}", f"2024-03-{i + 1:02d}T10:00:00Z")
        prof = mem.profile(user_id=USER)
        assert len(prof.text) <= 120
        assert prof.truncated
        assert prof.entries[0].value == "Porto"  # where she lives first, and only now
        assert all(e.value != "Lisbon" for e in prof.entries)
        assert len(prof.entries) == prof.text.count("\n- ") + prof.text.startswith("- ")


# -- deferred consolidation, crashes and failing models -----------------------------------------


def test_deferred_extracts_nothing_until_process_and_process_is_idempotent(store: Path) -> None:
    with Memory(store, embedder="test", consolidate="deferred") as mem:
        say(mem, "I live in Lisbon", JAN)
        say(mem, "I moved to Porto yesterday", MAY29)
        assert all_facts(mem) == [] and mem.entities(user_id=USER) == []
        assert mem.stats()["jobs_pending"] == 2
        report = mem.process()
        assert (report.extracted, report.facts_added, report.failed) == (2, 2, 0)
        first = [(f.id, f.valid_to) for f in all_facts(mem)]
        again = mem.process()
        assert (again.extracted, again.facts_added) == (0, 0)
        assert [(f.id, f.valid_to) for f in all_facts(mem)] == first
        assert mem.stats()["jobs_pending"] == 0


def test_a_crash_between_extraction_and_write_leaves_the_jobs_pending(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engramdb.pipeline import consolidate

    real = consolidate.reconcile

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    with Memory(store, embedder="test", consolidate="deferred") as mem:
        say(mem, "I live in Lisbon", JAN)
        say(mem, "I moved to Porto yesterday", MAY29)
        monkeypatch.setattr(consolidate, "reconcile", crash)
        with pytest.raises(RuntimeError):
            mem.process()
        assert all_facts(mem) == [] and mem.entities(user_id=USER) == []
        assert mem.stats()["jobs_pending"] == 2
        monkeypatch.setattr(consolidate, "reconcile", real)
        assert mem.process().facts_added == 2
        assert mem.process().facts_added == 0
        assert [f.value for f in all_facts(mem)] == ["Lisbon", "Porto"]


def test_a_down_llm_is_recorded_and_retried(store: Path) -> None:
    with Memory(store, embedder="test", llm=TestLLM(fail_times=1)) as mem:
        # the first extraction fails, the second (a later message) works
        ids = [say(mem, "I live in Lisbon", JAN), say(mem, "I moved to Porto yesterday", MAY29)]
        assert [r.id for r in mem.list(user_id=USER, kind="message").items] == ids
        assert [f.value for f in all_facts(mem)] == ["Porto"]
        stats = mem.stats()
        assert stats["jobs_failed"] == 1 and stats["jobs_pending"] == 1
        report = mem.process()
        assert report.failed == 0 and report.facts_added == 1 and report.extracted == 1
        # the retried older message lands before Porto on the timeline
        assert timeline(mem) == [
            ("Lisbon", at(JAN), datetime(2024, 5, 28, tzinfo=UTC)),
            ("Porto", datetime(2024, 5, 28, tzinfo=UTC), None),
        ]
        assert mem.stats()["jobs_failed"] == 0 and mem.stats()["jobs_pending"] == 0
        assert [f.value for f in current(mem, "lives_in")] == ["Porto"]


@pytest.mark.parametrize("kind", ["garble", "raises"])
def test_an_unusable_llm_never_silently_drops_facts(store: Path, kind: str) -> None:
    def boom(messages: object) -> str:
        raise ValueError("model crashed")

    llm = TestLLM(garble=True) if kind == "garble" else TestLLM(handler=boom)
    with Memory(store, embedder="test", llm=llm) as mem:
        msg = say(mem, "I live in Lisbon", JAN)
        assert mem.get(msg).text == "I live in Lisbon"
        assert mem.stats()["jobs_failed"] == 1
        report = mem.process()
        assert report.failed == 1 and report.errors and report.facts_added == 0
        assert mem.stats()["jobs_failed"] == 1  # still owed, not dropped
        assert [h.id for h in mem.search("Lisbon", user_id=USER)] == [msg]
    with Memory(store, embedder="test", llm=TestLLM()) as mem:
        assert mem.process().facts_added == 1
        assert [f.value for f in all_facts(mem)] == ["Lisbon"]
        assert mem.stats()["jobs_failed"] == 0


# -- isolation, arguments -----------------------------------------------------------------------


def test_tenants_never_see_each_others_facts(store: Path) -> None:
    with Memory(store, embedder="test") as a, Memory(store, embedder="test", tenant="acme") as b:
        say(a, "I live in Lisbon", JAN)
        say(a, "My sister Inês works at Google", FEB)
        say(b, "I live in Zanzibar", JAN)
        assert [f.value for f in current(a, "lives_in")] == ["Lisbon"]
        assert [f.value for f in current(b, "lives_in")] == ["Zanzibar"]
        assert "Inês" not in {e.name for e in b.entities(user_id=USER)}
        assert "Zanzibar" not in {e.name for e in a.entities(user_id=USER)}
        assert "Lisbon" not in b.profile(user_id=USER).text
        assert all(h.value != "Lisbon" for h in b.search("Lisbon", user_id=USER))
        assert b.delete_all(user_id=USER) == 2
        assert [f.value for f in current(a, "lives_in")] == ["Lisbon"]


def _state(mem: Memory) -> tuple:
    return (
        [(f.id, f.valid_to, len(f.sources)) for f in all_facts(mem)],
        [(e.id, e.mentions) for e in mem.entities(user_id=USER)],
        mem.stats()["memories"],
    )


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda m: m.facts(user_id=USER, include_expired="yes"), "include_expired"),
        (lambda m: m.facts(user_id=USER, include_expired=None), "include_expired"),
        (lambda m: m.facts(user_id=USER, limit=0), "limit"),
        (lambda m: m.facts(user_id=USER, limit=True), "limit"),
        (lambda m: m.facts(user_id=USER, as_of="soon"), "as_of"),
        (lambda m: m.facts(user_id=USER, cursor="nope"), "cursor"),
        (lambda m: m.facts(user_id=7), "user_id"),
        (lambda m: m.facts(), "user_id"),
        (lambda m: m.profile(user_id=["maya"]), "user_id"),
        (lambda m: m.profile(), "user_id"),
        (lambda m: m.entities(user_id=USER, name=""), "name"),
        (lambda m: m.entities(user_id=USER, name=3), "name"),
        (lambda m: m.search("x", user_id=USER, include_expired="no"), "include_expired"),
        (lambda m: m.search("x", user_id=USER, include_expired=0), "include_expired"),
    ],
)
def test_bad_arguments_are_named_and_change_nothing(moved: Memory, call, named: str) -> None:
    before = _state(moved)
    with pytest.raises(EngramError) as err:
        call(moved)
    assert isinstance(err.value, (InvalidInput, MissingScope)) or named in ("as_of", "cursor")
    assert named in str(err.value) or isinstance(err.value, MissingScope)
    assert _state(moved) == before


# -- concurrency ---------------------------------------------------------------------------------


def test_concurrent_adds_into_one_scope_build_one_timeline(mem: Memory) -> None:
    cities = ["Lisbon", "Porto", "Braga", "Faro"]
    said = [(c, f"2024-{3 * i + k + 1:02d}-05T10:00:00Z") for i, c in enumerate(cities)
            for k in range(3)]  # fmt: skip
    ids: dict[str, str] = {}
    errors: list[BaseException] = []

    def worker(chunk: list[tuple[str, str]]) -> None:
        try:
            for city, when in chunk:
                ids[when] = say(mem, f"I live in {city}", when)
        except BaseException as exc:  # reported below
            errors.append(exc)

    order = [said[i] for i in (11, 0, 6, 3, 9, 1, 4, 7, 10, 2, 5, 8)]
    threads = [threading.Thread(target=worker, args=(order[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    facts = all_facts(mem, attribute="lives_in")
    assert [f.value for f in facts] == cities  # no duplicates, nothing lost
    for i, fact in enumerate(facts):
        run = said[3 * i : 3 * i + 3]
        assert sources(fact) == {ids[w] for _, w in run}
        assert fact.valid_from == at(run[0][1])
        if i + 1 < len(facts):
            assert fact.superseded_by == facts[i + 1].id
            assert fact.valid_to == at(said[3 * i + 3][1])
    assert [f.value for f in current(mem, "lives_in")] == ["Faro"]


# -- export / import -----------------------------------------------------------------------------


def _round_trip(mem: Memory, target: Path) -> Memory:
    out = io.StringIO()
    mem.export(out)
    path = target.parent / "export.jsonl"
    path.write_text(out.getvalue(), encoding="utf-8")
    copy = Memory(target, embedder="test")
    copy.import_file(path)
    return copy


def _history_of(mem: Memory) -> None:
    say(mem, "I live in Lisbon", JAN)
    say(mem, "My sister Inês works at Google", FEB)
    say(mem, "I moved to Porto yesterday", MAY29)
    say(mem, "I'm based in Porto", JUN)
    say(mem, "I moved back to Lisbon", SEP)


def test_export_import_keeps_the_timeline_and_search(mem: Memory, tmp_path: Path) -> None:
    _history_of(mem)
    with _round_trip(mem, tmp_path / "copy.db") as copy:

        def view(m: Memory) -> list[tuple]:
            return [(f.id, f.text, f.valid_from, f.valid_to, f.expired_at, f.superseded_by)
                    for f in all_facts(m)]  # fmt: skip

        assert view(copy) == view(mem)
        assert copy.profile(user_id=USER).text == mem.profile(user_id=USER).text
        then = "2024-07-01T00:00:00Z"
        assert [f.value for f in copy.facts(user_id=USER, as_of=then).items] == [
            f.value for f in mem.facts(user_id=USER, as_of=then).items
        ]


def test_export_import_keeps_every_source(mem: Memory, tmp_path: Path) -> None:
    _history_of(mem)
    with _round_trip(mem, tmp_path / "copy.db") as copy:
        assert [sources(f) for f in all_facts(copy)] == [sources(f) for f in all_facts(mem)]


def test_export_import_gives_identical_search_results(mem: Memory, tmp_path: Path) -> None:
    _history_of(mem)
    with _round_trip(mem, tmp_path / "copy.db") as copy:
        for q in ("where does Maya live", "Inês Google", "Porto"):
            assert [(h.id, h.score) for h in copy.search(q, user_id=USER)] == [
                (h.id, h.score) for h in mem.search(q, user_id=USER)
            ]


def test_export_import_keeps_entities(mem: Memory, tmp_path: Path) -> None:
    _history_of(mem)
    with _round_trip(mem, tmp_path / "copy.db") as copy:

        def ents(m: Memory) -> list[tuple]:
            return sorted((e.name, e.type, e.relation, e.mentions)
                          for e in m.entities(user_id=USER))  # fmt: skip

        assert ents(copy) == ents(mem)


# -- schema --------------------------------------------------------------------------------------


def _old_store_builder():
    path = Path(__file__).parent / "backends" / "test_migrations.py"
    spec = importlib.util.spec_from_file_location("_semantic_migrations", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._v2_store


def test_a_store_from_before_facts_migrates_and_extracts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_store_builder()(path)
    with Memory(path, embedder="test:64") as mem:
        assert mem.stats()["schema_version"] >= 5
        assert mem.facts(user_id="u").items == [] and mem.entities(user_id="u") == []
        say(mem, "I live in Lisbon", JAN, user="u")
        say(mem, "I moved to Porto yesterday", MAY29, user="u")
        assert [f.value for f in current(mem, "lives_in", user="u")] == ["Porto"]
        assert len(all_facts(mem, user="u")) == 2
        assert {e.name for e in mem.entities(user_id="u")} == {"Lisbon", "Porto"}
        # the old records are still there and still searchable
        assert "Did you like the concert?" in [r.text for r in mem.list(user_id="u").items]
    with Memory(path, embedder="test:64") as mem:  # and it reopens as is
        assert [f.value for f in current(mem, "lives_in", user="u")] == ["Porto"]


def test_export_is_json_lines_with_facts(mem: Memory) -> None:
    say(mem, "I live in Lisbon", JAN)
    out = io.StringIO()
    mem.export(out)
    records = [json.loads(line) for line in out.getvalue().splitlines()[1:]]
    facts = [r for r in records if r["kind"] == "fact"]
    assert len(facts) == 1 and facts[0]["fact"]["value"] == "Lisbon"
    assert facts[0]["sources"]


def test_as_of_a_moment_the_ends_told_later_are_not_known() -> None:
    # Asked as of April, Maya lived in Lisbon, and nothing then said she would move in May.
    mem = Memory(":memory:", embedder="test")
    mem.add([{"role": "user", "content": "I live in Lisbon.", "timestamp": "2024-01-10T10:00:00Z"}],
            user_id="maya")  # fmt: skip
    mem.add([{"role": "user", "content": "I moved to Porto yesterday!",
              "timestamp": "2024-05-29T09:00:00Z"}], user_id="maya")  # fmt: skip
    april = "2024-04-01"
    hit = mem.search("Where does Maya live?", user_id="maya", as_of=april)[0]
    assert hit.text.startswith("Maya lives in Lisbon")
    assert (hit.valid_to, hit.superseded_by, hit.expired_at) == (None, None, None)
    (fact,) = mem.facts(user_id="maya", as_of=april).items
    assert fact.valid_to is None and fact.superseded_by is None
    context = mem.context("Where does Maya live?", user_id="maya", as_of=april)
    assert "Maya lives in Lisbon (as of 10 January 2024)" in context
    assert "until" not in context and "Porto" not in context and "28 May" not in context
    now = mem.search("Where did Maya live before?", user_id="maya", limit=5)
    lisbon = next(h for h in now if h.text.startswith("Maya lives in Lisbon"))
    assert lisbon.valid_to is not None  # asked now, the end is known
