"""``AsyncMemory``: the :class:`~engramdb.Memory` API for asyncio code.

Each call runs the synchronous method in a worker thread, so an event loop (a web server, an
agent framework) never blocks on the store, the embedder or an LLM. The store lets reads run
beside a write, so concurrent awaits overlap for real; writes queue for the one write lane.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

from .memory import Memory
from .pipeline.ingest import ProcessReport
from .types import (
    AgentSummary,
    BatchUpdate,
    Entity,
    HistoryEntry,
    Hit,
    MemoryRecord,
    Page,
    Profile,
    ScopeSummary,
    UserSummary,
)

P = ParamSpec("P")
T = TypeVar("T")


class AsyncMemory:
    """Await the methods of a :class:`~engramdb.Memory`; same arguments, results and errors.

    Args:
        memory: the Memory to wrap (``AsyncMemory(Memory("sqlite:///a.db"))``).
        executor: the threads to run calls on (default: the event loop's default executor).
    """

    def __init__(self, memory: Memory, executor: Executor | None = None) -> None:
        self.memory = memory
        self._executor = executor

    @property
    def tenant(self) -> str:
        return self.memory.tenant

    def for_tenant(self, tenant: str) -> AsyncMemory:
        """The same store as seen by another tenant (see :meth:`Memory.for_tenant`)."""
        return AsyncMemory(self.memory.for_tenant(tenant), self._executor)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run any blocking callable on this wrapper's threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def add(self, messages: Any, **kwargs: Any) -> builtins.list[str]:
        return await self.run(self.memory.add, messages, **kwargs)

    async def search(self, query: str, **kwargs: Any) -> builtins.list[Hit]:
        return await self.run(self.memory.search, query, **kwargs)

    async def context(self, query: str, **kwargs: Any) -> str:
        return await self.run(self.memory.context, query, **kwargs)

    async def get(self, memory_id: str) -> MemoryRecord:
        return await self.run(self.memory.get, memory_id)

    async def list(self, **kwargs: Any) -> Page:
        return await self.run(self.memory.list, **kwargs)

    async def update(
        self, memory_id: str, text: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> MemoryRecord:
        return await self.run(self.memory.update, memory_id, text, metadata)

    async def archive(self, memory_id: str) -> MemoryRecord:
        return await self.run(self.memory.archive, memory_id)

    async def unarchive(self, memory_id: str) -> MemoryRecord:
        return await self.run(self.memory.unarchive, memory_id)

    async def delete(self, memory_id: str) -> None:
        await self.run(self.memory.delete, memory_id)

    async def delete_all(self, **kwargs: Any) -> int:
        return await self.run(self.memory.delete_all, **kwargs)

    async def timeline(self, **kwargs: Any) -> Page:
        return await self.run(self.memory.timeline, **kwargs)

    async def update_many(self, changes: Sequence[Mapping[str, Any]]) -> BatchUpdate:
        return await self.run(self.memory.update_many, changes)

    async def delete_many(self, ids: Sequence[str]) -> builtins.list[str]:
        return await self.run(self.memory.delete_many, ids)

    async def users(self) -> builtins.list[UserSummary]:
        return await self.run(self.memory.users)

    async def agents(self) -> builtins.list[AgentSummary]:
        return await self.run(self.memory.agents)

    async def history(self, memory_id: str) -> builtins.list[HistoryEntry]:
        return await self.run(self.memory.history, memory_id)

    async def facts(self, **kwargs: Any) -> Page:
        return await self.run(self.memory.facts, **kwargs)

    async def profile(self, **kwargs: Any) -> Profile:
        return await self.run(self.memory.profile, **kwargs)

    async def entities(self, **kwargs: Any) -> builtins.list[Entity]:
        return await self.run(self.memory.entities, **kwargs)

    async def process(self, limit: int = 10_000, **kwargs: Any) -> ProcessReport:
        return await self.run(self.memory.process, limit, **kwargs)

    async def work(self, worker: str, **kwargs: Any) -> ProcessReport:
        return await self.run(self.memory.work, worker, **kwargs)

    async def scopes(self) -> builtins.list[ScopeSummary]:
        return await self.run(self.memory.scopes)

    async def events(self, after: int = 0, limit: int = 100) -> builtins.list[HistoryEntry]:
        return await self.run(self.memory.events, after, limit)

    async def purge_user(self, user_id: str) -> dict[str, int]:
        return await self.run(self.memory.purge_user, user_id)

    async def purge_tenant(self) -> dict[str, int]:
        return await self.run(self.memory.purge_tenant)

    async def export(self, out: IO[str], **kwargs: Any) -> int:
        return await self.run(self.memory.export, out, **kwargs)

    async def import_records(self, records: Iterable[Mapping[str, Any]], **kwargs: Any) -> int:
        return await self.run(self.memory.import_records, records, **kwargs)

    async def import_file(self, path: str | Path, **kwargs: Any) -> int:
        return await self.run(self.memory.import_file, path, **kwargs)

    async def stats(self) -> dict[str, Any]:
        return await self.run(self.memory.stats)

    async def aclose(self) -> None:
        await self.run(self.memory.close)


__all__ = ["AsyncMemory"]
