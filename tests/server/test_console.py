"""The web console in a real headless Chromium against the real server (uvicorn on loopback).

Each test gets a fresh store seeded with two people (Maya moved from Lisbon to Porto, has a
sister, changed jobs; Tom lives in Dublin with his dog) and a fresh server; the browser is shared.
The tests also save a screenshot of each view to docs/console/ (docs/console.md embeds them).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engramdb import Memory, access

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    # Never a silent pass: without the browser these tests fail unless skipped on purpose.
    if not os.environ.get("ENGRAM_SKIP_BROWSER"):
        raise RuntimeError(
            "the console tests need Chromium at /usr/bin/chromium: run `make browser` "
            "(Debian's chromium), or set ENGRAM_SKIP_BROWSER=1 to skip them"
        )
    pytest.skip("ENGRAM_SKIP_BROWSER is set", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the console tests need the playwright Python package"
)
uvicorn = pytest.importorskip("uvicorn", reason="the console tests need engramdb[server]")
server_app = pytest.importorskip(
    "engramdb.server.app", reason="the console tests need engramdb[server]"
)

Browser = sync_api.Browser
Page = sync_api.Page
expect = sync_api.expect

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "console"
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync",
]  # fmt: skip
XSS_TEXT = 'I\'m vegetarian <img src=x onerror="window.pwned=1"> & <b>proud</b>'


@dataclass
class Console:
    """A running server over a seeded store, and the ids the tests look at."""

    base: str
    admin_key: str
    memory: Memory
    ids: dict[str, str]

    def url(self, fragment: str = "") -> str:
        return f"{self.base}/console/{fragment}"

    def api(self, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        """Calls the REST API directly (to check what the console did); (status, JSON)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base}/v1/{path}", data=data, method=method)
        req.add_header("Authorization", f"Bearer {key or self.admin_key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def fact_id(self, text: str) -> str:
        status, page = self.api("GET", "facts?user_id=maya&include_expired=true&limit=100")
        assert status == 200, page
        return next(f["id"] for f in page["items"] if f["text"].startswith(text))

    def new_key(self, role: str) -> str:
        """A key made through the server's key API (POST /v1/keys) with the admin key."""
        status, body = self.api("POST", "keys", {"role": role, "name": f"console {role}"})
        assert status == 201, body
        return str(body["key"])


def _seed(memory: Memory) -> dict[str, str]:
    ids: dict[str, str] = {}
    maya = [
        ("lisbon", "user", "I live in Lisbon, near the river.", "2024-01-10T10:00:00Z"),
        (None, "assistant", "Lovely! Lisbon is beautiful.", "2024-01-10T10:00:30Z"),
        ("sister", "user", "My sister Inês is visiting next week.", "2024-01-10T10:01:00Z"),
        ("northwind", "user", "I work at Northwind as a designer.", "2024-01-10T10:02:00Z"),
    ]
    added = memory.add(
        [
            {
                "role": role,
                "name": "Maya" if role == "user" else None,
                "content": text,
                "timestamp": at,
                "metadata": {"channel": "chat"},
            }
            for _, role, text, at in maya
        ],
        user_id="maya",
        session_id="2024-01-10",
    )
    ids.update({name: i for (name, *_), i in zip(maya, added, strict=True) if name})
    [ids["porto"]] = memory.add(
        {"role": "user", "name": "Maya", "content": "I moved to Porto yesterday!",
         "timestamp": "2024-05-29T09:00:00Z"},
        user_id="maya", session_id="2024-05-29",
    )  # fmt: skip
    ids["globex"], _ = memory.add(
        [
            {"role": "user", "name": "Maya", "content": "I left Northwind and joined Globex.",
             "timestamp": "2024-07-02T09:00:00Z"},
            {"role": "assistant", "content": "Congratulations on the new job!",
             "timestamp": "2024-07-02T09:00:20Z"},
        ],
        user_id="maya", session_id="2024-07-02",
    )  # fmt: skip
    tom = memory.add(
        [
            {"role": "user", "name": "Tom", "content": "I live in Dublin.",
             "timestamp": "2024-03-03T18:00:00Z"},
            {"role": "user", "name": "Tom", "content": "My dog Rex loves the beach.",
             "timestamp": "2024-03-03T18:01:00Z"},
            {"role": "user", "name": "Tom", "content": XSS_TEXT,
             "timestamp": "2024-03-03T18:02:00Z"},
        ],
        user_id="tom", session_id="2024-03-03",
    )  # fmt: skip
    ids["tom_xss"] = tom[2]
    memory.add(
        {"role": "user", "name": "Tom", "content": "Please keep your answers short.",
         "timestamp": "2024-03-04T10:00:00Z"},
        user_id="tom", agent_id="planner", session_id="2024-03-04",
    )  # fmt: skip
    return ids


def _admin_key(memory: Memory) -> str:
    """The first admin key comes from the library (`engram keys create` does the same):
    nothing can call the server before one exists."""
    _, secret = access.create_key(memory, "admin", "console tests")
    return secret


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    memory = Memory(tmp_path / "engram.db", embedder="test")
    ids = _seed(memory)
    admin = _admin_key(memory)
    app = server_app.create_app(memory, webhooks=False, mcp=False)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="console-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "the server failed to start"
        assert time.monotonic() < deadline, "the server did not start within 15 s"
        time.sleep(0.02)
    try:
        yield Console(f"http://127.0.0.1:{port}", admin, memory, ids)
    finally:
        server.should_exit = True
        thread.join(10)
        memory.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, timezone_id="America/New_York")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors in the console: {errors}"


