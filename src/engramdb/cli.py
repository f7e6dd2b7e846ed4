"""The ``engram`` command: a thin shell over :class:`engramdb.Memory`.

Errors from the library, and arguments that are not valid UTF-8, become one line on stderr and
exit status 1; usage errors keep click's status 2. Text from the store is printed with its
control characters escaped, so a stored memory cannot drive the terminal. Nothing below this
module knows about the terminal.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from .errors import EngramError
from .memory import Memory
from .pipeline.rules.dates import UNKNOWN_START
from .serialize import dumps, printable
from .types import Entity, MemoryRecord

F = TypeVar("F", bound=Callable[..., Any])
out = Console()
err = Console(stderr=True)


class _NotUTF8(Exception):
    """A command-line argument held bytes that are not UTF-8 (Python decodes them to lone
    surrogates, which the store and the embedders cannot take)."""

    def __init__(self, param: str, value: str) -> None:
        super().__init__(
            f"argument {param} is not valid UTF-8 ({_as_bytes(value)}): give the text in "
            "UTF-8 (is the terminal or the script in another encoding, e.g. Latin-1?)"
        )


def _as_bytes(value: str) -> str:
    """How an argument looked on the command line: ``'caf\\xe9'`` rather than ``'caf\\udce9'``."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that did not come from undecodable bytes
        return ascii(value)
    return ascii(raw)[1:]


def _check_utf8(ctx: click.Context) -> None:
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        # A path is bytes on POSIX: a file name that is not UTF-8 still names a real file.
        if isinstance(value, str) and not isinstance(param.type, click.Path):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _NotUTF8(param.get_error_hint(ctx), value) from None


def _fail(message: str) -> NoReturn:
    line = printable(message.replace("\n", " "))
    err.print(Text.assemble(("error:", "red"), " ", line), highlight=False, soft_wrap=True)
    sys.exit(1)


class _Command(click.Command):
    """Refuses arguments that are not UTF-8 before the library sees them."""

    def invoke(self, ctx: click.Context) -> Any:
        _check_utf8(ctx)
        return super().invoke(ctx)


class _Group(click.Group):
    """Turns library errors and undecodable input into one line and exit status 1.

    Any other exception is a bug and keeps its traceback.
    """

    command_class = _Command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            _check_utf8(ctx)
            return super().invoke(ctx)
        except (EngramError, OSError, _NotUTF8) as exc:
            _fail(str(exc))
        except UnicodeDecodeError as exc:  # a file that is not UTF-8
            _fail(f"input is not valid UTF-8 ({exc}): convert it to UTF-8 first")
        except UnicodeEncodeError as exc:
            # Lone surrogates: text decoded from non-UTF-8 bytes (or JSON "\udce9" escapes).
            if exc.reason != "surrogates not allowed":
                raise
            bad = ascii(exc.object[exc.start : exc.end])
            _fail(f"input holds text that is not valid UTF-8 ({bad}): convert it to UTF-8 first")


def _scope_options(fn: F) -> F:
    fn = click.option("--agent", "-a", "agent_id", help="Agent id of the scope.")(fn)
    return click.option("--user", "-u", "user_id", help="User id of the scope.")(fn)


@click.group(cls=_Group)
@click.option(
    "--db",
    "db",
    envvar="ENGRAM_DB",
    type=click.Path(dir_okay=False),
    help="Store file (default: engram.db in ENGRAM_HOME or the user data dir).",
)
@click.option("--embedder", help="Embedding model: local, openai:<model>, test.")
@click.option(
    "--llm",
    help="Model that extracts facts: openai:<model>, ollama:<model>, llamacpp:<alias>, test "
    "(default: the llm setting, ENGRAM_LLM; none: the offline rules).",
)
@click.option(
    "--consolidate",
    type=click.Choice(["inline", "deferred", "off"]),
    help="Fact extraction after add and import: inline, deferred (`engram process` runs it) "
    "or off (default: the consolidate setting, ENGRAM_CONSOLIDATE).",
)
@click.version_option(package_name="engramdb")
@click.pass_context
def main(
    ctx: click.Context,
    db: str | None,
    embedder: str | None,
    llm: str | None,
    consolidate: str | None,
) -> None:
    """engramdb: long-term memory for LLM agents."""
    ctx.obj = {"db": db, "embedder": embedder, "llm": llm, "consolidate": consolidate}


def _settings(ctx: click.Context) -> dict[str, Any]:
    """The Memory settings given on the command line (None: the config file, env or default)."""
    return {"llm": ctx.obj["llm"], "consolidate": ctx.obj["consolidate"]}


