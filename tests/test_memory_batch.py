"""``Memory.update_many``, ``Memory.delete_many``, ``Memory.users`` and ``Memory.agents``: what the
REST routes used to do themselves, now in the library, on a real SQLite store with the offline
fact rules."""

from __future__ import annotations

from typing import Any

import pytest

from engramdb import InvalidInput, Memory, MemoryNotFound

LISBON = {"role": "user", "name": "Maya", "content": "I live in Lisbon.",
          "timestamp": "2024-01-10T10:00:00Z"}  # fmt: skip
SISTER = {"role": "user", "name": "Maya", "content": "My sister Inês is a doctor.",
          "timestamp": "2024-01-10T10:01:00Z"}  # fmt: skip


def _fact(mem: Memory, value: str, user: str = "maya") -> str:
    return next(f.id for f in mem.facts(user_id=user).items if f.value == value)


def _events(mem: Memory, ident: str) -> list[str]:
    return [h.event for h in mem.history(ident)]


# -- update_many ----------------------------------------------------------------------------------


def test_update_many_applies_every_change_in_order(mem: Memory) -> None:
    a, b = mem.add(["first note", "second note"], user_id="ana")
    done = mem.update_many([
        {"id": a, "text": "first, corrected"},
        {"id": b, "metadata": {"k": 1}},
        {"id": a, "metadata": {"k": 2}},  # named twice: both applied, one item
    ])  # fmt: skip
    assert [(r.id, r.text, r.metadata) for r in done.items] == [
        (a, "first, corrected", {"k": 2}), (b, "second note", {"k": 1}),
    ]  # fmt: skip
    assert done.replaced == []
    assert _events(mem, a) == ["create", "update", "update"]
    assert mem.update_many([]).items == []


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ("not a list", r"update_many\(\) changes must be a list"),
        ({"id": "x", "text": "y"}, r"update_many\(\) changes must be a list"),
        ([{"id": "A", "text": "ok"}] * 1001, "at most 1000"),
        ([{"id": "A", "text": "ok"}, "x"], r"changes\[1\] must be a dict"),
        ([{"id": "A", "text": "ok"}, {"text": "no id"}], r"changes\[1\] needs an 'id'"),
        ([{"id": "A", "text": "ok"}, {"id": 3, "text": "y"}], r"changes\[1\] needs an 'id'"),
        ([{"id": "A", "text": "ok"}, {"id": "A"}], r"changes\[1\] \(id 'A'\) needs text"),
        ([{"id": "A", "text": "ok"}, {"id": "A", "text": " "}], r"changes\[1\] \(id 'A'\) text"),
        ([{"id": "A", "text": "ok"}, {"id": "A", "metadata": 1}], r"\(id 'A'\) metadata"),
        ([{"id": "A", "text": "ok"}, {"id": "A", "txt": "y"}], "unknown key.*txt"),
    ],
)  # fmt: skip
def test_a_bad_change_changes_nothing(mem: Memory, changes: Any, names: str) -> None:
    [a] = mem.add("original", user_id="ana")
    if isinstance(changes, list):
        changes = [{**c, "id": a} if isinstance(c, dict) and c.get("id") == "A" else c
                   for c in changes]  # fmt: skip
        names = names.replace("'A'", repr(a))
    with pytest.raises(InvalidInput, match=names):
        mem.update_many(changes)
    assert mem.get(a).text == "original" and _events(mem, a) == ["create"]


def test_an_unknown_id_changes_nothing_and_is_named(mem: Memory) -> None:
    a, b = mem.add(["first note", "second note"], user_id="ana")
    mem.add("elsewhere", user_id="ana")
    foreign = mem.for_tenant("globex").add("not yours", user_id="ana")[0]
    for unknown in ("nope", "", foreign):
        with pytest.raises(MemoryNotFound) as caught:
            mem.update_many([{"id": a, "text": "changed"}, {"id": unknown, "text": "x"},
                             {"id": b, "metadata": {"k": 1}}])  # fmt: skip
        assert caught.value.memory_id == unknown
    assert mem.get(a).text == "first note" and mem.get(b).metadata == {}
    assert _events(mem, a) == _events(mem, b) == ["create"]


