"""The MCP server: engramdb as tools an agent calls (``engram mcp``), over stdio or HTTP.

Each tool is thin: it calls one :class:`~engramdb.Memory` method and returns the result as
:func:`~engramdb.serialize.to_dict` shapes it, the same JSON as the CLI's ``--json`` and the REST
API. A tool's docstring is its description for the agent; its parameters are described by their
``Field`` annotations, from which FastMCP builds the input schema.

Which Memory a call uses comes from a :class:`~contextvars.ContextVar`: over stdio it is the one
Memory the command opened; over streamable HTTP it is set for every request, by
:class:`McpHttpApp`, to the tenant of the request's API key. The HTTP transport runs stateless
(each request is a complete MCP exchange), so the tools of a request run in that request's
context and a session can never carry one key's tenant into another key's request.

Every error reaches the agent as a tool error whose text starts with a stable code:
``memory_not_found: no memory with id ...``, ``forbidden: ...``, ``invalid_input: ...``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ContentBlock, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..errors import EngramError, InvalidInput
from ..memory import MAX_LIMIT, Memory
from ..serialize import to_dict
from .auth import LOOPBACK, Principal, authenticate, bearer, require

log = logging.getLogger("engramdb")
T = TypeVar("T")

#: The Memory the tools of this call use: the stdio server's, or the caller's tenant's view.
current_memory: ContextVar[Memory] = ContextVar("engramdb_mcp_memory")
#: Who is calling over HTTP; None over stdio and without auth, where every tool is allowed.
current_principal: ContextVar[Principal | None] = ContextVar("engramdb_mcp_principal", default=None)

INSTRUCTIONS = """\
engramdb is your long-term memory of the people you talk with: what was said and when, the facts
that follow from it (with when each became true and, once contradicted, when it stopped), and a
profile of who the user is now.

- Record what the user tells you with add_memory, with the turns' timestamps when you have them.
- Before answering anything that depends on the past, call get_context (one dated text that fits
  a token budget) or search_memory (ranked hits with their sources and dates).
- A fact with valid_to set is no longer true: say when it stopped, do not present it as current.
- Every call names the user_id (and the agent_id when memories are kept per agent): a scope is
  that exact pair.
"""

# -- parameters ------------------------------------------------------------------------------------

UserId = Annotated[
    str,
    Field(
        description="The user the memories belong to. A scope is the exact (user_id, agent_id) "
        "pair: memories added with an agent_id are only found with that agent_id."
    ),
]
AgentId = Annotated[
    str | None,
    Field(description="The agent, when memories are kept per agent; omit otherwise."),
]
SessionId = Annotated[
    str | None, Field(description="The conversation (session) the memories belong to.")
]
MemoryId = Annotated[
    str, Field(description="The id of a memory, as returned by add_memory or a listing.")
]
AsOf = Annotated[
    str | None,
    Field(
        description="Answer as if it were this moment (ISO 8601, e.g. 2024-04-01 or "
        "2024-04-01T09:00:00+02:00): nothing said later is used. Default: now."
    ),
]
Cursor = Annotated[
    str | None,
    Field(description="The next_cursor of the previous page, to continue; omit for the first."),
]


def _limit(what: str) -> Any:
    """A ``limit`` parameter's field: 1 to :data:`~engramdb.memory.MAX_LIMIT`."""
    return Field(ge=1, le=MAX_LIMIT, description=f"Most {what} to return.")


class Message(BaseModel):
    """One conversation turn."""

    # Unknown fields reach Memory.add, which refuses them with a message naming them.
    model_config = ConfigDict(extra="allow")

    role: str = Field("user", description="user, assistant, system or tool.")
    content: str = Field(description="What was said.")
    name: str | None = Field(None, description="The speaker's name (e.g. 'Maya').")
    timestamp: str | None = Field(
        None,
        description="When it was said, ISO 8601 (e.g. 2024-05-29T09:00:00Z); relative dates in "
        "the content ('yesterday') are resolved against it. Default: now.",
    )
    metadata: dict[str, Any] | None = Field(None, description="JSON kept with this turn.")
    id: str | None = Field(None, description="Your id for the turn: it is stored once under it.")


# -- calling Memory --------------------------------------------------------------------------------


