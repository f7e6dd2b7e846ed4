"""The whole input surface: every public entry point, over any argument, either works or raises
an :class:`EngramError` (never a backend's, Python's or the standard library's exception), and a
refused call leaves the store as it was.

The properties run on one store per module (the deterministic test embedder) and compare a
fingerprint of it (every exported record, the counts, the history of the seeded memories) before
and after each refused call. A table of known cases pins the exact error class and that the
message names the argument.
"""

from __future__ import annotations

import gzip
import inspect
import io
import json
import math
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engramdb import Memory, errors
from engramdb.cli import main
from engramdb.errors import (
    ConfigError,
    Conflict,
    ContentTooLarge,
    EmbedderError,
    EmptyContent,
    EngramError,
    ImportFormatError,
    InvalidCursor,
    InvalidFilter,
    InvalidInput,
    InvalidTimestamp,
    MemoryNotFound,
    MissingScope,
    NotFound,
    StoreError,
    UnknownRole,
)
from engramdb.importers import FORMATS
from engramdb.types import KINDS, ROLES, Hit, MemoryRecord, Page

PROPS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(PROPS, max_examples=60)

# -- values ---------------------------------------------------------------------------------------
#
# Each argument is valid most of the time and anything at all the rest: a call then gets past its
# first check often enough for the later ones (and the store) to be reached.


def mostly(
    valid: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], odds: int = 5
) -> st.SearchStrategy[Any]:
    """``bad`` one time in ``odds``, ``valid`` otherwise (and when shrinking: a failure shrinks
    towards valid arguments but for the one that matters)."""
    return st.integers(1, odds).flatmap(lambda n: bad if n == odds else valid)


# Lone surrogates (what Python makes of bytes that are not UTF-8) come rarely from characters()
# alone: they are drawn on purpose, as are NUL and white space.
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
CHAR = st.one_of(st.characters(), SURROGATE, st.sampled_from("\x00\n\t a"))
TEXT = st.text(CHAR, max_size=30)
WORDS = st.sampled_from(
    ["hello", "Lisbon", "yesterday", "next year", "in May 2023", "last week", "x", "ſunday"]
)
GOOD_TEXT = st.one_of(
    WORDS,
    st.lists(WORDS, min_size=1, max_size=6).map(" ".join),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40).filter(str.strip),
)
GOOD_NAMES = st.one_of(
    st.sampled_from(["ana", "bob", "s1"]),
    st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        min_size=1,
        max_size=12,
    ).filter(str.strip),
)
LONG = st.sampled_from([511, 512, 513, 32_000, 32_001, 70_000]).map(lambda n: "x" * n)
NUMBERS = st.one_of(
    st.integers(),
    st.floats(),
    st.sampled_from([0, -1, 1, 10**30, -(10**30), 2**63, math.nan, math.inf, True]),
)


def nested(depth: int) -> dict[str, Any]:
    """A dict nested ``depth`` levels deep."""
    out: dict[str, Any] = {}
    for _ in range(depth):
        out = {"a": out}
    return out


# JSON as a file can hold it (with NaN, which Python's json writes and reads).
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, WORDS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(TEXT, WORDS), inner, max_size=4)
    ),
    max_leaves=12,
)
GOOD_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        GOOD_TEXT,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(GOOD_NAMES, inner, max_size=3)
    ),
    max_leaves=8,
)
# Anything a caller might pass: JSON, wrong types, deep nesting, odd objects.
ANY = st.one_of(
    JSON,
    st.binary(max_size=8),
    st.dictionaries(st.one_of(st.integers(), st.none()), JSON, max_size=2),
    st.tuples(JSON),
    st.sets(st.integers(), max_size=3),
    st.integers(30, 1200).map(nested),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.builds(object),
    LONG,
)
BAD_NAMES = st.one_of(st.sampled_from([" ", "", "a\x00b", "u" * 513]), TEXT, ANY)
NAMES = mostly(st.one_of(st.none(), GOOD_NAMES), BAD_NAMES)
ZONES = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
DATETIMES = st.one_of(
    st.datetimes(timezones=st.none() | ZONES),
    st.datetimes(max_value=datetime(1, 1, 2), timezones=st.none() | ZONES),
    st.datetimes(min_value=datetime(9999, 12, 30), timezones=st.none() | ZONES),
)
GOOD_TIMES = st.one_of(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=ZONES),
    DATETIMES,
    DATETIMES.map(datetime.isoformat),
    st.floats(-6e10, 2.5e11),
    st.sampled_from(
        ["2023-05-08T13:56:00+02:00", "1:56 pm on 8 May, 2023", "2023/05/20 (Sat) 02:21"]
    ),
)
TIMES = mostly(st.one_of(st.none(), GOOD_TIMES), st.one_of(NUMBERS, TEXT, ANY))
TOKENS = mostly(st.none() | st.integers(1, 5000), st.one_of(NUMBERS, st.just("100"), ANY))
LIMITS = mostly(st.integers(1, 30), st.one_of(NUMBERS, st.sampled_from(["5", 2.5, 1001]), ANY))
GOOD_METADATA = st.one_of(st.none(), st.dictionaries(GOOD_NAMES, GOOD_JSON, max_size=3))
METADATA = mostly(GOOD_METADATA, st.one_of(st.dictionaries(TEXT, JSON, max_size=3), ANY))
MESSAGE = mostly(
    st.one_of(
        GOOD_TEXT,
        st.fixed_dictionaries(
            {"content": GOOD_TEXT},
            optional={
                "role": st.sampled_from(ROLES),
                "name": GOOD_NAMES,
                "timestamp": GOOD_TIMES,
                "metadata": GOOD_METADATA,
                "id": st.one_of(st.uuids().map(str), GOOD_NAMES),
            },
        ),
    ),
    st.one_of(
        st.fixed_dictionaries(
            {"content": mostly(GOOD_TEXT, st.one_of(TEXT, ANY))},
            optional={
                "role": mostly(st.sampled_from(ROLES), ANY),
                "name": NAMES,
                "timestamp": TIMES,
                "metadata": METADATA,
                "id": NAMES,
            },
        ),
        st.dictionaries(st.one_of(TEXT, st.sampled_from(["content", "role", "extra"])), ANY),
        ANY,
    ),
)
MESSAGES = mostly(st.one_of(MESSAGE, st.lists(MESSAGE, min_size=1, max_size=4)), ANY)
GOOD_FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "since": GOOD_TIMES,
        "until": GOOD_TIMES,
        "kinds": st.one_of(st.sampled_from(KINDS), st.lists(st.sampled_from(KINDS), max_size=3)),
        "metadata": st.dictionaries(st.sampled_from(["topic", "n"]), GOOD_JSON, max_size=2),
    },
)
FILTERS = mostly(
    st.one_of(st.none(), GOOD_FILTERS),
    st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "since": TIMES,
                "until": TIMES,
                "kinds": st.one_of(st.lists(st.one_of(st.sampled_from(KINDS), TEXT)), ANY),
                "metadata": METADATA,
            },
        ),
        st.dictionaries(st.one_of(TEXT, st.sampled_from(["since", "kinds"])), ANY, max_size=3),
        ANY,
    ),
)
SCOPES = mostly(st.sampled_from(["seed-ana", "ana", "bob"]), NAMES)
QUERIES = mostly(GOOD_TEXT, st.one_of(TEXT, ANY))


