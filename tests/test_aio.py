"""AsyncMemory over a real store: the results and errors of Memory, no lost write under
concurrent awaits, and an event loop that keeps running while a call blocks a worker thread."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from engramdb import Memory
from engramdb.aio import AsyncMemory
from engramdb.embedders import Embedder
from engramdb.embedders.base import Vectors
from engramdb.embedders.test import TestEmbedder
from engramdb.errors import EngramError, MemoryNotFound, StoreError

MAYA = [
    {"role": "user", "name": "Maya", "content": "I live in Lisbon, near the river.",
     "timestamp": "2024-01-10T10:00:00Z", "id": "maya-1"},
    {"role": "assistant", "content": "Lovely! Lisbon is beautiful.", "id": "maya-2"},
    {"role": "user", "name": "Maya", "content": "My sister Inês is a doctor in Braga.",
     "timestamp": "2024-01-10T10:02:00Z", "id": "maya-3"},
    {"role": "user", "name": "Maya", "content": "I moved to Porto yesterday!",
     "timestamp": "2024-05-29T09:00:00Z", "id": "maya-4"},
]  # fmt: skip


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Memory]:
    with Memory(tmp_path / "aio.db", embedder="test") as mem:
        mem.add(MAYA, user_id="maya", session_id="s1")
        mem.add("Tom walks his dog Rex in Dublin.", user_id="tom", agent_id="coach")
        yield mem


def _public(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, callable)
        if not name.startswith("_") and not isinstance(member, type)
    }


def test_every_memory_method_has_an_awaitable_twin_taking_the_same_arguments() -> None:
    twins = _public(AsyncMemory)
    for name, method in _public(Memory).items():
        twin_name = {"close": "aclose"}.get(name, name)
        assert twin_name in twins, f"AsyncMemory has no {twin_name}() for Memory.{name}()"
        twin = twins[twin_name]
        if name == "for_tenant":  # a view, made without I/O: not awaited
            assert not inspect.iscoroutinefunction(twin)
            continue
        assert inspect.iscoroutinefunction(twin), f"AsyncMemory.{twin_name} is not async"
        params = inspect.signature(twin).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for arg in list(inspect.signature(method).parameters)[1:]:
            assert arg in params or takes_any, f"AsyncMemory.{twin_name}() lacks {arg}="


def test_reads_return_what_memory_returns(seeded: Memory) -> None:
    mem, amem = seeded, AsyncMemory(seeded)
    fact = mem.facts(user_id="maya", include_expired=True).items[0].id

    async def reads() -> list[tuple[Any, Any]]:
        return [
            (await amem.get("maya-3"), mem.get("maya-3")),
            (await amem.list(user_id="maya", limit=2), mem.list(user_id="maya", limit=2)),
            (await amem.list(user_id="tom", agent_id="coach"),
             mem.list(user_id="tom", agent_id="coach")),
            (await amem.search("Where does Maya live?", user_id="maya", as_of="2024-06-01"),
             mem.search("Where does Maya live?", user_id="maya", as_of="2024-06-01")),
            (await amem.search("sister", user_id="maya", limit=3),
             mem.search("sister", user_id="maya", limit=3)),
            (await amem.context("What about Maya's family?", user_id="maya"),
             mem.context("What about Maya's family?", user_id="maya")),
            (await amem.history(fact), mem.history(fact)),
            (await amem.facts(user_id="maya", include_expired=True),
             mem.facts(user_id="maya", include_expired=True)),
            (await amem.profile(user_id="maya"), mem.profile(user_id="maya")),
            (await amem.entities(user_id="maya", name="Inês"),
             mem.entities(user_id="maya", name="Inês")),
            (await amem.scopes(), mem.scopes()),
            (await amem.events(2, 3), mem.events(2, 3)),
            (await amem.stats(), mem.stats()),
        ]  # fmt: skip

    pairs = run(reads())
    for got, expected in pairs:
        assert got == expected
    # Not vacuous: the seeded store has facts, entities and a profile to compare.
    assert pairs[7][1].items and pairs[9][1] and pairs[8][1].entries and pairs[3][1]


def test_writes_do_what_memory_does(seeded: Memory) -> None:
    """The same writes, once through Memory (tenant "sync") and once awaited (tenant "async"),
    give the same results: ids, records, reports and receipts."""
    sync, amem = seeded.for_tenant("sync"), AsyncMemory(seeded).for_tenant("async")
    assert amem.tenant == "async"
    exported = io.StringIO()
    seeded.export(exported, user_id="maya")
    records = [json.loads(line) for line in exported.getvalue().splitlines()]

    def shape(record: Any) -> Any:  # what is the same in two tenants (times of writing are not)
        return (record.id, record.text, record.metadata, record.user_id, record.kind)

    async def both() -> None:
        assert await amem.import_records(records) == sync.import_records(records)
        ana = [{**m, "id": f"ana-{n}"} for n, m in enumerate(MAYA[:2])]
        assert await amem.add(ana, user_id="ana") == sync.add(ana, user_id="ana") == [
            "ana-0", "ana-1"
        ]  # fmt: skip
        assert shape(await amem.update("maya-1", "I live in Faro now.", {"k": 1})) == shape(
            sync.update("maya-1", "I live in Faro now.", {"k": 1})
        )
        assert await amem.delete("maya-2") is None
        sync.delete("maya-2")
        with pytest.raises(MemoryNotFound):
            amem.memory.get("maya-2")
        assert await amem.process() == sync.process()
        out_a, out_s = io.StringIO(), io.StringIO()
        exported_n = await amem.export(out_a, user_id="ana")
        assert exported_n == sync.export(out_s, user_id="ana") >= 2
        assert out_a.getvalue().count("\n") == out_s.getvalue().count("\n") >= exported_n
        assert await amem.delete_all(user_id="ana") == sync.delete_all(user_id="ana") == exported_n
        assert await amem.purge_user("maya") == sync.purge_user("maya")
        assert await amem.list(user_id="maya") == sync.list(user_id="maya")
        assert await amem.purge_tenant() == sync.purge_tenant()
        assert await amem.scopes() == sync.scopes() == []

    run(both())
    # The default tenant was never touched by either.
    assert seeded.get("maya-2").text == MAYA[1]["content"]


def test_process_finishes_deferred_work_as_memory_does(tmp_path: Path) -> None:
    with Memory(tmp_path / "d.db", embedder="test", consolidate="deferred") as mem:
        sync, amem = mem.for_tenant("s"), AsyncMemory(mem.for_tenant("a"))
        sync.add(MAYA, user_id="maya")
        run(amem.add(MAYA, user_id="maya"))
        assert sync.facts(user_id="maya").items == []
        report = run(amem.process())
        assert report == sync.process()
        assert report.extracted == len(MAYA) and report.facts_added > 0
        assert [f.text for f in run(amem.facts(user_id="maya")).items] == [
            f.text for f in sync.facts(user_id="maya").items
        ]


def test_import_file_through_async_memory(tmp_path: Path, seeded: Memory) -> None:
    path = tmp_path / "export.jsonl"
    with path.open("w", encoding="utf-8") as out:
        seeded.export(out)
    amem = AsyncMemory(seeded).for_tenant("copy")
    assert run(amem.import_file(path)) == seeded.stats()["memories"]
    assert run(amem.get("maya-3")).text == seeded.get("maya-3").text


def _failure(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except EngramError as exc:
        return exc
    raise AssertionError("the call did not fail")


async def _afailure(call: Callable[[], Awaitable[Any]]) -> BaseException:
    try:
        await call()
    except EngramError as exc:
        return exc
    raise AssertionError("the awaited call did not fail")


def test_errors_are_the_same_engram_errors(seeded: Memory) -> None:
    mem, amem = seeded, AsyncMemory(seeded)
    cursor = "not-a-cursor"
    cases: list[tuple[Callable[[], Any], Callable[[], Awaitable[Any]]]] = [
        (lambda: mem.get("nope"), lambda: amem.get("nope")),
        (lambda: mem.add("   ", user_id="u"), lambda: amem.add("   ", user_id="u")),
        (lambda: mem.add("hi"), lambda: amem.add("hi")),
        (lambda: mem.add({"role": "robot", "content": "x"}, user_id="u"),
         lambda: amem.add({"role": "robot", "content": "x"}, user_id="u")),
        (lambda: mem.add({"role": "user", "content": "other", "id": "maya-1"}, user_id="maya"),
         lambda: amem.add({"role": "user", "content": "other", "id": "maya-1"}, user_id="maya")),
        (lambda: mem.search("q"), lambda: amem.search("q")),
        (lambda: mem.search("q", user_id="maya", filters={"colour": 1}),
         lambda: amem.search("q", user_id="maya", filters={"colour": 1})),
        (lambda: mem.list(user_id="maya", cursor=cursor),
         lambda: amem.list(user_id="maya", cursor=cursor)),
        (lambda: mem.update("maya-1"), lambda: amem.update("maya-1")),
        (lambda: mem.delete("nope"), lambda: amem.delete("nope")),
        (lambda: mem.history("nope"), lambda: amem.history("nope")),
        (lambda: mem.events(-1), lambda: amem.events(-1)),
        (lambda: mem.import_records([{"x": 1}]), lambda: amem.import_records([{"x": 1}])),
    ]  # fmt: skip

    async def compare() -> None:
        for sync_call, async_call in cases:
            expected, got = _failure(sync_call), await _afailure(async_call)
            assert type(got) is type(expected)
            assert str(got) == str(expected)

    run(compare())
    assert seeded.list(user_id="u").items == []  # no failing call wrote anything


def test_a_closed_async_memory_refuses_calls(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "c.db", embedder="test")
    amem = AsyncMemory(mem)

    async def use_after_close() -> None:
        await amem.add("hello", user_id="u")
        await amem.aclose()
        with pytest.raises(StoreError):
            await amem.list(user_id="u")

    run(use_after_close())


def test_concurrent_searches_and_adds_lose_nothing(seeded: Memory) -> None:
    before = {r.id for r in seeded.list(user_id="tom", agent_id="coach").items}
    texts = [f"Tom ran {k} kilometres along the Liffey, lap {k}." for k in range(5)]

    queries = [("Where does Maya live?", None), ("dog Rex", "coach")] * 10

    async def storm(amem: AsyncMemory) -> tuple[list[Any], list[list[str]]]:
        searches = [
            amem.search(q, user_id="maya" if a is None else "tom", agent_id=a) for q, a in queries
        ]
        adds = [amem.add(t, user_id="tom", agent_id="coach") for t in texts]
        results = await asyncio.gather(*searches, *adds)
        return results[:20], results[20:]

    with ThreadPoolExecutor(8) as pool:
        hits, added = run(storm(AsyncMemory(seeded, pool)))
    assert len(hits) == 20 and all(h for h in hits)  # every search found something
    maya = hits[::2]  # concurrent writes to another scope change nothing in Maya's answers
    assert all(h == maya[0] for h in maya)
    ids = [i for ids in added for i in ids]
    assert len(ids) == len(set(ids)) == 5
    assert sorted(seeded.get(i).text for i in ids) == sorted(texts)
    after = {r.id for r in seeded.list(user_id="tom", agent_id="coach").items}
    assert after == before | set(ids)


class GatedEmbedder(Embedder):
    """The test embedder, except that while armed each call waits until it is released."""

    def __init__(self) -> None:
        self.inner = TestEmbedder()
        self.dim, self.name, self.batch_size = 64, "gated:hash-64", 256
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        if self.armed:
            self.entered.set()
            # Only the event loop releases it: a blocked loop leaves it waiting (then failing).
            self.release.wait(30)
        return self.inner.embed_batch(texts)


def test_the_event_loop_runs_while_a_call_blocks_its_thread(tmp_path: Path) -> None:
    embedder = GatedEmbedder()
    with Memory(tmp_path / "slow.db", embedder=embedder) as mem:
        mem.add("I keep bees on the roof.", user_id="u")
        amem = AsyncMemory(mem)
        ticks_while_blocked: list[int] = []

        async def ticker(done: asyncio.Event) -> None:
            tick = 0
            while not done.is_set():
                tick += 1
                if embedder.entered.is_set() and not embedder.release.is_set():
                    ticks_while_blocked.append(tick)
                    if len(ticks_while_blocked) >= 3:
                        embedder.release.set()
                await asyncio.sleep(0.001)

        async def main() -> list[Any]:
            done = asyncio.Event()
            beat = asyncio.create_task(ticker(done))
            embedder.armed = True
            try:
                return await amem.search("bees", user_id="u")
            finally:
                embedder.armed = False
                done.set()
                await beat

        hits = run(main())
    assert embedder.entered.is_set()
    assert len(ticks_while_blocked) >= 3, "the loop did not tick while the embedder blocked"
    assert hits and "degraded" not in hits[0].explain


def test_work_leases_and_runs_jobs_as_memory_does(tmp_path: Path) -> None:
    stores = [
        Memory(tmp_path / f"{name}.db", embedder="test", consolidate="deferred")
        for name in ("sync", "async")
    ]
    try:
        for mem in stores:
            mem.add(MAYA, user_id="maya")
        sync, amem = stores[0], AsyncMemory(stores[1])
        report = run(amem.work("worker-1"))
        assert report == sync.work("worker-1")
        assert report.extracted == len(MAYA) and report.facts_added > 0
        assert run(amem.work("worker-1")) == sync.work("worker-1")  # nothing left: both empty
    finally:
        for mem in stores:
            mem.close()