async def _call(op: Callable[[Memory], T], *, needs: str = "reader", tool: str = "") -> T:
    """Run ``op`` on the caller's Memory in a worker thread: SQLite and the embedder block, and
    the event loop keeps serving other requests meanwhile.

    Raises:
        Forbidden: the caller's key may not do what ``needs`` (writer for writes).
    """
    principal = current_principal.get()
    if principal is not None:
        require(principal, needs, tool)
    try:
        memory = current_memory.get()
    except LookupError:
        raise RuntimeError("no Memory is set for this MCP call (engramdb.server.mcp)") from None
    return await anyio.to_thread.run_sync(op, memory)


_WRITE = "writer"


# -- tools -----------------------------------------------------------------------------------------


async def add_memory(
    user_id: UserId,
    messages: Annotated[
        list[Message] | None,
        Field(description="Conversation turns, oldest first. Give messages or text."),
    ] = None,
    text: Annotated[
        str | None, Field(description="One thing the user said, stored as a user turn.")
    ] = None,
    agent_id: AgentId = None,
    session_id: SessionId = None,
    metadata: Annotated[
        dict[str, Any] | None, Field(description="JSON merged into every turn's metadata.")
    ] = None,
) -> dict[str, Any]:
    """Remember what was said: store conversation turns (or one text) in the user's memory.

    Call it with what the user tells you that may matter later: facts about them, plans,
    preferences, events, corrections. Give each turn's timestamp when you know it, so "yesterday"
    resolves to the right date. Facts are extracted from the turns and reconciled with what is
    known (a move to Porto ends "lives in Lisbon"). A turn already stored (same id, or the same
    words at the same timestamp) is not stored twice.

    Returns:
        {"ids": [...]}: the id of each turn, in order.
    """
    if (messages is None) == (text is None):
        raise InvalidInput("add_memory needs messages=[...] or text='...' (one of the two)")
    batch: list[Any] = (
        [text] if messages is None else [m.model_dump(exclude_none=True) for m in messages]
    )
    ids = await _call(
        lambda m: m.add(
            batch, user_id=user_id, agent_id=agent_id, session_id=session_id, metadata=metadata
        ),
        needs=_WRITE,
        tool="add_memory",
    )
    return {"ids": to_dict(ids)}


async def search_memory(
    query: Annotated[str, Field(description="What to look for, in plain words.")],
    user_id: UserId,
    agent_id: AgentId = None,
    limit: Annotated[int, _limit("hits")] = 10,
    as_of: AsOf = None,
    include_expired: Annotated[
        bool,
        Field(
            description="Also return facts that are no longer true (ranked lower, with valid_to)."
        ),
    ] = True,
) -> dict[str, Any]:
    """Search the user's memories, best first: the turns and facts that answer the query.

    Use it to look something up; for a ready-to-read briefing use get_context instead. Time words
    in the query ("last week", "in May") are read relative to as_of. Facts true at the moment
    asked about come first; facts that had ended have valid_to (and superseded_by) set.

    Returns:
        {"hits": [...]}: each with id, kind ("message" or "fact"), text, score, occurred_at (when
        it was said), for facts valid_from and valid_to, and sources: the turns it came from,
        each with its id and occurred_at.
    """
    hits = await _call(
        lambda m: m.search(
            query,
            user_id=user_id,
            agent_id=agent_id,
            limit=limit,
            as_of=as_of,
            include_expired=include_expired,
        )
    )
    return {"hits": to_dict(hits)}


async def get_context(
    query: Annotated[str, Field(description="The question or task you need memory for.")],
    user_id: UserId,
    agent_id: AgentId = None,
    max_tokens: Annotated[
        int | None,
        Field(ge=1, description="Token budget of the text (default: the server's, 2000)."),
    ] = None,
    as_of: AsOf = None,
) -> str:
    """What you need to know to answer a query, as one text to read before answering.

    Call it before replying to anything that depends on what the user said before. It holds the
    user's profile (who they are now), the facts that answer the query (current ones, then past
    ones with when they stopped being true) and the relevant turns in time order, every line
    dated, within max_tokens.

    Returns:
        The context text.
    """
    return await _call(
        lambda m: m.context(
            query, user_id=user_id, agent_id=agent_id, max_tokens=max_tokens, as_of=as_of
        )
    )


