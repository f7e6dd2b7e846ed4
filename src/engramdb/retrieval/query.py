"""Query analysis: lexical terms and the time constraint of a question."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ..temporal import parse_query_time
from ..text import STOPWORDS
from ..types import TimeMention

_WORD = re.compile(r"[\w][\w'’-]*", re.UNICODE)


@dataclass(frozen=True)
class Query:
    """An analysed search query."""

    text: str
    terms: tuple[str, ...]
    time: TimeMention | None


def terms_of(text: str) -> tuple[str, ...]:
    """Content words of a text, lower-cased, de-duplicated, in order."""
    seen: dict[str, None] = {}
    for raw in _WORD.findall(text.lower()):
        word = raw.replace("’", "'").strip("'-")
        if word.endswith("'s"):
            word = word[:-2]
        if word and word not in STOPWORDS:
            seen.setdefault(word, None)
    return tuple(seen)


def analyse(text: str, as_of: datetime) -> Query:
    """Terms for the lexical index and the time window the question refers to, if any."""
    return Query(text=text, terms=terms_of(text), time=parse_query_time(text, as_of))
