"""The REST server under concurrent load: writers and readers against a real ``engram serve`` on
loopback for a bounded time, then every acknowledged write read back.

    python benchmarks/load_server.py [--seconds 60] [--writers 8] [--readers 32] [--users 20]
                                     [--embedder local|test] [--rate-limit N] [--out FILE]

A fresh store in a temporary folder is seeded in this process with the scripted histories of
``truth_sets.py`` (one user each, 3–6 dated sessions of chat turns; facts extracted by the
default offline rules). Each client gets its own API key, made with ``access.create_key``, so the
per-key rate limit (the server's default unless ``--rate-limit`` sets ``ENGRAM_RATE_LIMIT``)
applies to each client alone. The server then runs as its own process, the way users start it:
``engram --db STORE --embedder E serve --port P --no-webhooks`` on 127.0.0.1, with no
``ENGRAM_*`` variable but ``ENGRAM_HOME`` (the temporary folder: no config file), and the run
starts once ``/v1/ready`` answers.

Clients are threads of this process, each with its own ``httpx.Client``, in a closed loop (the
next request leaves when the previous one is answered; no think time):

- writers: ``POST /v1/memories`` (80 %: one to four turns for a random user), ``PATCH`` (12 %)
  and ``DELETE`` (8 %) of a memory the same writer added;
- readers: ``POST /v1/search`` (50 %), ``POST /v1/context`` (15 %), ``GET /v1/memories`` (10 %: a
  page of 20 and up to two more), ``GET /v1/memories/{id}`` (10 %, a seeded id), ``GET
  /v1/profile`` (8 %) and ``GET /v1/facts`` (7 %), for a random user.

Any response but a 2xx and any exception is an error (the first few bodies are kept). Latency runs
from sending a request to having read its whole response; percentiles are over the answered
ones; throughput is requests over the whole window (first request to last answer). Afterwards
every acknowledged id (from a 201) is read back: one not deleted must be there with the text last
acknowledged for it (what was added, or the last PATCH), one deleted (200) must answer 404. The
server's RSS and CPU time come from ``/proc``. Writes JSON and prints a markdown table; exits 1
on any error, lost write or server death.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from speed import _machine, pct, queries, synthetic_messages
from truth_sets import generate

WRITER_MIX = (("add", 80), ("patch", 12), ("delete", 8))
READER_MIX = (
    ("search", 50), ("context", 15), ("list", 10), ("get", 10), ("profile", 8), ("facts", 7),
)  # fmt: skip
ENDPOINTS = {
    "add": "POST /v1/memories",
    "patch": "PATCH /v1/memories/{id}",
    "delete": "DELETE /v1/memories/{id}",
    "search": "POST /v1/search",
    "context": "POST /v1/context",
    "list": "GET /v1/memories",
    "get": "GET /v1/memories/{id}",
    "profile": "GET /v1/profile",
    "facts": "GET /v1/facts",
}
ERRORS_KEPT = 5


# -- the store ------------------------------------------------------------------------------


@dataclass
class Seeded:
    """What the server starts with, and what the clients need to know about it."""

    users: list[str]
    ids: list[str]
    questions: list[tuple[str, str, str | None]]  # user, query, as_of
    keys: dict[str, list[str]]  # role of the client -> one token per client
    lines: list[str] = field(default_factory=list)  # what writers say
    messages: int = 0
    seconds: float = 0.0


def seed(path: Path, embedder: str, users: int, clients: dict[str, int]) -> Seeded:
    """Fill a new store with ``users`` scripted histories and make one API key per client."""
    from engramdb import Memory, access

    histories = generate(users)
    found = Seeded([h.user_id for h in histories], [], _questions(histories), {})
    started = time.perf_counter()
    with Memory(path, embedder=embedder) as mem:
        for history in histories:
            for session in history.sessions:
                found.ids += mem.add(
                    list(session.messages), user_id=history.user_id, session_id=session.session_id
                )
        found.seconds = time.perf_counter() - started
        for kind, count in clients.items():
            role = "writer" if kind == "writer" else "reader"
            found.keys[kind] = [
                access.create_key(mem, role, f"{kind} {i}")[1] for i in range(count)
            ]
    found.messages = len(found.ids)
    found.lines = [m["content"] for m in synthetic_messages(4000, seed=100)]
    return found


def _questions(histories: list[Any]) -> list[tuple[str, str, str | None]]:
    """The histories' own questions, and generic ones asked of random users."""
    rng = random.Random(5)
    asked = [(h.user_id, q.text, q.as_of) for h in histories for q in h.questions]
    users = [h.user_id for h in histories]
    return asked + [(rng.choice(users), q, None) for q in queries(len(asked), seed=17)]