async def get_profile(user_id: UserId, agent_id: AgentId = None) -> dict[str, Any]:
    """Who the user is now: their current stable attributes, relationships and preferences.

    Call it at the start of a conversation to personalise it. Each entry comes from a current
    fact and names it and its source turns.

    Returns:
        {"user_id", "agent_id", "entries": [{attribute, value, text, since, fact_id, sources}],
        "text": the profile as lines, "truncated"}.
    """
    found = await _call(lambda m: m.profile(user_id=user_id, agent_id=agent_id))
    return to_dict(found)


async def list_memories(
    user_id: UserId,
    agent_id: AgentId = None,
    session_id: SessionId = None,
    kind: Annotated[
        str | None,
        Field(description="Only memories of this kind: message or fact (default: all)."),
    ] = None,
    limit: Annotated[int, _limit("memories")] = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """List the user's memories in the order they were recorded, a page at a time.

    Use it to browse or audit what is stored (e.g. before deleting); to find something use
    search_memory, and for time order use get_timeline.

    Returns:
        {"items": [...], "next_cursor"}: pass next_cursor back as cursor for the next page; it
        is null on the last page.
    """
    page = await _call(
        lambda m: m.list(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            kind=kind,
            limit=limit,
            cursor=cursor,
        )
    )
    return to_dict(page)


async def update_memory(
    memory_id: MemoryId,
    text: Annotated[str | None, Field(description="The corrected text.")] = None,
    metadata: Annotated[
        dict[str, Any] | None,
        Field(description="JSON merged into the memory's metadata; a key set to null is removed."),
    ] = None,
) -> dict[str, Any]:
    """Correct a memory's text and/or metadata; the previous version stays in its history.

    Call it when the user corrects something they said. Facts extracted from the old text are
    replaced by those of the new one.

    Returns:
        The memory as it is now.
    """
    record = await _call(
        lambda m: m.update(memory_id, text=text, metadata=metadata),
        needs=_WRITE,
        tool="update_memory",
    )
    return to_dict(record)


async def delete_memory(memory_id: MemoryId) -> dict[str, Any]:
    """Delete a memory for good, with everything derived from it alone.

    Call it when the user asks you to forget something. The facts extracted from it go too (a
    fact it had ended is current again). This cannot be undone.

    Returns:
        {"deleted": the id}.
    """
    await _call(lambda m: m.delete(memory_id), needs=_WRITE, tool="delete_memory")
    return {"deleted": memory_id}


async def list_facts(
    user_id: UserId,
    agent_id: AgentId = None,
    include_expired: Annotated[
        bool, Field(description="Also list facts that are no longer true.")
    ] = False,
    as_of: Annotated[
        str | None,
        Field(description="List the facts that were true at this moment (ISO 8601) instead."),
    ] = None,
    limit: Annotated[int, _limit("facts")] = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The facts known about the user: what is true now, or was true at a moment.

    Each fact is a short statement ("Maya lives in Porto") with subject, attribute and value, the
    time it became true (valid_from) and, once something contradicted it, the time it stopped
    (valid_to) and the fact that replaced it (superseded_by), and the turns it came from.

    Returns:
        {"items": [...], "next_cursor"}: pass next_cursor back as cursor for more.
    """
    page = await _call(
        lambda m: m.facts(
            user_id=user_id,
            agent_id=agent_id,
            include_expired=include_expired,
            as_of=as_of,
            limit=limit,
            cursor=cursor,
        )
    )
    return to_dict(page)


async def list_entities(
    user_id: UserId,
    agent_id: AgentId = None,
    name: Annotated[
        str | None, Field(description="Only the entities called this, by name or alias.")
    ] = None,
) -> dict[str, Any]:
    """The people, places, organizations, pets and things the user's memories mention.

    Use it to find out who someone is ("Inês") and how they relate to the user ("sister").

    Returns:
        {"entities": [...]}: most mentioned first, each with id, name, type, aliases, relation,
        relation_of, mentions and the ids of the memories that mention it.
    """
    found = await _call(lambda m: m.entities(user_id=user_id, agent_id=agent_id, name=name))
    return {"entities": to_dict(found)}


async def get_timeline(
    user_id: UserId,
    agent_id: AgentId = None,
    since: Annotated[
        str | None, Field(description="Only turns said at or after this moment (ISO 8601).")
    ] = None,
    until: Annotated[
        str | None, Field(description="Only turns said at or before this moment (ISO 8601).")
    ] = None,
    limit: Annotated[int, _limit("turns")] = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """What was said, in the order it happened: the user's conversation turns by date.

    Use it for "what did we talk about last week" or to review a period; give since and until to
    narrow it. Each turn has occurred_at, the date and time it was said on the speaker's clock.

    Returns:
        {"items": [...], "next_cursor"}: the turns of the period, oldest first, a page at a
        time; pass next_cursor back as cursor (with the same since and until) for the next
        page; it is null on the last page.
    """
    page = await _call(
        lambda m: m.timeline(
            user_id=user_id, agent_id=agent_id, since=since, until=until, limit=limit,
            cursor=cursor,
        )
    )  # fmt: skip
    return to_dict(page)


async def memory_history(memory_id: MemoryId) -> dict[str, Any]:
    """Every change of a memory, oldest first: created, updated (text before and after),
    deleted; for facts also confirmed, superseded and restored.

    Use it to explain why a memory or fact says what it says, or what it said before.

    Returns:
        {"history": [{id, memory_id, event, actor, at, before, after}]}.
    """
    entries = await _call(lambda m: m.history(memory_id))
    return {"history": to_dict(entries)}


# Hints for clients that ask the user before a tool acts (none of them reaches outside the store).
_READS = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
_ADDS = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False)
_CHANGES = ToolAnnotations(
    readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
)
#: Each tool, its title, and what it does to the memory.
TOOLS: tuple[tuple[Callable[..., Any], str, ToolAnnotations], ...] = (
    (add_memory, "Remember", _ADDS),
    (search_memory, "Search memory", _READS),
    (get_context, "Get context", _READS),
    (get_profile, "Get profile", _READS),
    (list_memories, "List memories", _READS),
    (update_memory, "Correct a memory", _CHANGES),
    (delete_memory, "Forget a memory", _CHANGES),
    (list_facts, "List facts", _READS),
    (list_entities, "List entities", _READS),
    (get_timeline, "Timeline", _READS),
    (memory_history, "Memory history", _READS),
)


# -- the server ------------------------------------------------------------------------------------


class _Server(FastMCP[Any]):
    """FastMCP whose tool errors start with a stable code instead of FastMCP's "Error executing
    tool ..." prefix, so an agent (or its developer) can tell them apart."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any]
    ) -> Sequence[ContentBlock] | dict[str, Any]:
        try:
            return await super().call_tool(name, arguments)
        except ToolError as exc:
            raise ToolError(_error_text(exc)) from None


