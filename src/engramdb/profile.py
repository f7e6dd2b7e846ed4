"""The profile (core memory): who the user is now, from the current facts they stated.

Nothing is stored for it: a profile is read from the scope's current facts each time, so it is
exactly as current as reconciliation keeps them (a move supersedes the old city, and the profile
shows the new one at once), and a deleted episode takes its entries with its facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .records import PROFILE_ATTRIBUTES, Row
from .results import fact_fields
from .retrieval.pack import fact_line
from .text import norm_name
from .types import Profile, ProfileEntry, Scope

#: Entry order: who they are, where and with whom they live and work, then tastes.
_ORDER = (
    "name", "age", "birthday", "nationality", "hometown", "lives_in", "works_at", "job_title",
    "studies_at", "relationship_status", "partner", "spouse", "child", "mother", "father",
    "sister", "brother", "pet", "diet", "allergy", "health", "language", "hobby", "likes",
    "dislikes", "car",
)  # fmt: skip
_RANK = {name: i for i, name in enumerate(_ORDER)}


def profile_attribute(row: Row) -> bool:
    """Whether a fact belongs in a profile: a stable attribute or a preference."""
    fact = row.fact
    if fact is None or fact.ends or fact.valid_to is not None:
        return False
    return (
        fact.attribute in PROFILE_ATTRIBUTES
        or fact.attribute.startswith("favourite_")
        or fact.claim_kind in ("preference", "relationship")
    )


def build(
    scope: Scope,
    facts: Sequence[Row],
    sources: Mapping[str, Row],
    speaker_of: Mapping[str, str | None],
    max_chars: int,
) -> Profile:
    """The profile of a scope's user from its current facts.

    A fact is the user's own when its subject is the name its source message was said under
    (``speaker_of``: message id -> the user's name for it), so "Inês works at X", said by Maya,
    is about Inês, not Maya.
    """
    own = [f for f in facts if profile_attribute(f) and _about_speaker(f, sources, speaker_of)]
    own.sort(key=lambda r: (_RANK.get(_attr(r), len(_ORDER)), -_since(r)))
    header = _header(scope, own)
    entries: list[ProfileEntry] = []
    lines: list[str] = []
    used = len(header)
    truncated = False
    for row in own:
        fields = fact_fields(row)
        line = "- " + fact_line(row.text, fields["valid_from"], None)
        if used + len(line) + 1 > max_chars:
            truncated = True
            continue
        used += len(line) + 1
        lines.append(line)
        entries.append(_entry(row))
    text = "\n".join([header, *lines]) if lines else ""
    return Profile(scope.user_id, scope.agent_id, entries, text, truncated)


def _about_speaker(
    row: Row, sources: Mapping[str, Row], speaker_of: Mapping[str, str | None]
) -> bool:
    assert row.fact is not None
    subject = norm_name(row.fact.subject)
    return any(
        (name := speaker_of.get(s)) is not None and norm_name(name) == subject
        for s in row.source_ids
        if s in sources
    )


def _header(scope: Scope, rows: Sequence[Row]) -> str:
    names = {r.fact.subject for r in rows if r.fact is not None}
    who = names.pop() if len(names) == 1 else (scope.user_id or scope.agent_id or "the user")
    return f"Profile of {who} (current):"


def _entry(row: Row) -> ProfileEntry:
    fields = fact_fields(row)
    return ProfileEntry(
        attribute=fields["attribute"],
        value=fields["value"],
        text=row.text,
        since=fields["valid_from"],
        fact_id=row.id,
        sources=list(row.source_ids),
    )


def _attr(row: Row) -> str:
    assert row.fact is not None
    attribute = row.fact.attribute
    return "likes" if attribute.startswith("favourite_") else attribute


def _since(row: Row) -> float:
    assert row.fact is not None
    return row.fact.valid_from