# -- the store --------------------------------------------------------------------------------


class Store:
    """One store per module, its seeded memories, and a way to see whether a call changed it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mem = Memory(folder / "inputs.db", embedder="test", home=str(folder))
        ana = [
            {"role": "user", "content": "I moved to Lisbon last May", "timestamp": "2023-06-01"},
            {"role": "assistant", "content": "How do you like it?"},
            {"role": "user", "content": "I love the light", "metadata": {"topic": "home"}},
        ]
        self.ids = self.mem.add(ana, user_id="seed-ana", session_id="s1")
        self.ids += self.mem.add("bob plays chess", agent_id="seed-bot")
        self.cursor = self.mem.list(user_id="seed-ana", limit=1).next_cursor
        out = io.StringIO()
        self.mem.export(out)
        self.exported = [json.loads(line) for line in out.getvalue().splitlines()[1:]]

    def fingerprint(self) -> Any:
        out = io.StringIO()
        self.mem.export(out)
        stats = self.mem.stats()
        counts = ("memories", "by_kind", "scopes", "jobs_pending", "jobs_failed")
        history = [(e.event, e.before, e.after) for i in self.ids for e in self.mem.history(i)]
        return out.getvalue().splitlines()[1:], {k: stats[k] for k in counts}, history

    def attempt(
        self, action: Callable[[], Any], *, partial: type[EngramError] | None = None
    ) -> tuple[Any, EngramError | None]:
        """Run ``action``: its result, or the EngramError it raised having changed nothing
        (``partial``: an error after which earlier, complete units of work may stay)."""
        before = self.fingerprint()
        try:
            return action(), None
        except EngramError as exc:
            assert str(exc).strip(), f"{type(exc).__name__} without a message"
            if partial is None or not isinstance(exc, partial):
                assert self.fingerprint() == before, f"refused, yet the store changed: {exc!r}"
            return None, exc


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with pytest.MonkeyPatch.context() as env:
        folder = tmp_path_factory.mktemp("inputs")
        env.setenv("ENGRAM_HOME", str(folder))
        env.delenv("ENGRAM_CONFIG", raising=False)
        seeded = Store(folder)
        yield seeded
        seeded.mem.close()


# -- the Python API -----------------------------------------------------------------------------


@PROPS
@given(
    messages=MESSAGES,
    user_id=SCOPES,
    agent_id=NAMES,
    session_id=NAMES,
    metadata=METADATA,
)
def test_add_stores_every_message_or_nothing(
    store: Store, messages: Any, user_id: Any, agent_id: Any, session_id: Any, metadata: Any
) -> None:
    ids, error = store.attempt(
        lambda: store.mem.add(
            messages, user_id=user_id, agent_id=agent_id, session_id=session_id, metadata=metadata
        )
    )
    if error is None:
        assert len(ids) == (1 if isinstance(messages, str | dict) else len(messages))
        assert all(store.mem.get(i).id == i for i in ids)


@PROPS
@given(
    query=QUERIES,
    user_id=SCOPES,
    agent_id=NAMES,
    session_id=st.one_of(st.just("s1"), NAMES),
    limit=LIMITS,
    as_of=TIMES,
    filters=FILTERS,
)
def test_search_answers_or_refuses(
    store: Store,
    query: Any,
    user_id: Any,
    agent_id: Any,
    session_id: Any,
    limit: Any,
    as_of: Any,
    filters: Any,
) -> None:
    hits, error = store.attempt(
        lambda: store.mem.search(
            query,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            limit=limit,
            as_of=as_of,
            filters=filters,
        )
    )
    if error is None:
        assert all(isinstance(h, Hit) for h in hits)
        assert len(hits) <= limit


@PROPS
@given(query=QUERIES, user_id=SCOPES, agent_id=NAMES, max_tokens=TOKENS, as_of=TIMES)
def test_context_answers_or_refuses(
    store: Store, query: Any, user_id: Any, agent_id: Any, max_tokens: Any, as_of: Any
) -> None:
    text, error = store.attempt(
        lambda: store.mem.context(
            query, user_id=user_id, agent_id=agent_id, max_tokens=max_tokens, as_of=as_of
        )
    )
    assert error is not None or isinstance(text, str)


@PROPS
@given(
    user_id=SCOPES,
    agent_id=NAMES,
    session_id=st.one_of(st.just("s1"), NAMES),
    kind=mostly(st.none() | st.sampled_from(KINDS), st.one_of(TEXT, ANY)),
    limit=LIMITS,
    cursor=mostly(st.sampled_from([None, "seed"]), st.one_of(TEXT, ANY)),
)
def test_list_pages_or_refuses(
    store: Store,
    user_id: Any,
    agent_id: Any,
    session_id: Any,
    kind: Any,
    limit: Any,
    cursor: Any,
) -> None:
    cursor = store.cursor if cursor == "seed" else cursor
    page, error = store.attempt(
        lambda: store.mem.list(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            kind=kind,
            limit=limit,
            cursor=cursor,
        )
    )
    if error is None:
        assert isinstance(page, Page)
        assert len(page.items) <= limit


@PROPS
@given(
    which=mostly(st.integers(0, 3), NAMES),
    text=mostly(st.none() | GOOD_TEXT, st.one_of(TEXT, LONG, ANY)),
    metadata=METADATA,
)
def test_update_corrects_or_refuses(store: Store, which: Any, text: Any, metadata: Any) -> None:
    memory_id = store.ids[which] if isinstance(which, int) and 0 <= which < 4 else which
    record, error = store.attempt(lambda: store.mem.update(memory_id, text=text, metadata=metadata))
    if error is None:
        assert isinstance(record, MemoryRecord)
        assert text is None or record.text == text


@PROPS
@given(method=st.sampled_from(["get", "history", "delete"]), memory_id=NAMES)
def test_an_unknown_or_malformed_id_is_not_found_or_invalid(
    store: Store, method: str, memory_id: Any
) -> None:
    _, error = store.attempt(lambda: getattr(store.mem, method)(memory_id))
    # "ana" may name a memory an add() above stored under that id: then it is found.
    assert error is None or isinstance(error, NotFound | InvalidInput), repr(error)


@PROPS
@given(user_id=NAMES, agent_id=NAMES)
def test_delete_all_deletes_a_scope_or_refuses(store: Store, user_id: Any, agent_id: Any) -> None:
    count, error = store.attempt(lambda: store.mem.delete_all(user_id=user_id, agent_id=agent_id))
    assert error is not None or count >= 0


@PROPS
@given(limit=LIMITS)
def test_process_runs_or_refuses(store: Store, limit: Any) -> None:
    report, error = store.attempt(lambda: store.mem.process(limit))
    assert error is not None or report.failed == 0


FLAGS = mostly(st.booleans(), ANY)


@PROPS
@given(user_id=SCOPES, agent_id=NAMES, expired=FLAGS, as_of=TIMES, limit=LIMITS)
def test_facts_pages_or_refuses(
    store: Store, user_id: Any, agent_id: Any, expired: Any, as_of: Any, limit: Any
) -> None:
    page, error = store.attempt(
        lambda: store.mem.facts(
            user_id=user_id, agent_id=agent_id, include_expired=expired, as_of=as_of, limit=limit
        )
    )
    if error is None:
        assert all(r.kind == "fact" and r.valid_from is not None for r in page.items)
        assert len(page.items) <= limit


@PROPS
@given(user_id=SCOPES, agent_id=NAMES)
def test_profile_answers_or_refuses(store: Store, user_id: Any, agent_id: Any) -> None:
    profile, error = store.attempt(lambda: store.mem.profile(user_id=user_id, agent_id=agent_id))
    if error is None:
        assert len(profile.text) <= store.mem.settings["profile_chars"]
        assert all(e.fact_id for e in profile.entries)


@PROPS
@given(user_id=SCOPES, agent_id=NAMES, name=st.one_of(st.none(), NAMES, TEXT, ANY))
def test_entities_answer_or_refuse(store: Store, user_id: Any, agent_id: Any, name: Any) -> None:
    found, error = store.attempt(
        lambda: store.mem.entities(user_id=user_id, agent_id=agent_id, name=name)
    )
    if error is None:
        assert all(e.mentions >= 1 for e in found)


@PROPS
@given(query=QUERIES, user_id=SCOPES, expired=FLAGS, as_of=TIMES)
def test_search_of_facts_answers_or_refuses(
    store: Store, query: Any, user_id: Any, expired: Any, as_of: Any
) -> None:
    hits, error = store.attempt(
        lambda: store.mem.search(query, user_id=user_id, include_expired=expired, as_of=as_of)
    )
    if error is None and expired is False:
        assert all(h.kind != "fact" or h.valid_to is None or as_of is not None for h in hits)


@PROPS
@given(progress=mostly(st.sampled_from([None, lambda done, total: None]), ANY))
def test_process_with_progress_runs_or_refuses(store: Store, progress: Any) -> None:
    report, error = store.attempt(lambda: store.mem.process(progress=progress))
    assert error is not None or report.failed == 0


def _target(kind: Any) -> Any:
    if kind == "closed":
        closed = io.StringIO()
        closed.close()
        return closed
    if kind in ("text", "bytes"):
        return io.StringIO() if kind == "text" else io.BytesIO()
    return kind


@FEW
@given(
    out=mostly(st.just("text"), st.one_of(st.sampled_from(["closed", "bytes"]), ANY)),
    user_id=mostly(st.sampled_from([None, "seed-ana"]), NAMES),
    agent_id=NAMES,
)
def test_export_writes_or_refuses(store: Store, out: Any, user_id: Any, agent_id: Any) -> None:
    target = _target(out)
    count, error = store.attempt(
        lambda: store.mem.export(target, user_id=user_id, agent_id=agent_id)
    )
    assert error is not None or count >= 0


@st.composite
def export_records(draw: st.DrawFn, store: Store) -> list[Any]:
    """Exported records with a field or two replaced by anything, or a fresh id."""
    records = []
    for _ in range(draw(st.integers(0, 3))):
        record = dict(draw(st.sampled_from(store.exported)))
        if draw(st.booleans()):
            record["id"] = draw(mostly(st.uuids().map(str), NAMES))
        for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
            field = draw(mostly(st.sampled_from(sorted(record)), TEXT))
            record[field] = draw(st.one_of(TIMES, JSON, ANY))
        records.append(draw(mostly(st.just(record), ANY)))
    return records


@FEW
@given(data=st.data(), batch=LIMITS, progress=mostly(st.sampled_from([None, print]), ANY))
def test_import_records_loads_or_refuses(
    store: Store, data: st.DataObject, batch: Any, progress: Any
) -> None:
    records = data.draw(mostly(export_records(store), ANY))
    count, error = store.attempt(
        lambda: store.mem.import_records(records, batch=batch, progress=progress)
    )
    assert error is not None or count >= 0


def rarely_bad(
    valid: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """For the many fields of a file: each is anything only now and then."""
    return mostly(valid, bad, odds=12)


# Other tools' files: of their format's shape most of the time, with a field of any JSON now and
# then, or no shape at all.
TIME_TEXT = st.one_of(
    st.sampled_from(["1:56 pm on 8 May, 2023", "2023/05/20 (Sat) 02:21", "9999-12-31T23:59:59"]),
    DATETIMES.map(datetime.isoformat),
)
TIMES_JSON = rarely_bad(TIME_TEXT, JSON)
TURN = rarely_bad(
    st.fixed_dictionaries(
        {
            "speaker": rarely_bad(st.sampled_from(["Ana", "Bo"]), JSON),
            "text": rarely_bad(GOOD_TEXT, JSON),
        },
        optional={"dia_id": JSON, "blip_caption": rarely_bad(GOOD_TEXT, JSON)},
    ),
    JSON,
)
LOCOMO = st.fixed_dictionaries(
    {
        "conversation": rarely_bad(
            st.fixed_dictionaries(
                {
                    "speaker_a": rarely_bad(st.just("Ana"), JSON),
                    "session_1": rarely_bad(st.lists(TURN, max_size=3), JSON),
                    "session_1_date_time": TIMES_JSON,
                }
            ),
            JSON,
        ),
        "qa": st.just([]),
    },
    optional={"sample_id": rarely_bad(GOOD_NAMES, JSON)},
)
LME_TURN = rarely_bad(
    st.fixed_dictionaries(
        {"role": rarely_bad(st.sampled_from(ROLES), JSON), "content": rarely_bad(GOOD_TEXT, JSON)},
        optional={"has_answer": JSON},
    ),
    JSON,
)


@st.composite
def longmemeval(draw: st.DrawFn) -> dict[str, Any]:
    """A LongMemEval question: as many session ids and dates as sessions, most of the time."""
    n = draw(st.integers(0, 2))
    sizes = (
        [n, n, n]
        if draw(st.integers(0, 3))
        else draw(st.lists(st.integers(0, 2), min_size=3, max_size=3))
    )
    return {
        "question_id": draw(rarely_bad(GOOD_NAMES, JSON)),
        "haystack_session_ids": draw(
            rarely_bad(st.lists(WORDS, min_size=sizes[0], max_size=sizes[0]), JSON)
        ),
        "haystack_dates": draw(
            rarely_bad(st.lists(TIMES_JSON, min_size=sizes[1], max_size=sizes[1]), JSON)
        ),
        "haystack_sessions": draw(
            rarely_bad(
                st.lists(st.lists(LME_TURN, max_size=3), min_size=sizes[2], max_size=sizes[2]), JSON
            )
        ),
    }


@st.composite
def chatgpt(draw: st.DrawFn) -> dict[str, Any]:
    """A ChatGPT conversation: a chain of message nodes, a field of which may be anything."""
    names = [f"n{i}" for i in range(draw(st.integers(1, 4)))]
    mapping: dict[str, Any] = {}
    for i, name in enumerate(names):
        message = {
            "author": {"role": draw(st.sampled_from([*ROLES, "system"]))},
            "content": {"parts": draw(st.lists(GOOD_TEXT, max_size=2))},
            "create_time": draw(st.one_of(st.none(), st.floats(0, 2e9))),
        }
        mapping[name] = {
            "id": name,
            "parent": names[i - 1] if i else None,
            "children": names[i + 1 : i + 2],
            "message": draw(rarely_bad(st.just(message), JSON)),
        }
    if draw(st.integers(0, 3)) == 0:  # one field of one node, anything
        node = draw(st.sampled_from(names))
        mapping[node][draw(st.sampled_from(["parent", "children", "message"]))] = draw(JSON)
    return {
        "mapping": draw(rarely_bad(st.just(mapping), JSON)),
        "current_node": draw(rarely_bad(st.just(names[-1]) | st.none(), JSON)),
        "create_time": draw(rarely_bad(st.floats(0, 2e9), NUMBERS)),
    }


JSON_LINE = rarely_bad(
    st.fixed_dictionaries(
        {"content": GOOD_TEXT},
        optional={
            "role": st.sampled_from(ROLES),
            "timestamp": TIME_TEXT,
            "user_id": GOOD_NAMES,
            "session_id": GOOD_NAMES,
            "metadata": st.dictionaries(GOOD_NAMES, GOOD_JSON, max_size=2),
        },
    ),
    st.one_of(
        st.dictionaries(
            st.sampled_from(["content", "role", "timestamp", "metadata", "id", "user_id"]), JSON
        ),
        JSON,
    ),
)


def _file_bytes(kind: str, value: Any) -> bytes:
    if kind == "bytes":
        return bytes(value)
    if kind == "latin-1":
        return str(value).encode("latin-1", "replace")
    if kind == "lines":
        return "".join(json.dumps(v) + "\n" for v in value).encode()
    return json.dumps(value).encode()


FILES = mostly(
    st.one_of(
        st.tuples(st.just("lines"), st.lists(JSON_LINE, max_size=4)),
        st.tuples(st.just("json"), st.lists(LOCOMO, min_size=1, max_size=2)),
        st.tuples(st.just("json"), st.lists(longmemeval(), min_size=1, max_size=2)),
        st.tuples(st.just("json"), st.lists(chatgpt(), min_size=1, max_size=2)),
    ),
    st.one_of(
        st.tuples(st.just("bytes"), st.binary(max_size=300)),
        st.tuples(st.just("latin-1"), st.sampled_from(['{"content": "café"}', '[{"é": 1}]'])),
        st.tuples(st.just("json"), JSON),
    ),
)


@PROPS
@given(
    file=FILES,
    gz=st.booleans(),
    fmt=mostly(st.sampled_from(["auto", "auto", *FORMATS]), st.one_of(TEXT, ANY)),
    user_id=mostly(st.just("ana"), NAMES),
    agent_id=NAMES,
)
def test_import_file_loads_a_file_or_refuses_it_whole(
    store: Store, file: tuple[str, Any], gz: bool, fmt: Any, user_id: Any, agent_id: Any
) -> None:
    raw = _file_bytes(*file)
    path = store.folder / ("import.json.gz" if gz else "import.json")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    count, error = store.attempt(
        lambda: store.mem.import_file(path, format=fmt, user_id=user_id, agent_id=agent_id),
        # Conversations are written one by one: a conflict with stored data is found while
        # writing, after the conversations before it went in (a re-run skips them).
        partial=Conflict,
    )
    assert error is not None or count >= 0


@FEW
@given(where=st.one_of(st.sampled_from(["missing", "folder", "", "a\x00b"]), TEXT, ANY))
def test_import_file_refuses_what_is_not_a_file(store: Store, where: Any) -> None:
    places = {"missing": store.folder / "nope.json", "folder": store.folder}
    target = places.get(where, where) if isinstance(where, str) else where
    if isinstance(target, str):
        target = store.folder / ("no-" + target.replace("/", "_"))  # no file, in the test's folder
    _, error = store.attempt(lambda: store.mem.import_file(target, user_id="ana"))
    assert isinstance(error, InvalidInput | ImportFormatError), repr(error)


# -- opening a store -------------------------------------------------------------------------------

GOOD_SETTINGS = {
    "tenant": GOOD_NAMES,
    "max_content_chars": st.integers(100, 100_000),
    "candidates": st.integers(1, 500),
    "lexical_weight": st.floats(0, 10),
    "rrf_k": st.integers(0, 100),
    "synchronous": st.sampled_from(["full", "normal", "FULL"]),
    "context_tokens": st.integers(1, 5000),
}
BAD_SETTINGS = st.dictionaries(
    st.one_of(st.sampled_from(sorted(GOOD_SETTINGS)), TEXT),
    st.one_of(st.sampled_from(["", -1, 0, 0.5, "x", True]), NUMBERS, TEXT, ANY),
    min_size=1,
    max_size=2,
)


@FEW
@given(
    where=mostly(
        st.one_of(
            st.sampled_from(["new", "store", ":memory:", "url"]),
            TEXT.map(lambda t: "name:" + t.replace("/", "_")),
        ),
        st.one_of(
            st.sampled_from(["folder", "not-sqlite", "foo://x", "", "sqlite://"]),
            ANY.filter(lambda v: not isinstance(v, str)),
        ),
    ),
    embedder=mostly(
        st.sampled_from(["test", "test", "test:8"]),
        st.one_of(
            st.sampled_from(["test:0", "test:x", "test:99999", "test:١", "nope", "openai:", ""]),
            TEXT.filter(lambda t: not t.strip().startswith(("local", "openai"))),
            ANY.filter(lambda v: not isinstance(v, str)),
        ),
    ),
    options=mostly(st.fixed_dictionaries({}, optional=GOOD_SETTINGS), BAD_SETTINGS),
    reembed=mostly(st.booleans(), ANY),
    search_gate=mostly(st.sampled_from([None, threading.Semaphore(2)]), ANY),
)
def test_memory_opens_or_refuses(
    store: Store,
    where: Any,
    embedder: Any,
    options: dict[str, Any],
    reembed: Any,
    search_gate: Any,
) -> None:
    folder = store.folder / "opened"
    folder.mkdir(exist_ok=True)
    (folder / "not-sqlite").write_text("this is not a database\n" * 50)
    places = {
        "new": folder / "new.db",
        "store": folder / "store.db",
        "folder": folder,
        "not-sqlite": folder / "not-sqlite",
        "url": f"sqlite:///{folder / 'url.db'}",
    }
    if isinstance(where, str) and where.startswith("name:"):
        path: Any = str(folder / ("n" + where[5:]))
    else:
        path = places.get(where, where) if isinstance(where, str) else where
    try:
        opened = Memory(
            path,
            embedder=embedder,
            reembed=reembed,
            search_gate=search_gate,
            home=str(folder),
            **options,
        )
    except EngramError as exc:
        assert str(exc).strip()
        return
    try:
        opened.add("I moved to Lisbon last May", user_id="ana")
        assert opened.search("Lisbon", user_id="ana")
        assert opened.context("where do I live?", user_id="ana")
    finally:
        opened.close()


RECORD = {
    "id": "a",
    "kind": "message",
    "user_id": "u",
    "text": "x",
    "keys": {"own": "x"},
    "occurred_at": "2024-01-01T00:00:00",
}


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.add("x", user_id="u"),
        lambda m: m.search("x", user_id="u"),
        lambda m: m.context("x", user_id="u"),
        lambda m: m.get("x"),
        lambda m: m.list(user_id="u"),
        lambda m: m.update("x", text="y"),
        lambda m: m.delete("x"),
        lambda m: m.delete_all(user_id="u"),
        lambda m: m.history("x"),
        lambda m: m.export(io.StringIO()),
        lambda m: m.import_records([RECORD]),
        lambda m: m.process(),
        lambda m: m.stats(),
        lambda m: m.facts(user_id="u"),
        lambda m: m.profile(user_id="u"),
        lambda m: m.entities(user_id="u"),
    ],
)
def test_a_closed_memory_says_so(tmp_path: Path, call: Callable[[Memory], Any]) -> None:
    mem = Memory(tmp_path / "closed.db", embedder="test")
    mem.close()
    mem.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        call(mem)


# -- known cases: the exact error, naming the argument -------------------------------------------


class Known:
    """What a known case runs against: a fresh store with one memory, and a folder."""

    def __init__(self, mem: Memory, folder: Path) -> None:
        self.mem = mem
        self.folder = folder
        self.ident = mem.add("I live in Berlin", user_id="u")[0]

    def file(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path


def _closed_file() -> io.StringIO:
    out = io.StringIO()
    out.close()
    return out


AWARE = timezone(timedelta(hours=2))
WEST = timezone(timedelta(hours=-5))
KNOWN: list[tuple[str, Callable[[Known], Any], type[EngramError], str]] = [
    (
        "surrogate content",
        lambda k: k.mem.add("caf\udce9", user_id="u"),
        InvalidInput,
        "message 0 content",
    ),
    (
        "surrogate query",
        lambda k: k.mem.search("caf\udce9", user_id="u"),
        InvalidInput,
        "search() query",
    ),
    ("int query", lambda k: k.mem.search(5, user_id="u"), InvalidInput, "search() query"),
    ("None query", lambda k: k.mem.search(None, user_id="u"), InvalidInput, "search() query"),
    ("bytes query", lambda k: k.mem.search(b"x", user_id="u"), InvalidInput, "search() query"),
    ("list query", lambda k: k.mem.search(["x"], user_id="u"), InvalidInput, "search() query"),
    ("blank query", lambda k: k.mem.search("  ", user_id="u"), InvalidInput, "search() query"),
    (
        "str limit",
        lambda k: k.mem.search("x", user_id="u", limit="5"),
        InvalidInput,
        "search() limit",
    ),
    (
        "float limit",
        lambda k: k.mem.search("x", user_id="u", limit=2.5),
        InvalidInput,
        "search() limit",
    ),
    (
        "bool limit",
        lambda k: k.mem.search("x", user_id="u", limit=True),
        InvalidInput,
        "search() limit",
    ),
    (
        "zero limit",
        lambda k: k.mem.search("x", user_id="u", limit=0),
        InvalidInput,
        "search() limit",
    ),
    (
        "negative limit",
        lambda k: k.mem.search("x", user_id="u", limit=-1),
        InvalidInput,
        "search() limit",
    ),
    (
        "huge limit",
        lambda k: k.mem.search("x", user_id="u", limit=10**30),
        InvalidInput,
        "search() limit",
    ),
    (
        "unprintable limit",
        lambda k: k.mem.search("x", user_id="u", limit=10**5000),
        InvalidInput,
        "search() limit",
    ),
    (
        "unprintable metadata",
        lambda k: k.mem.add("x", user_id="u", metadata={"n": 10**5000}),
        InvalidInput,
        "add() metadata",
    ),
    (
        "unprintable timestamp",
        lambda k: k.mem.search("x", user_id="u", filters={"since": 10**5000}),
        InvalidTimestamp,
        "filters['since']",
    ),
    (
        "unprintable role",
        lambda k: k.mem.add({"content": "x", "role": 10**5000}, user_id="u"),
        UnknownRole,
        "message 0",
    ),
    (
        "unprintable filter key",
        lambda k: k.mem.search("x", user_id="u", filters={10**5000: 1}),
        InvalidFilter,
        "filters",
    ),
    (
        "unprintable message key",
        lambda k: k.mem.add({"content": "x", 10**5000: 1}, user_id="u"),
        InvalidInput,
        "message 0",
    ),
    (
        "huge list limit",
        lambda k: k.mem.list(user_id="u", limit=10**30),
        InvalidInput,
        "list() limit",
    ),
    ("huge process limit", lambda k: k.mem.process(10**30), InvalidInput, "process() limit"),
    (
        "str filters",
        lambda k: k.mem.search("x", user_id="u", filters="x"),
        InvalidFilter,
        "filters",
    ),
    (
        "int kinds",
        lambda k: k.mem.search("x", user_id="u", filters={"kinds": 5}),
        InvalidFilter,
        "filters['kinds']",
    ),
    (
        "unknown kind",
        lambda k: k.mem.search("x", user_id="u", filters={"kinds": ["x"]}),
        InvalidFilter,
        "filters['kinds']",
    ),
    (
        "unknown filter",
        lambda k: k.mem.search("x", user_id="u", filters={"tag": 1}),
        InvalidFilter,
        "filters",
    ),
    (
        "str metadata filter",
        lambda k: k.mem.search("x", user_id="u", filters={"metadata": "x"}),
        InvalidFilter,
        "filters['metadata']",
    ),
    (
        "huge int metadata filter",
        lambda k: k.mem.search("x", user_id="u", filters={"metadata": {"n": 10**30}}),
        InvalidInput,
        "filters['metadata']",
    ),
    (
        "garbage since",
        lambda k: k.mem.search("x", user_id="u", filters={"since": "garbage"}),
        InvalidTimestamp,
        "filters['since']",
    ),
    (
        "garbage until",
        lambda k: k.mem.search("x", user_id="u", filters={"until": [1]}),
        InvalidTimestamp,
        "filters['until']",
    ),
    (
        "str max_tokens",
        lambda k: k.mem.context("x", user_id="u", max_tokens="100"),
        InvalidInput,
        "context() max_tokens",
    ),
    (
        "zero max_tokens",
        lambda k: k.mem.context("x", user_id="u", max_tokens=0),
        InvalidInput,
        "context() max_tokens",
    ),
    (
        "negative max_tokens",
        lambda k: k.mem.context("x", user_id="u", max_tokens=-5),
        InvalidInput,
        "context() max_tokens",
    ),
    (
        "str batch metadata",
        lambda k: k.mem.add("x", user_id="u", metadata="str"),
        InvalidInput,
        "add() metadata",
    ),
    (
        "deep batch metadata",
        lambda k: k.mem.add("x", user_id="u", metadata=nested(1000)),
        InvalidInput,
        "add() metadata",
    ),
    (
        "deep message metadata",
        lambda k: k.mem.add({"content": "x", "metadata": nested(1000)}, user_id="u"),
        InvalidInput,
        "message 0 metadata",
    ),
    ("int update text", lambda k: k.mem.update(k.ident, text=123), InvalidInput, "update() text"),
    ("empty update text", lambda k: k.mem.update(k.ident, text=""), InvalidInput, "update() text"),
    (
        "long update text",
        lambda k: k.mem.update(k.ident, text="x" * 32_001),
        ContentTooLarge,
        "update() text",
    ),
    (
        "large update metadata",
        lambda k: k.mem.update(k.ident, metadata={"k": "x" * 64_001}),
        InvalidInput,
        "update() metadata",
    ),
    (
        "NaN update metadata",
        lambda k: k.mem.update(k.ident, metadata={"k": math.nan}),
        InvalidInput,
        "update() metadata",
    ),
    (
        "deep update metadata",
        lambda k: k.mem.update(k.ident, metadata=nested(1000)),
        InvalidInput,
        "update() metadata",
    ),
    (
        "str update metadata",
        lambda k: k.mem.update(k.ident, metadata="x"),
        InvalidInput,
        "update() metadata",
    ),
    ("nothing to update", lambda k: k.mem.update(k.ident), InvalidInput, "update()"),
    (
        "year 0 in UTC",
        lambda k: k.mem.add(
            {"content": "x", "timestamp": datetime(1, 1, 1, tzinfo=AWARE)}, user_id="u"
        ),
        InvalidTimestamp,
        "message 0 timestamp",
    ),
    (
        "year 10000 in UTC",
        lambda k: k.mem.add(
            {"content": "x", "timestamp": datetime(9999, 12, 31, 23, tzinfo=WEST)}, user_id="u"
        ),
        InvalidTimestamp,
        "message 0 timestamp",
    ),
    (
        "year 0 in UTC as text",
        lambda k: k.mem.add(
            {"content": "x", "timestamp": "0001-01-01T00:00:00+02:00"}, user_id="u"
        ),
        InvalidTimestamp,
        "message 0 timestamp",
    ),
    (
        "int content",
        lambda k: k.mem.add({"content": 5}, user_id="u"),
        InvalidInput,
        "message 0 content must be a string",
    ),
    (
        "missing content",
        lambda k: k.mem.add({"role": "user"}, user_id="u"),
        EmptyContent,
        "message 0",
    ),
    (
        "unknown role",
        lambda k: k.mem.add({"role": "bot", "content": "x"}, user_id="u"),
        UnknownRole,
        "message 0",
    ),
    (
        "too long content",
        lambda k: k.mem.add("x" * 32_001, user_id="u"),
        ContentTooLarge,
        "message 0",
    ),
    (
        "garbage as_of",
        lambda k: k.mem.search("x", user_id="u", as_of="garbage"),
        InvalidTimestamp,
        "search() as_of",
    ),
    (
        "garbage context as_of",
        lambda k: k.mem.context("x", user_id="u", as_of="garbage"),
        InvalidTimestamp,
        "context() as_of",
    ),
    ("no scope", lambda k: k.mem.add("x"), MissingScope, "user_id"),
    ("int user_id", lambda k: k.mem.add("x", user_id=5), InvalidInput, "add() user_id"),
    ("empty user_id", lambda k: k.mem.add("x", user_id=""), InvalidInput, "add() user_id"),
    ("NUL user_id", lambda k: k.mem.add("x", user_id="a\x00b"), InvalidInput, "add() user_id"),
    ("huge user_id", lambda k: k.mem.add("x", user_id="u" * 513), InvalidInput, "add() user_id"),
    ("int agent_id", lambda k: k.mem.search("x", agent_id=5), InvalidInput, "search() agent_id"),
    (
        "list session_id",
        lambda k: k.mem.add("x", user_id="u", session_id=["s"]),
        InvalidInput,
        "add() session_id",
    ),
    (
        "int message id",
        lambda k: k.mem.add({"content": "x", "id": 5}, user_id="u"),
        InvalidInput,
        "message 0 id",
    ),
    ("int get id", lambda k: k.mem.get(5), InvalidInput, "get() memory_id"),
    ("None get id", lambda k: k.mem.get(None), InvalidInput, "get() memory_id"),
    ("int delete id", lambda k: k.mem.delete(5), InvalidInput, "delete() memory_id"),
    ("list history id", lambda k: k.mem.history(["x"]), InvalidInput, "history() memory_id"),
    ("int update id", lambda k: k.mem.update(5, text="x"), InvalidInput, "update() memory_id"),
    ("surrogate get id", lambda k: k.mem.get("\udce9"), MemoryNotFound, "no memory with id"),
    ("surrogate delete id", lambda k: k.mem.delete("\udce9"), MemoryNotFound, "no memory with id"),
    (
        "surrogate history id",
        lambda k: k.mem.history("\udce9"),
        MemoryNotFound,
        "no memory with id",
    ),
    (
        "unknown list kind",
        lambda k: k.mem.list(user_id="u", kind="nope"),
        InvalidFilter,
        "list() kind",
    ),
    ("int cursor", lambda k: k.mem.list(user_id="u", cursor=123), InvalidCursor, "cursor"),
    (
        "missing import file",
        lambda k: k.mem.import_file(k.folder / "missing.jsonl"),
        InvalidInput,
        "import_file() path",
    ),
    ("import a folder", lambda k: k.mem.import_file(k.folder), InvalidInput, "import_file() path"),
    ("int import path", lambda k: k.mem.import_file(5), InvalidInput, "import_file() path"),
    (
        "binary import file",
        lambda k: k.mem.import_file(k.file("b.jsonl", bytes(range(256)))),
        ImportFormatError,
        "b.jsonl",
    ),
    (
        "Latin-1 import file",
        lambda k: k.mem.import_file(
            k.file("l.jsonl", '{"content": "café"}\n'.encode("latin-1")), user_id="u"
        ),
        ImportFormatError,
        "l.jsonl",
    ),
    (
        "JSON list of numbers",
        lambda k: k.mem.import_file(k.file("n.json", b"[1, 2]")),
        ImportFormatError,
        "n.json",
    ),
    (
        "LoCoMo of numbers",
        lambda k: k.mem.import_file(k.file("n.json", b"[1, 2]"), format="locomo"),
        ImportFormatError,
        "n.json",
    ),
    (
        "LongMemEval of numbers",
        lambda k: k.mem.import_file(k.file("n.json", b"[1, 2]"), format="longmemeval"),
        ImportFormatError,
        "n.json",
    ),
    (
        "ChatGPT mapping of numbers",
        lambda k: k.mem.import_file(k.file("c.json", b'[{"mapping": [1]}]')),
        ImportFormatError,
        "c.json",
    ),
    (
        "JSON lines without content",
        lambda k: k.mem.import_file(k.file("o.jsonl", b'{"text": "x"}\n'), user_id="u"),
        ImportFormatError,
        "o.jsonl",
    ),
    (
        "unknown import format",
        lambda k: k.mem.import_file(k.file("x.csv", b"a,b\n"), format="csv"),
        InvalidInput,
        "import_file() format",
    ),
    (
        "int import batch",
        lambda k: k.mem.import_records([], batch="x"),
        InvalidInput,
        "import_records() batch",
    ),
    (
        "int import records",
        lambda k: k.mem.import_records(5),
        InvalidInput,
        "import_records() records",
    ),
    (
        "uncallable progress",
        lambda k: k.mem.import_records([], progress=5),
        InvalidInput,
        "import_records() progress",
    ),
    (
        "export to a closed file",
        lambda k: k.mem.export(_closed_file()),
        InvalidInput,
        "export() out",
    ),
    ("export to a binary file", lambda k: k.mem.export(io.BytesIO()), InvalidInput, "export() out"),
    ("export to None", lambda k: k.mem.export(None), InvalidInput, "export() out"),
    ("open a folder", lambda k: Memory(k.folder, embedder="test"), StoreError, "{folder}"),
    (
        "open a text file",
        lambda k: Memory(k.file("t.db", b"hello\n" * 100), embedder="test"),
        StoreError,
        "t.db",
    ),
    ("open an unknown URL", lambda k: Memory("mysql://x", embedder="test"), StoreError, "mysql://"),
    ("open an int path", lambda k: Memory(5, embedder="test"), InvalidInput, "path"),
    ("open an empty path", lambda k: Memory("", embedder="test"), InvalidInput, "path"),
    ("open a NUL path", lambda k: Memory("a\x00b", embedder="test"), InvalidInput, "path"),
    (
        "open under a file",
        lambda k: Memory(k.file("f", b"x") / "s.db", embedder="test"),
        StoreError,
        "s.db",
    ),
    ("int store", lambda k: Memory(store=5, embedder="test"), InvalidInput, "store"),
    ("int embedder", lambda k: Memory(":memory:", embedder=123), EmbedderError, "embedder"),
    (
        "zero-dimension embedder",
        lambda k: Memory(":memory:", embedder="test:0"),
        EmbedderError,
        "test:0",
    ),
    ("int tenant", lambda k: Memory(":memory:", embedder="test", tenant=5), ConfigError, "tenant"),
    (
        "empty tenant",
        lambda k: Memory(":memory:", embedder="test", tenant=""),
        ConfigError,
        "tenant",
    ),
    (
        "str max_content_chars",
        lambda k: Memory(":memory:", embedder="test", max_content_chars="x"),
        ConfigError,
        "max_content_chars",
    ),
    (
        "int synchronous",
        lambda k: Memory(":memory:", embedder="test", synchronous=5),
        ConfigError,
        "synchronous",
    ),
    ("int home", lambda k: Memory(":memory:", embedder="test", home=5), ConfigError, "home"),
    (
        "unknown setting",
        lambda k: Memory(":memory:", embedder="test", colour="red"),
        ConfigError,
        "colour",
    ),
    (
        "str reembed",
        lambda k: Memory(":memory:", embedder="test", reembed="yes"),
        InvalidInput,
        "reembed",
    ),
    (
        "int search_gate",
        lambda k: Memory(":memory:", embedder="test", search_gate=5),
        InvalidInput,
        "search_gate",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "names"), [case[1:] for case in KNOWN], ids=[case[0] for case in KNOWN]
)
def test_a_known_bad_input_gets_its_own_error(
    mem: Memory, tmp_path: Path, call: Callable[[Known], Any], error: type, names: str
) -> None:
    known = Known(mem, tmp_path)
    before = _snapshot(mem)
    with pytest.raises(EngramError) as raised:
        opened = call(known)
        opened.close()  # a Memory() case that wrongly opened
    assert type(raised.value) is error, repr(raised.value)
    assert names.format(folder=tmp_path) in str(raised.value)
    assert _snapshot(mem) == before


def _snapshot(mem: Memory) -> list[str]:
    out = io.StringIO()
    mem.export(out)
    return out.getvalue().splitlines()[1:]


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, 1, tzinfo=WEST),
        datetime(1, 1, 1, 3, tzinfo=AWARE),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(9999, 12, 31, 23, tzinfo=AWARE),
        "9999-12-31T23:59:59.999999+00:00",
    ],
)
def test_the_first_and_last_instants_are_stored_and_found(mem: Memory, moment: Any) -> None:
    text = "I was there yesterday and will be back next year"
    (ident,) = mem.add({"content": text, "timestamp": moment}, user_id="u")
    assert mem.get(ident).text == text
    assert mem.search("back next year", user_id="u", as_of=moment)[0].id == ident
    assert "next year" in mem.context("next year", user_id="u", as_of=moment)
    exported = io.StringIO()
    assert mem.export(exported) == 1


# -- codes ---------------------------------------------------------------------------------------

CODES = {
    "EngramError": "engram_error",
    "InvalidInput": "invalid_input",
    "MissingScope": "missing_scope",
    "EmptyContent": "empty_content",
    "UnknownRole": "unknown_role",
    "InvalidTimestamp": "invalid_timestamp",
    "ContentTooLarge": "content_too_large",
    "InvalidFilter": "invalid_filter",
    "InvalidCursor": "invalid_cursor",
    "NotFound": "not_found",
    "MemoryNotFound": "memory_not_found",
    "Conflict": "conflict",
    "IdConflict": "id_conflict",
    "StoreError": "store_error",
    "StoreVersionError": "store_version",
    "EmbedderMismatch": "embedder_mismatch",
    "EmbedderError": "embedder_error",
    "LLMError": "llm_error",
    "ImportFormatError": "import_format",
    "ConfigError": "config_error",
    "AccessError": "access_error",
    "Unauthorized": "unauthorized",
    "Forbidden": "forbidden",
    "RateLimited": "rate_limited",
}


def test_every_error_has_its_own_stable_code() -> None:
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, EngramError) and c.__module__ == errors.__name__
    ]
    codes = {c.__name__: c.code for c in classes}
    assert codes == CODES  # a code is a contract with clients: change it only on purpose
    assert all(codes.values())
    assert len(set(codes.values())) == len(codes)


# -- the command line ------------------------------------------------------------------------------

# Command lines: the command's own options with values that are valid most of the time, now
# and then any words at all.
ARG_TEXT = mostly(GOOD_TEXT, TEXT)
ARG_NAME = mostly(st.sampled_from(["ana", "bob"]), TEXT)
ARG_TIME = mostly(
    st.one_of(DATETIMES.map(datetime.isoformat), st.just("2024-03-02T10:00:00")), TEXT
)
ARG_ID = mostly(st.sampled_from(["m-1", "m-2"]), TEXT)
ARG_COUNT = mostly(st.integers(1, 50).map(str), st.one_of(st.integers().map(str), TEXT))
SCOPE_OPTIONS = {"--user": ARG_NAME, "-u": ARG_NAME, "--agent": ARG_NAME, "-a": ARG_NAME}
CLI_OPTIONS: dict[str, dict[str, st.SearchStrategy[str] | None]] = {
    "add": {
        **SCOPE_OPTIONS,
        "--session": ARG_NAME,
        "--role": mostly(st.sampled_from(ROLES), TEXT),
        "--name": ARG_NAME,
        "--time": ARG_TIME,
    },
    "search": {
        **SCOPE_OPTIONS,
        "--limit": ARG_COUNT,
        "-k": ARG_COUNT,
        "--as-of": ARG_TIME,
        "--json": None,
    },
    "context": {**SCOPE_OPTIONS, "--max-tokens": ARG_COUNT, "--as-of": ARG_TIME},
    "list": {
        **SCOPE_OPTIONS,
        "--session": ARG_NAME,
        "--limit": ARG_COUNT,
        "--cursor": TEXT,
        "--json": None,
    },
    "show": {},
    "history": {},
    "delete": {**SCOPE_OPTIONS, "--all": None, "--yes": None},
}
POSITIONAL = {
    "add": ARG_TEXT,
    "search": ARG_TEXT,
    "context": ARG_TEXT,
    "show": ARG_ID,
    "history": ARG_ID,
    "delete": ARG_ID,
}
CLI_WORDS = st.one_of(
    st.sampled_from(["--user", "-k", "--json", "--all", "--", "-", "10", "-1", "9" * 20]), TEXT
)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command and its arguments."""
    command = draw(st.sampled_from(sorted(CLI_OPTIONS)))
    options = CLI_OPTIONS[command]
    args = [command]
    chosen = (
        draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=4)) if options else []
    )
    for name in chosen:
        value = options[name]
        args += [name] if value is None else [name, draw(value)]
    if command in POSITIONAL and draw(mostly(st.just(True), st.just(False))):
        args += ["--", draw(POSITIONAL[command])]
    return args + draw(mostly(st.just([]), st.lists(CLI_WORDS, min_size=1, max_size=4)))


class Cli:
    """The `engram` command on one store file of the module."""

    def __init__(self, folder: Path) -> None:
        self.db = folder / "cli.db"
        self.env = {"ENGRAM_HOME": str(folder), "ENGRAM_CONFIG": None, "ENGRAM_DB": None}
        self.runner = CliRunner()
        with self.open() as mem:
            mem.add({"id": "m-1", "content": "ana likes hiking"}, user_id="ana", session_id="s")

    def open(self) -> Memory:
        return Memory(self.db, embedder="test", home=str(self.db.parent))

    def fingerprint(self) -> list[str]:
        with self.open() as mem:
            return _snapshot(mem)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("cli"))


@FEW
@given(args=command_lines())
def test_the_cli_answers_or_fails_in_one_line(cli: Cli, args: list[str]) -> None:
    before = cli.fingerprint()
    result = cli.runner.invoke(
        main, ["--db", str(cli.db), "--embedder", "test", *args], env=cli.env
    )
    assert result.exit_code in (0, 1, 2), result.output
    if result.exit_code == 0:
        assert result.exception is None
        return
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 1:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert cli.fingerprint() == before
