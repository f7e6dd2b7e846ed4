"""Which date a clause gives, and how a claim's text says it.

The time mentions were resolved when the message was prepared (``Row.time_mentions``, against
the speaker's clock); a clause uses the first of them whose words it contains.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ...types import TimeMention

#: ``valid_from`` of a claim true up to some unknown time before ("I used to live in Lisbon"):
#: 1 Jan 1900 UTC, read as "since before anything the store knows".
UNKNOWN_START: float = datetime(1900, 1, 1, tzinfo=UTC).timestamp()


def mentions(raw: list[dict[str, Any]]) -> list[TimeMention]:
    """The stored mention dicts as TimeMentions (malformed ones are skipped)."""
    out: list[TimeMention] = []
    for m in raw:
        try:
            start = datetime.fromisoformat(str(m["start"]))
            end = datetime.fromisoformat(str(m["end"]))
            out.append(TimeMention(str(m["text"]), start, end, str(m["granularity"])))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def in_clause(found: list[TimeMention], clause: str) -> TimeMention | None:
    """The first mention said in this clause."""
    return next((m for m in found if m.text and m.text in clause), None)


def on(mention: TimeMention) -> str:
    """The mention as a phrase after a verb: "on 28 May 2024", "in March 2025"."""
    label = mention.label()
    if mention.granularity in ("day", "time"):
        return f"on {label}"
    if mention.granularity in ("week", "weekend"):
        return f"during {label}"
    return f"in {label}"


def since(mention: TimeMention) -> str:
    """The mention as the start of a state: "since 28 May 2024"."""
    return f"since {mention.label()}"
