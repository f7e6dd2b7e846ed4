"""Webhook delivery end to end: a real engramdb server (uvicorn on loopback, delivery loop on)
POSTs over real HTTP to real receivers (``http.server`` on loopback) that record every request
and can be told to fail.

Nothing here asserts on elapsed time: the tests wait (polling, with a generous limit) for what
must happen, and prove what must not happen by waiting for a later event that has to come after
it.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from engramdb import Memory, access
from engramdb.server import webhooks
from engramdb.server.app import create_app
from engramdb.server.webhooks import verify

WAIT = 30.0  # seconds a test waits for what must happen, before it fails


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    """A webhook receiver on loopback. It answers 500 to the next ``fail`` requests (to every
    request while ``down``), else 204, and records every request with its answer. While
    ``echoing`` it refuses every request with a 422 that quotes the body, as validation errors
    of many web frameworks do."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.fail = 0
        self.down = False
        self.echoing = False
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver._answer()
                with receiver._lock:
                    receiver.received.append(Received(dict(self.headers), body, status))
                answer = body if status == 422 else b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self) -> int:
        with self._lock:
            if self.echoing:
                return 422
            if self.down:
                return 500
            if self.fail > 0:
                self.fail -= 1
                return 500
            return 204

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def delivered(self) -> list[Received]:
        return [r for r in self.requests() if r.answered == 204]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    """Poll ``check`` until it returns something truthy; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not (found := check()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)
    return found


@dataclass
class Server:
    base: str
    memory: Memory
    keys: dict[str, str]

    def call(self, method: str, path: str, tenant: str = "a", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        return httpx.request(
            method, f"{self.base}/v1/{path}", headers=headers, timeout=30, **kwargs
        )

    def ok(self, method: str, path: str, tenant: str = "a", **kwargs: Any) -> Any:
        response = self.call(method, path, tenant, **kwargs)
        assert response.is_success, response.text
        return response.json()

    def add(self, text: str, tenant: str = "a", user: str = "u") -> str:
        body = {"messages": text, "user_id": user}
        ident: str = self.ok("POST", "memories", tenant, json=body)["ids"][0]
        return ident

    def subscribe(self, url: str, tenant: str = "a", events: list[str] | None = None) -> Any:
        body: dict[str, Any] = {"url": url} if events is None else {"url": url, "events": events}
        return self.ok("POST", "webhooks", tenant, json=body)

    def feed(self, tenant: str = "a", after: int = 0) -> list[dict[str, Any]]:
        page = self.ok("GET", "events", tenant, params={"after": after, "limit": 1000})
        items: list[dict[str, Any]] = page["items"]
        return items

    def log(self, hook: str, tenant: str = "a") -> list[tuple[int, int, str, int | None]]:
        """(event, attempt, status, http status) of every attempt, oldest first."""
        items = self.ok("GET", f"webhooks/{hook}/deliveries", tenant)["items"]
        return [(d["event_id"], d["attempt"], d["status"], d["http_status"]) for d in items][::-1]

    def until(self, hook: str, status: str) -> list[tuple[int, int, str, int | None]]:
        """The delivery log, once an attempt in it has ``status``."""

        def reached() -> list[tuple[int, int, str, int | None]] | None:
            log = self.log(hook)
            return log if status in {d[2] for d in log} else None

        found: list[tuple[int, int, str, int | None]] = wait_for(f"a {status} attempt", reached)
        return found


@contextmanager
def serving(memory: Memory) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(memory, webhooks=True, mcp=False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for("the server to start", lambda: server.started or not thread.is_alive())
    assert thread.is_alive(), "the server failed to start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(WAIT)
        sock.close()


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "POLL", 0.02)
    monkeypatch.setattr(webhooks, "BASE_DELAY", 0.02)


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Memory settings of the served store; a test changes them by indirect parametrization."""
    return {"consolidate": "off", "rate_limit": 0, **getattr(request, "param", {})}


