"""The newer entry points of :class:`Memory` (tenants, archiving, purges, the event feed, workers,
scopes, export with vectors and import, facts as of a time, the profile, entities) over
adversarial input.

Wrong calls: each argument, one at a time, given any wrong type or value, is refused with an
:class:`InvalidInput` (or a subclass) whose message names it, and the store (every tenant's
export with vectors, the event feed, the scopes and the counts) is as it was.

Properties, on real SQLite files and the deterministic test embedder: two tenants of one store
never see each other's memories; ``purge_user`` leaves nothing of the user in any file and the
other users as they were; ``unarchive`` undoes ``archive``; the event feed pages exactly once in
order; an export with vectors imports into a fresh store as itself; deferred consolidation run by
``work()`` gives the facts that inline consolidation gives.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import re
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engramdb import Memory
from engramdb.errors import (
    EngramError,
    IdConflict,
    ImportFormatError,
    InvalidCursor,
    InvalidInput,
    InvalidTimestamp,
    MemoryNotFound,
    MissingScope,
    NotFound,
)
from engramdb.types import HistoryEntry, MemoryRecord
from engramdb.validate import MAX_NAME_CHARS

PROPS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SLOW = settings(PROPS, max_examples=25)
# For properties whose known failure (test_the_ranking_of_equal_scores_stays_as_it_was) comes
# and goes from run to run: shrinking it replays examples for minutes to no end. Their inputs are
# a few steps; a failure is shown as drawn.
UNSHRUNK = settings(SLOW, phases=[Phase.explicit, Phase.reuse, Phase.generate])

# -- values ----------------------------------------------------------------------------------------

SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
CHAR = st.one_of(st.characters(), SURROGATE, st.sampled_from("\x00\n\t a"))
TEXT = st.text(CHAR, max_size=20)
GOOD_NAME = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=8
).filter(str.strip)
# Anything but a str (None apart: for some arguments None is valid).
NOT_STR = st.one_of(
    st.booleans(),
    st.integers(),
    st.sampled_from([10**30, -(2**63), 2**64, 10**5000]),
    st.floats(),
    st.binary(max_size=6),
    st.lists(st.one_of(st.integers(), TEXT), max_size=3),
    st.tuples(TEXT),
    st.sets(st.integers(), max_size=2),
    st.dictionaries(TEXT, st.integers(), max_size=2),
    st.datetimes(),
    st.builds(object),
    st.builds(Path, GOOD_NAME),
)
BLANK = st.text(st.sampled_from(" \t\n\r\x0b\x0c\xa0\u2003\u3000"), max_size=4)
# A string no name may be: blank, with a NUL or a lone surrogate, longer than 512 characters.
BAD_NAME_TEXT = st.one_of(
    BLANK,
    st.tuples(TEXT, st.sampled_from(["\x00", "\udce9", "\ud800"]), TEXT).map("".join),
    st.integers(513, 3000).map(lambda n: "u" * n),
)
BAD_NAME = st.one_of(NOT_STR, BAD_NAME_TEXT)
BAD_NAME_OR_NONE = st.one_of(st.none(), BAD_NAME)
# A string no search text may be: blank, or not valid Unicode.
BAD_TEXT = st.one_of(
    NOT_STR,
    BLANK,
    st.tuples(TEXT, SURROGATE, TEXT).map("".join),
)
NOT_INT = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),
    st.sampled_from([1.0, 5.0, "5", "10", b"5"]),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.builds(object),
)
BAD_LIMIT = st.one_of(  # limits run from 1 to 1000
    NOT_INT, st.integers(max_value=0), st.integers(min_value=1001), st.just(10**5000)
)
BAD_AFTER = st.one_of(  # an event id: 0 or more, as SQLite can hold one
    NOT_INT,
    st.integers(max_value=-1),
    st.integers(min_value=2**63),
    st.sampled_from([2**63, 10**30, 10**5000]),
)
BAD_LEASE = st.one_of(  # seconds, more than 0 and at most a day
    st.none(),
    st.sampled_from([True, False]),
    st.floats(max_value=0),
    st.floats(min_value=86_400.001),
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, 86_401, 10**400, "300", [300]]),
    st.integers(max_value=0),
    st.integers(min_value=86_401),
    st.text(max_size=3),
    st.builds(object),
)
BAD_WORKER = st.one_of(
    st.none(),
    NOT_STR,
    BAD_NAME_TEXT,
    st.sampled_from(["", " ", "\x00", "w\x00", "\udce9"]),
    st.integers(MAX_NAME_CHARS + 1, MAX_NAME_CHARS + 400).map(lambda n: "w" * n),
)
NOT_BOOL = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.sampled_from(["true", "false", "", "yes", "no", 0, 1, [True]]),
    st.builds(object),
)
BAD_TIME = st.one_of(
    st.sampled_from(["", " ", "garbage", "2024-13-45", "2024-02-30", "yesterday", "\x00"]),
    st.tuples(TEXT, SURROGATE).map("".join),
    st.integers(min_value=10**12),
    st.integers(max_value=-(10**12)),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300, True, False, 10**5000]),
    st.binary(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(TEXT, st.integers(), max_size=2),
    st.builds(object),
)
BAD_CURSOR = st.one_of(TEXT, NOT_STR)
# Not a list or iterator of records: nothing, a scalar, a text, one record alone.
NOT_RECORDS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.dictionaries(TEXT, st.integers(), max_size=2),
    st.builds(object),
)

# -- a store with something in it ------------------------------------------------------------------

OTHER = "acme"
# Durability is not what these tests are about: commits skip the fsync (a long benchmark shares
# the disk) but are otherwise as usual.
OPEN: dict[str, Any] = {"embedder": "test", "synchronous": "normal"}
COUNTS = ("memories", "by_kind", "scopes", "jobs_pending", "jobs_failed")


def _export(mem: Memory, **scope: Any) -> list[dict[str, Any]]:
    """Every record of the tenant (or a scope) as an export with vectors gives it."""
    out = io.StringIO()
    mem.export(out, vectors=True, **scope)
    return [json.loads(line) for line in out.getvalue().splitlines()[1:]]


def _feed(mem: Memory, page: int = 1000) -> list[HistoryEntry]:
    """The tenant's whole event feed."""
    events: list[HistoryEntry] = []
    while batch := mem.events(after=events[-1].id if events else 0, limit=page):
        events += batch
    return events