@pytest.mark.parametrize("fact_first", [False, True])
def test_a_fact_of_a_corrected_message_is_replaced_not_edited(
    mem: Memory, fact_first: bool
) -> None:
    home, sister = mem.add([LISBON, SISTER], user_id="maya")
    lisbon, sister_fact = _fact(mem, "Lisbon"), _fact(mem, "Inês")
    pair = [{"id": home, "text": "I live in Braga."}, {"id": lisbon, "metadata": {"ok": True}}]
    done = mem.update_many([
        *(pair[::-1] if fact_first else pair), {"id": sister_fact, "metadata": {"ok": True}},
    ])  # fmt: skip
    assert done.replaced == [lisbon]
    assert [r.id for r in done.items] == [home, sister_fact]
    assert done.items[1].metadata == {"ok": True}
    with pytest.raises(MemoryNotFound):
        mem.get(lisbon)
    assert "update" not in _events(mem, lisbon)
    assert [f.value for f in mem.facts(user_id="maya").items].count("Braga") == 1
    assert sister in [s.id for s in mem.get(sister_fact).sources]


def test_a_metadata_only_correction_keeps_the_facts_it_names(mem: Memory) -> None:
    [home] = mem.add(LISBON, user_id="maya")
    lisbon = _fact(mem, "Lisbon")
    done = mem.update_many([{"id": home, "metadata": {"seen": 1}},
                            {"id": lisbon, "metadata": {"ok": True}}])  # fmt: skip
    assert done.replaced == [] and [r.id for r in done.items] == [home, lisbon]
    assert mem.get(lisbon).metadata == {"ok": True}


# -- delete_many ----------------------------------------------------------------------------------


def test_delete_many_deletes_each_once_and_checks_every_id_first(mem: Memory) -> None:
    a, b, c = mem.add(["one", "two", "three"], user_id="ana")
    with pytest.raises(MemoryNotFound) as caught:
        mem.delete_many([a, "nope", b])
    assert caught.value.memory_id == "nope"
    assert {r.id for r in mem.list(user_id="ana").items} == {a, b, c}
    assert mem.delete_many([b, a, b]) == [b, a]
    assert [r.id for r in mem.list(user_id="ana").items] == [c]
    assert mem.delete_many([]) == []
    for bad in ("a string", [a, 3], [[a]]):
        with pytest.raises(InvalidInput, match="delete_many"):
            mem.delete_many(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="at most 1000"):
        mem.delete_many([c] * 1001)
    assert [r.id for r in mem.list(user_id="ana").items] == [c]


def test_a_fact_deleted_with_one_of_its_sources_stays_deleted(mem: Memory) -> None:
    """The fact rests on two turns. Deleting the first turn alone would extract the second
    again and bring the fact back; named in the same batch, the fact is deleted first and
    stays gone, whatever the order of the ids."""
    first, second = mem.add(
        [LISBON, {**LISBON, "content": "I live in Lisbon, by the river.",
                  "timestamp": "2024-02-10T10:00:00Z"}],
        user_id="maya",
    )  # fmt: skip
    fact = mem.get(_fact(mem, "Lisbon"))
    assert [s.id for s in fact.sources] == [first, second]
    assert mem.delete_many([first, fact.id]) == [first, fact.id]
    assert mem.facts(user_id="maya").items == []
    assert [r.id for r in mem.list(user_id="maya").items] == [second]


def test_deleting_a_message_and_its_fact_together_is_not_a_404(mem: Memory) -> None:
    [home] = mem.add(LISBON, user_id="maya")
    lisbon = _fact(mem, "Lisbon")
    assert mem.delete_many([home, lisbon]) == [home, lisbon]
    for ident in (home, lisbon):
        with pytest.raises(MemoryNotFound):
            mem.get(ident)


# -- users and agents -----------------------------------------------------------------------------


def test_users_and_agents_with_counts(mem: Memory) -> None:
    mem.add([LISBON, SISTER], user_id="maya")
    mem.add("Training for the 10k.", user_id="maya", agent_id="coach")
    mem.add(["I ran 5 km.", "Knee hurts."], user_id="tom", agent_id="coach")
    mem.add("Agent-only note.", agent_id="planner")
    users = {u.user_id: u for u in mem.users()}
    assert list(users) == ["maya", "tom"]
    facts = len(mem.facts(user_id="maya").items)
    assert facts >= 2
    maya = users["maya"]
    assert (maya.memories, maya.facts, maya.agents) == (3 + facts, facts, ["coach"])
    assert maya.last_at is not None and maya.last_at.year >= 2024
    assert (users["tom"].memories, users["tom"].agents) == (2, ["coach"])
    agents = {a.agent_id: a for a in mem.agents()}
    assert list(agents) == ["coach", "planner"]
    assert agents["coach"].users == ["maya", "tom"] and agents["coach"].memories == 3
    assert (agents["planner"].users, agents["planner"].memories) == ([], 1)
    assert mem.for_tenant("globex").users() == [] and mem.for_tenant("globex").agents() == []