@contextmanager
def _memory(ctx: click.Context) -> Iterator[Memory]:
    mem = Memory(ctx.obj["db"], embedder=ctx.obj["embedder"], **_settings(ctx))
    try:
        yield mem
    finally:
        mem.close()


def _cell(value: str | None) -> Text:
    """A table cell showing stored text as it is: no markup, no control characters."""
    return Text(printable(value or ""))


def _id_column(ids: list[str]) -> Column:
    """A column that shows whole ids, never cut or folded: they are what `engram show` takes."""
    return Column("id", no_wrap=True, min_width=max((len(printable(i)) for i in ids), default=2))


def _print_json(value: Any) -> None:
    click.echo(dumps(value, indent=2))


@main.command()
@_scope_options
@click.option("--session", "session_id", help="Session id.")
@click.option(
    "--role",
    default="user",
    show_default=True,
    type=click.Choice(["user", "assistant", "system", "tool"]),
)
@click.option("--name", help="Speaker name.")
@click.option("--time", "timestamp", help="When it happened (ISO 8601); default now.")
@click.argument("text")
@click.pass_context
def add(
    ctx: click.Context,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    role: str,
    name: str | None,
    timestamp: str | None,
    text: str,
) -> None:
    """Record one message."""
    message: dict[str, Any] = {"role": role, "content": text}
    if name:
        message["name"] = name
    if timestamp:
        message["timestamp"] = timestamp
    with _memory(ctx) as mem:
        for ident in mem.add([message], user_id=user_id, agent_id=agent_id, session_id=session_id):
            click.echo(printable(ident))


@main.command()
@_scope_options
@click.option("--limit", "-k", default=10, show_default=True)
@click.option("--as-of", help="Answer as if it were then (ISO 8601).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.argument("query")
@click.pass_context
def search(
    ctx: click.Context,
    user_id: str | None,
    agent_id: str | None,
    limit: int,
    as_of: str | None,
    as_json: bool,
    query: str,
) -> None:
    """Search a scope's memories."""
    with _memory(ctx) as mem:
        hits = mem.search(query, user_id=user_id, agent_id=agent_id, limit=limit, as_of=as_of)
    if as_json:
        _print_json(hits)
        return
    table = Table("#", "when", "who", "text", "score", _id_column([h.id for h in hits]))
    for rank, hit in enumerate(hits, start=1):
        table.add_row(
            str(rank),
            f"{hit.occurred_at:%Y-%m-%d %H:%M}",
            _cell(hit.name or hit.role),
            _cell(hit.text),
            f"{hit.score:.4f}",
            _cell(hit.id),
        )
    out.print(table)


@main.command()
@_scope_options
@click.option(
    "--max-tokens",
    type=int,
    help="Token budget (default: the context_tokens setting, ENGRAM_CONTEXT_TOKENS).",
)
@click.option("--as-of", help="Answer as if it were then (ISO 8601).")
@click.argument("query")
@click.pass_context
def context(
    ctx: click.Context,
    user_id: str | None,
    agent_id: str | None,
    max_tokens: int | None,
    as_of: str | None,
    query: str,
) -> None:
    """Print the context an LLM would get for a question."""
    with _memory(ctx) as mem:
        text = mem.context(
            query, user_id=user_id, agent_id=agent_id, max_tokens=max_tokens, as_of=as_of
        )
    click.echo(printable(text))


@main.command(name="list")
@_scope_options
@click.option("--session", "session_id")
@click.option("--limit", default=20, show_default=True)
@click.option("--cursor", help="Continue after this cursor (printed at the end of a page).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(
    ctx: click.Context,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List a scope's memories, oldest recorded first, a page at a time."""
    with _memory(ctx) as mem:
        page = mem.list(
            user_id=user_id, agent_id=agent_id, session_id=session_id, limit=limit, cursor=cursor
        )
    if as_json:
        _print_json(page)
        return
    table = Table(_id_column([r.id for r in page.items]), "when", "session", "who", "text")
    for rec in page.items:
        table.add_row(
            _cell(rec.id),
            f"{rec.occurred_at:%Y-%m-%d %H:%M}",
            _cell(rec.session_id),
            _cell(rec.name or rec.role),
            _cell(rec.text),
        )
    out.print(table)
    if page.next_cursor:
        click.echo(f"more: --cursor {printable(page.next_cursor)}")


@main.command()
@click.argument("memory_id")
@click.pass_context
def show(ctx: click.Context, memory_id: str) -> None:
    """Show one memory with its sources."""
    with _memory(ctx) as mem:
        _print_json(mem.get(memory_id))


@main.command()
@click.argument("memory_id")
@click.pass_context
def history(ctx: click.Context, memory_id: str) -> None:
    """Show every change of a memory."""
    with _memory(ctx) as mem:
        _print_json(mem.history(memory_id))


@main.command()
@click.argument("memory_id", required=False)
@_scope_options
@click.option("--all", "everything", is_flag=True, help="Delete every memory of the scope.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation with --all.")
@click.pass_context
def delete(
    ctx: click.Context,
    memory_id: str | None,
    user_id: str | None,
    agent_id: str | None,
    everything: bool,
    yes: bool,
) -> None:
    """Delete one memory for good, or with --all every memory of a scope."""
    if everything and memory_id:
        raise click.UsageError("give a MEMORY_ID or --all, not both")
    if not (everything or memory_id):
        raise click.UsageError("give a MEMORY_ID, or --all with --user/--agent")
    with _memory(ctx) as mem:
        if memory_id:
            mem.delete(memory_id)
            click.echo(f"deleted {printable(memory_id)}")
            return
        if not yes:
            click.confirm(
                printable(f"Delete every memory of user={user_id} agent={agent_id}?"), abort=True
            )
        click.echo(f"deleted {mem.delete_all(user_id=user_id, agent_id=agent_id)}")


@main.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format",
    "fmt",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "engramdb", "jsonl", "locomo", "longmemeval", "chatgpt"]),
)
@_scope_options
@click.pass_context
def import_(
    ctx: click.Context, path: str, fmt: str, user_id: str | None, agent_id: str | None
) -> None:
    """Import messages: an engramdb export, JSONL messages, LoCoMo, LongMemEval or ChatGPT."""
    total = _import_total(path, fmt)
    with _memory(ctx) as mem, _progress() as progress:
        task = progress.add_task("importing", total=total)
        count = mem.import_file(
            path,
            format=fmt,
            user_id=user_id,
            agent_id=agent_id,
            progress=lambda n: progress.advance(task, n),
        )
    click.echo(f"imported {count} new memories from {printable(click.format_filename(path))}")