def _state(mem: Memory) -> Any:
    """What the store holds, for both tenants: records, events, scopes, counts."""
    views = [mem, mem.for_tenant(OTHER)]
    return [(_export(v), _feed(v), v.scopes(), {k: v.stats()[k] for k in COUNTS}) for v in views]


class Seeded:
    """One store per module with two tenants, facts, entities, an archived, a corrected and a
    deleted memory, and a pending job: what a refused call must leave as it was."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mem = Memory(folder / "admin.db", **OPEN, home=str(folder))
        said = [
            {"content": "I moved to Lisbon last May", "timestamp": "2024-06-01T10:00:00Z"},
            {"content": "My sister is called Maya", "timestamp": "2024-06-01T10:01:00Z"},
            {"content": "I work at Acme", "timestamp": "2024-06-01T10:02:00Z"},
            {"content": "I like green tea", "timestamp": "2024-06-01T10:03:00Z"},
        ]
        self.ids = self.mem.add(said, user_id="ana", session_id="s1")
        self.mem.archive(self.ids[3])
        self.mem.update(self.ids[2], text="I work at Globex")
        [gone] = self.mem.add("I live in Porto", user_id="ana", agent_id="coach")
        self.mem.delete(gone)
        acme = self.mem.for_tenant(OTHER)
        self.other_ids = acme.add("I live in Oslo", user_id="ana")
        deferred = Memory(folder / "admin.db", **OPEN, home=str(folder), consolidate="deferred")
        with deferred:
            deferred.for_tenant(OTHER).add("I work at Initech", user_id="bob")
        self.before = _state(self.mem)

    def refuses(
        self, call: Callable[[], Any], *names: str, error: type[EngramError] = InvalidInput
    ) -> EngramError:
        """``call`` raises ``error`` naming every one of ``names``, and changed nothing."""
        try:
            with pytest.raises(EngramError) as raised:
                call()
        finally:
            # A call wrongly let through may have changed the store: later cases start from
            # what it is now, and fail only for what they do themselves.
            before, self.before = self.before, _state(self.mem)
        assert isinstance(raised.value, error), repr(raised.value)
        message = str(raised.value)
        assert all(n in message for n in names), f"{message!r} does not name {names}"
        assert self.before == before, f"refused, yet the store changed: {message}"
        return raised.value


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with pytest.MonkeyPatch.context() as env:
        folder = tmp_path_factory.mktemp("admin")
        env.setenv("ENGRAM_HOME", str(folder))
        env.delenv("ENGRAM_CONFIG", raising=False)
        store = Seeded(folder)
        yield store
        store.mem.close()


def test_the_seeded_store_holds_what_the_wrong_calls_must_not_touch(seeded: Seeded) -> None:
    ana, acme = seeded.before
    assert {r["kind"] for r in ana[0]} == {"message", "fact"}
    assert any("archived_at" in r for r in ana[0]) and all("embedding" in r for r in ana[0])
    assert any(r.get("mentions") for r in ana[0])
    assert {e.event for e in ana[1]} >= {"create", "update", "delete", "archive"}
    assert acme[3]["jobs_pending"] == 1


# -- wrong calls -----------------------------------------------------------------------------------

# For each method: how to call it, its valid arguments, and per argument the wrong values and
# what the error says (the method and the argument).
Call = Callable[[Memory, dict[str, Any]], Any]
WRONG: dict[str, tuple[Call, dict[str, Any], dict[str, st.SearchStrategy[Any]]]] = {
    "for_tenant": (lambda m, a: m.for_tenant(**a), {"tenant": "t"}, {"tenant": BAD_NAME_OR_NONE}),
    "archive": (lambda m, a: m.archive(**a), {}, {"memory_id": st.one_of(st.none(), NOT_STR)}),
    "unarchive": (lambda m, a: m.unarchive(**a), {}, {"memory_id": st.one_of(st.none(), NOT_STR)}),
    "purge_user": (lambda m, a: m.purge_user(**a), {}, {"user_id": BAD_NAME_OR_NONE}),
    "events": (
        lambda m, a: m.events(**a),
        {"after": 0, "limit": 100},
        {"after": BAD_AFTER, "limit": BAD_LIMIT},
    ),
    "work": (
        lambda m, a: m.work(**a),
        {"worker": "w1", "limit": 32, "lease_seconds": 300.0},
        {"worker": BAD_WORKER, "limit": BAD_LIMIT, "lease_seconds": BAD_LEASE},
    ),
    "export": (
        lambda m, a: m.export(a.pop("out"), **a),
        {"vectors": True, "user_id": "ana", "agent_id": None},
        {"vectors": NOT_BOOL, "user_id": BAD_NAME, "agent_id": BAD_NAME},
    ),
    "import_records": (
        lambda m, a: m.import_records(**a),
        {"records": [], "batch": 500, "progress": None},
        {
            "records": NOT_RECORDS,
            "batch": st.one_of(NOT_INT, st.integers(max_value=0), st.integers(min_value=100_001)),
            "progress": st.one_of(NOT_STR.filter(lambda v: not callable(v)), st.text()),
        },
    ),
    "facts": (
        lambda m, a: m.facts(**a),
        {"user_id": "ana", "as_of": "2024-07-01", "limit": 10, "include_expired": False},
        {
            "as_of": BAD_TIME,
            "limit": BAD_LIMIT,
            "include_expired": NOT_BOOL,
            "user_id": BAD_NAME_OR_NONE,
            "agent_id": BAD_NAME,
            "cursor": BAD_CURSOR,
        },
    ),
    "profile": (
        lambda m, a: m.profile(**a),
        {"user_id": "ana"},
        {"user_id": BAD_NAME_OR_NONE, "agent_id": BAD_NAME},
    ),
    "entities": (
        lambda m, a: m.entities(**a),
        {"user_id": "ana", "name": "Maya"},
        {"user_id": BAD_NAME_OR_NONE, "agent_id": BAD_NAME, "name": BAD_TEXT},
    ),
}
# The subclass an argument's error must be, where a specific one is documented.
SPECIFIC = {("facts", "as_of"): InvalidTimestamp, ("facts", "cursor"): InvalidCursor}


@pytest.mark.parametrize("method", sorted(WRONG))
@PROPS
@given(data=st.data())
def test_a_wrong_argument_is_refused_by_name_and_changes_nothing(
    seeded: Seeded, method: str, data: st.DataObject
) -> None:
    call, valid, wrong = WRONG[method]
    argument = data.draw(st.sampled_from(sorted(wrong)), label="argument")
    value = data.draw(wrong[argument], label="value")
    args = {**valid, argument: value}
    out = io.StringIO()
    if method == "export":
        args["out"] = out
    error = SPECIFIC.get((method, argument), InvalidInput)
    # The cursor's error names the cursor (it is the same for every listing); the others name
    # the method and the argument, as called.
    names = ("cursor",) if argument == "cursor" else (f"{method}()", argument)
    seeded.refuses(lambda: call(seeded.mem, args), *names, error=error)
    assert out.getvalue() == ""  # a refused export wrote nothing, not even its header


@PROPS
@given(
    method=st.sampled_from(["archive", "unarchive"]),
    memory_id=st.one_of(
        st.sampled_from(["", " ", "\x00", "caf\udce9", "nope"]), TEXT, st.just("acme")
    ),
)
def test_archiving_an_id_no_memory_of_the_tenant_has_is_not_found(
    seeded: Seeded, method: str, memory_id: str
) -> None:
    # "acme": the id of a memory of the other tenant, which this one must not reach.
    ident = seeded.other_ids[0] if memory_id == "acme" else memory_id
    seeded.refuses(lambda: getattr(seeded.mem, method)(ident), error=NotFound)


@SLOW
@given(
    index=st.integers(1, 3),
    embedding=st.one_of(
        st.sampled_from(["x", 1, [], True]),
        st.fixed_dictionaries({"embedder": st.just("test:hash-64"), "vector": st.just("AAAA")}),
        st.fixed_dictionaries(
            {
                "embedder": st.just("test:hash-64"),
                "hash": st.text(max_size=4),
                "vector": st.one_of(
                    st.sampled_from(["", "not base64!", "AAA", "AAAAAAA=", "AADAfw==", "AACAfw=="]),
                    st.integers(),
                    st.none(),
                    st.lists(st.floats(), max_size=2),
                ),
            }
        ),
    ),
)
def test_an_import_with_a_broken_vector_is_refused_whole(
    seeded: Seeded, index: int, embedding: Any
) -> None:
    records = [dict(r, id=f"imported-{n}") for n, r in enumerate(seeded.before[0][0][:3], 1)]
    records[index - 1]["embedding"] = embedding
    seeded.refuses(
        lambda: seeded.mem.import_records(records),
        f"record {index}",
        "embedding",
        error=ImportFormatError,
    )


# Known cases, each its own test: the error and the words naming the argument.
KnownCall = Callable[[Memory, io.StringIO], Any]
KNOWN: list[tuple[str, KnownCall, type[EngramError], str]] = [
    ("events after 2**63", lambda m, _: m.events(after=2**63), InvalidInput, "events() after"),
    ("events after -1", lambda m, _: m.events(after=-1), InvalidInput, "events() after"),
    ("events bool limit", lambda m, _: m.events(limit=True), InvalidInput, "events() limit"),
    (
        "work bool lease",
        lambda m, _: m.work("w", lease_seconds=True),
        InvalidInput,
        "work() lease_seconds",
    ),
    ("work NUL worker", lambda m, _: m.work("w\x00x"), InvalidInput, "work() worker"),
    ("work blank worker", lambda m, _: m.work(" "), InvalidInput, "work() worker"),
    ("purge_user None", lambda m, _: m.purge_user(None), MissingScope, "user_id"),
    ("purge_user NUL", lambda m, _: m.purge_user("a\x00"), InvalidInput, "purge_user() user_id"),
    ("for_tenant ''", lambda m, _: m.for_tenant(""), InvalidInput, "for_tenant() tenant"),
    ("for_tenant int", lambda m, _: m.for_tenant(5), InvalidInput, "for_tenant() tenant"),
    ("archive None", lambda m, _: m.archive(None), InvalidInput, "archive() memory_id"),
    ("export vectors 1", lambda m, o: m.export(o, vectors=1), InvalidInput, "export() vectors"),
    (
        "facts as_of year 10000",
        lambda m, _: m.facts(user_id="ana", as_of=10**12),
        InvalidTimestamp,
        "facts() as_of",
    ),
    (
        "entities blank name",
        lambda m, _: m.entities(user_id="ana", name=" "),
        InvalidInput,
        "entities() name",
    ),
    ("profile no scope", lambda m, _: m.profile(), MissingScope, "profile()"),
]


@pytest.mark.parametrize(
    ("call", "error", "names"), [k[1:] for k in KNOWN], ids=[k[0] for k in KNOWN]
)
def test_a_known_wrong_call_gets_its_error(
    seeded: Seeded, call: KnownCall, error: type[EngramError], names: str
) -> None:
    out = io.StringIO()
    refused = seeded.refuses(lambda: call(seeded.mem, out), names, error=error)
    assert type(refused) is error
    assert out.getvalue() == ""


# -- what the properties write ---------------------------------------------------------------------

TEMPLATES = (
    "I live in {place}",
    "I moved to {place} last May",
    "I no longer live in {place}",
    "I work at {org}",
    "I quit my job at {org}",
    "My sister is called {person}",
    "I like {thing} in {place}",
    "We met {person} in {place} yesterday",
)
# Disjoint words: what a tenant (or a user) says, so that any leak shows as a foreign word.
VOCABULARY = (
    {"place": ("Lisbon", "Porto", "Braga"), "org": ("Acme",), "person": ("Maya",),
     "thing": ("tea",)},
    {"place": ("Oslo", "Bergen"), "org": ("Globex",), "person": ("Ingrid",),
     "thing": ("skiing",)},
)  # fmt: skip
# The user a purge erases: every word of theirs is unique to them, to be looked for in the files.
VICTIM = "zq-victim-7"
VICTIM_AGENT = "zq-agent-7"
VICTIM_SESSION = "zq-session-7"
VICTIM_WORDS = {
    "place": ("Zorvania", "Quilmeth"),
    "org": ("Vexacorp",),
    "person": ("Yrsolde",),
    "thing": ("plumbagoxx",),
}


def words(vocabulary: dict[str, tuple[str, ...]]) -> list[str]:
    return sorted({w for group in vocabulary.values() for w in group})


def sentences(vocabulary: dict[str, tuple[str, ...]]) -> st.SearchStrategy[str]:
    """What a user says, in these words."""
    return st.builds(
        str.format,
        st.sampled_from(TEMPLATES),
        **{k: st.sampled_from(v) for k, v in vocabulary.items()},
    )


def foreign(text: str, vocabulary: list[str]) -> list[str]:
    """The words of ``vocabulary`` found in ``text``."""
    return [w for w in vocabulary if re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)]


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class Stores:
    """The module's store files: one with inline consolidation, one deferred, and fresh tenant
    names for every example."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.main = Memory(folder / "main.db", **OPEN, home=str(folder))
        self.deferred = Memory(
            folder / "deferred.db", **OPEN, home=str(folder), consolidate="deferred"
        )
        self._names = itertools.count()

    def tenant(self) -> str:
        return f"t{next(self._names)}"

    def fresh(self) -> Memory:
        """A new store file of its own."""
        folder = Path(tempfile.mkdtemp(dir=self.folder))
        return Memory(folder / "engram.db", **OPEN, home=str(folder))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    with pytest.MonkeyPatch.context() as env:
        folder = tmp_path_factory.mktemp("props")
        env.setenv("ENGRAM_HOME", str(folder))
        env.delenv("ENGRAM_CONFIG", raising=False)
        made = Stores(folder)
        yield made
        made.main.close()
        made.deferred.close()


