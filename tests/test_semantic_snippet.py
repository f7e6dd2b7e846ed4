"""The semantic-memory snippet of the README and the issue, run as written, offline and through
the LLM path (the deterministic test provider), inline and deferred."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engramdb import LLMError, Memory
from engramdb.llms.test import TestLLM

LISBON = [
    {"role": "user", "name": "Maya", "content": "I live in Lisbon, near the river.",
     "timestamp": "2024-01-10T10:00:00Z"},
    {"role": "assistant", "content": "Lovely! Lisbon is beautiful."},
    {"role": "user", "name": "Maya", "content": "My sister Inês is visiting next week."},
]  # fmt: skip
PORTO = [
    {"role": "user", "name": "Maya", "content": "I moved to Porto yesterday!",
     "timestamp": "2024-05-29T09:00:00Z"},
    {"role": "assistant", "content": "Congratulations on the move!"},
    {"role": "user", "name": "Maya", "content": "I miss the pastries in Lisbon though."},
]  # fmt: skip


def _maya(mem: Memory) -> None:
    mem.add(LISBON, user_id="maya", session_id="2024-01-10")
    mem.add(PORTO, user_id="maya", session_id="2024-05-29")


def test_the_snippet_works_as_written(tmp_path: Path) -> None:
    with Memory(tmp_path / "m.db", embedder="test") as mem:
        _maya(mem)
        hit = mem.search("Where does Maya live now?", user_id="maya")[0]
        assert (hit.kind, hit.value, hit.valid_to) == ("fact", "Porto", None)
        assert hit.valid_from == datetime(2024, 5, 28, tzinfo=UTC)  # "yesterday", resolved
        assert [s.id for s in hit.sources] == [mem.list(user_id="maya", kind="message").items[3].id]
        then = mem.search("Where did Maya live?", user_id="maya", as_of="2024-04-01")
        # As of April Lisbon was true, and nothing then said it would end in May.
        assert then[0].value == "Lisbon" and then[0].current is True
        assert all(h.value != "Porto" for h in then)
        facts = mem.facts(user_id="maya", include_expired=True).items
        lisbon = next(f for f in facts if f.value == "Lisbon")
        porto = next(f for f in facts if f.value == "Porto")
        assert lisbon.valid_to == porto.valid_from and lisbon.superseded_by == porto.id
        assert lisbon.expired_at is not None
        assert [f.value for f in mem.facts(user_id="maya").items] == ["Inês", "Porto"]
        steps = mem.history(lisbon.id)
        assert [e.event for e in steps] == ["create", "supersede"]
        move = mem.list(user_id="maya", kind="message").items[3]
        assert steps[1].after is not None and steps[1].after["caused_by"] == [move.id]
        profile = mem.profile(user_id="maya")
        assert "Porto" in profile.text and "Lisbon" not in profile.text
        assert {e.value for e in profile.entries} == {"Porto", "Inês"}
        context = mem.context("What should I cook for Maya?", user_id="maya", max_tokens=500)
        assert context.index("Profile of Maya") < context.index("Memories (oldest first")
        who = mem.search("Who is Inês?", user_id="maya")[0]
        assert who.text == "Inês is Maya's sister"
        (ines,) = mem.entities(user_id="maya", name="Ines")  # accents folded
        assert (ines.name, ines.type, ines.relation, ines.relation_of) == (
            "Inês", "person", "sister", "Maya",
        )  # fmt: skip


def test_an_older_history_imported_later_lands_in_the_past(tmp_path: Path) -> None:
    with Memory(tmp_path / "m.db", embedder="test") as mem:
        mem.add(PORTO, user_id="maya", session_id="2024-05-29")
        mem.add(LISBON, user_id="maya", session_id="2024-01-10")  # learned late
        (current,) = [f for f in mem.facts(user_id="maya").items if f.attribute == "lives_in"]
        assert current.value == "Porto"
        old = [
            f for f in mem.facts(user_id="maya", include_expired=True).items if f.value == "Lisbon"
        ]
        assert old[0].valid_to == datetime(2024, 5, 28, tzinfo=UTC)


def test_deleting_the_move_restores_the_old_city_and_leaves_nothing_of_it(tmp_path: Path) -> None:
    with Memory(tmp_path / "m.db", embedder="test") as mem:
        _maya(mem)
        move = next(r for r in mem.list(user_id="maya").items if r.text.startswith("I moved"))
        mem.delete(move.id)
        facts = mem.facts(user_id="maya", include_expired=True).items
        assert [(f.value, f.valid_to) for f in facts if f.attribute == "lives_in"] == [
            ("Lisbon", None)
        ]
        lisbon = next(f for f in facts if f.value == "Lisbon")
        assert [e.event for e in mem.history(lisbon.id)] == ["create", "supersede", "restore"]
        assert all(e.name != "Porto" for e in mem.entities(user_id="maya"))
        assert "Porto" not in mem.profile(user_id="maya").text


def test_deferred_consolidation_waits_for_process(tmp_path: Path) -> None:
    with Memory(tmp_path / "m.db", embedder="test", consolidate="deferred") as mem:
        _maya(mem)
        assert mem.facts(user_id="maya").items == []
        assert mem.stats()["jobs_pending"] == 6
        seen: list[tuple[int, int]] = []
        report = mem.process(progress=lambda done, total: seen.append((done, total)))
        assert (report.extracted, report.facts_added) == (6, 3)
        assert seen[-1] == (6, 6)
        assert mem.process().extracted == 0  # idempotent: nothing left
        assert [f.value for f in mem.facts(user_id="maya").items] == ["Inês", "Porto"]


def test_the_llm_path_extracts_and_reconciles_the_same_way(tmp_path: Path) -> None:
    llm = TestLLM()
    with Memory(tmp_path / "m.db", embedder="test", llm=llm) as mem:
        _maya(mem)
        assert len(llm.prompts) == 2  # one call per add batch
        current = [f for f in mem.facts(user_id="maya").items if f.subject == "Maya"]
        assert current and all(f.sources for f in current)
        assert llm.usage.calls == 2 and llm.usage.prompt_tokens > 0


def test_a_failing_llm_keeps_the_messages_and_the_work_pending(tmp_path: Path) -> None:
    with Memory(tmp_path / "m.db", embedder="test", llm=TestLLM(garble=True)) as mem:
        ids = mem.add(LISBON, user_id="maya", session_id="s")
        assert len(ids) == 3 and mem.facts(user_id="maya").items == []
        stats = mem.stats()
        assert stats["jobs_failed"] == 3  # recorded on each message's extract job
        assert mem.search("Lisbon", user_id="maya")[0].kind == "message"
    with Memory(tmp_path / "m.db", embedder="test", llm=TestLLM()) as mem:
        report = mem.process()
        assert report.extracted == 3 and report.failed == 0
        assert mem.facts(user_id="maya").items
        assert mem.stats()["jobs_pending"] == 0


def test_an_unknown_llm_name_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="unknown"):
        Memory(tmp_path / "m.db", embedder="test", llm="nonsense:model")


def test_an_imported_history_is_consolidated_with_its_own_dates(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    history.write_text(
        '{"role": "user", "name": "Maya", "content": "I live in Lisbon.", '
        '"timestamp": "2023-02-01T10:00:00Z", "user_id": "maya", "session_id": "a"}\n'
        '{"role": "user", "name": "Maya", "content": "I moved to Porto yesterday.", '
        '"timestamp": "2024-06-05T10:00:00Z", "user_id": "maya", "session_id": "b"}\n',
        encoding="utf-8",
    )
    with Memory(tmp_path / "m.db", embedder="test") as mem:
        assert mem.import_file(history) == 2
        facts = mem.facts(user_id="maya", include_expired=True).items
        assert [(f.value, f.valid_from.date().isoformat()) for f in facts] == [
            ("Lisbon", "2023-02-01"),
            ("Porto", "2024-06-04"),
        ]