def sign_in(page: Page, console: Console, key: str | None = None, at: str = "#/people") -> None:
    """Signs in through the #key= link, then opens ``at``."""
    page.goto(console.url(f"#key={key or console.admin_key}"))
    expect(page.locator("#who-role")).to_be_visible()
    if at != "#/people":
        page.goto(console.url(at))


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(SHOTS / f"{name}.png"))


# ---------------------------------------------------------------- sign-in


def test_sign_in_form_shows_tenant_and_role_and_signs_out(page: Page, console: Console) -> None:
    page.goto(console.url())
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shoot(page, "signin")
    page.get_by_label("API key").fill(console.admin_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who-tenant")).to_have_text("default")
    expect(page.locator("#who-role")).to_have_text("admin")
    assert page.evaluate("sessionStorage.getItem('engramdb.console.key')") == console.admin_key

    page.reload()  # the key survives a reload of the tab
    expect(page.locator("#who-role")).to_have_text("admin")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('engramdb.console.key')") is None


def test_key_in_the_fragment_signs_in_and_leaves_the_address_bar(
    page: Page, console: Console
) -> None:
    page.goto(console.url(f"#key={console.admin_key}"))
    expect(page.locator("#who-role")).to_have_text("admin")
    assert console.admin_key not in page.url
    assert page.url.endswith("#/people")
    assert console.admin_key not in page.evaluate(
        "history.state ? JSON.stringify(history.state) : ''"
    )


def test_a_wrong_key_shows_the_sign_in_error(page: Page, console: Console) -> None:
    page.goto(console.url("#key=ek_not-a-real-key"))
    alert = page.locator("#signin-error [role=alert]")
    expect(alert).to_contain_text("This API key was not accepted")
    expect(alert.locator(".err-code")).to_have_text("unauthorized")
    expect(page.locator("#session")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('engramdb.console.key')") is None

    page.get_by_label("API key").fill("another-wrong-key")
    page.get_by_role("button", name="Sign in").click()
    expect(alert.locator(".err-code")).to_have_text("unauthorized")
    shoot(page, "signin-error")


# ---------------------------------------------------------------- views


def test_people_lists_users_with_counts_and_scopes_every_view(page: Page, console: Console) -> None:
    sign_in(page, console)
    table = page.locator("#people-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    maya = table.locator("tr[data-user=maya]")
    expect(maya).to_contain_text("maya")
    # counts come from the API: 7 messages and the facts drawn from them
    _, users = console.api("GET", "users")
    row = next(u for u in users["items"] if u["user_id"] == "maya")
    expect(maya.locator("td.num").first).to_have_text(str(row["memories"]))
    expect(table.locator("tr[data-user=tom]")).to_contain_text("planner")
    shoot(page, "people")

    table.get_by_role("button", name="Show tom").click()
    expect(page).to_have_url(re.compile(r"#/facts$"))
    expect(page.locator(".scope-name")).to_have_text("tom")
    expect(page.locator("#profile-list")).to_contain_text("Tom lives in Dublin")
    expect(page.locator("#scope")).to_have_value(
        json.dumps({"user_id": "tom", "agent_id": None}, separators=(",", ":"))
    )

    page.goto(console.url("#/memories"))
    expect(page.locator("#memory-list")).to_contain_text("My dog Rex loves the beach.")
    expect(page.locator("#memory-list")).not_to_contain_text("Lisbon")
    expect(page.locator("#memory-list")).not_to_contain_text("answers short")

    # a scope is the exact pair: Tom with the planner agent is another set of memories
    page.locator("#scope").select_option(label="tom · agent planner")
    expect(page.locator(".scope-name")).to_have_text("tom · agent planner")
    expect(page.locator("#memory-list")).to_contain_text("Please keep your answers short.")
    expect(page.locator("#memory-list")).not_to_contain_text("Dublin")


def test_memories_filter_by_kind_session_and_text_and_page_with_cursors(
    page: Page, console: Console
) -> None:
    sign_in(page, console, at="#/memories")
    rows = page.locator("#memory-list .memory-row")
    expect(rows.first).to_be_visible()
    expect(page.locator("#memory-list")).to_contain_text("I live in Lisbon, near the river.")
    shoot(page, "memories")

    page.get_by_label("Kind").select_option("fact")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"kind=fact"))
    expect(rows.first).to_be_visible()
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.kind)")) == {"fact"}

    page.get_by_label("Kind").select_option("")
    page.get_by_label("Session").fill("2024-07-02")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(2)  # Maya's turn and the assistant's (the facts have no session)
    expect(page.locator("#memory-list")).to_contain_text("I left Northwind and joined Globex.")

    page.get_by_label("Session").fill("")
    page.get_by_label("Text contains (this page)").fill("porto")
    page.get_by_role("button", name="Apply").click()
    expect(rows.first).to_be_visible()
    for text in rows.locator(".memory-text").all_inner_texts():
        assert "porto" in text.lower()

    # cursor pagination, three at a time
    page.goto(console.url("#/memories?limit=3"))
    expect(rows).to_have_count(3)
    first = rows.evaluate_all("rs => rs.map(r => r.dataset.id)")
    expect(page.locator("#page-prev")).to_be_disabled()
    page.locator("#page-next").click()
    expect(page.locator("#page-number")).to_have_text("Page 2")
    expect(rows.first).to_be_visible()
    second = rows.evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert second and not set(first) & set(second)
    page.locator("#page-prev").click()
    expect(page.locator("#page-number")).to_have_text("Page 1")
    expect(rows).to_have_count(3)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.id)") == first