# -- tenant isolation ------------------------------------------------------------------------------

USERS = ("ana", "bob")
SHARED_IDS = ("m1", "m2", "m3")  # explicit ids both tenants use for different memories


class Tenant:
    """What one tenant should hold: its messages (id -> user, text, archived)."""

    def __init__(self, view: Memory, number: int) -> None:
        self.view = view
        self.vocabulary = VOCABULARY[number]
        self.messages: dict[str, tuple[str, str, bool]] = {}
        self.ever: set[str] = set()  # every id it gave out (ids are never given twice)

    def check(self, other: Tenant) -> None:
        """Everything this tenant can see is its own, and all of it is there."""
        alien = words(other.vocabulary)
        mine = {i: (u, t) for i, (u, t, _) in self.messages.items()}
        exported = _export(self.view)
        assert {r["id"]: (r["user_id"], r["text"]) for r in exported if r["kind"] == "message"} == (
            mine
        )
        archived = {r["id"] for r in exported if "archived_at" in r}
        assert archived == {i for i, (_, _, a) in self.messages.items() if a}
        assert not foreign(_dump(exported), alien)
        users = {u for u, _, _ in self.messages.values()}
        assert {s.user_id for s in self.view.scopes()} == users
        assert all(s.agent_id is None for s in self.view.scopes())
        feed = _feed(self.view)
        assert not foreign(_dump([(e.before, e.after) for e in feed]), alien)
        assert not {e.memory_id for e in feed} & (other.ever - self.ever)
        query = " ".join(words(VOCABULARY[0]) + words(VOCABULARY[1]))
        for user in USERS:
            listed = self.view.list(user_id=user, kind="message", limit=1000).items
            assert {r.id for r in listed} == {i for i, (u, _) in mine.items() if u == user}
            hits = self.view.search(query, user_id=user, limit=100)
            assert all(h.id not in archived for h in hits)
            assert all(h.id in mine for h in hits if h.kind == "message")
            facts = self.view.facts(user_id=user, include_expired=True, limit=1000).items
            entities = self.view.entities(user_id=user)
            profile = self.view.profile(user_id=user)
            context = self.view.context(query, user_id=user)
            seen = [[h.text for h in hits], [f.text for f in facts], [e.name for e in entities]]
            assert not foreign(_dump([*seen, profile.text, context]), alien)
        for ident in SHARED_IDS + tuple(self.ever | other.ever):
            if ident in self.messages:
                record = self.view.get(ident)
                assert (record.user_id, record.text) == mine[ident]
            else:
                with pytest.raises(MemoryNotFound):
                    self.view.get(ident)