@pytest.fixture
def server(tmp_path: Path, settings: dict[str, Any]) -> Iterator[Server]:
    memory = Memory(tmp_path / "engram.db", embedder="test", **settings)
    keys = {t: access.create_key(memory.for_tenant(t), "admin")[1] for t in ("a", "b")}
    try:
        with serving(memory) as base:
            yield Server(base, memory, keys)
    finally:
        memory.close()


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


# -- delivery ----------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{"consolidate": "inline"}], indirect=True)
def test_every_event_arrives_once_in_order_signed(
    server: Server, receivers: Callable[[], Receiver]
) -> None:
    receiver = receivers()
    before = server.feed()
    hook = server.subscribe(receiver.url)
    assert hook["secret"].startswith("whsec_") and hook["events"] == []
    said = [
        {"role": "user", "name": "Maya", "content": "I moved to Porto last month."},
        {"role": "user", "content": "Loved the river walk."},
    ]
    body = {"user_id": "maya", "messages": said}
    kept, gone = server.ok("POST", "memories", json=body)["ids"]
    server.ok("PATCH", f"memories/{kept}", json={"metadata": {"checked": True}})
    server.ok("DELETE", f"memories/{gone}")
    start = before[-1]["id"] if before else 0
    feed = server.feed(after=start)
    assert {"memory.create", "memory.update", "memory.delete"} <= {e["type"] for e in feed}
    assert len({e["memory_id"] for e in feed}) > 2  # a fact's events are there too

    got = wait_for(
        "every event", lambda: len(receiver.requests()) >= len(feed) and receiver.requests()
    )
    assert [r.headers["X-Engram-Delivery"] for r in got] == [str(e["id"]) for e in feed]
    assert [r.headers["X-Engram-Event"] for r in got] == [e["type"] for e in feed]
    for request, event in zip(got, feed, strict=True):
        assert request.headers["Content-Type"] == "application/json"
        assert verify(hook["secret"], request.headers["X-Engram-Signature"], request.body)
        delivered = request.event
        assert {k: delivered[k] for k in ("id", "type", "memory_id", "actor")} == {
            k: event[k] for k in ("id", "type", "memory_id", "actor")
        }
        if event["memory_id"] != gone:  # a deleted memory's events were blanked since
            assert delivered == event
    # Signed means tamper-evident: any change to the body, or another secret, fails.
    last = got[-1]
    signature = last.headers["X-Engram-Signature"]
    tampered = last.body.replace(b'"memory.', b'"memory.x')
    assert tampered != last.body
    assert not verify(hook["secret"], signature, tampered)
    assert not verify(hook["secret"], signature, last.body + b" ")
    assert not verify("whsec_other", signature, last.body)
    assert not verify(hook["secret"], signature.replace("t=", "t=1"), last.body)
    assert {status for _, _, status, _ in server.log(hook["id"])} == {"delivered"}

    # Once: the events of a later write come next, and nothing is sent twice.
    later = server.add("One more thing.", user="maya")
    wait_for(
        "the later event", lambda: later in {r.event["memory_id"] for r in receiver.requests()}
    )
    feed = server.feed(after=start)
    ids = [r.headers["X-Engram-Delivery"] for r in receiver.requests()]
    assert ids == [str(e["id"]) for e in feed]


def test_a_failing_receiver_is_retried_until_it_answers(
    server: Server, receivers: Callable[[], Receiver]
) -> None:
    receiver = receivers()
    receiver.fail = 2
    hook = server.subscribe(receiver.url)
    ident = server.add("Retry me, please.")
    log = server.until(hook["id"], "delivered")
    event = log[0][0]
    assert log == [
        (event, 1, "failed", 500),
        (event, 2, "failed", 500),
        (event, 3, "delivered", 204),
    ]
    got = receiver.requests()
    assert [r.answered for r in got] == [500, 500, 204]
    assert {r.headers["X-Engram-Delivery"] for r in got} == {str(event)}
    assert len({r.body for r in got}) == 1 and got[0].event["memory_id"] == ident
    assert all(verify(hook["secret"], r.headers["X-Engram-Signature"], r.body) for r in got)