def test_search_shows_score_breakdown_sources_and_validity(page: Page, console: Console) -> None:
    sign_in(page, console, at="#/search")
    page.get_by_label("Query").fill("Where does Maya live now?")
    page.get_by_role("button", name="Search").click()
    first = page.locator("#hits .hit").first
    expect(first.locator(".hit-text")).to_have_text("Maya lives in Porto (since 28 May 2024)")
    expect(first.locator(".badge-fact")).to_be_visible()
    expect(first.locator(".badge-current")).to_be_visible()
    expect(first.locator(".validity")).to_contain_text("since 28 May 2024")
    expect(first.locator(".score-value")).to_have_text(re.compile(r"^0\.\d{4}$"))
    # every key of the explain dict is a row of the breakdown
    _, found = console.api(
        "POST", "search", {"query": "Where does Maya live now?", "user_id": "maya"}
    )
    for key, value in found["results"][0]["explain"].items():
        expect(first.locator(f".explain tr[data-key={key}] .explain-value")).to_have_text(
            str(value)
        )
    expect(first.locator(".source")).to_contain_text("I moved to Porto yesterday!")
    expect(first.locator(".source")).to_contain_text("29 May 2024, 09:00")
    shoot(page, "search")

    # the past, as it was then
    page.get_by_label("As of (UTC)").fill("2024-04-01T00:00")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".summary")).to_contain_text("as of 1 Apr 2024")
    lisbon = page.locator("#hits .hit", has_text="Maya lives in Lisbon").first
    expect(lisbon.locator(".badge-current")).to_be_visible()
    expect(page.locator("#hits .hit-text", has_text="Porto")).to_have_count(0)
    expect(lisbon).not_to_contain_text("superseded")  # as of April, the move was not known

    # past facts shown as past, and left out on request
    page.get_by_label("As of (UTC)").fill("")
    page.get_by_label("Query").fill("Where did Maya live in Lisbon?")
    page.get_by_role("button", name="Search").click()
    past = page.locator("#hits .hit", has_text="Maya lives in Lisbon").first
    expect(past.locator(".badge-past")).to_be_visible()
    expect(past.locator(".hit-text")).to_have_class(re.compile(r"\bpast\b"))
    expect(past.locator(".validity")).to_contain_text("until 28 May 2024")
    page.get_by_label("Include past facts").uncheck()
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"expired=0"))
    expect(page.locator("#hits .hit").first).to_be_visible()
    expect(page.locator("#hits .badge-past")).to_have_count(0)


