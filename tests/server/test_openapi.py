"""The server's OpenAPI document: fuzzed with schemathesis, and published in docs/openapi.json.

Schemathesis generates requests (valid and invalid ones) from the published document, which
:func:`test_docs_openapi_json_is_current` pins to the app's own ``/openapi.json``, and sends them
to the app in-process, each with an admin key of a tenant holding some memories. No answer may
be a 5xx, and every 4xx must be the one error shape. ``DELETE /v1/tenant`` is left out: it would
erase the key the run authenticates with.

The schema is loaded from the file rather than from a fixture (``schemathesis.pytest.
from_fixture``) because schemathesis' lazy schemas do not run under pytest 9.2 (they set
``node._nodeid``, which pytest no longer has).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans

from engramdb import Memory, access
from engramdb.server.app import create_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REGENERATE = (
    'python -c "import json; from engramdb import Memory; '
    "from engramdb.server.app import create_app; "
    "print(json.dumps(create_app(Memory(':memory:', embedder='test')).openapi(), "
    'indent=2, sort_keys=True))" > docs/openapi.json'
)
schema = schemathesis.openapi.from_path(DOC).exclude(method="DELETE", path="/v1/tenant")


def _in_scope(value: Any) -> Any:
    """Generated parameters made to reach past the first checks: the seeded user's scope and
    memory, and messages with a known role."""
    if not isinstance(value, dict):
        return value
    value = dict(value)
    if "user_id" in value:
        value["user_id"] = "maya"
    if "memory_id" in value:
        value["memory_id"] = "m2"
    messages = value.get("messages")
    if isinstance(messages, list):
        value["messages"] = [{**m, "role": "user"} if isinstance(m, dict) else m for m in messages]
    return value


# Half the generated parameters as they come, half in the seeded scope: random user ids, memory
# ids and roles would stop most requests at validation, never reaching the store.
@schema.hook
def before_generate_body(context: Any, strategy: st.SearchStrategy[Any]) -> Any:
    return st.one_of(strategy, strategy.map(_in_scope))


@schema.hook
def before_generate_query(context: Any, strategy: st.SearchStrategy[Any]) -> Any:
    return st.one_of(strategy, strategy.map(_in_scope))


@schema.hook
def before_generate_path_parameters(context: Any, strategy: st.SearchStrategy[Any]) -> Any:
    return st.one_of(strategy, strategy.map(_in_scope))


def published(app: FastAPI) -> str:
    """The text docs/openapi.json must hold for ``app``."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


@pytest.fixture
def fuzzed(tmp_path: Path) -> Iterator[tuple[FastAPI, str]]:
    """The app over a store whose tenant ``fuzz`` holds a few memories, and an admin key of it.

    One per operation: schemathesis ends an app's lifespan after each test item, and the app's
    MCP session manager runs once per app. No rate limit (the run makes hundreds of requests
    with one key) and no webhook delivery (nothing would receive it)."""
    memory = Memory(tmp_path / "engram.db", embedder="test", rate_limit=0)
    tenant = memory.for_tenant("fuzz")
    tenant.add(
        [
            {"role": "user", "name": "Maya", "content": "I moved to Porto last month.",
             "timestamp": "2024-05-29T09:00:00Z", "id": "m1"},
            {"role": "user", "name": "Maya", "content": "My sister Inês is a doctor.",
             "timestamp": "2024-05-29T09:01:00Z", "id": "m2"},
        ],
        user_id="maya",
    )  # fmt: skip
    _, token = access.create_key(tenant, "admin")
    app = create_app(memory, webhooks=False)
    # The run's key reaches the tenant's routes (a plain client: the app's lifespan runs once,
    # under schemathesis).
    whoami = TestClient(app).get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert whoami.json() == {"tenant": "fuzz", "role": "admin", "key_id": whoami.json()["key_id"]}
    try:
        yield app, token
    finally:
        shutdown_lifespans()  # schemathesis keeps an app's lifespan running until told
        memory.close()


@pytest.fixture
def admin(fuzzed: tuple[FastAPI, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {fuzzed[1]}"}


def in_the_error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx and 5xx is exactly ``{"error": {"code", "message", "status"}}`` as JSON."""
    status = response.status_code
    if status < 400:
        return None
    where = f"{case.method} {case.formatted_path} -> {status}: {response.text[:300]}"
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), where
    body = json.loads(response.text)
    assert isinstance(body, dict) and set(body) == {"error"}, where
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message", "status"}, where
    assert isinstance(error["code"], str) and error["code"], where
    assert isinstance(error["message"], str) and error["message"], where
    assert type(error["status"]) is int and error["status"] == status, where
    return None


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_every_error_in_the_shape(
    case: Any, fuzzed: tuple[FastAPI, str], admin: dict[str, str]
) -> None:
    case.call_and_validate(
        app=fuzzed[0], headers=admin, checks=[not_a_server_error, in_the_error_shape]
    )


def test_the_schema_documents_every_route_and_the_error_shape() -> None:
    with Memory(":memory:", embedder="test") as memory:
        app = create_app(memory)
        doc = app.openapi()
    paths = doc["paths"]
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/v1/"):
            assert path in paths, f"{path} is missing from the OpenAPI document"
    search = paths["/v1/search"]["post"]
    for status in ("400", "401", "403", "429", "503"):
        body = search["responses"][status]["content"]["application/json"]["schema"]
        assert body["properties"]["error"]["required"] == ["code", "message", "status"]
    security = doc["components"]["securitySchemes"]
    assert {s["type"] for s in security.values()} == {"http", "apiKey"}
    assert "/v1/health" in paths and "security" not in paths["/v1/health"]["get"]


def test_docs_openapi_json_is_current() -> None:
    memory = Memory(":memory:", embedder="test")
    try:
        expected = published(create_app(memory))
    finally:
        memory.close()
    found = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert found == expected, (
        f"docs/openapi.json is not the app's current OpenAPI document; regenerate it:\n"
        f"    {REGENERATE}"
    )
