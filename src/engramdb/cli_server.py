"""The server's commands of ``engram``: ``serve`` and ``keys`` (registered on the main group)."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.table import Table

from . import access
from .cli import _cell, _fail, _memory, _print_json, err, main, out
from .errors import EmbedderMismatch
from .memory import Memory
from .serialize import to_dict


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, help="Port to listen on.")
@click.option(
    "--no-auth", is_flag=True, help="No API keys: every request is an admin (loopback only)."
)
@click.option("--no-webhooks", is_flag=True, help="Do not deliver webhooks from this process.")
@click.option("--threads", default=16, show_default=True, help="Threads for store calls.")
@click.pass_context
def serve(
    ctx: click.Context, host: str, port: int, no_auth: bool, no_webhooks: bool, threads: int
) -> None:
    """Run the REST API, MCP (at /mcp) and the web console (at /console/).

    On a store with no API key yet, an admin key is made and the console link printed with it
    (it is kept, readable by you only, beside the store, and printed again at each start)."""
    try:
        import uvicorn

        from .server.app import create_app
        from .server.auth import LOOPBACK
    except ImportError as exc:
        _fail(f"engram serve needs the server extra ({exc}): pip install 'engramdb[server]'")
    if no_auth and host not in LOOPBACK:
        _fail(
            f"--no-auth on {host} would give anyone who reaches it every memory: "
            "bind to 127.0.0.1, or use API keys (engram keys create)"
        )
    with _memory(ctx) as mem:
        url = f"http://{'localhost' if host in ('0.0.0.0', '::') else host}:{port}"
        err.print(f"engramdb server on {url} (store: {mem.path})", highlight=False)
        if no_auth:
            err.print(f"console: {url}/console/  (no auth: loopback only)", highlight=False)
        else:
            _announce_key(mem, url)
        app = create_app(mem, auth=not no_auth, webhooks=not no_webhooks, threads=threads)
        uvicorn.run(app, host=host, port=port, log_level="warning")


def _announce_key(mem: Memory, url: str) -> None:
    """Print the console link with the bootstrap admin key (made on a store without keys)."""
    saved = Path(str(mem.path) + ".console-key")
    token = saved.read_text().strip() if saved.exists() else None
    if token is not None:
        try:
            access.authenticate(mem, token)
        except Exception:  # revoked since: do not print a dead link
            token = None
    if token is None and not access.keys(mem, every_tenant=True):
        _, token = access.create_key(mem, "admin", "console (made by engram serve)")
        fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        err.print(f"made an admin key for tenant {mem.tenant!r}, kept in {saved}")
    if token is None:
        err.print(f"console: {url}/console/  (sign in with an API key: engram keys create)")
        return
    err.print(f"console: {url}/console/#key={token}", highlight=False, soft_wrap=True)


@main.group()
def keys() -> None:
    """Manage the server's API keys (each belongs to one tenant and has one role)."""


@keys.command(name="create")
@click.option("--tenant", default=None, help="Tenant of the key (default: the tenant setting).")
@click.option(
    "--role", type=click.Choice(access.ROLES), default="reader", show_default=True,
    help="reader: read and search; writer: + add, change, delete; admin: + keys, webhooks, "
    "erasure.",
)  # fmt: skip
@click.option("--name", help="A label for the key (who or what uses it).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def keys_create(
    ctx: click.Context, tenant: str | None, role: str, name: str | None, as_json: bool
) -> None:
    """Make a key; its secret is printed once and never stored."""
    with _memory(ctx) as mem:
        key, token = access.create_key(mem.for_tenant(tenant) if tenant else mem, role, name)
    if as_json:
        _print_json({**to_dict(key), "key": token})
        return
    err.print(f"{key.role} key {key.id} for tenant {key.tenant!r} (shown once, keep it safe):")
    out.print(token, highlight=False, soft_wrap=True)


