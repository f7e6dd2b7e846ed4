"""Second-stage scoring of fused candidates with what the indexes cannot see."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import datetime

from ..records import Row
from ..types import TimeMention

#: Weight of a candidate said by the person the question names ("What did Caroline ...?").
SPEAKER_BOOST = 1.0
#: Weight of a candidate that mentions a date inside the question's time window.
MENTION_BOOST = 0.5
#: Weight of a fact that holds at the moment asked about: a distilled statement answers more
#: directly than the turn it came from.
FACT_BOOST = 0.5
#: Multiplier of a fact that no longer held then: still found, shown as past, ranked below.
PAST_FACT = 0.35
#: Multiplier of a turn whose every extracted statement had ended by then ("I live in Lisbon"
#: after the move to Porto): still found, below what is true.
STALE_TURN = 0.6


def _named(query: str, name: str | None, cache: dict[str, bool]) -> bool:
    if not name:
        return False
    if name not in cache:
        cache[name] = re.search(rf"\b{re.escape(name)}\b", query, re.IGNORECASE) is not None
    return cache[name]


def _taste(row: Row) -> bool:
    """A many-valued fact that is not dated: what someone likes, not where they live or what
    they did when."""
    fact = row.fact
    return fact is not None and not fact.single and fact.attribute not in ("event", "plan")


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
    at: float | None = None,
    stale: Collection[str] = (),
) -> list[tuple[str, float, dict[str, int]]]:
    """Boost candidates said by someone the query names, or mentioning the asked-for time, and
    facts that hold at ``at`` (now when None); lower facts that had ended by then."""
    named: dict[str, bool] = {}
    out = []
    for ident, score, ranks in fused:
        row = rows.get(ident)
        if row is None:
            continue
        factor = 1.0
        # A turn said by the person the question names, or a fact about them, except a taste:
        # "Jon likes performing" matches every question about Jon, short facts already rank
        # high on the dense list, and boosted too, tastes crowded the answering turns out.
        if not _taste(row) and _named(query, row.name, named):
            factor += SPEAKER_BOOST
            ranks = {**ranks, "speaker": 1}
        if _mentions_window(row, window):
            factor += MENTION_BOOST
            ranks = {**ranks, "mentions_time": 1}
        if row.fact is not None:
            if row.fact.valid_to is None or (at is not None and row.fact.holds_at(at)):
                factor += FACT_BOOST
            else:
                factor *= PAST_FACT
                ranks = {**ranks, "past": 1}
        elif ident in stale:
            factor *= STALE_TURN
            ranks = {**ranks, "stale": 1}
        out.append((ident, score * factor, ranks))
    out.sort(key=lambda item: -item[1])
    return out
