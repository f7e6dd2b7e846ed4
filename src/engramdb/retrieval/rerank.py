"""Second-stage scoring of fused candidates with what the indexes cannot see."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from ..records import Row
from ..types import TimeMention

#: Weight of a candidate said by the person the question names ("What did Caroline ...?").
SPEAKER_BOOST = 1.0
#: Weight of a candidate that mentions a date inside the question's time window.
MENTION_BOOST = 0.5


def _named(query: str, name: str | None, cache: dict[str, bool]) -> bool:
    if not name:
        return False
    if name not in cache:
        cache[name] = re.search(rf"\b{re.escape(name)}\b", query, re.IGNORECASE) is not None
    return cache[name]


def _mentions_window(row: Row, window: TimeMention | None) -> bool:
    if window is None:
        return False
    start, end = window.start.timestamp(), window.end.timestamp()
    return any(
        datetime.fromisoformat(m["start"]).timestamp() < end
        and datetime.fromisoformat(m["end"]).timestamp() > start
        for m in row.time_mentions
    )


def rerank(
    query: str,
    window: TimeMention | None,
    fused: Sequence[tuple[str, float, dict[str, int]]],
    rows: dict[str, Row],
) -> list[tuple[str, float, dict[str, int]]]:
    """Boost candidates said by someone the query names, or mentioning the asked-for time."""
    named: dict[str, bool] = {}
    out = []
    for ident, score, ranks in fused:
        row = rows.get(ident)
        if row is None:
            continue
        factor = 1.0
        if _named(query, row.name, named):
            factor += SPEAKER_BOOST
            ranks = {**ranks, "speaker": 1}
        if _mentions_window(row, window):
            factor += MENTION_BOOST
            ranks = {**ranks, "mentions_time": 1}
        out.append((ident, score * factor, ranks))
    out.sort(key=lambda item: -item[1])
    return out