@keys.command(name="list")
@click.option("--tenant", default=None, help="Only this tenant's keys (default: every tenant).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def keys_list(ctx: click.Context, tenant: str | None, as_json: bool) -> None:
    """List keys (never their secrets)."""
    with _memory(ctx) as mem:
        found = (
            access.keys(mem.for_tenant(tenant)) if tenant else access.keys(mem, every_tenant=True)
        )
    if as_json:
        _print_json(to_dict(found))
        return
    table = Table("id", "tenant", "role", "name", "prefix", "created", "revoked")
    for k in found:
        table.add_row(
            k.id, _cell(k.tenant), k.role, _cell(k.name), k.prefix,
            f"{k.created_at:%Y-%m-%d %H:%M}",
            "" if k.revoked_at is None else f"{k.revoked_at:%Y-%m-%d %H:%M}",
        )  # fmt: skip
    out.print(table)


@keys.command(name="revoke")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key at once (any tenant's)."""
    with _memory(ctx) as mem:
        access.revoke_key(mem, key_id, every_tenant=True)
    err.print(f"revoked {key_id}")


@main.command()
@click.option("--name", help="This worker's name in the job leases (default: host:pid).")
@click.option("--batch", default=32, show_default=True, help="Jobs of each kind leased at once.")
@click.option(
    "--lease", default=300.0, show_default=True,
    help="Seconds a leased job stays this worker's; a dead worker's jobs are retried after.",
)  # fmt: skip
@click.option("--poll", default=1.0, show_default=True, help="Seconds to wait when idle.")
@click.option("--once", is_flag=True, help="Run the pending jobs once, then exit.")
@click.pass_context
def worker(
    ctx: click.Context, name: str | None, batch: int, lease: float, poll: float, once: bool
) -> None:
    """Run consolidation jobs (embedding, fact extraction) of every tenant from the store's
    queue, beside `engram serve --consolidate deferred` processes; start as many as you like.
    Stops at SIGTERM or Ctrl-C after the batch in hand."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    label = name or f"{socket.gethostname()}:{os.getpid()}"
    with _memory(ctx) as mem:
        err.print(f"engram worker {label} on {mem.path}", highlight=False)
        while not stop.is_set():
            report = mem.work(label, batch, lease)
            if report.done or report.extracted or report.failed:
                err.print(
                    f"embedded {report.done}, extracted {report.extracted} "
                    f"(+{report.facts_added} facts), failed {report.failed}",
                    highlight=False,
                )
            elif once:
                break
            else:
                stop.wait(poll)


@main.command(name="migrate")
@click.option("--from", "source", required=True, help="The store to copy: a path or URL.")
@click.option("--to", "target", required=True, help="The store to fill: a path or URL.")
@click.option("--no-verify", is_flag=True, help="Skip comparing the two stores afterwards.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def migrate_command(
    ctx: click.Context, source: str, target: str, no_verify: bool, as_json: bool
) -> None:
    """Copy a whole store (every tenant: records, vectors, facts, history, pending work, keys,
    webhooks) to another backend, e.g. `--from sqlite:///engram.db --to postgresql://...`,
    then compare the two. Safe to run again after an interruption."""
    from .migrate import migrate

    with (
        _open_as_stored(source, ctx.obj["embedder"]) as src,
        Memory(target, embedder=src.embedder, consolidate="off") as dst,
    ):
        report = migrate(src, dst, verify=not no_verify)
    if as_json:
        _print_json(to_dict(vars(report)))
    else:
        for tenant, moved in report.tenants.items():
            err.print(f"tenant {tenant!r}: " + ", ".join(f"{v} {k}" for k, v in moved.items()))
        if report.exports_equal is not None:
            agreement = report.search_agreement
            err.print(
                f"check: exports {'equal' if report.exports_equal else 'DIFFER'}; searches "
                + ("none" if agreement is None else f"agree {agreement:.0%} (top 5)")
            )
    if report.problems:
        _fail("; ".join(report.problems))


@contextmanager
def _open_as_stored(url: str, embedder: str | None) -> Iterator[Memory]:
    """The store at ``url`` with the embedder its vectors were made with (unless one is
    given): a migration never re-embeds."""
    try:
        mem = Memory(url, embedder=embedder or "test")
    except EmbedderMismatch as exc:
        if embedder is not None:
            raise
        mem = Memory(url, embedder=exc.stored)
    try:
        yield mem
    finally:
        mem.close()
