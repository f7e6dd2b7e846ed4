"""Shared fixtures of the server tests: a real store, the app in-process, API keys per role.

Test modules take these through fixtures (``api``, ``serve``) and import the names only for
annotations: two folders hold a ``conftest`` module, so importing one at run time is fragile.
Every response that goes through an :class:`Api` client with an error status is checked against
the one error shape (:func:`assert_error_shape`) as it arrives, so a test that provokes an error
of another shape fails whatever it asserts itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from engramdb import Memory, access
from engramdb.server.app import create_app

TENANT = "acme"


def assert_error_shape(response: httpx.Response) -> dict[str, Any]:
    """The body of an error response, checked to be exactly
    ``{"error": {"code": str, "message": str, "status": int}}`` with ``status`` equal to the
    HTTP status, served as JSON."""
    status = response.status_code
    assert status >= 400, f"not an error: {status}"
    assert response.headers.get("content-type", "").startswith("application/json"), (
        f"{status} error served as {response.headers.get('content-type')!r}: {response.text[:300]}"
    )
    body = json.loads(response.read())
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message", "status"}, body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    assert type(error["status"]) is int and error["status"] == status, body
    assert "Traceback" not in error["message"], body
    return error


def _check_errors(response: httpx.Response) -> None:
    if response.status_code >= 400:
        assert_error_shape(response)


@dataclass
class Api:
    """The app in-process (lifespan running) over ``memory``, with a key per tenant and role."""

    client: TestClient
    memory: Memory
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    #: The tenant of requests that name none.
    tenant: str = TENANT
    #: Check an error response's shape; returns its ``error`` object.
    error_of = staticmethod(assert_error_shape)

    def key(self, role: str = "admin", tenant: str | None = None) -> str:
        """The secret of a key of ``tenant`` with ``role`` (made on first use)."""
        tenant = tenant or self.tenant
        if (tenant, role) not in self.tokens:
            _, token = access.create_key(self.memory.for_tenant(tenant), role)
            self.tokens[tenant, role] = token
        return self.tokens[tenant, role]

    def call(
        self,
        method: str,
        path: str,
        *,
        role: str | None = "admin",
        tenant: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, authenticated with a key of ``tenant``/``role`` (None: no key)."""
        sent = dict(headers or {})
        if role is not None:
            sent.setdefault("Authorization", f"Bearer {self.key(role, tenant)}")
        return self.client.request(method, path, headers=sent, **kwargs)

    def ok(self, method: str, path: str, *, status: int = 200, **kwargs: Any) -> Any:
        """The JSON of a request that must answer ``status``."""
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json()

    def error(self, method: str, path: str, status: int, code: str, **kwargs: Any) -> str:
        """The message of a request that must fail with ``status`` and ``code``."""
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, response.text
        error = assert_error_shape(response)
        assert error["code"] == code, error
        return str(error["message"])


ServeFactory = Callable[..., Api]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeFactory]:
    """Start the app over a new store: ``serve(embedder=..., rate_limit=..., ...)``; keyword
    arguments go to :class:`Memory` (``app_options`` to ``create_app``,
    ``raise_server_exceptions`` to the client)."""
    with ExitStack() as stack:

        def start(
            *,
            embedder: Any = "test",
            app_options: dict[str, Any] | None = None,
            raise_server_exceptions: bool = True,
            **settings: Any,
        ) -> Api:
            memory = Memory(tmp_path / "engram.db", embedder=embedder, **settings)
            stack.callback(memory.close)
            app = create_app(memory, **(app_options or {}))
            client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
            client.event_hooks = {"request": [], "response": [_check_errors]}
            stack.enter_context(client)
            return Api(client, memory)

        yield start


@pytest.fixture
def api(serve: ServeFactory) -> Api:
    """The app over a fresh store with the deterministic test embedder and default settings."""
    return serve()