def _import_total(path: str, fmt: str) -> int | None:
    """How many messages a JSON-lines file holds: one a line, after an export's header.

    The import reports progress in messages. LoCoMo, LongMemEval and ChatGPT files are one JSON
    document whose messages can only be counted by parsing all of it, as the import does next:
    they get no total rather than a second full parse. (JSON lines start with "{" and an export
    with its header line, as importers.detect_format also tells them apart.)
    """
    if fmt not in ("auto", "jsonl", "engramdb"):
        return None
    with gzip.open(path) if Path(path).suffix == ".gz" else open(path, "rb") as fh:
        if not fh.read(4096).lstrip().startswith(b"{"):  # a JSON document, not JSON lines
            return None
        fh.seek(0)
        lines = (line for line in fh if line.strip())
        header = b'"engramdb_export"' in next(lines, b"")
        return sum(1 for _ in lines) + (0 if header else 1)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True), default="-")
@_scope_options
@click.pass_context
def export(ctx: click.Context, path: str, user_id: str | None, agent_id: str | None) -> None:
    """Export memories as JSON lines (to PATH or stdout), losslessly."""
    with _memory(ctx) as mem:
        if path == "-":
            count = mem.export(sys.stdout, user_id=user_id, agent_id=agent_id)
        else:
            tmp = Path(path + ".partial")
            with tmp.open("w", encoding="utf-8") as fh:
                count = mem.export(fh, user_id=user_id, agent_id=agent_id)
            tmp.replace(path)  # never leave a half-written export under the real name
    err.print(f"exported {count} memories")


@main.command()
@click.pass_context
def stats(ctx: click.Context) -> None:
    """Show counts and sizes of the store, and its pending work."""
    with _memory(ctx) as mem:
        _print_json(mem.stats())


@main.command()
@click.option("--limit", default=10_000, show_default=True, help="Most jobs of each kind to run.")
@click.pass_context
def process(ctx: click.Context, limit: int) -> None:
    """Finish pending work: embedding left by an add whose embedder failed or was killed, then
    fact extraction (deferred with --consolidate deferred, or after the LLM failed)."""
    with _memory(ctx) as mem, _progress() as progress:
        task = progress.add_task("extracting facts", total=None)

        def report_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = mem.process(limit=limit, progress=report_progress)
        pending = mem.stats()["jobs_pending"]
    click.echo(
        f"embedded {report.done}, extracted {report.extracted}, facts added "
        f"{report.facts_added}, failed {report.failed}, pending {pending}"
    )
    for error in dict.fromkeys(report.errors):
        click.echo(f"error: {printable(error)}", err=True)
    if report.failed:
        sys.exit(1)