# -- the server -----------------------------------------------------------------------------


class Server:
    """``engram serve`` in its own process on a free loopback port."""

    def __init__(self, store: Path, embedder: str, folder: Path) -> None:
        engram = Path(sys.executable).with_name("engram")
        if not engram.exists():
            sys.exit(f"no {engram}: run with the project's venv (.venv/bin/python)")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [
            str(engram), "--db", str(store), "--embedder", embedder,
            "serve", "--port", str(self.port), "--no-webhooks",
        ]  # fmt: skip
        self.log_path = folder / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str], timeout: float = 180) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                sys.exit(f"the server exited before it was ready:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/v1/ready", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        sys.exit(f"the server was not ready within {timeout:g} s:\n{self.log()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def memory_mb(self) -> dict[str, float]:
        """Resident memory now and at its peak (VmRSS, VmHWM), in MB."""
        assert self.proc is not None
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        )
        return {name: int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM")}

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (every thread)."""
        assert self.proc is not None
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        after_name = stat.rsplit(")", 1)[1].split()
        return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int | None:
        """Stop the server as Ctrl-C does; its exit code (None if it had to be killed)."""
        if self.proc is None or not self.alive():
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env(home: Path) -> dict[str, str]:
    """This environment without ENGRAM_* settings, with ENGRAM_HOME a folder with no config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env["ENGRAM_HOME"] = str(home)
    return env


# -- the clients ----------------------------------------------------------------------------


@dataclass
class Recorder:
    """One client's timings and errors by endpoint."""

    latency_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def call(self, client: httpx.Client, what: str, method: str, url: str, **kw: Any) -> Any:
        """Send one request; its JSON if it succeeded, else None (the error recorded)."""
        t0 = time.perf_counter()
        try:
            response = client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self._error(what, {"exception": repr(exc)})
            return None
        elapsed = (time.perf_counter() - t0) * 1000
        if not response.is_success:
            self._error(what, {"status": response.status_code, "body": response.text[:300]})
            return None
        try:
            answer = response.json()
        except ValueError:
            self._error(what, {"status": response.status_code, "not_json": response.text[:300]})
            return None
        self.latency_ms[what].append(elapsed)
        return answer

    def _error(self, what: str, detail: dict[str, Any]) -> None:
        self.errors[what] += 1
        if len(self.samples[what]) < ERRORS_KEPT:
            self.samples[what].append(detail)


class Window:
    """The bounded run: every client starts at once and stops sending at the deadline."""

    def __init__(self, parties: int, seconds: float) -> None:
        self.seconds = seconds
        self.started = 0.0
        self.barrier = threading.Barrier(parties, action=self._open)

    def _open(self) -> None:
        self.started = time.perf_counter()

    def open(self) -> float:
        """Wait until every client is ready; the deadline."""
        self.barrier.wait()
        return self.started + self.seconds


@dataclass
class Writes:
    """What a writer was told succeeded: id -> the text it should have now; ids deleted; ids
    whose last change was not acknowledged (an error: their text, or presence, is unknown)."""

    expected: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    unsure: set[str] = field(default_factory=set)
    patched: int = 0


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)


def _pick(rng: random.Random, mix: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in mix], weights=[w for _, w in mix])[0]


class Writer:
    """One writer client: adds turns for random users, corrects and deletes its own memories."""

    def __init__(self, index: int, client: httpx.Client, seeded: Seeded) -> None:
        self.index, self.client = index, client
        self.users, self.lines = seeded.users, seeded.lines
        self.rng = random.Random(1000 + index)
        self.rec, self.writes = Recorder(), Writes()
        self.live: list[str] = []  # ids it added and has not deleted

    def run(self, deadline: float) -> None:
        while time.perf_counter() < deadline:
            action = _pick(self.rng, WRITER_MIX) if self.live else "add"
            if action == "add":
                self.add()
            elif action == "patch":
                self.patch(self.rng.choice(self.live))
            else:
                self.delete(self.live.pop(self.rng.randrange(len(self.live))))

    def add(self) -> None:
        user = self.rng.choice(self.users)
        turns = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": self.rng.choice(self.lines)}
            for i in range(self.rng.randint(1, 4))
        ]
        body = {"messages": turns, "user_id": user, "session_id": f"live-{user}-w{self.index}"}
        answer = self.rec.call(self.client, "add", "POST", "/v1/memories", json=body)
        if answer is not None:
            for ident, turn in zip(answer["ids"], turns, strict=True):
                self.writes.expected[ident] = turn["content"]
                self.live.append(ident)

    def patch(self, ident: str) -> None:
        w = self.writes
        text = f"{w.expected[ident]} (corrected by writer {self.index}, {w.patched})"
        path = f"/v1/memories/{ident}"
        if self.rec.call(self.client, "patch", "PATCH", path, json={"text": text}) is not None:
            w.expected[ident] = text
            w.patched += 1
        else:
            w.unsure.add(ident)

    def delete(self, ident: str) -> None:
        w = self.writes
        if self.rec.call(self.client, "delete", "DELETE", f"/v1/memories/{ident}") is not None:
            w.deleted.add(ident)
        else:
            w.unsure.add(ident)
        del w.expected[ident]


