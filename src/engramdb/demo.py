"""``engram demo``: a sample conversation in, a few answers out, with dates and provenance."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel

from .config import default_home
from .memory import Memory


def load_demo() -> dict[str, Any]:
    """The bundled sample conversation."""
    text = resources.files("engramdb").joinpath("data/demo_conversation.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def run_demo(console: Console, path: str | None, embedder: str | None) -> None:
    """Ingest the sample into a demo store (idempotent) and answer its questions."""
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
        console.print(f"[bold]engramdb demo[/bold] — store: {store}")
        console.print(
            f"{added} messages from {len(data['sessions'])} sessions "
            f"(adds are idempotent: running the demo again adds nothing)\n"
        )
        for question in data["questions"]:
            _answer(console, mem, user, question)


def _answer(console: Console, mem: Memory, user: str, question: str) -> None:
    hits = mem.search(question, user_id=user, limit=3)
    lines = []
    for hit in hits:
        ref = ", ".join(str(s.metadata.get("turn", s.id[:8])) for s in hit.sources)
        when = f"{hit.occurred_at:%d %b %Y}"
        notes = "; ".join(f"{m.text} = {m.label()}" for m in hit.time_mentions)
        who = hit.name or hit.role
        line = f"[cyan]{when}[/cyan] {who}: {hit.text}"
        if notes:
            line += f" [green]({notes})[/green]"
        lines.append(f"{line}  [dim]← {ref}[/dim]")
    console.print(
        Panel("\n".join(lines) or "nothing found", title=f"Q: {question}", title_align="left")
    )