def test_memory_detail_shows_validity_sources_and_versions(page: Page, console: Console) -> None:
    lisbon = console.fact_id("Maya lives in Lisbon")
    porto = console.fact_id("Maya lives in Porto")
    sign_in(page, console, at=f"#/memory/{lisbon}")
    expect(page.locator("#memory-title")).to_have_text("Maya lives in Lisbon")
    validity = page.locator("#validity")
    expect(validity.locator(".badge-past")).to_be_visible()
    expect(validity).to_contain_text("10 Jan 2024, 10:00")
    expect(validity).to_contain_text("28 May 2024")
    sources = page.locator("#sources .source")
    expect(sources).to_contain_text("I live in Lisbon, near the river.")
    expect(sources).to_contain_text("Maya")
    events = page.locator("#versions .version")
    expect(events).to_have_count(2)
    expect(events.nth(0)).to_have_attribute("data-event", "create")
    expect(events.nth(1)).to_have_attribute("data-event", "supersede")
    expect(events.nth(1).locator("tr.changed", has_text="valid_to")).to_contain_text("28 May 2024")
    shoot(page, "memory")

    page.locator("#superseded-link").click()
    expect(page).to_have_url(re.compile(re.escape(porto)))
    expect(page.locator("#memory-title")).to_have_text("Maya lives in Porto (since 28 May 2024)")
    expect(page.locator("#validity .badge-current")).to_be_visible()

    page.locator("#sources .source a").first.click()  # a source opens the message itself
    expect(page.locator("#memory-title")).to_have_text("I moved to Porto yesterday!")
    expect(page.locator(".fields")).to_contain_text("2024-05-29")
    expect(page.locator("#meta-title")).to_be_visible()


def test_facts_and_profile_with_past_facts_struck_through(page: Page, console: Console) -> None:
    sign_in(page, console, at="#/facts")
    profile = page.locator("#profile-list")
    expect(profile).to_contain_text("Maya lives in Porto (since 28 May 2024)")
    expect(profile).to_contain_text("Inês is Maya's sister")
    expect(profile).to_contain_text("Maya works at Globex")
    expect(profile.locator("li[data-attribute=lives_in]")).to_contain_text("since 28 May 2024")
    facts = page.locator("#fact-list")
    expect(facts).to_contain_text("Maya works at Globex")
    expect(facts).not_to_contain_text("Maya lives in Lisbon")

    page.get_by_label("Include past facts (ended or superseded)").check()
    expect(page).to_have_url(re.compile(r"#/facts\?all=1$"))
    lisbon = page.locator("#fact-list .fact", has_text="Maya lives in Lisbon")
    expect(lisbon.locator(".fact-text")).to_have_class(re.compile(r"\bpast\b"))
    expect(lisbon.locator(".validity")).to_have_text("from 10 Jan 2024, 10:00 until 28 May 2024")
    expect(lisbon.locator(".source")).to_contain_text("I live in Lisbon, near the river.")
    decoration = lisbon.locator(".fact-text").evaluate(
        "e => getComputedStyle(e).textDecorationLine"
    )
    assert decoration == "line-through"
    shoot(page, "facts")


def test_timeline_groups_by_day_and_marks_where_facts_began_and_ended(
    page: Page, console: Console
) -> None:
    sign_in(page, console, at="#/timeline")
    day = page.locator(".tl-day[data-day='2024-01-10']")
    expect(day.locator("h2")).to_have_text("Wednesday, 10 January 2024")
    expect(day).to_contain_text("I live in Lisbon, near the river.")
    expect(day.locator(".tl-began", has_text="Maya lives in Lisbon")).to_have_count(1)
    expect(day.locator(".tl-began", has_text="Inês is Maya's sister")).to_have_count(1)
    moved = page.locator(".tl-day[data-day='2024-05-28']")
    expect(moved.locator(".tl-began", has_text="Maya lives in Porto")).to_have_count(1)
    expect(moved.locator(".tl-ended", has_text="Maya lives in Lisbon")).to_have_count(1)
    expect(moved.locator(".tl-ended .tl-text")).to_have_class(re.compile(r"\bpast\b"))
    days = page.locator(".tl-day").evaluate_all("ds => ds.map(d => d.dataset.day)")
    assert days == sorted(days)
    assert "2024-07-02" in days
    shoot(page, "timeline")