@pytest.mark.parametrize("settings", [{"webhook_retries": 2}], indirect=True)
def test_a_receiver_that_keeps_failing_is_given_up_and_the_next_event_goes_out(
    server: Server, receivers: Callable[[], Receiver]
) -> None:
    receiver = receivers()
    receiver.down = True
    hook = server.subscribe(receiver.url)
    first = server.add("Nobody hears this one.")
    log = server.until(hook["id"], "gave_up")
    event = log[0][0]
    assert log == [(event, 1, "failed", 500), (event, 2, "gave_up", 500)]

    receiver.down = False
    second = server.add("But this one arrives.")
    [got] = wait_for("the next event", receiver.delivered)
    assert got.event["memory_id"] == second and got.event["type"] == "memory.create"
    # The given-up event is not sent again.
    assert [r.event["memory_id"] for r in receiver.requests()] == [first, first, second]
    assert server.log(hook["id"])[-1] == (got.event["id"], 1, "delivered", 204)


def test_an_event_filter_sends_only_those_events(
    server: Server, receivers: Callable[[], Receiver]
) -> None:
    only_deletes, everything = receivers(), receivers()
    hook = server.subscribe(only_deletes.url, events=["delete"])
    assert hook["events"] == ["delete"]
    server.subscribe(everything.url)
    kept, gone = server.add("Keep this."), server.add("Drop this.")
    server.ok("PATCH", f"memories/{kept}", json={"text": "Keep this, changed."})
    server.ok("DELETE", f"memories/{gone}")
    last = server.add("The last word.")
    feed = server.feed()
    # The unfiltered subscription got all of it, so the filtered one has been through it all.
    wait_for("every event", lambda: len(everything.requests()) == len(feed))
    every_id = {e["id"] for e in feed}
    wait_for("the filtered log", lambda: {d[0] for d in server.log(hook["id"])} == every_id)
    [got] = only_deletes.requests()
    assert got.headers["X-Engram-Event"] == "memory.delete" and got.event["memory_id"] == gone
    statuses = {d[0]: d[2] for d in server.log(hook["id"])}
    wanted = {e["id"]: "delivered" if e["type"] == "memory.delete" else "skipped" for e in feed}
    assert statuses == wanted
    assert last in {r.event["memory_id"] for r in everything.requests()}


def test_a_subscription_never_receives_another_tenants_events(
    server: Server, receivers: Callable[[], Receiver]
) -> None:
    for_a, for_b = receivers(), receivers()
    hook_a, hook_b = server.subscribe(for_a.url, "a"), server.subscribe(for_b.url, "b")
    mine = {server.add(f"A says {n}.", "a", user="same-user") for n in range(3)}
    theirs = {server.add(f"B says {n}.", "b", user="same-user") for n in range(3)}
    server.ok("DELETE", f"memories/{sorted(theirs)[0]}", "b")
    feed_a, feed_b = server.feed("a"), server.feed("b")
    wait_for("a's events", lambda: len(for_a.requests()) >= len(feed_a))
    wait_for("b's events", lambda: len(for_b.requests()) >= len(feed_b))
    # One more for each, so that anything wrongly queued before it has arrived by then.
    extra_a, extra_b = server.add("A again.", "a"), server.add("B again.", "b")
    wait_for("a's last", lambda: extra_a in {r.event["memory_id"] for r in for_a.requests()})
    wait_for("b's last", lambda: extra_b in {r.event["memory_id"] for r in for_b.requests()})
    got_a = [r.event for r in for_a.requests()]
    got_b = [r.event for r in for_b.requests()]
    assert [e["id"] for e in got_a] == [e["id"] for e in server.feed("a")]
    assert [e["id"] for e in got_b] == [e["id"] for e in server.feed("b")]
    assert {e["memory_id"] for e in got_a} == mine | {extra_a}
    assert {e["memory_id"] for e in got_b} == theirs | {extra_b}
    signed = [(r.headers["X-Engram-Signature"], r.body) for r in for_a.requests()]
    assert all(verify(hook_a["secret"], header, body) for header, body in signed)
    assert not any(verify(hook_b["secret"], header, body) for header, body in signed)
    # Nor can tenant a see or stop b's subscription.
    assert server.call("GET", f"webhooks/{hook_b['id']}/deliveries", "a").status_code == 404
    assert server.call("DELETE", f"webhooks/{hook_b['id']}", "a").status_code == 404
    assert [h["id"] for h in server.ok("GET", "webhooks", "b")["items"]] == [hook_b["id"]]


