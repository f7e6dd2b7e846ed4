"""Query analysis: lexical terms and the time constraint of a question."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ..pipeline.temporal import parse_query_time
from ..types import TimeMention

# Function words carry no topic: OR-ing them into a full-text query only slows it down and
# drowns the rare terms that matter. Question words are here too ("when did ...").
_STOPWORD_TEXT = """
a about above after again against all am an and any are aren't as at be because been before
being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
don't down during each few for from further had hadn't has hasn't have haven't having he he'd
he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into
is isn't it it's its itself let's me more most mustn't my myself no nor not of off on once only
or other ought our ours ourselves out over own same shan't she she'd she'll she's should
shouldn't so some such than that that's the their theirs them themselves then there there's
these they they'd they'll they're they've this those through to too under until up very was
wasn't we we'd we'll we're we've were weren't what what's when when's where where's which while
who who's whom why why's will with won't would wouldn't you you'd you'll you're you've your yours
yourself yourselves also just ever really s t d ll m o re ve y get got
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

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