@main.command()
@_scope_options
@click.option("--all", "everything", is_flag=True, help="Include facts no longer true.")
@click.option("--as-of", help="The facts that were true then (ISO 8601).")
@click.option("--limit", default=100, show_default=True)
@click.option("--cursor", help="Continue after this cursor (printed at the end of a page).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def facts(
    ctx: click.Context,
    user_id: str | None,
    agent_id: str | None,
    everything: bool,
    as_of: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List the facts distilled from a scope's conversations: those true now, or with --all
    the past ones too, each with when it held."""
    with _memory(ctx) as mem:
        page = mem.facts(
            user_id=user_id,
            agent_id=agent_id,
            include_expired=everything,
            as_of=as_of,
            limit=limit,
            cursor=cursor,
        )
    if as_json:
        _print_json(page)
        return
    for fact in page.items:
        click.echo(f"{printable(fact.text)}  [{_validity(fact)}]  {printable(fact.id)}")
    if page.next_cursor:
        click.echo(f"more: --cursor {printable(page.next_cursor)}")
    elif not page.items and not cursor:
        click.echo("no facts" + ("" if everything else " (--all shows past ones too)"), err=True)


def _validity(fact: MemoryRecord) -> str:
    """When a fact held: "since 28 May 2024", or "from ... until ...; superseded"."""
    start = fact.valid_from  # UNKNOWN_START: "since before anything the store knows"
    since = _day(start) if start is not None and start.timestamp() > UNKNOWN_START else None
    if fact.valid_to is None:
        return f"since {since}" if since else "current"
    span = f"from {since} until {_day(fact.valid_to)}" if since else f"until {_day(fact.valid_to)}"
    return f"{span}; {'superseded' if fact.superseded_by else 'ended'}"


def _day(at: datetime) -> str:
    return f"{at.day} {at:%B %Y}"


@main.command()
@_scope_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def profile(ctx: click.Context, user_id: str | None, agent_id: str | None, as_json: bool) -> None:
    """Show who the user is now: current attributes, relationships and preferences."""
    with _memory(ctx) as mem:
        found = mem.profile(user_id=user_id, agent_id=agent_id)
    if as_json:
        _print_json(found)
    elif found.entries:
        click.echo(printable(found.text))
    else:
        click.echo("no profile yet: no current facts about this scope", err=True)


@main.command()
@_scope_options
@click.option("--name", help="Only the entities called this (by name or alias).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def entities(
    ctx: click.Context, user_id: str | None, agent_id: str | None, name: str | None, as_json: bool
) -> None:
    """List the people, places, organizations, pets and things a scope's memories mention."""
    with _memory(ctx) as mem:
        found = mem.entities(user_id=user_id, agent_id=agent_id, name=name)
    if as_json:
        _print_json(found)
        return
    for entity in found:
        click.echo(printable(_entity_line(entity)))
    if not found:
        click.echo("no entities", err=True)


def _entity_line(entity: Entity) -> str:
    """ "Inês: person, sister of Maya; 2 mentions  <id>"."""
    aliases = f" (also {', '.join(entity.aliases)})" if entity.aliases else ""
    relation = f", {entity.relation}" if entity.relation else ""
    if entity.relation and entity.relation_of:
        relation += f" of {entity.relation_of}"
    mentions = f"{entity.mentions} mention{'' if entity.mentions == 1 else 's'}"
    return f"{entity.name}{aliases}: {entity.type}{relation}; {mentions}  {entity.id}"


@main.command()
@click.option(
    "--db",
    "demo_db",
    type=click.Path(dir_okay=False),
    help="Demo store, as the global --db (default: the global --db or ENGRAM_DB, else demo.db "
    "beside the default store).",
)
@click.pass_context
def demo(ctx: click.Context, demo_db: str | None) -> None:
    """Ingest a small sample conversation and answer a few questions from it."""
    from .demo import run_demo

    run_demo(out, demo_db or ctx.obj["db"], ctx.obj["embedder"])


@main.command(name="eval")
@click.argument("dataset", type=click.Choice(["locomo", "longmemeval"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write JSON here.")
@click.option(
    "--limit",
    type=int,
    help="Only the first N conversations (LoCoMo) or questions; with --reader, N questions.",
)
@click.option("--no-baselines", is_flag=True, help="Skip the BM25/dense/hybrid baselines.")
@click.option(
    "--cache-dir", type=click.Path(file_okay=False), help="Cache embeddings here between runs."
)
@click.option(
    "--reader", help="Answer each question from the context with this model (QA accuracy)."
)
@click.option("--judge", help="Grade the reader's answers with this model (needs --reader).")
@click.option(
    "--context-tokens", type=int, help="Context budget of each answer (default: the setting)."
)
@click.option(
    "--store",
    "store_url",
    help="Put the stores in this PostgreSQL database (a tenant per conversation) instead of "
    "SQLite files: the same evaluation on another backend.",
)
@click.pass_context
def eval_(
    ctx: click.Context,
    dataset: str,
    path: str,
    out_path: str | None,
    limit: int | None,
    no_baselines: bool,
    cache_dir: str | None,
    reader: str | None,
    judge: str | None,
    context_tokens: int | None,
    store_url: str | None,
) -> None:
    """Measure retrieval quality on LoCoMo or LongMemEval, with baselines; with --reader and
    --judge, the accuracy of answers from engramdb's context, beside retrieval recall.

    The global --llm and --consolidate say how each store extracts facts.
    """
    if (reader is None) != (judge is None):
        raise click.UsageError("give --reader and --judge together")
    if context_tokens is not None and reader is None:
        raise click.UsageError("--context-tokens needs --reader and --judge")
    if store_url is not None and reader is not None:
        raise click.UsageError("--store goes with the retrieval evaluation (without --reader)")
    embedder = ctx.obj["embedder"] or "local"
    with _progress() as progress:
        task = progress.add_task(dataset, total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        options: dict[str, Any] = {
            "embedder": embedder,
            "progress": report,
            "cache_dir": cache_dir,
            "memory_options": _settings(ctx),
        }
        if reader is not None:
            from .evals.qa import RUNNERS

            result = RUNNERS[dataset](
                path,
                reader=reader,
                judge=judge,
                limit=limit,
                context_tokens=context_tokens,
                **options,
            )
        else:
            options["store_url"] = store_url
            result = _retrieval_eval(dataset, path, limit, not no_baselines, options)
    text = json.dumps(result, indent=2, default=str)
    if out_path:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        Path(out_path).write_text(text + "\n", encoding="utf-8")
    out.print_json(json.dumps(result.get("summary", result), default=str))


def _retrieval_eval(
    dataset: str, path: str, limit: int | None, baselines: bool, options: dict[str, Any]
) -> dict[str, Any]:
    from .evals.runner import run_locomo, run_longmemeval

    if dataset == "locomo":
        return run_locomo(path, limit_conversations=limit, baselines=baselines, **options)
    return run_longmemeval(path, limit_questions=limit, baselines=baselines, **options)


@main.command()
@click.option("--http", "http", is_flag=True, help="Serve streamable HTTP at /mcp, not stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for --http.")
@click.option("--port", default=8766, show_default=True, help="Port for --http.")
@click.option(
    "--no-auth", is_flag=True, help="With --http: no API keys needed (loopback hosts only)."
)
@click.pass_context
def mcp(ctx: click.Context, http: bool, host: str, port: int, no_auth: bool) -> None:
    """Serve the memory to agents as MCP tools: over stdio (an MCP client such as a desktop
    app starts `engram mcp`), or with --http over streamable HTTP, where each request needs an
    API key (Authorization: Bearer) and sees its key's tenant only."""
    if no_auth and not http:
        raise click.UsageError("--no-auth goes with --http (stdio has no keys to skip)")
    try:
        from .server import mcp as tools
    except ImportError as exc:  # the MCP SDK is an optional dependency
        _fail(f"engram mcp needs the MCP SDK ({exc}): pip install 'engramdb[server]'")
    if no_auth:
        tools.check_no_auth(host)  # before opening anything
    with _memory(ctx) as mem:
        if http:
            tools.serve_http(mem, host, port, require_auth=not no_auth)
        else:
            tools.serve_stdio(mem)


@contextmanager
def _progress() -> Iterator[Progress]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # a pipe or log file gets no bar, not even a blank line
    )
    with progress:
        yield progress


# The server's commands (serve, keys) live in their own module and register on `main`.
from . import cli_server  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    # Run as a script, this file is a second copy of engramdb.cli: the server's commands are
    # registered on the imported one's group.
    from engramdb.cli import main as registered

    registered()