def test_deleting_a_subscription_stops_its_deliveries(
    server: Server, receivers: Callable[[], Receiver]
) -> None:
    stopped, witness = receivers(), receivers()
    hook = server.subscribe(stopped.url)
    server.subscribe(witness.url)
    first = server.add("Before the unsubscribe.")
    for r in (stopped, witness):
        wait_for("the first event", lambda r=r: len(r.requests()) == 1)
    assert server.ok("DELETE", f"webhooks/{hook['id']}") == {"deleted": hook["id"]}
    assert server.call("GET", f"webhooks/{hook['id']}/deliveries").status_code == 404
    assert server.call("DELETE", f"webhooks/{hook['id']}").status_code == 404
    later = [server.add("After the unsubscribe."), server.add("And again.")]
    for ident in later:  # the second one is only read in a pass after the delete had ended
        wait_for(
            "the witness", lambda i=ident: i in {r.event["memory_id"] for r in witness.requests()}
        )
    assert [r.event["memory_id"] for r in stopped.requests()] == [first]


@pytest.mark.parametrize("settings", [{"webhook_retries": 8}], indirect=True)
def test_a_subscription_deleted_while_retrying_stops_being_retried(
    server: Server, receivers: Callable[[], Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "BASE_DELAY", 0.05)  # 8 attempts: 6 s of retries
    down, witness = receivers(), receivers()
    down.down = True
    hook = server.subscribe(down.url)
    first = server.add("Nobody hears this one.")
    wait_for("a first failed attempt", lambda: down.requests())
    server.ok("DELETE", f"webhooks/{hook['id']}")
    tried = len(down.requests())
    server.subscribe(witness.url)
    after = server.add("Heard by the witness.")
    wait_for("the witness", lambda: after in {r.event["memory_id"] for r in witness.requests()})
    # At most the attempt already on the wire when the subscription went; no retries after.
    assert len(down.requests()) <= tried + 1
    assert {r.event["memory_id"] for r in down.requests()} == {first}
    # No delivery log is left behind for a subscription that is gone.
    with closing(sqlite3.connect(server.memory.path)) as conn:
        left = conn.execute("SELECT COUNT(*) FROM deliveries WHERE webhook_id = ?", (hook["id"],))
        assert left.fetchone()[0] == 0


@pytest.mark.parametrize("settings", [{"webhook_retries": 6}], indirect=True)
def test_a_failing_receiver_of_one_tenant_does_not_hold_up_another_tenants(
    server: Server, receivers: Callable[[], Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "BASE_DELAY", 0.1)  # 6 attempts: 3 s of retries
    down, up = receivers(), receivers()
    down.down = True
    slow = server.subscribe(down.url, "a")
    server.subscribe(up.url, "b")
    server.add("Tenant a's event, to a receiver that is down.", "a")
    wait_for("a first failed attempt", lambda: down.requests())
    mine = server.add("Tenant b's event.", "b")
    wait_for("b's event", lambda: mine in {r.event["memory_id"] for r in up.requests()})
    # b's event went out while a's was still being retried.
    assert "gave_up" not in {d[2] for d in server.log(slow["id"], "a")}


@pytest.mark.parametrize("settings", [{"webhook_retries": 2}], indirect=True)
def test_what_a_receiver_answers_cannot_keep_a_purged_users_words(
    server: Server, receivers: Callable[[], Receiver], tmp_path: Path
) -> None:
    receiver = receivers()
    receiver.echoing = True
    hook = server.subscribe(receiver.url)
    server.add("My passport number is Quetzalpine-4471.", user="leaving")
    log = server.until(hook["id"], "gave_up")
    assert [d[3] for d in log] == [422, 422]
    assert b"Quetzalpine" in receiver.requests()[0].body  # what the receiver quoted back
    assert server.ok("DELETE", "users/leaving")["messages"] == 1
    # The attempts stay in the log (that they happened), the receiver's words do not.
    event = log[0][0]
    assert [d[:3] for d in server.log(hook["id"]) if d[0] == event] == [d[:3] for d in log]
    items = server.ok("GET", f"webhooks/{hook['id']}/deliveries")["items"]
    assert items and all("Quetzalpine" not in (d["error"] or "") for d in items)
    for path in tmp_path.iterdir():
        if path.name.startswith("engram.db"):
            assert b"Quetzalpine" not in path.read_bytes(), path.name


# -- several server processes on one store -----------------------------------------------------


def test_two_servers_on_one_store_deliver_each_event_once(
    tmp_path: Path, receivers: Callable[[], Receiver]
) -> None:
    """Two servers (each its own Memory on the same file, as two processes would have) both run
    delivery: the subscription's lease lets one send at a time, from the cursor it finds."""
    path = tmp_path / "shared.db"
    first = Memory(path, embedder="test", consolidate="off", rate_limit=0)
    second = Memory(path, embedder="test", consolidate="off", rate_limit=0)
    keys = {"a": access.create_key(first.for_tenant("a"), "admin")[1]}
    receiver = receivers()
    try:
        with serving(first) as base_one, serving(second) as base_two:
            one, two = Server(base_one, first, keys), Server(base_two, second, keys)
            hook = one.subscribe(receiver.url)
            for i in range(30):  # writes through both servers, while both deliver
                (one if i % 2 else two).add(f"note number {i}", user=f"u{i % 3}")
            last = two.add("the last one")
            wait_for(
                "the last event",
                lambda: last in {r.event["memory_id"] for r in receiver.requests()},
            )
            feed = one.feed()
            sent = [r.headers["X-Engram-Delivery"] for r in receiver.requests()]
            assert sent == [str(e["id"]) for e in feed]  # each once, in order
            assert {s for _, _, s, _ in one.log(hook["id"])} == {"delivered"}
            assert len(one.log(hook["id"])) == len(feed)
    finally:
        first.close()
        second.close()


def test_a_lease_is_taken_by_one_holder_until_it_runs_out(tmp_path: Path) -> None:
    memory = Memory(tmp_path / "engram.db", embedder="test")
    hook = access.create_webhook(memory, "http://127.0.0.1:9/hook")
    assert access.lease_webhook(memory, hook.id, "one", 60)
    assert not access.lease_webhook(memory, hook.id, "two", 60)
    assert access.lease_webhook(memory, hook.id, "one", 60)  # renewed by its holder
    access.release_webhook(memory, hook.id, "two")  # not two's to release
    assert not access.lease_webhook(memory, hook.id, "two", 60)
    access.release_webhook(memory, hook.id, "one")
    assert access.lease_webhook(memory, hook.id, "two", -1)  # taken, and already run out
    assert access.lease_webhook(memory, hook.id, "one", 60)
    assert not access.lease_webhook(memory.for_tenant("other"), hook.id, "three", 60)
    access.delete_webhook(memory, hook.id)
    assert not access.lease_webhook(memory, hook.id, "one", 60)
    memory.close()
