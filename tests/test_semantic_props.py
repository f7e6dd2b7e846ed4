"""Property-based: random histories of "I live in X" statements and deletes, for one user.

What the engine should do, exactly: take the surviving statements in time order and group
consecutive equal cities into runs. Each run is one ``lives_in`` fact, citing exactly the run's
messages, valid from the run's first statement until the next run's first statement (which
supersedes it), the last run current. Arrival order and deletes must not matter.
"""

from __future__ import annotations

import itertools
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engramdb import Memory
from engramdb.types import MemoryRecord

CITIES = ("Lisbon", "Porto", "Braga")
START = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
USER = "maya"

# ("add", city, day) | ("del", pick): pick chooses among the surviving messages, by time
op = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(range(len(CITIES))), st.integers(0, 90)),
    st.tuples(st.just("del"), st.integers(0, 1000), st.just(0)),
)
ops = st.lists(op, min_size=1, max_size=14)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(mem: Memory, steps: list[tuple[str, int, int]]) -> dict[str, tuple[datetime, str]]:
    """Apply the steps; the surviving statements: message id -> (when, city)."""
    alive: dict[str, tuple[datetime, str]] = {}
    for n, (kind, a, b) in enumerate(steps):
        if kind == "add":
            # distinct instants: the day, plus the step number in minutes
            when = START + timedelta(days=b, minutes=n)
            ident = mem.add(
                {"role": "user", "content": f"I live in {CITIES[a]}", "timestamp": when},
                user_id=USER,
            )[0]
            alive[ident] = (when, CITIES[a])
        elif alive:
            victim = sorted(alive, key=lambda i: alive[i][0])[a % len(alive)]
            mem.delete(victim)
            del alive[victim]
    return alive


def _facts(mem: Memory) -> list[MemoryRecord]:
    return mem.facts(user_id=USER, include_expired=True, limit=1000).items


def _runs(alive: dict[str, tuple[datetime, str]]) -> list[tuple[str, datetime, set[str]]]:
    runs: list[tuple[str, datetime, set[str]]] = []
    for ident, (when, city) in sorted(alive.items(), key=lambda kv: kv[1][0]):
        if runs and runs[-1][0] == city:
            runs[-1][2].add(ident)
        else:
            runs.append((city, when, {ident}))
    return runs


def _store(steps: list[tuple[str, int, int]]) -> tuple[tempfile.TemporaryDirectory, Memory]:
    folder = tempfile.TemporaryDirectory()
    return folder, Memory(Path(folder.name) / "store.db", embedder="test")


@SETTINGS
@given(ops)
def test_the_structure_of_facts_always_holds(steps: list[tuple[str, int, int]]) -> None:
    folder, mem = _store(steps)
    try:
        alive = _run(mem, steps)
        facts = _facts(mem)
        by_id = {f.id: f for f in facts}
        messages = {r.id for r in mem.list(user_id=USER, kind="message", limit=1000).items}
        assert messages == set(alive)
        current = [f for f in facts if f.valid_to is None]
        # something is current exactly when a statement survives (at most one: see below)
        assert bool(current) == bool(alive)
        assert len({f.value for f in current}) <= 1
        cited: list[str] = []
        for f in facts:
            assert f.attribute == "lives_in" and f.value in CITIES
            # every fact rests on at least one surviving statement of its own city
            assert f.sources, f
            for s in f.sources:
                assert s.id in alive and alive[s.id][1] == f.value
            cited += [s.id for s in f.sources]
            if f.valid_to is not None:
                assert f.valid_to >= f.valid_from
                assert f.expired_at is not None
                assert f.superseded_by in by_id  # links an existing fact
                assert by_id[f.superseded_by].value != f.value
            else:
                assert f.superseded_by is None and f.expired_at is None
        # every surviving statement is cited by exactly one fact
        assert sorted(cited) == sorted(alive)
        # entities: each is mentioned by something that exists
        existing = messages | set(by_id)
        for e in mem.entities(user_id=USER):
            assert e.mentions >= 1 and e.memory_ids
            assert set(e.memory_ids) <= existing
            assert e.name in {city for _, city in alive.values()}
        prof = [e for e in mem.profile(user_id=USER).entries if e.attribute == "lives_in"]
        assert {e.value for e in prof} == {f.value for f in current}
    finally:
        mem.close()
        folder.cleanup()


# Lisbon, Porto, Lisbon (in order), then the Porto message is deleted.
_ABA_DELETE_B = [("add", 0, 0), ("add", 1, 5), ("add", 0, 9), ("del", 1, 0)]


@SETTINGS
@given(ops)
@example(_ABA_DELETE_B)
def test_at_most_one_current_city(steps: list[tuple[str, int, int]]) -> None:
    folder, mem = _store(steps)
    try:
        _run(mem, steps)
        assert len(mem.facts(user_id=USER).items) <= 1
        prof = [e for e in mem.profile(user_id=USER).entries if e.attribute == "lives_in"]
        assert len(prof) <= 1
    finally:
        mem.close()
        folder.cleanup()


_ABA_LATE = [("add", 0, 60), ("add", 0, 0), ("add", 1, 30)]  # Lisbon Mar, Lisbon Jan, Porto Feb
# Porto Jan 11, Porto Feb 10, delete the first, Lisbon Jan 21: latest is Porto, yet the Porto
# fact keeps its deleted start (Jan 11) and the Lisbon statement supersedes it.
_DELETE_FIRST = [("add", 1, 10), ("add", 1, 40), ("del", 0, 0), ("add", 0, 20)]


@SETTINGS
@given(ops)
@example(_DELETE_FIRST)
@example(_ABA_LATE)
def test_the_current_city_is_the_latest_statement(steps: list[tuple[str, int, int]]) -> None:
    folder, mem = _store(steps)
    try:
        alive = _run(mem, steps)
        current = [f.value for f in mem.facts(user_id=USER).items]
        latest = [city for _, city in sorted(alive.values())[-1:]]
        assert current == latest
    finally:
        mem.close()
        folder.cleanup()


@SETTINGS
@given(ops)
@example(_DELETE_FIRST)
@example(_ABA_LATE)
def test_the_timeline_is_the_runs_of_surviving_statements(
    steps: list[tuple[str, int, int]],
) -> None:
    folder, mem = _store(steps)
    try:
        alive = _run(mem, steps)
        runs = _runs(alive)
        facts = sorted(_facts(mem), key=lambda f: f.valid_from)
        assert [(f.value, f.valid_from, {s.id for s in f.sources}) for f in facts] == runs
        for f, nxt in itertools.pairwise(facts):
            assert f.valid_to == nxt.valid_from and f.superseded_by == nxt.id
        if facts:
            assert facts[-1].valid_to is None
    finally:
        mem.close()
        folder.cleanup()


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(range(len(CITIES))), st.integers(0, 90)), max_size=8))
def test_in_order_histories_without_deletes_match_the_runs(
    said: list[tuple[int, int]],
) -> None:
    """The part that works: statements arriving in time order build exactly the runs."""
    steps = [("add", c, d) for c, d in sorted(said, key=lambda x: x[1])]
    folder, mem = _store(steps)
    try:
        alive = _run(mem, steps)
        runs = _runs(alive)
        facts = sorted(_facts(mem), key=lambda f: f.valid_from)
        assert [(f.value, f.valid_from, {s.id for s in f.sources}) for f in facts] == runs
        for f, nxt in itertools.pairwise(facts):
            assert f.valid_to == nxt.valid_from and f.superseded_by == nxt.id
    finally:
        mem.close()
        folder.cleanup()
