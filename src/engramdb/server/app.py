"""The REST application: one FastAPI app over one :class:`~engramdb.Memory`.

Every request resolves to exactly one tenant (from its API key) and works on
``memory.for_tenant(tenant)``: no route takes a tenant from the request, so there is no path to
another tenant's data. Every error leaves as ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import engramdb

from ..aio import AsyncMemory
from ..errors import (
    AccessError,
    Conflict,
    EmbedderError,
    EngramError,
    LLMError,
    NotFound,
    RateLimited,
    StoreError,
)
from ..memory import Memory
from .auth import Principal
from .limits import RateLimiter

log = logging.getLogger("engramdb.server")
T = TypeVar("T")

CONSOLE = Path(__file__).parent / "console"
#: HTTP status of each family of errors (the most specific class listed wins).
_STATUS: tuple[tuple[type[EngramError], int], ...] = (
    (RateLimited, 429),
    (AccessError, 401),
    (NotFound, 404),
    (Conflict, 409),
    (StoreError, 503),
    (EmbedderError, 503),
    (LLMError, 502),
)
_HTTP_CODES = {
    400: "invalid_input", 401: "unauthorized", 403: "forbidden", 404: "route_not_found",
    405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type",
    429: "rate_limited", 500: "internal_error", 503: "unavailable", 504: "timeout",
}  # fmt: skip
#: The error shape, for the OpenAPI document.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "status": {"type": "integer"},
            },
        }
    },
}


def error_body(code: str, message: str, status: int) -> dict[str, Any]:
    """The one JSON shape of every error the server returns."""
    return {"error": {"code": code, "message": message, "status": status}}


def error_response(
    code: str, message: str, status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, status), status_code=status, headers=headers)


def status_of(exc: EngramError) -> int:
    if exc.code == "forbidden":
        return 403
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400  # InvalidInput, ImportFormatError and the rest: the request was wrong


class ServerState:
    """What the routes share: the memory, the settings that bound requests, the limiter."""

    def __init__(self, memory: Memory, *, auth: bool, threads: int) -> None:
        self.memory = memory
        self.auth = auth
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="engram-req")
        self.root = AsyncMemory(memory, self.executor)
        settings = memory.settings
        self.max_body = int(settings["max_body_bytes"])
        self.timeout = float(settings["request_timeout"])
        self.limiter = RateLimiter(int(settings["rate_limit"]))
        self.webhook_retries = int(settings["webhook_retries"])
        self.started = time.time()
        #: Names this process in the leases it takes (webhook delivery).
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def memory_for(self, principal: Principal) -> AsyncMemory:
        return self.root.for_tenant(principal.tenant)

    async def read(self, call: Awaitable[T]) -> T:
        """A read bounded by the request timeout (a write is never cut off half-way)."""
        try:
            return await asyncio.wait_for(call, self.timeout)
        except TimeoutError:
            raise _Timeout(self.timeout) from None


class _Timeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request took longer than {seconds:g} s and was abandoned")


def create_app(
    memory: Memory,
    *,
    auth: bool = True,
    webhooks: bool = True,
    mcp: bool = True,
    threads: int = 16,
) -> FastAPI:
    """The REST server (with the console at ``/console/`` and MCP at ``/mcp``) over ``memory``.

    Args:
        memory: the store to serve; the server makes a view of it per tenant.
        auth: require an API key on every ``/v1`` route but health and readiness. Without it
            every request acts as an admin of ``memory``'s tenant (``engram serve`` allows
            that only on a loopback address).
        webhooks: deliver events to webhook subscriptions from this process.
        mcp: mount the MCP streamable-HTTP endpoint at ``/mcp``.
        threads: worker threads for store calls.
    """
    from . import routes as routes_module
    from . import webhooks as delivery

    state = ServerState(memory, auth=auth, threads=threads)
    mcp_app = _mcp_app(memory, auth) if mcp else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _running(mcp_app):
            worker = asyncio.create_task(delivery.deliver_forever(state)) if webhooks else None
            try:
                yield
            finally:
                if worker is not None:
                    worker.cancel()
                    await asyncio.gather(worker, return_exceptions=True)
                state.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="engramdb",
        version=engramdb.__version__,
        summary="Long-term memory for LLM agents: episodes, facts with time validity, profile.",
        docs_url=None,  # Swagger UI loads from a CDN: the console and /openapi.json serve instead
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.engram = state
    _errors(app)
    app.include_router(routes_module.router)
    app.mount("/console", StaticFiles(directory=CONSOLE, html=True), name="console")
    if mcp_app is not None:
        app.mount("/mcp", mcp_app)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console/")

    app.add_middleware(BodyLimit, state=state)
    return app


@asynccontextmanager
async def _running(mcp_app: Any) -> AsyncIterator[None]:
    """Run the MCP app's session manager for the server's lifetime, when it is mounted."""
    if mcp_app is None:
        yield
        return
    async with mcp_app.lifespan():
        yield


def _mcp_app(memory: Memory, auth: bool) -> Any:
    try:
        from .mcp import mcp_http_app
    except ImportError:  # the MCP module is optional in a server build
        return None
    return mcp_http_app(memory, require_auth=auth)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(EngramError)
    async def engram_error(request: Request, exc: EngramError) -> JSONResponse:
        status = status_of(exc)
        headers = None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
        elif status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return error_response(exc.code, str(exc), status, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response("invalid_input", _validation_message(exc), 400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        message = str(exc.detail)
        if exc.status_code in (404, 405):
            message = (
                f"{message}: no route {request.method} {request.url.path} "
                "(GET /openapi.json lists every route)"
            )
        return error_response(code, message, exc.status_code, headers)

    @app.exception_handler(_BodyTooLarge)
    async def too_large(request: Request, exc: _BodyTooLarge) -> JSONResponse:
        return error_response("body_too_large", str(exc.detail), 413)

    @app.exception_handler(_Timeout)
    async def timeout(request: Request, exc: _Timeout) -> JSONResponse:
        return error_response("timeout", str(exc), 504)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("engramdb server: unexpected error on %s %s", request.method, request.url)
        return error_response(
            "internal_error", f"the server failed: {type(exc).__name__} (logged)", 500
        )


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


class BodyLimit:
    """Refuse request bodies over the limit before they are read whole (413, error shape),
    whether they announce their length or stream it."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.state.max_body * (10 if scope["path"] == "/v1/import" else 1)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _too_large(send, limit)
            return
        await self.app(scope, _counting(receive, limit), send)


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge(limit)
        return message

    return wrapped


class _BodyTooLarge(HTTPException):
    # An HTTPException, so that FastAPI's body parsing lets it through instead of turning it
    # into a 400 "error parsing the body" (a streamed body over the limit is found there).
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes (max_body_bytes)")


async def _too_large(send: Send, limit: int) -> None:
    response = error_response(
        "body_too_large",
        f"the request body is larger than {limit:,} bytes: send less at once, "
        "or raise the max_body_bytes setting",
        413,
    )
    await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
