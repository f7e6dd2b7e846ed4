"""`engram keys` and `engram serve`: through click's runner, and as real processes over HTTP.

Keys are made, listed and revoked on a real store file; `engram serve` runs as its own process
(`python -m engramdb.cli serve`) on a free loopback port with its own ENGRAM_HOME and the test
embedder, and is reached with httpx.
"""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from engramdb import Memory, access
from engramdb.cli import main
from engramdb.errors import Unauthorized
from engramdb.types import ApiKey

LINK = re.compile(r"console: (http://\S+/console/)(#key=(\S+))?")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "keys.db"


def engram(db: Path, *args: str) -> Result:
    """`engram --db <db> --embedder test <args>` through click's runner."""
    return CliRunner().invoke(main, ["--db", str(db), "--embedder", "test", *args])


def make_key(db: Path, *args: str) -> tuple[dict[str, str], str]:
    """`engram keys create <args> --json`: the key's fields and its secret."""
    result = engram(db, "keys", "create", "--json", *args)
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    return made, made["key"]


def lookup(db: Path, token: str) -> ApiKey:
    with Memory(db, embedder="test") as mem:
        return access.authenticate(mem, token)


# -- engram keys -----------------------------------------------------------------------------


def test_keys_create_prints_the_secret_once(db: Path) -> None:
    result = engram(db, "keys", "create", "--tenant", "t", "--role", "writer", "--name", "ci")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # the secret alone on stdout, for $(engram keys create)
    assert token.startswith("ek_") and len(token) > 40
    assert token not in result.stderr
    assert "writer key" in result.stderr and "'t'" in result.stderr
    key = lookup(db, token)
    assert (key.tenant, key.role, key.name) == ("t", "writer", "ci")
    assert key.id in result.stderr


def test_keys_create_json_and_default_role(db: Path) -> None:
    made, token = make_key(db)
    assert made["role"] == "reader" and made["tenant"] == "default"
    assert token.startswith(made["prefix"])
    assert lookup(db, token).id == made["id"]


def test_keys_create_refuses_an_unknown_role(db: Path) -> None:
    result = engram(db, "keys", "create", "--role", "owner")
    assert result.exit_code == 2
    assert "owner" in result.output
    with Memory(db, embedder="test") as mem:
        assert access.keys(mem, every_tenant=True) == []


def test_keys_list_never_shows_a_secret(db: Path) -> None:
    first, first_token = make_key(db, "--tenant", "acme", "--role", "admin")
    second, second_token = make_key(db, "--tenant", "globex")
    table = engram(db, "keys", "list")
    as_json = engram(db, "keys", "list", "--json")
    only_acme = engram(db, "keys", "list", "--tenant", "acme", "--json")
    for result in (table, as_json, only_acme):
        assert result.exit_code == 0, result.output
        assert first_token not in result.output and second_token not in result.output
    assert first["id"] in table.stdout and second["id"] in table.stdout
    assert first["prefix"] in table.stdout
    listed = json.loads(as_json.stdout)
    assert [k["id"] for k in listed] == [first["id"], second["id"]]
    assert all("key" not in k for k in listed)
    assert [k["id"] for k in json.loads(only_acme.stdout)] == [first["id"]]


def test_keys_revoke(db: Path) -> None:
    made, token = make_key(db, "--tenant", "acme", "--role", "writer")
    result = engram(db, "keys", "revoke", made["id"])
    assert result.exit_code == 0, result.output
    assert made["id"] in result.stderr
    with Memory(db, embedder="test") as mem, pytest.raises(Unauthorized):
        access.authenticate(mem, token)
    listed = json.loads(engram(db, "keys", "list", "--json").stdout)
    assert listed[0]["revoked_at"] is not None


@pytest.mark.parametrize("twice", [False, True])
def test_keys_revoke_an_unknown_id_fails_in_one_line(db: Path, twice: bool) -> None:
    made, _ = make_key(db)
    ident = made["id"] if twice else "nope"
    if twice:
        assert engram(db, "keys", "revoke", ident).exit_code == 0
    result = engram(db, "keys", "revoke", ident)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and repr(ident) in result.stderr


# -- engram serve ----------------------------------------------------------------------------