def test_timeline_reads_pages_of_the_timeline_and_later_reads_on(
    page: Page, console: Console
) -> None:
    """A scope longer than a page: the first page shows only what happened up to its last
    instant (a fact's later end waits), "Later" reads the next page from /v1/timeline, and
    every turn appears once, in order. The view never pages /v1/memories."""
    notes = [
        {"role": "user", "name": "Maya", "content": f"Training log {i}.",
         "timestamp": f"2023-06-{1 + i // 24:02d}T{i % 24:02d}:00:00Z"}
        for i in range(250)
    ]  # fmt: skip
    console.memory.add(notes[::-1], user_id="maya", session_id="log")  # recorded newest first
    sign_in(page, console)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(console.url("#/timeline"))
    more = page.locator("#timeline-more")
    expect(more).to_be_visible()
    expect(page.locator("#timeline-horizon")).to_contain_text("2023")
    said = page.locator(".tl-said")
    expect(said).to_have_count(200)
    expect(page.locator(".tl-day[data-day^='2024']")).to_have_count(0)
    expect(page.locator(".tl-ended")).to_have_count(0)  # Lisbon's end is past the horizon
    more.click()
    expect(more).to_have_count(0)
    total = len(console.memory.list(user_id="maya", kind="message", limit=1000).items)
    expect(said).to_have_count(total)
    ids = said.evaluate_all("items => items.map(i => i.dataset.id)")
    assert len(set(ids)) == len(ids) == total
    days = page.locator(".tl-day").evaluate_all("ds => ds.map(d => d.dataset.day)")
    assert days == sorted(days) and days[0] == "2023-06-01" and "2024-05-28" in days
    first_day = page.locator(".tl-day[data-day='2023-06-01'] .tl-said .tl-text")
    expect(first_day.first).to_have_text("Training log 0.")
    moved = page.locator(".tl-day[data-day='2024-05-28']")
    expect(moved.locator(".tl-ended", has_text="Maya lives in Lisbon")).to_have_count(1)
    paths = [url.split("/v1/", 1)[1] for url in asked if "/v1/" in url]
    assert [p for p in paths if p.startswith("timeline?")], paths
    assert not [p for p in paths if p.startswith("memories")], paths


def test_entities_show_relation_and_the_memories_that_mention_them(
    page: Page, console: Console
) -> None:
    sign_in(page, console, at="#/entities")
    table = page.locator("#entity-table")
    ines = table.locator("tr", has_text="Inês")
    expect(ines).to_contain_text("person")
    expect(ines).to_contain_text("sister of Maya")
    expect(table.locator("tr", has_text="Globex")).to_contain_text("organization")
    ines.get_by_role("link", name="Inês").click()
    panel = page.locator("#entity-panel")
    expect(panel.locator("#entity-memories")).to_contain_text(
        "My sister Inês is visiting next week."
    )
    expect(panel.locator("#entity-memories")).to_contain_text("Inês is Maya's sister")
    shoot(page, "entities")
    panel.get_by_role("link", name="My sister Inês is visiting next week.").click()
    expect(page.locator("#memory-title")).to_have_text("My sister Inês is visiting next week.")


# ---------------------------------------------------------------- changes


def test_edit_then_history_shows_the_new_version(page: Page, console: Console) -> None:
    target = console.ids["northwind"]
    sign_in(page, console, at=f"#/memory/{target}")
    expect(page.locator("#versions .version")).to_have_count(1)
    page.get_by_role("button", name="Edit").click()
    page.get_by_label("Text", exact=True).fill("I work at Northwind as a senior designer.")
    page.get_by_label("Metadata (JSON object)").fill('{"channel": "email", "checked": true}')
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#memory-title")).to_have_text("I work at Northwind as a senior designer.")
    update = page.locator("#versions .version[data-event=update]")
    expect(update).to_have_count(1)
    text_row = update.locator("tr.changed", has_text="text")
    expect(text_row.locator(".before")).to_have_text("I work at Northwind as a designer.")
    expect(text_row.locator(".after")).to_have_text("I work at Northwind as a senior designer.")
    _, record = console.api("GET", f"memories/{target}")
    assert record["text"] == "I work at Northwind as a senior designer."
    assert record["metadata"] == {"channel": "email", "checked": True}


