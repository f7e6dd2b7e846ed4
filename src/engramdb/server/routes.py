"""The ``/v1`` routes. Each one resolves its caller, calls the tenant's memory and serializes
the result with :func:`engramdb.serialize.to_dict`; no memory logic lives here."""

from __future__ import annotations

import asyncio
import os
import queue
import tempfile
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

import engramdb

from .. import access
from ..errors import EngramError, InvalidInput
from ..serialize import JSON, to_dict
from .app import ERROR_SCHEMA, ServerState
from .auth import Principal, authenticate, require
from .schemas import (
    AddBody,
    BatchDeleteBody,
    BatchUpdateBody,
    ContextBody,
    KeyBody,
    SearchBody,
    UpdateBody,
    WebhookBody,
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": what, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for status, what in (
        (400, "Invalid input (the message names the argument)"),
        (401, "No API key, or an unknown or revoked one"),
        (403, "The key's role does not allow this"),
        (404, "Unknown id (in this tenant)"),
        (413, "Request body too large"),
        (429, "Rate limit of the key exceeded"),
        (503, "The store is unavailable"),
    )
}
router = APIRouter(prefix="/v1", responses=_ERRORS)
_bearer = HTTPBearer(auto_error=False, description="An engramdb API key.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An engramdb API key.")


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.engram
    return state


async def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_header)],
) -> Principal:
    state = _state(request)
    if not state.auth:
        principal = Principal(state.memory.tenant, "admin", None)
    else:
        token = credentials.credentials if credentials is not None else api_key
        principal = await state.root.run(authenticate, state.memory, token)
    state.limiter.check(principal.key_id or "local")
    return principal


def _needs(role: str, what: str) -> Any:
    async def check(principal: Annotated[Principal, Depends(_caller)]) -> Principal:
        require(principal, role, what)
        return principal

    return Depends(check)


Reader = Annotated[Principal, _needs("reader", "reading")]
Writer = Annotated[Principal, _needs("writer", "changing memories")]
Admin = Annotated[Principal, _needs("admin", "this administration")]


# -- service ---------------------------------------------------------------------------------


@router.get("/health", responses={}, tags=["service"])
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok", "version": engramdb.__version__}


@router.get("/ready", responses={503: _ERRORS[503]}, tags=["service"])
async def ready(request: Request) -> dict[str, str]:
    """Readiness: the store answers a read."""
    state = _state(request)
    await state.read(state.root.run(state.memory.stats))
    return {"status": "ready"}


@router.get("/whoami", tags=["service"])
async def whoami(principal: Reader) -> dict[str, Any]:
    """The tenant and role of the calling key."""
    return {"tenant": principal.tenant, "role": principal.role, "key_id": principal.key_id}


@router.get("/stats", tags=["service"])
async def stats(request: Request, principal: Reader) -> Any:
    """Counts, sizes and pending work of the tenant."""
    state = _state(request)
    found = await state.read(state.memory_for(principal).stats())
    found.pop("path", None)  # where the server keeps its files is not the tenant's business
    return to_dict(found)


@router.get("/jobs", tags=["service"])
async def jobs(request: Request, principal: Reader) -> dict[str, Any]:
    """Derived work (embedding, fact extraction) still pending or failed."""
    state = _state(request)
    found = await state.read(state.memory_for(principal).stats())
    return {"pending": found["jobs_pending"], "failed": found["jobs_failed"]}


@router.post("/process", tags=["service"])
async def process(request: Request, principal: Writer, limit: int = 10_000) -> Any:
    """Run pending derived work now; returns what was done and what failed."""
    report = await _state(request).memory_for(principal).process(limit)
    return to_dict(vars(report))


# -- memories --------------------------------------------------------------------------------


@router.post("/memories", status_code=201, tags=["memories"])
async def add(request: Request, body: AddBody, principal: Writer) -> dict[str, list[str]]:
    """Record messages (one text or a list) durably; returns their ids in order."""
    messages: Any = (
        body.messages
        if isinstance(body.messages, str)
        else [m.model_dump(exclude_none=True) for m in body.messages]
    )
    ids = await _state(request).memory_for(principal).add(
        messages, user_id=body.user_id, agent_id=body.agent_id,
        session_id=body.session_id, metadata=body.metadata,
    )  # fmt: skip
    return {"ids": ids}


@router.get("/memories", tags=["memories"])
async def list_memories(
    request: Request,
    principal: Reader,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
    archived: bool | None = None,
) -> Any:
    """A page of a scope's memories in recorded order; pass ``next_cursor`` for the next.
    ``archived``: only archived ones (true), none (false), or both (unset)."""
    state = _state(request)
    page = await state.read(
        state.memory_for(principal).list(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            kind=kind,
            limit=limit,
            cursor=cursor,
            archived=archived,
        )
    )
    return to_dict(page)