def server_env(home: Path) -> dict[str, str]:
    """A spawned server's environment: its own home, no model to load."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    return {**env, "ENGRAM_HOME": str(home), "ENGRAM_EMBEDDER": "test", "COLUMNS": "200"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    """A running `engram serve` process, and what it has printed on stderr so far."""

    process: subprocess.Popen[str]
    base: str
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def wait_for(self, pattern: re.Pattern[str], give_up: float = 60.0) -> re.Match[str]:
        """The first printed line matching ``pattern`` (a guard against a hang, not a timing
        check: the server prints it at once)."""
        deadline = time.monotonic() + give_up
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if found := pattern.search(line):
                return found
        raise AssertionError(f"`engram serve` never printed {pattern.pattern!r}: {self.seen}")

    def wait_until_up(self, give_up: float = 60.0) -> None:
        deadline = time.monotonic() + give_up
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited: {self.seen}"
            try:
                if httpx.get(f"{self.base}/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the server never answered /v1/health")


@contextmanager
def serve(home: Path, *args: str) -> Iterator[Served]:
    """`engram serve --port <free> <args>` in its own process, stopped on the way out."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "engramdb.cli", "serve", "--port", str(port), *args],
        env=server_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    served = Served(process, f"http://127.0.0.1:{port}")

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            served.lines.put(line.rstrip("\n"))
        served.lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def whoami(base: str, token: str) -> httpx.Response:
    return httpx.get(f"{base}/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_serve_prints_a_console_link_whose_key_works(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve(home) as served:
        link = served.wait_for(LINK)
        served.wait_until_up()
        assert link.group(1) == f"{served.base}/console/"
        token = link.group(3)
        assert token and token.startswith("ek_")
        found = whoami(served.base, token)
        assert found.status_code == 200, found.text
        assert found.json()["tenant"] == "default" and found.json()["role"] == "admin"
        assert whoami(served.base, "ek_not-this-one").status_code == 401
        console = httpx.get(link.group(1), timeout=10)
        assert console.status_code == 200 and "<html" in console.text.lower()
    saved = home / "engram.db.console-key"
    assert saved.read_text().strip() == token
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600

    with serve(home) as again:
        assert again.wait_for(LINK).group(3) == token  # the same link at every start
        again.wait_until_up()
        assert whoami(again.base, token).status_code == 200
        assert not any("made an admin key" in line for line in again.seen)
    with Memory(home / "engram.db", embedder="test") as mem:
        assert len(access.keys(mem, every_tenant=True)) == 1


def test_serve_prints_no_dead_link_once_its_key_is_revoked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve(home) as served:
        token = served.wait_for(LINK).group(3)
    db = home / "engram.db"
    key = lookup(db, token)
    assert engram(db, "keys", "revoke", key.id).exit_code == 0
    with serve(home) as again:
        link = again.wait_for(LINK)
        assert link.group(3) is None  # sign in with a key instead of a link that cannot work
        again.wait_until_up()
        assert whoami(again.base, token).status_code == 401
    with Memory(db, embedder="test") as mem:
        assert len(access.keys(mem, every_tenant=True)) == 1  # no second key made behind its back


def test_serve_makes_no_key_on_a_store_that_has_some(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _, token = make_key(home / "engram.db", "--role", "writer")
    with serve(home) as served:
        assert served.wait_for(LINK).group(3) is None
    assert not (home / "engram.db.console-key").exists()
    assert len(json.loads(engram(home / "engram.db", "keys", "list", "--json").stdout)) == 1
    assert lookup(home / "engram.db", token).role == "writer"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_serve_no_auth_off_loopback_is_refused_before_anything_starts(
    tmp_path: Path, host: str
) -> None:
    home = tmp_path / "home"
    result = subprocess.run(
        [sys.executable, "-m", "engramdb.cli", "serve", "--no-auth", "--host", host,
         "--port", str(free_port())],
        env=server_env(home), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --no-auth on "), result.stderr
    assert not home.exists() or not any(home.iterdir())  # no store was even opened


def test_serve_no_auth_on_loopback_runs_without_keys(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve(home, "--no-auth") as served:
        served.wait_for(re.compile(r"console: \S+/console/\s+\(no auth"))
        served.wait_until_up()
        found = httpx.get(f"{served.base}/v1/whoami", timeout=10)
        assert found.json() == {"tenant": "default", "role": "admin", "key_id": None}
    assert not (home / "engram.db.console-key").exists()