def _error_text(exc: ToolError) -> str:
    """``code: message`` for a failed tool call; never a traceback."""
    cause = exc.__cause__
    if isinstance(cause, EngramError):
        return f"{cause.code}: {cause}"
    if isinstance(cause, ValidationError):  # the arguments do not fit the input schema
        wrong = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
            for e in cause.errors()
        )
        return f"invalid_input: {wrong}"
    if cause is None:  # FastMCP's own refusal: an unknown tool
        return f"unknown_tool: {exc}"
    log.error("engramdb: MCP tool failed", exc_info=cause)
    return f"internal_error: {type(cause).__name__}: {cause}"


_NO_HOST_CHECK = TransportSecuritySettings(enable_dns_rebinding_protection=False)


def build_server(security: TransportSecuritySettings | None = None) -> FastMCP[Any]:
    """A new MCP server with every engramdb tool; the tools use :data:`current_memory`.

    Args:
        security: Host and Origin checks of the HTTP transport (None: none).
    """
    server = _Server(
        "engramdb",
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        # Stateless: every HTTP request is served in its own context, with its own key's tenant.
        stateless_http=True,
        json_response=True,
        transport_security=security or _NO_HOST_CHECK,
    )
    for fn, title, hints in TOOLS:
        server.add_tool(
            fn, title=title, description=inspect.cleandoc(fn.__doc__ or ""), annotations=hints
        )
    return server


def serve_stdio(memory: Memory) -> None:
    """Serve the tools over stdin/stdout to one client (a desktop app, an agent) until it
    closes the pipe. Every tool uses ``memory``."""
    server = build_server()

    async def run() -> None:
        current_memory.set(memory)  # the tasks that serve the calls inherit it
        await server.run_stdio_async()

    anyio.run(run)