def writer(
    index: int, url: str, token: str, seeded: Seeded, window: Window
) -> tuple[Recorder, Writes]:
    with _client(url, token) as client:
        one = Writer(index, client, seeded)
        one.run(window.open())
    return one.rec, one.writes


def reader(index: int, url: str, token: str, seeded: Seeded, window: Window) -> Recorder:
    rng = random.Random(2000 + index)
    rec = Recorder()
    with _client(url, token) as client:
        deadline = window.open()
        while time.perf_counter() < deadline:
            _read(client, rec, rng, seeded, _pick(rng, READER_MIX))
    return rec


def _read(
    client: httpx.Client, rec: Recorder, rng: random.Random, seeded: Seeded, action: str
) -> None:
    user, query, as_of = rng.choice(seeded.questions)
    if action == "search":
        body = {"query": query, "user_id": user, "limit": 10, "as_of": as_of}
        rec.call(client, action, "POST", "/v1/search", json=body)
    elif action == "context":
        body = {"query": query, "user_id": user, "as_of": as_of}
        rec.call(client, action, "POST", "/v1/context", json=body)
    elif action == "list":
        _pages(client, rec, user, rng.randint(1, 3))
    elif action == "get":
        rec.call(client, action, "GET", f"/v1/memories/{rng.choice(seeded.ids)}")
    else:
        params = {"user_id": user} if action == "profile" else {"user_id": user, "limit": 20}
        rec.call(client, action, "GET", f"/v1/{action}", params=params)


def _pages(client: httpx.Client, rec: Recorder, user: str, pages: int) -> None:
    params: dict[str, Any] = {"user_id": user, "limit": 20}
    for _ in range(pages):
        page = rec.call(client, "list", "GET", "/v1/memories", params=params)
        if not page or not page.get("next_cursor"):
            return
        params["cursor"] = page["next_cursor"]


def run_clients(
    url: str, seeded: Seeded, writers: int, readers: int, seconds: float
) -> tuple[list[Recorder], list[Writes], float]:
    """Every client at once for ``seconds``; their records and the window's length."""
    window = Window(writers + readers, seconds)
    with ThreadPoolExecutor(writers + readers) as pool:
        wrote = [
            pool.submit(writer, i, url, seeded.keys["writer"][i], seeded, window)
            for i in range(writers)
        ]
        read = [
            pool.submit(reader, i, url, seeded.keys["reader"][i], seeded, window)
            for i in range(readers)
        ]
        results = [f.result() for f in wrote]
        recorders = [rec for rec, _ in results] + [f.result() for f in read]
    return recorders, [w for _, w in results], time.perf_counter() - window.started


# -- after the run --------------------------------------------------------------------------


#: What an acknowledged id must be afterwards: its text; ANY_TEXT (present; its last PATCH was
#: not acknowledged); None (deleted).
ANY_TEXT = ""


def verify(url: str, tokens: list[str], writes: list[Writes]) -> dict[str, Any]:
    """Read back every acknowledged id: present with its last text, or 404 if deleted."""
    want: dict[str, str | None] = {}
    for w in writes:
        want.update(w.expected)
        want.update(dict.fromkeys(w.unsure & w.expected.keys(), ANY_TEXT))
        want.update(dict.fromkeys(w.deleted))
    items = sorted(want.items())
    problems: dict[str, list[str]] = defaultdict(list)
    with ThreadPoolExecutor(len(tokens)) as pool:
        parts = [
            pool.submit(_check, url, token, items[i :: len(tokens)])
            for i, token in enumerate(tokens)
        ]
        for kind, ident in (found for part in parts for found in part.result()):
            problems[kind].append(ident)
    return {
        "acknowledged_ids": len(items),
        "unacknowledged_changes": sum(len(w.unsure) for w in writes),
        "deleted": sum(len(w.deleted) for w in writes),
        "patched": sum(w.patched for w in writes),
        "lost_writes": len(problems["lost"]),
        "lost_updates": len(problems["stale_text"]),
        "deleted_but_present": len(problems["resurrected"]),
        "unexpected_answers": len(problems["unexpected"]),
        "examples": {kind: ids[:5] for kind, ids in problems.items()},
    }


