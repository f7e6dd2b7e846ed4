"""Packing hits into a context an LLM reads: within a token budget, dated, in time order."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from ..types import Hit


def estimate_tokens(text: str) -> int:
    """Tokens of a text for budgeting: ~4 characters a token (English, BPE tokenizers)."""
    return math.ceil(len(text) / 4)


def _when(at: datetime) -> str:
    return f"{at.day} {at:%B %Y}, {at:%H:%M}"


def render_line(hit: Hit) -> str:
    """One memory as a line: date, speaker and text, with resolved dates kept."""
    who = hit.name or hit.role
    text = f"{who}: {hit.text}" if who else hit.text
    notes = "; ".join(f"{m.text} = {m.label()}" for m in hit.time_mentions)
    if notes:
        text += f" [{notes}]"
    return f"- ({_when(hit.occurred_at)}) {text}"


def _session_header(hit: Hit) -> str:
    label = f"session {hit.session_id}" if hit.session_id else "no session"
    return f"[{label}, {hit.occurred_at.day} {hit.occurred_at:%B %Y}]"


def pack(hits: Sequence[Hit], max_tokens: int) -> str:
    """The best hits that fit the budget, grouped by session and ordered by time.

    Selection follows relevance (the hits' order); presentation follows time, because an LLM
    reasons about "before", "after" and "how long ago" far better from a chronological record.
    """
    header = "Memories (oldest first; each line starts with when it was said):"
    budget = max_tokens - estimate_tokens(header)
    chosen: list[tuple[Hit, str]] = []
    sessions: set[str | None] = set()
    for hit in hits:
        line = render_line(hit)
        cost = estimate_tokens(line) + 1
        if hit.session_id not in sessions:
            cost += estimate_tokens(_session_header(hit)) + 1
        if cost > budget:
            continue
        chosen.append((hit, line))
        sessions.add(hit.session_id)
        budget -= cost
    if not chosen:
        return "No relevant memories."
    chosen.sort(key=lambda pair: (pair[0].occurred_at, pair[0].id))
    lines = [header]
    session: object = object()
    for hit, line in chosen:
        if hit.session_id != session:
            session = hit.session_id
            lines.append("\n" + _session_header(hit))
        lines.append(line)
    return "\n".join(lines)