# -- streamable HTTP -------------------------------------------------------------------------------


class McpHttpApp:
    """ASGI app serving the MCP tools over streamable HTTP, whatever path it is mounted at.

    With ``require_auth`` every request needs ``Authorization: Bearer <api key>`` and is served
    with its key's tenant and role; without, every request uses ``memory`` with full access
    (loopback only: see :func:`check_no_auth`). Its MCP session manager must run while it
    serves: pass :meth:`lifespan` to the host application (Starlette/FastAPI ``lifespan=``) or
    enter it in the host's own lifespan.
    """

    def __init__(self, memory: Memory, *, require_auth: bool = True) -> None:
        self.memory = memory
        self.require_auth = require_auth
        # Without a key, a web page that rebinds a DNS name to 127.0.0.1 could call the tools:
        # then only loopback Host and Origin headers are served. With a key it cannot.
        self.server = build_server(None if require_auth else _loopback_only())
        self.server.streamable_http_app()  # creates the session manager
        self._manager: StreamableHTTPSessionManager = self.server.session_manager

    @asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Run the MCP session manager (once per app) while the host application runs."""
        async with self._manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError(f"the MCP app serves HTTP only, not {scope['type']}")
        try:
            memory, principal = await self._caller(Headers(scope=scope))
        except EngramError as exc:
            await _error_response(exc)(scope, receive, send)
            return
        memory_token = current_memory.set(memory)
        principal_token = current_principal.set(principal)
        try:
            await self._manager.handle_request(scope, receive, send)
        finally:
            current_principal.reset(principal_token)
            current_memory.reset(memory_token)

    async def _caller(self, headers: Headers) -> tuple[Memory, Principal | None]:
        """The Memory and principal of a request.

        Raises:
            Unauthorized: auth is required and the request has no live API key.
        """
        if not self.require_auth:
            return self.memory, None
        token = bearer(headers.get("authorization"), headers.get("x-api-key"))
        principal = await anyio.to_thread.run_sync(authenticate, self.memory, token)
        return self.memory.for_tenant(principal.tenant), principal


def _error_response(exc: EngramError) -> JSONResponse:
    """The REST API's error shape, for a request refused before it reaches MCP."""
    status = 401 if exc.code == "unauthorized" else 500
    return JSONResponse(
        {"error": {"code": exc.code, "message": str(exc), "status": status}},
        status_code=status,
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )


def _loopback_only() -> TransportSecuritySettings:
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


def mcp_http_app(memory: Memory, *, require_auth: bool = True) -> McpHttpApp:
    """The MCP tools as an ASGI app, to mount in another application (the REST server mounts
    it at ``/mcp``); run its :meth:`McpHttpApp.lifespan` in the host's lifespan.

    Args:
        memory: the store; each request uses ``memory.for_tenant(<its key's tenant>)``.
        require_auth: refuse requests without a live API key (401). Without it every request
            uses ``memory`` itself, with every tool allowed: loopback hosts only.
    """
    return McpHttpApp(memory, require_auth=require_auth)


def check_no_auth(host: str) -> None:
    """Refuse to serve without auth on an address other machines can reach.

    Raises:
        InvalidInput: ``host`` is not a loopback address.
    """
    if host not in LOOPBACK:  # the REST server's rule (engram serve)
        raise InvalidInput(
            f"--no-auth serves every memory to whoever can reach {host}: use it with a loopback "
            "host (127.0.0.1, ::1, localhost) only, or give clients API keys "
            "(engram keys create --role writer)"
        )


def serve_http(
    memory: Memory, host: str = "127.0.0.1", port: int = 8766, *, require_auth: bool = True
) -> None:
    """Serve the tools over streamable HTTP at ``http://host:port/mcp`` until interrupted.

    Raises:
        InvalidInput: ``require_auth`` is off and ``host`` is not a loopback address.
    """
    import uvicorn

    if not require_auth:
        check_no_auth(host)
    mcp_app = mcp_http_app(memory, require_auth=require_auth)
    app = Starlette(routes=[Route("/mcp", endpoint=mcp_app)], lifespan=mcp_app.lifespan)
    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = [
    "TOOLS",
    "McpHttpApp",
    "build_server",
    "check_no_auth",
    "current_memory",
    "current_principal",
    "mcp_http_app",
    "serve_http",
    "serve_stdio",
]