@SLOW
@given(data=st.data())
def test_two_tenants_of_one_store_never_see_each_other(stores: Stores, data: st.DataObject) -> None:
    name = stores.tenant()
    tenants = [Tenant(stores.main.for_tenant(f"{name}-{n}"), n) for n in (0, 1)]
    for _ in range(data.draw(st.integers(1, 10), label="steps")):
        number = data.draw(st.integers(0, 1), label="tenant")
        tenant = tenants[number]
        ids = sorted(tenant.messages)
        moves = ["add"] + (["delete", "archive", "unarchive", "purge_user"] if ids else [])
        move = data.draw(st.sampled_from([*moves, "add", "purge_tenant"]), label="move")
        if move == "add":
            user = data.draw(st.sampled_from(USERS))
            text = data.draw(sentences(tenant.vocabulary))
            explicit = [i for i in SHARED_IDS if i not in tenant.ever]
            ident = data.draw(st.sampled_from([None, *explicit]))
            message = {"content": text} if ident is None else {"content": text, "id": ident}
            [made] = tenant.view.add(message, user_id=user)
            tenant.messages[made] = (user, text, False)
            tenant.ever.add(made)
        elif move == "delete":
            ident = data.draw(st.sampled_from(ids))
            tenant.view.delete(ident)
            del tenant.messages[ident]
        elif move in ("archive", "unarchive"):
            ident = data.draw(st.sampled_from(ids))
            record = getattr(tenant.view, move)(ident)
            assert (record.archived_at is not None) == (move == "archive")
            user, text, _ = tenant.messages[ident]
            tenant.messages[ident] = (user, text, move == "archive")
        elif move == "purge_user":
            user = data.draw(st.sampled_from(USERS))
            tenant.view.purge_user(user)
            tenant.messages = {i: m for i, m in tenant.messages.items() if m[0] != user}
        else:
            tenant.view.purge_tenant()
            tenant.messages = {}
    tenants[0].check(tenants[1])
    tenants[1].check(tenants[0])


