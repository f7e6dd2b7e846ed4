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


def _day(at: datetime) -> str:
    return f"{at.day} {at:%B %Y}"


def fact_line(
    text: str, valid_from: datetime | None, valid_to: datetime | None, dated: bool = False
) -> str:
    """A fact with its validity: "(as of 28 May 2024)", or "(until ...; no longer true)".
    ``dated``: an event or plan, whose text carries its own date."""
    known_start = valid_from is not None and valid_from.year > 1900  # 1900: start unknown
    if valid_to is not None and not dated:
        span = f"from {_day(valid_from)} " if known_start and valid_from is not None else ""
        return f"{text} ({span}until {_day(valid_to)}; no longer true)"
    if known_start and valid_from is not None and not dated and "since" not in text:
        return f"{text} (as of {_day(valid_from)})"
    return text


def _dated(attribute: str | None) -> bool:
    return attribute in ("event", "plan")


def _session_header(hit: Hit) -> str:
    label = f"session {hit.session_id}" if hit.session_id else "no session"
    return f"[{label}, {hit.occurred_at.day} {hit.occurred_at:%B %Y}]"


def pack(hits: Sequence[Hit], max_tokens: int, profile: str = "") -> str:
    """The profile, then the facts among the best hits, then the best episodes, within the
    budget.

    Selection follows relevance (the hits' order); episodes are presented in time order,
    grouped by session, because an LLM reasons about "before", "after" and "how long ago" far
    better from a chronological record. Facts come first, current ones before past ones, each
    with its validity, so the answer to "where does she live now" is stated, not inferred.
    """
    budget = max_tokens
    parts: list[str] = []
    if profile and estimate_tokens(profile) + 1 <= budget:
        parts.append(profile)
        budget -= estimate_tokens(profile) + 1
    facts = [h for h in hits if h.kind == "fact"]
    facts.sort(key=lambda h: h.valid_to is not None)  # stable: current first, by relevance
    fact_part, budget = _facts(facts, budget, profile)
    if fact_part:
        parts.append(fact_part)
    episodes = _episodes([h for h in hits if h.kind != "fact"], budget)
    if episodes:
        parts.append(episodes)
    return "\n\n".join(parts) if parts else "No relevant memories."


def _facts(facts: Sequence[Hit], budget: int, profile: str) -> tuple[str, int]:
    header = "Facts (what is true now, then what no longer is):"
    lines: list[str] = []
    spend = estimate_tokens(header) + 1
    for hit in facts:
        if hit.valid_to is None and hit.text in profile:
            continue  # the profile says it already
        line = "- " + fact_line(hit.text, hit.valid_from, hit.valid_to, _dated(hit.attribute))
        cost = estimate_tokens(line) + 1
        if spend + cost > budget:
            continue
        lines.append(line)
        spend += cost
    if not lines:
        return "", budget
    return "\n".join([header, *lines]), budget - spend


def _episodes(hits: Sequence[Hit], max_tokens: int) -> str:
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
        return ""
    chosen.sort(key=lambda pair: (pair[0].occurred_at, pair[0].id))
    lines = [header]
    session: object = object()
    for hit, line in chosen:
        if hit.session_id != session:
            session = hit.session_id
            lines.append("\n" + _session_header(hit))
        lines.append(line)
    return "\n".join(lines)