@router.get("/timeline", tags=["memories"])
async def timeline(
    request: Request,
    principal: Reader,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    kind: Annotated[
        str, Query(description="message (default), fact, ... or all (every kind).")
    ] = "message",
    limit: int = 100,
    cursor: str | None = None,
    archived: bool | None = None,
) -> Any:
    """A page of a scope's memories in the order they happened (``occurred_at``), oldest
    first; ``since`` and ``until`` (ISO 8601) bound the period, both included. Pass
    ``next_cursor`` for the next page."""
    state = _state(request)
    mem = state.memory_for(principal)
    page = await state.read(
        mem.timeline(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            since=since,
            until=until,
            kind=None if kind == "all" else kind,
            limit=limit,
            cursor=cursor,
            archived=archived,
        )
    )
    return to_dict(page)


@router.get("/memories/{memory_id}", tags=["memories"])
async def get_memory(request: Request, memory_id: str, principal: Reader) -> Any:
    """One memory with its sources (and validity, for a fact)."""
    state = _state(request)
    return to_dict(await state.read(state.memory_for(principal).get(memory_id)))


@router.patch("/memories/{memory_id}", tags=["memories"])
async def update_memory(
    request: Request, memory_id: str, body: UpdateBody, principal: Writer
) -> Any:
    """Correct a memory's text and/or metadata; the old version stays in its history."""
    mem = _state(request).memory_for(principal)
    return to_dict(await mem.update(memory_id, body.text, body.metadata))


@router.post("/memories/{memory_id}/archive", tags=["memories"])
async def archive_memory(request: Request, memory_id: str, principal: Writer) -> Any:
    """Put a memory away: kept and listed, but out of search, context, facts and profile."""
    return to_dict(await _state(request).memory_for(principal).archive(memory_id))


@router.post("/memories/{memory_id}/unarchive", tags=["memories"])
async def unarchive_memory(request: Request, memory_id: str, principal: Writer) -> Any:
    """Bring an archived memory back into search, context, facts and profile."""
    return to_dict(await _state(request).memory_for(principal).unarchive(memory_id))


@router.delete("/memories/{memory_id}", tags=["memories"])
async def delete_memory(request: Request, memory_id: str, principal: Writer) -> dict[str, str]:
    """Delete a memory for good, with everything derived from it."""
    await _state(request).memory_for(principal).delete(memory_id)
    return {"deleted": memory_id}


@router.get("/memories/{memory_id}/history", tags=["memories"])
async def memory_history(request: Request, memory_id: str, principal: Reader) -> Any:
    """Every version of a memory, oldest first (content redacted after a delete)."""
    state = _state(request)
    return {"items": to_dict(await state.read(state.memory_for(principal).history(memory_id)))}


@router.post("/memories/batch-update", tags=["memories"])
async def batch_update(request: Request, body: BatchUpdateBody, principal: Writer) -> Any:
    """Correct several memories. Every update is checked first: one unknown id changes
    nothing. A fact whose source message the batch corrects is replaced by the correction
    instead of edited: it is listed in ``replaced``, not in ``items``."""
    mem = _state(request).memory_for(principal)
    changes = [item.model_dump() for item in body.updates]
    done = await mem.update_many(changes)
    return {"items": to_dict(done.items), "replaced": done.replaced}


@router.post("/memories/batch-delete", tags=["memories"])
async def batch_delete(
    request: Request, body: BatchDeleteBody, principal: Writer
) -> dict[str, list[str]]:
    """Delete several memories. Every id is checked first: one unknown id deletes nothing."""
    mem = _state(request).memory_for(principal)
    return {"deleted": await mem.delete_many(body.ids)}


# -- read path -------------------------------------------------------------------------------


@router.post("/search", tags=["retrieval"])
async def search(request: Request, body: SearchBody, principal: Reader) -> Any:
    """The memories that best answer a query, best first, each with its score breakdown
    (``explain``), sources and dates."""
    state = _state(request)
    hits = await state.read(
        state.memory_for(principal).search(
            body.query,
            user_id=body.user_id,
            agent_id=body.agent_id,
            session_id=body.session_id,
            limit=body.limit,
            as_of=body.as_of,
            filters=body.filters,
            include_expired=body.include_expired,
        )
    )
    return {"results": to_dict(hits)}


@router.post("/context", tags=["retrieval"])
async def context(request: Request, body: ContextBody, principal: Reader) -> dict[str, str]:
    """What an LLM needs to answer a query, packed within a token budget, with dates."""
    state = _state(request)
    text = await state.read(
        state.memory_for(principal).context(
            body.query,
            user_id=body.user_id,
            agent_id=body.agent_id,
            max_tokens=body.max_tokens,
            as_of=body.as_of,
        )
    )
    return {"context": text}