# -- purge_user ------------------------------------------------------------------------------------


def _leftovers(folder: Path, needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for every needle found in a file of the folder, in any ASCII case."""
    found = {p.name: p.read_bytes().lower() for p in folder.iterdir() if p.is_file()}
    return [(n, w) for n, data in found.items() for w in needles if w.lower().encode() in data]


def _searches(mem: Memory, users: tuple[str, ...], query: str) -> list[Any]:
    return [
        [(h.id, h.kind, h.text, h.score) for h in mem.search(query, user_id=u, limit=100)]
        for u in users
    ]


@UNSHRUNK
@given(data=st.data())
def test_purge_user_leaves_nothing_of_the_user_and_the_others_as_they_were(
    stores: Stores, data: st.DataObject
) -> None:
    mem = stores.fresh()
    folder = Path(mem.path).parent
    # The same user id in another tenant: its records stay, so its name stays in the file.
    neighbour = data.draw(st.booleans(), label="neighbour tenant")
    own = {"ana": VOCABULARY[0], "bob": VOCABULARY[0], VICTIM: VICTIM_WORDS}
    ids: dict[str, list[str]] = {u: [] for u in own}  # their messages now
    said_by_victim: set[str] = set()  # every id the victim's messages ever had
    try:
        for _ in range(data.draw(st.integers(1, 9), label="steps")):
            user = data.draw(st.sampled_from(sorted(own)), label="user")
            move = data.draw(st.sampled_from(["add", "add", "update", "delete", "archive"]))
            if move == "add" or not ids[user]:
                agents = [None, "coach", VICTIM_AGENT] if user == VICTIM else [None, "coach"]
                agent = data.draw(st.sampled_from(agents), label="agent")
                session = VICTIM_SESSION if user == VICTIM else "s1"
                said = data.draw(st.lists(sentences(own[user]), min_size=1, max_size=3))
                ids[user] += mem.add(said, user_id=user, agent_id=agent, session_id=session)
                said_by_victim.update(ids[VICTIM])
                continue
            ident = data.draw(st.sampled_from(ids[user]), label="memory")
            if move == "update":
                mem.update(ident, text=data.draw(sentences(own[user])))
            elif move == "delete":
                mem.delete(ident)
                ids[user].remove(ident)
            else:
                mem.archive(ident)
        if data.draw(st.booleans(), label="pending extraction"):
            with Memory(mem.path, **OPEN, home=str(folder), consolidate="deferred") as d:
                said = data.draw(sentences(VICTIM_WORDS))
                ids[VICTIM] += d.add(said, user_id=VICTIM, session_id=VICTIM_SESSION)
                said_by_victim.update(ids[VICTIM])
        globex = mem.for_tenant("globex")
        if neighbour:
            globex.add("I live in Lisbon", user_id=VICTIM, agent_id="coach")
        query = " ".join(words(VOCABULARY[0]) + words(VICTIM_WORDS))

        everything = _export(mem)
        kept = [r for r in everything if r["user_id"] != VICTIM]
        theirs = {r["id"] for r in everything if r["user_id"] == VICTIM} | said_by_victim
        feed = [e for e in _feed(mem) if e.memory_id not in theirs]
        scopes = [s for s in mem.scopes() if s.user_id != VICTIM]
        others = (_searches(mem, ("ana", "bob"), query), _export(globex), _feed(globex))

        receipt = mem.purge_user(VICTIM)

        assert receipt["memories"] == len(everything) - len(kept)
        assert _export(mem) == kept
        assert [e for e in _feed(mem) if e.memory_id not in theirs] == feed
        assert mem.scopes() == scopes
        assert (_searches(mem, ("ana", "bob"), query), _export(globex), _feed(globex)) == others
        gone = [e for e in _feed(mem) if e.memory_id in theirs]
        assert all(e.before is None and e.after is None for e in gone), gone
        for agent in (None, "coach", VICTIM_AGENT):
            scope = {"user_id": VICTIM, "agent_id": agent}
            assert mem.list(**scope).items == []
            assert mem.facts(**scope, include_expired=True).items == []
            assert mem.entities(**scope) == []
            assert mem.profile(**scope).entries == []
            assert mem.search(query, **scope) == []
        for ident in theirs:
            with pytest.raises(MemoryNotFound):
                mem.get(ident)
        assert mem.stats()["jobs_pending"] == 0
    finally:
        mem.close()
    markers = [*words(VICTIM_WORDS), VICTIM_AGENT, VICTIM_SESSION]
    assert _leftovers(folder, markers if neighbour else [*markers, VICTIM]) == []


@pytest.mark.parametrize("move", ["purge another user", "export and import"])
def test_the_ranking_of_equal_scores_stays_as_it_was(stores: Stores, move: str) -> None:
    # The purge and import properties' counterexample, minimised: a deleted turn re-keys the next
    # one, which is embedded again and held at a new place in memory. Its vector is the same as
    # two others' (the same words), so their scores are equal, which rank by id; but a matrix
    # product rounds a row's score by where it is held (and how the matrix is aligned in memory:
    # it happens only some of the time, hence the tries). A purge, which rebuilds the scope's
    # vectors in stored order, or an import into a fresh store moves it.
    query = " ".join(words(VOCABULARY[0]))
    changed = []
    for _ in range(10):
        mem, again = stores.fresh(), stores.fresh()
        try:
            [first] = mem.add("I work at Acme", user_id="bob")
            mem.update(first, text="I quit my job at Acme")
            quoted, _ = mem.add(["I work at Acme", "My sister is called Maya"], user_id="bob")
            mem.add(["I quit my job at Acme", "My sister is called Maya"], user_id="bob")
            mem.delete(quoted)
            mem.add("I live in Zorvania", user_id=VICTIM)
            before = _searches(mem, ("bob",), query)
            if move == "purge another user":
                mem.purge_user(VICTIM)
                after = _searches(mem, ("bob",), query)
            else:
                out = io.StringIO()
                mem.export(out, vectors=True)
                again.import_records(json.loads(line) for line in out.getvalue().splitlines())
                after = _searches(again, ("bob",), query)
            if after != before:
                changed.append((before, after))
        finally:
            mem.close()
            again.close()
    assert not changed, f"{len(changed)} of 10 tries: {changed[0]}"


# -- archive and unarchive -------------------------------------------------------------------------

QUERIES = ("Where does the user live?", "Lisbon Porto Braga", "work Acme", "sister Maya tea")


def _answers(mem: Memory, user: str) -> Any:
    """Everything search, context, facts and the profile give about a user."""
    return (
        [_searches(mem, (user,), q) for q in QUERIES],
        [mem.context(q, user_id=user) for q in QUERIES],
        [(f.id, f.text, f.valid_to) for f in mem.facts(user_id=user, limit=1000).items],
        [f.id for f in mem.facts(user_id=user, include_expired=True, limit=1000).items],
        mem.profile(user_id=user),
    )


@SLOW
@given(
    said=st.lists(sentences(VOCABULARY[0]), min_size=1, max_size=6),
    data=st.data(),
)
def test_archived_memories_are_listed_not_found_and_unarchive_restores_every_answer(
    stores: Stores, said: list[str], data: st.DataObject
) -> None:
    mem = stores.main.for_tenant(stores.tenant())
    base = datetime(2024, 3, 1, tzinfo=UTC)
    messages = [
        {"content": t, "timestamp": (base + timedelta(days=n)).isoformat()}
        for n, t in enumerate(said)
    ]
    mem.add(messages, user_id="ana")
    records = mem.list(user_id="ana", limit=1000).items
    before = _answers(mem, "ana")
    chosen = data.draw(st.lists(st.sampled_from(records), unique_by=lambda r: r.id), label="away")
    again = data.draw(st.lists(st.sampled_from(chosen), max_size=2)) if chosen else []
    for record in chosen + again:
        assert mem.archive(record.id).archived_at is not None
    away = {r.id for r in chosen}

    listed = mem.list(user_id="ana", limit=1000).items
    assert [r.id for r in listed] == [r.id for r in records]
    assert {r.id for r in listed if r.archived_at is not None} == away
    assert {r.id for r in mem.list(user_id="ana", archived=True, limit=1000).items} == away
    assert all(mem.get(i).archived_at is not None for i in away)
    shown = [r.text for r in records if r.id not in away]
    hidden = [r.text for r in records if r.id in away and not any(r.text in t for t in shown)]
    for query in QUERIES:
        for flt in (None, {"kinds": ["fact"]}, {"kinds": ["message"]}):
            assert not away & {h.id for h in mem.search(query, user_id="ana", filters=flt)}
        assert not [t for t in hidden if t in mem.context(query, user_id="ana")]
    for expired in (False, True):
        facts = mem.facts(user_id="ana", include_expired=expired, limit=1000).items
        assert not away & {f.id for f in facts}
    assert not away & {f.id for f in mem.facts(user_id="ana", as_of="2030-01-01").items}
    assert not away & {e.fact_id for e in mem.profile(user_id="ana").entries}

    for record in data.draw(st.permutations(records), label="bring back"):
        assert mem.unarchive(record.id).archived_at is None
    assert _answers(mem, "ana") == before
    assert [(r.id, r.archived_at) for r in mem.list(user_id="ana", limit=1000).items] == [
        (r.id, None) for r in records
    ]


# -- the event feed --------------------------------------------------------------------------------


def _write(mem: Memory, data: st.DataObject) -> None:
    """One random change of a tenant: an add, a correction, a delete, an archive."""
    records = mem.list(user_id="ana", limit=1000).items
    messages = [r for r in records if r.kind == "message"]
    moves = ["add", "update", "delete", "archive"] if messages else ["add"]
    move = data.draw(st.sampled_from(moves), label="move")
    if move == "add":
        said = data.draw(st.lists(sentences(VOCABULARY[0]), min_size=1, max_size=3))
        mem.add(said, user_id="ana", agent_id=data.draw(st.sampled_from([None, "coach"])))
        return
    ident = data.draw(st.sampled_from(messages), label="memory").id
    if move == "update":
        mem.update(ident, text=data.draw(sentences(VOCABULARY[0])))
    elif move == "delete":
        mem.delete(ident)
    else:
        getattr(mem, "unarchive" if mem.get(ident).archived_at else "archive")(ident)


def _moments(events: list[HistoryEntry]) -> list[tuple[int, str, str, str, datetime]]:
    """Events without their content (a later delete redacts it)."""
    return [(e.id, e.memory_id, e.event, e.actor, e.at) for e in events]


@PROPS
@given(
    data=st.data(),
    size=st.one_of(st.integers(1, 5), st.integers(6, 1000)),
    writes=st.integers(1, 8),
)
def test_the_event_feed_pages_every_event_once_in_order(
    stores: Stores, data: st.DataObject, size: int, writes: int
) -> None:
    mem, other = (stores.main.for_tenant(stores.tenant()) for _ in range(2))
    for _ in range(writes):
        _write(mem, data)
        if data.draw(st.booleans(), label="the other tenant writes"):
            _write(other, data)
    feed = mem.events(limit=1000)
    assert len(feed) < 1000 and feed
    assert [e.id for e in feed] == sorted({e.id for e in feed})
    read: list[HistoryEntry] = []
    while page := mem.events(after=read[-1].id if read else 0, limit=size):
        assert len(page) <= size
        read += page
    assert read == feed
    start = data.draw(st.sampled_from([0, *[e.id for e in feed], feed[-1].id + 1]), label="after")
    assert mem.events(after=start, limit=1000) == [e for e in feed if e.id > start]
    # Writes of this tenant and another while the feed is read: each event still comes once.
    read = []
    pending = data.draw(st.lists(st.sampled_from([mem, other]), max_size=6), label="meanwhile")
    while True:
        page = mem.events(after=read[-1].id if read else 0, limit=size)
        if not page and not pending:
            break
        read += page
        if pending:
            _write(pending.pop(), data)
    assert _moments(read) == _moments(mem.events(limit=1000))


# -- export with vectors, and import ---------------------------------------------------------------


@UNSHRUNK
@given(data=st.data(), steps=st.integers(1, 8))
def test_an_export_with_vectors_imports_into_a_fresh_store_as_itself(
    stores: Stores, data: st.DataObject, steps: int
) -> None:
    tenant = stores.tenant()
    source = stores.main.for_tenant(tenant)
    for _ in range(steps):
        _write(source, data)
    if data.draw(st.booleans(), label="metadata and an explicit id"):
        source.add(
            {"id": "kept-id", "content": "I moved to Porto", "metadata": {"topic": ["home", 1]}},
            user_id="bob",
            agent_id="coach",
            session_id="s9",
        )
    exported = io.StringIO()
    count = source.export(exported, vectors=True)
    lines = [json.loads(line) for line in exported.getvalue().splitlines()]
    store = stores.fresh()
    target = store.for_tenant(tenant)  # the same tenant, for records that say their scope
    try:
        assert target.import_records(lines) == count
        assert target.stats()["jobs_pending"] == 0  # the vectors came with the records
        assert _export(target) == lines[1:]
        assert target.import_records(lines) == 0  # again: nothing new, nothing changed
        assert _export(target) == lines[1:]
        query = " ".join(words(VOCABULARY[0]))
        scopes = ({"user_id": "ana"}, {"user_id": "ana", "agent_id": "coach"})
        for scope in (*scopes, {"user_id": "bob", "agent_id": "coach"}):
            for text in (query, "Where do I live?"):
                found = [m.search(text, **scope, limit=50) for m in (target, source)]
                assert found[0] == found[1]
            assert target.facts(**scope, include_expired=True, limit=1000) == source.facts(
                **scope, include_expired=True, limit=1000
            )
            # Entities as many times mentioned come in the order they were created, which an
            # import (of records in their order, a corrected text included) need not keep.
            assert sorted(target.entities(**scope), key=repr) == sorted(
                source.entities(**scope), key=repr
            )
            assert target.profile(**scope) == source.profile(**scope)
        assert target.scopes() == source.scopes()
    finally:
        store.close()


# -- work(): deferred consolidation ----------------------------------------------------------------


def _facts(mem: Memory, user: str) -> list[Any]:
    """A user's facts, with what their ids and recording times (which differ) stand for."""
    facts = mem.facts(user_id=user, include_expired=True, limit=1000).items
    texts = {f.id: f.text for f in facts}

    def seen(f: MemoryRecord) -> Any:
        return (
            f.text, f.subject, f.attribute, f.value, f.valid_from, f.valid_to, f.occurred_at,
            f.expired_at is None, texts.get(f.superseded_by or ""), [s.id for s in f.sources],
        )  # fmt: skip

    return sorted((seen(f) for f in facts), key=repr)


def _knowledge(mem: Memory, user: str) -> Any:
    entities = [
        (e.name, e.type, e.aliases, e.relation, e.relation_of, e.mentions)
        for e in mem.entities(user_id=user)
    ]
    return _facts(mem, user), sorted(entities, key=repr), mem.profile(user_id=user).text


def _dated(name: str, batches: list[list[str]]) -> list[list[dict[str, str]]]:
    """The batches as messages with ids and times, a day apart (the same in both stores)."""
    base = datetime(2024, 1, 1, 9, tzinfo=UTC)
    numbers = itertools.count()
    dated = [
        [
            {"id": f"{name}-{n}", "content": text, "timestamp": (base + timedelta(n)).isoformat()}
            for text, n in zip(batch, numbers, strict=False)
        ]
        for batch in batches
    ]
    return [batch for batch in dated if batch]


def _drain(deferred: Memory, limit: int) -> None:
    """Run work() until it finds nothing to do."""
    for runs in itertools.count():
        report = deferred.work(f"w{runs}", limit=limit)
        assert report.failed == 0, report.errors
        if not (report.extracted or report.done):
            break
        assert runs < 100
    assert deferred.stats()["jobs_pending"] == 0


# At most nine sentences: a failure is clear as drawn, and shrinking one (a few hundred stores'
# worth of adds and work) would take most of a minute. Its minimal cases are pinned below.
@settings(PROPS, max_examples=50, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(
    batches=st.lists(
        st.lists(st.one_of(sentences(VOCABULARY[0]), sentences(VOCABULARY[1])), max_size=3),
        min_size=1,
        max_size=3,
    ).filter(any),
    data=st.data(),
)
def test_work_after_deferred_adds_gives_the_facts_of_inline_consolidation(
    stores: Stores, batches: list[list[str]], data: st.DataObject
) -> None:
    name = stores.tenant()
    inline, deferred = stores.main.for_tenant(name), stores.deferred.for_tenant(name)
    for messages in _dated(name, batches):
        assert inline.add(messages, user_id="ana") == deferred.add(messages, user_id="ana")
        for _ in range(data.draw(st.integers(0, 2), label="work meanwhile")):
            report = deferred.work("w1", limit=data.draw(st.integers(1, 32), label="limit"))
            assert report.failed == 0, report.errors
    limit = data.draw(st.integers(1, 32), label="limit")
    _drain(deferred, limit)
    expected = _knowledge(inline, "ana")
    assert _knowledge(deferred, "ana") == expected
    for _ in range(data.draw(st.integers(1, 3), label="and again")):
        report = deferred.work("w-again", limit=limit)
        assert (report.done, report.extracted, report.facts_added, report.failed) == (0, 0, 0, 0)
    assert _knowledge(deferred, "ana") == expected


# The property's counterexamples, minimised: the facts depend on which messages one
# consolidation run reads together, and add() (one run per call) and work() (one run per lease
# of ``limit`` jobs) group them differently.
LEASES = [
    pytest.param(
        [["I moved to Oslo last May"], ["I moved to Bergen last May"]],
        32,
        id="two moves since the same month, leased together",
    ),
    pytest.param(
        [["I no longer live in Bergen", "I moved to Bergen last May"]],
        1,
        id="an end said before the start it ends, leased one by one",
    ),
]


@pytest.mark.parametrize(("batches", "limit"), LEASES)
def test_work_gives_the_inline_facts_however_the_jobs_are_leased(
    stores: Stores, batches: list[list[str]], limit: int
) -> None:
    name = stores.tenant()
    inline, deferred = stores.main.for_tenant(name), stores.deferred.for_tenant(name)
    for messages in _dated(name, batches):
        inline.add(messages, user_id="ana")
        deferred.add(messages, user_id="ana")
    _drain(deferred, limit)
    assert _knowledge(deferred, "ana") == _knowledge(inline, "ana")


def test_an_import_refused_in_a_later_batch_writes_no_earlier_one(tmp_path: Path) -> None:
    """Found by test_inputs.py's import property: batches are written one by one, so a conflict
    in the second used to leave the first stored."""
    mem = Memory(tmp_path / "engram.db", **OPEN)
    mem.add("I live in Lisbon", user_id="ana")

    def exported() -> list[dict[str, Any]]:
        out = io.StringIO()
        mem.export(out)
        return [json.loads(line) for line in out.getvalue().splitlines()]

    header, *before = exported()
    message = next(r for r in before if r.get("kind") == "message")
    fresh = [{**message, "id": f"new-{i}", "dedupe_key": None} for i in range(3)]
    clash = {**message, "text": "something else entirely"}
    with pytest.raises(IdConflict, match="record 4"):
        mem.import_records([*fresh, clash], batch=2)
    assert exported()[1:] == before
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [header, *fresh, clash]))
    with pytest.raises(IdConflict):
        mem.import_file(path)
    assert exported()[1:] == before
    mem.close()