def _check(url: str, token: str, items: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    problems = []
    with _client(url, token) as client:
        for ident, text in items:
            response = _get_patiently(client, f"/v1/memories/{ident}")
            found = _problem(response, text)
            if found:
                problems.append((found, ident))
    return problems


def _get_patiently(client: httpx.Client, path: str) -> httpx.Response:
    """A GET that waits out the per-key rate limit (the check is not the load)."""
    while True:
        response = client.get(path)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")))


def _problem(response: httpx.Response, text: str | None) -> str | None:
    if text is None:  # deleted
        gone = response.status_code == 404
        return None if gone else ("resurrected" if response.is_success else "unexpected")
    if response.status_code == 404:
        return "lost"
    if not response.is_success:
        return "unexpected"
    return None if text in (ANY_TEXT, response.json()["text"]) else "stale_text"


def table(recorders: list[Recorder], seconds: float) -> list[dict[str, Any]]:
    """Per endpoint: requests, errors, throughput and latency percentiles; then totals."""
    rows = [_row(ENDPOINTS[what], recorders, [what], seconds) for what in ENDPOINTS]
    rows.append(_row("all writes", recorders, ["add", "patch", "delete"], seconds))
    reads = [name for name, _ in READER_MIX]
    rows.append(_row("all reads", recorders, reads, seconds))
    rows.append(_row("all", recorders, list(ENDPOINTS), seconds))
    return rows


def _row(name: str, recorders: list[Recorder], whats: list[str], seconds: float) -> dict[str, Any]:
    ms = [v for r in recorders for w in whats for v in r.latency_ms.get(w, [])]
    errors = sum(r.errors.get(w, 0) for r in recorders for w in whats)
    samples = [s for r in recorders for w in whats for s in r.samples.get(w, [])]
    return {
        "endpoint": name,
        "requests": len(ms) + errors,
        "errors": errors,
        "per_s": (len(ms) + errors) / seconds,
        **{f"p{p}_ms": (pct(ms, p) if ms else None) for p in (50, 95, 99)},
        "error_samples": samples[:ERRORS_KEPT],
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| endpoint | requests | errors | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r["endpoint"]
        cells = [
            f"**{name}**" if name.startswith("all") else f"`{name}`",
            f"{r['requests']:,}",
            str(r["errors"]),
            f"{r['per_s']:.1f}",
            *(f"{r[f'p{p}_ms']:.1f}" if r["requests"] > r["errors"] else "—" for p in (50, 95, 99)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _code() -> dict[str, Any]:
    """Which engramdb ran: its folder, version and the commit named by .git/HEAD, read as files
    (no git command: others may be using the working tree)."""
    import engramdb

    src = Path(engramdb.__file__).resolve().parent
    found: dict[str, Any] = {"path": str(src), "version": engramdb.__version__}
    git = next((p / ".git" for p in src.parents if (p / ".git" / "HEAD").is_file()), None)
    if git is not None:
        found["commit"] = _head_commit(git)
        found["uncommitted_changes"] = "not checked"
    return found


def _head_commit(git: Path) -> str | None:
    head = (git / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head[:7]
    ref = head.removeprefix("ref: ")
    if (git / ref).is_file():
        return (git / ref).read_text().strip()[:7]
    packed = git / "packed-refs"
    lines = packed.read_text().splitlines() if packed.is_file() else []
    return next((line[:7] for line in lines if line.endswith(" " + ref)), None)


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--readers", type=int, default=32)
    parser.add_argument("--users", type=int, default=20, help="scripted histories seeded")
    parser.add_argument("--embedder", default="local", help="local (default) or test (smoke run)")
    parser.add_argument(
        "--rate-limit",
        type=int,
        help="the server's requests a minute per key (default: its own default; 0: off)",
    )
    parser.add_argument("--out", default="docs/results/load_server.json")
    args = parser.parse_args()
    machine = _machine()
    with tempfile.TemporaryDirectory(prefix="engram-load-") as tmp:
        result = run(args, Path(tmp))
    machine["load_avg_end"] = list(os.getloadavg())
    result = {"date": datetime.now(UTC).isoformat(), "machine": machine, "code": _code(), **result}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(_summary(result))
    if result["failed"]:
        sys.exit(1)


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Seed a store in ``folder``, serve it, load it, check it; the result without the machine."""
    env = _clean_env(folder)
    if args.rate_limit is not None:
        env["ENGRAM_RATE_LIMIT"] = str(args.rate_limit)
    os.environ.clear()  # the seeding in this process reads the same settings as the server
    os.environ.update(env)
    store = folder / "load.db"
    clients = {"writer": args.writers, "reader": args.readers, "check": 8}
    seeded = seed(store, args.embedder, args.users, clients)
    print(f"seeded {seeded.messages} messages for {args.users} users in {seeded.seconds:.1f} s")
    server = Server(store, args.embedder, folder)
    server.start(env)
    try:
        measured = _measure(args, server, seeded)
    finally:
        exit_code = server.stop()
    measured["server"]["exit_code"] = exit_code
    return {
        "parameters": {**vars(args), "server_command": server.command[3:]},
        "rate_limit": _rate_limit(),
        "seed": {
            "users": len(seeded.users),
            "messages": seeded.messages,
            "seconds": seeded.seconds,
        },
        **measured,
    }


def _measure(args: argparse.Namespace, server: Server, seeded: Seeded) -> dict[str, Any]:
    _warm_up(server.url, seeded)
    before = _snapshot(server)
    recorders, writes, seconds = run_clients(
        server.url, seeded, args.writers, args.readers, args.seconds
    )
    after = _snapshot(server)
    checked = verify(server.url, seeded.keys["check"], writes)
    alive = server.alive()
    rows = table(recorders, seconds)
    lost = checked["lost_writes"] + checked["lost_updates"] + checked["deleted_but_present"]
    failed = rows[-1]["errors"] or lost or checked["unexpected_answers"] or not alive
    return {
        "window_s": seconds,
        "endpoints": rows,
        "errors": rows[-1]["errors"],
        "writes": checked,
        "server": {
            "alive_after": alive,
            "rss_mb_before": before["rss_mb"],
            "rss_mb_after": after["rss_mb"],
            "peak_rss_mb": after["peak_rss_mb"],
            "cpu_s_in_window": after["server_cpu_s"] - before["server_cpu_s"],
            "load_generator_cpu_s_in_window": after["client_cpu_s"] - before["client_cpu_s"],
            "log_tail": server.log()[-2000:],
        },
        "failed": bool(failed),
    }


def _rate_limit() -> str:
    from engramdb import config

    limit = config.resolve()["rate_limit"]
    return f"{limit} requests a minute per key, one key per client" if limit else "off"


def _snapshot(server: Server) -> dict[str, float]:
    memory = server.memory_mb()
    return {
        "rss_mb": memory["VmRSS"],
        "peak_rss_mb": memory["VmHWM"],
        "server_cpu_s": server.cpu_seconds(),
        "client_cpu_s": time.process_time(),
    }


def _warm_up(url: str, seeded: Seeded) -> None:
    """Load the embedder and each user's indexes before the clock starts (not counted)."""
    with _client(url, seeded.keys["check"][0]) as client:
        for user in seeded.users:
            answer = client.post("/v1/search", json={"query": "warm up", "user_id": user})
            answer.raise_for_status()


def _summary(result: dict[str, Any]) -> str:
    m, w, s, p = result["machine"], result["writes"], result["server"], result["parameters"]
    load = f"1-minute load {m['load_avg_start'][0]:.1f} -> {m['load_avg_end'][0]:.1f}"
    return "\n".join(
        [
            f"{p['writers']} writers, {p['readers']} readers, {result['window_s']:.1f} s, "
            f"embedder {p['embedder']}; {m['cpus']} CPUs, {load}",
            "",
            markdown(result["endpoints"]),
            "",
            f"errors {result['errors']}; acknowledged ids {w['acknowledged_ids']:,} "
            f"({w['deleted']} deleted, {w['patched']} patched): lost writes {w['lost_writes']}, "
            f"lost updates {w['lost_updates']}, deleted but present {w['deleted_but_present']}, "
            f"unexpected answers {w['unexpected_answers']}",
            f"server alive: {s['alive_after']}, exit code {s['exit_code']}; RSS "
            f"{s['rss_mb_before']:.0f} -> {s['rss_mb_after']:.0f} MB (peak "
            f"{s['peak_rss_mb']:.0f}); CPU in the window: server {s['cpu_s_in_window']:.0f} s, "
            f"load generator {s['load_generator_cpu_s_in_window']:.0f} s",
        ]
    )


if __name__ == "__main__":
    main()
