"""``engram demo``: a sample conversation in, a few answers out, with dates and provenance."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from .config import default_home
from .memory import Memory
from .retrieval.pack import fact_line
from .serialize import printable


def load_demo() -> dict[str, Any]:
    """The bundled sample conversation."""
    text = resources.files("engramdb").joinpath("data/demo_conversation.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def run_demo(console: Console, path: str | None, embedder: str | None) -> None:
    """Ingest the sample into a store (idempotent) and answer its questions.

    Args:
        console: where to print.
        path: the store file; ``None``: ``demo.db`` beside the default store.
        embedder: as for :class:`~engramdb.Memory`.
    """
    data = load_demo()
    store = Path(path) if path else default_home() / "demo.db"
    user = data["user_id"]
    with Memory(store, embedder=embedder) as mem:
        added = 0
        for session in data["sessions"]:
            messages = [
                {
                    "role": role,
                    "content": text,
                    **({"name": name} if name else {}),
                    "metadata": {"turn": f"{session['session_id']}#{i}"},
                }
                for i, (role, name, text) in enumerate(session["turns"])
            ]
            messages[0]["timestamp"] = session["date"]
            added += len(mem.add(messages, user_id=user, session_id=session["session_id"]))
        console.print(f"[bold]engramdb demo[/bold] — store: {_shown(str(store))}")
        console.print(
            f"{added} messages from {len(data['sessions'])} sessions "
            f"(adds are idempotent: running the demo again adds nothing)\n"
        )
        for question in data["questions"]:
            _answer(console, mem, user, question)
        profile = mem.profile(user_id=user)
        console.print(Panel(_shown(profile.text) or "empty", title="profile()", title_align="left"))


def _answer(console: Console, mem: Memory, user: str, question: str) -> None:
    hits = mem.search(question, user_id=user, limit=3)
    lines = []
    for hit in hits:
        ref = _shown(", ".join(str(s.metadata.get("turn", s.id)) for s in hit.sources))
        if hit.kind == "fact":
            dated = hit.attribute in ("event", "plan")
            said = fact_line(hit.text, hit.valid_from, hit.valid_to, dated)
            line = f"[magenta]fact[/magenta] {_shown(said)}"
            lines.append(f"{line}  [dim]← {ref}[/dim]")
            continue
        when = f"{hit.occurred_at:%d %b %Y}"
        notes = _shown("; ".join(f"{m.text} = {m.label()}" for m in hit.time_mentions))
        who = _shown(hit.name or hit.role or "")
        line = f"[cyan]{when}[/cyan] {who}: {_shown(hit.text)}"
        if notes:
            line += f" [green]({notes})[/green]"
        lines.append(f"{line}  [dim]← {ref}[/dim]")
    console.print(
        Panel("\n".join(lines) or "nothing found", title=f"Q: {question}", title_align="left")
    )


def _shown(text: str) -> str:
    """Stored text for console markup: its brackets and control characters printed as such."""
    return escape(printable(text))