@router.get("/facts", tags=["semantic"])
async def facts(
    request: Request,
    principal: Reader,
    user_id: str | None = None,
    agent_id: str | None = None,
    include_expired: bool = False,
    as_of: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Any:
    """A page of facts: current ones, or with ``include_expired`` the superseded too."""
    state = _state(request)
    page = await state.read(
        state.memory_for(principal).facts(
            user_id=user_id,
            agent_id=agent_id,
            include_expired=include_expired,
            as_of=as_of,
            limit=limit,
            cursor=cursor,
        )
    )
    return to_dict(page)


@router.get("/profile", tags=["semantic"])
async def profile(
    request: Request, principal: Reader, user_id: str | None = None, agent_id: str | None = None
) -> Any:
    """Core memory: who the user is now, each entry from a current fact with its sources."""
    state = _state(request)
    mem = state.memory_for(principal)
    return to_dict(await state.read(mem.profile(user_id=user_id, agent_id=agent_id)))


@router.get("/entities", tags=["semantic"])
async def entities(
    request: Request,
    principal: Reader,
    user_id: str | None = None,
    agent_id: str | None = None,
    name: str | None = None,
) -> Any:
    """The people, places and things a scope's memories mention, most mentioned first."""
    state = _state(request)
    mem = state.memory_for(principal)
    found = await state.read(mem.entities(user_id=user_id, agent_id=agent_id, name=name))
    return {"items": to_dict(found)}


# -- users, agents, erasure ------------------------------------------------------------------


@router.get("/users", tags=["tenant"])
async def users(request: Request, principal: Reader) -> dict[str, Any]:
    """The users of the tenant with how many memories and facts each holds, their agents and
    when their latest memory happened."""
    state = _state(request)
    mem = state.memory_for(principal)
    found = await state.read(mem.users())
    return {"items": [to_dict(vars(u)) for u in found]}


@router.get("/agents", tags=["tenant"])
async def agents(request: Request, principal: Reader) -> dict[str, Any]:
    """The agents of the tenant with how many memories and facts each holds, their users and
    when their latest memory happened."""
    state = _state(request)
    mem = state.memory_for(principal)
    found = await state.read(mem.agents())
    return {"items": [to_dict(vars(a)) for a in found]}


@router.delete("/users/{user_id}", tags=["tenant"])
async def purge_user(request: Request, user_id: str, principal: Admin) -> dict[str, Any]:
    """Erase a user for good (GDPR), with any agent; returns a deletion receipt."""
    receipt = await _state(request).memory_for(principal).purge_user(user_id)
    return {"user_id": user_id, **receipt}


@router.delete("/tenant", tags=["tenant"])
async def purge_tenant(
    request: Request,
    principal: Admin,
    confirm: Annotated[str, Query(description="The tenant's name, to confirm.")],
) -> dict[str, Any]:
    """Erase the whole tenant: every user's memories, its keys, webhooks and history."""
    if confirm != principal.tenant:
        raise InvalidInput(
            f"confirm must be this tenant's name ({principal.tenant!r}): erasing a tenant "
            "cannot be undone"
        )
    receipt = await _state(request).memory_for(principal).purge_tenant()
    return {"tenant": principal.tenant, **receipt}


# -- export, import --------------------------------------------------------------------------


@router.get(
    "/export",
    tags=["portability"],
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export(
    request: Request, principal: Reader, user_id: str | None = None, agent_id: str | None = None
) -> StreamingResponse:
    """Every memory of the tenant (or of one scope) as JSON lines, streamed."""
    state = _state(request)
    mem = state.memory_for(principal)
    # A bad scope or a store that cannot be read answers 400 or 503, not a 200 with a cut stream.
    if user_id is not None or agent_id is not None:
        await state.read(mem.list(user_id=user_id, agent_id=agent_id, limit=1))
    else:
        await state.read(mem.stats())
    return StreamingResponse(
        _stream_export(state, mem.memory, user_id, agent_id), media_type="application/x-ndjson"
    )


async def _stream_export(
    state: ServerState, memory: Any, user_id: str | None, agent_id: str | None
) -> AsyncIterator[str]:
    lines: queue.Queue[str | None] = queue.Queue(maxsize=512)
    stop = threading.Event()

    class Sink:
        def write(self, text: str) -> int:
            while not stop.is_set():
                try:
                    lines.put(text, timeout=0.5)
                    return len(text)
                except queue.Full:
                    continue
            raise ConnectionAbortedError("the client went away")

    def produce() -> None:
        try:
            memory.export(Sink(), user_id=user_id, agent_id=agent_id)
        finally:
            lines.put(None)

    task = asyncio.ensure_future(state.root.run(produce))
    try:
        while (line := await state.root.run(lines.get)) is not None:
            yield line
        await task  # a failure part-way breaks the stream rather than ending it as if complete
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


@router.post("/import", tags=["portability"])
async def import_records(
    request: Request,
    principal: Writer,
    format: str = "engramdb",
    user_id: str | None = None,
    agent_id: str | None = None,
) -> dict[str, int]:
    """Load JSON lines (an export, or one message per line with ``format=jsonl``); records
    already stored are skipped, so an interrupted import can be sent again. ``user_id`` and
    ``agent_id`` scope the messages of a format whose lines do not name their own."""
    mem = _state(request).memory_for(principal)
    handle, path = tempfile.mkstemp(prefix="engram-import-", suffix=".jsonl")
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        imported = await mem.run(
            mem.memory.import_file, path, format=format, user_id=user_id, agent_id=agent_id
        )
        return {"imported": imported}
    except EngramError as exc:  # name the request's body, not the server's temporary file
        exc.args = (str(exc).replace(path, "request body"),)
        raise
    finally:
        os.unlink(path)


# -- events, webhooks, keys ------------------------------------------------------------------


@router.get("/events", tags=["events"])
async def events(request: Request, principal: Reader, after: int = 0, limit: int = 100) -> Any:
    """The tenant's changes after event ``after``, oldest first; pass ``next_after`` on."""
    state = _state(request)
    found = await state.read(state.memory_for(principal).events(after, limit))
    return {
        "items": [event_json(e) for e in to_dict(found) if isinstance(e, dict)],
        "next_after": found[-1].id if found else after,
    }


def event_json(entry: dict[str, JSON]) -> dict[str, JSON]:
    """An event of the feed (and of a webhook delivery): a history entry, typed."""
    return {
        "id": entry["id"], "type": f"memory.{entry['event']}", "memory_id": entry["memory_id"],
        "at": entry["at"], "actor": entry["actor"], "data": entry["after"],
    }  # fmt: skip


@router.post("/webhooks", status_code=201, tags=["events"])
async def create_webhook(request: Request, body: WebhookBody, principal: Admin) -> Any:
    """Subscribe a URL to the tenant's events; the signing secret is shown only here."""
    mem = _state(request).memory_for(principal)
    hook = await mem.run(access.create_webhook, mem.memory, body.url, body.events)
    _, secret = await mem.run(access.webhook, mem.memory, hook.id)
    return {**to_dict(hook), "secret": secret}


@router.get("/webhooks", tags=["events"])
async def list_webhooks(request: Request, principal: Admin) -> Any:
    """The tenant's webhook subscriptions."""
    mem = _state(request).memory_for(principal)
    found = await mem.run(access.webhooks, mem.memory)
    return {"items": to_dict([hook for hook, _ in found])}


@router.delete("/webhooks/{hook_id}", tags=["events"])
async def delete_webhook(request: Request, hook_id: str, principal: Admin) -> dict[str, str]:
    """Stop a subscription and drop its delivery log."""
    mem = _state(request).memory_for(principal)
    await mem.run(access.delete_webhook, mem.memory, hook_id)
    return {"deleted": hook_id}


@router.get("/webhooks/{hook_id}/deliveries", tags=["events"])
async def deliveries(request: Request, hook_id: str, principal: Admin, limit: int = 100) -> Any:
    """A subscription's newest delivery attempts, newest first."""
    mem = _state(request).memory_for(principal)
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be from 1 to 1000")
    return {"items": to_dict(await mem.run(access.deliveries, mem.memory, hook_id, limit))}


@router.post("/keys", status_code=201, tags=["keys"])
async def create_key(request: Request, body: KeyBody, principal: Admin) -> Any:
    """A new API key of this tenant; its secret (``key``) is shown only here."""
    mem = _state(request).memory_for(principal)
    key, token = await mem.run(access.create_key, mem.memory, body.role, body.name)
    return {**to_dict(key), "key": token}


@router.get("/keys", tags=["keys"])
async def list_keys(request: Request, principal: Admin) -> Any:
    """The tenant's API keys (never their secrets)."""
    mem = _state(request).memory_for(principal)
    return {"items": to_dict(await mem.run(access.keys, mem.memory))}


@router.delete("/keys/{key_id}", tags=["keys"])
async def revoke_key(request: Request, key_id: str, principal: Admin) -> JSONResponse:
    """Revoke a key of this tenant at once."""
    mem = _state(request).memory_for(principal)
    await mem.run(access.revoke_key, mem.memory, key_id)
    return JSONResponse({"revoked": key_id})