def test_archive_puts_a_fact_away_and_unarchive_brings_it_back(
    page: Page, console: Console
) -> None:
    porto = console.fact_id("Maya lives in Porto")
    sign_in(page, console, at=f"#/memory/{porto}")
    page.get_by_role("button", name="Archive", exact=True).click()
    expect(page.locator("#action-status")).to_contain_text("Archived: kept")
    expect(page.locator(".view-header .badge-archived")).to_be_visible()
    expect(page.locator("#versions .version[data-event=archive]")).to_have_count(1)
    _, record = console.api("GET", f"memories/{porto}")
    assert record["archived_at"] is not None

    page.goto(console.url("#/facts"))
    expect(page.locator("#profile")).not_to_contain_text("Maya lives in Porto")
    page.goto(console.url("#/memories"))
    page.get_by_label("Archived").select_option("true")
    page.get_by_role("button", name="Apply").click()
    rows = page.locator("#memory-list .memory-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Maya lives in Porto")
    expect(rows.first.locator(".badge-archived")).to_be_visible()

    rows.first.get_by_role("link").click()
    page.get_by_role("button", name="Unarchive").click()
    expect(page.locator("#action-status")).to_contain_text("Unarchived")
    expect(page.locator(".view-header .badge-archived")).to_have_count(0)
    page.goto(console.url("#/facts"))
    expect(page.locator("#profile-list")).to_contain_text("Maya lives in Porto")


def test_delete_asks_first_cancel_keeps_and_confirm_removes(page: Page, console: Console) -> None:
    target = console.ids["globex"]
    sign_in(page, console, at=f"#/memory/{target}")
    expect(page.locator("#memory-title")).to_have_text("I left Northwind and joined Globex.")
    page.get_by_role("button", name="Delete").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete this message?")
    expect(dialog).to_contain_text("I left Northwind and joined Globex.")
    expect(dialog).to_contain_text(target)
    shoot(page, "delete-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#memory-title")).to_be_visible()
    assert console.api("GET", f"memories/{target}")[0] == 200

    page.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete message").click()
    expect(page).to_have_url(re.compile(r"#/memories$"))
    expect(page.locator("[role=status]", has_text="Deleted message")).to_be_visible()
    expect(page.locator("#memory-list")).not_to_contain_text("I left Northwind and joined Globex.")
    assert console.api("GET", f"memories/{target}")[0] == 404
    # the job fact derived from it alone went with it: Northwind is current again
    page.goto(console.url("#/facts"))
    expect(page.locator("#profile-list")).to_contain_text("Maya works at Northwind")


def test_a_reader_key_cannot_delete_and_is_told_why(page: Page, console: Console) -> None:
    reader = console.new_key("reader")
    target = console.ids["lisbon"]
    sign_in(page, console, key=reader, at=f"#/memory/{target}")
    expect(page.locator("#who-role")).to_have_text("reader")
    expect(page.get_by_text("Read-only key")).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    page.locator("dialog#confirm").get_by_role("button", name="Delete message").click()
    alert = page.locator("#action-status [role=alert]")
    expect(alert).to_contain_text("Not allowed: a key with the reader role cannot do this.")
    expect(alert.locator(".err-code")).to_have_text("forbidden")
    shoot(page, "forbidden")
    expect(page.locator("#who-role")).to_be_visible()  # still signed in
    assert console.api("GET", f"memories/{target}")[0] == 200


def test_errors_show_their_code_and_message(page: Page, console: Console) -> None:
    sign_in(page, console, at="#/memory/no-such-memory")
    alert = page.locator("[role=alert]")
    expect(alert).to_contain_text("Not found.")
    status, body = console.api("GET", "memories/no-such-memory")
    assert status == 404
    expect(alert.locator(".err-code")).to_have_text(body["error"]["code"])
    expect(alert.locator(".err-message")).to_have_text(body["error"]["message"])


def test_stored_text_is_shown_as_text_never_as_markup(page: Page, console: Console) -> None:
    sign_in(page, console, at=f"#/memory/{console.ids['tom_xss']}")
    expect(page.locator("#memory-title")).to_have_text(XSS_TEXT)
    page.goto(console.url("#/people"))
    page.locator("#people-table").get_by_role("button", name="Show tom").click()
    page.goto(console.url("#/memories"))
    expect(page.locator("#memory-list")).to_contain_text(XSS_TEXT)
    assert page.locator("#view img, #view b").count() == 0
    assert page.evaluate("window.pwned") is None
