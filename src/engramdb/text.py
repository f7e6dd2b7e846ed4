"""Words of a text: the tokens, stems and stopwords that the lexical indexes (every backend)
and the query analyser share, so a query is cut into terms the same way its documents were."""

from __future__ import annotations

import re
import threading
import unicodedata

import snowballstemmer

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

_WORD = re.compile(r"\w+", re.UNICODE)


class _Stemmer:
    """Porter2 stems, memoised (the stemmer is slow; vocabularies are small)."""

    def __init__(self) -> None:
        self._stemmer = snowballstemmer.stemmer("english")
        self.memo: dict[str, str] = {}
        self._lock = threading.Lock()

    def stem(self, word: str) -> str:
        found = self.memo.get(word)
        if found is None:
            with self._lock:
                found = self._stemmer.stemWord(word)
                if len(self.memo) > 500_000:
                    self.memo.clear()
                self.memo[word] = found
        return found


_STEMMER = _Stemmer()
_STOP_STEMS = frozenset(_STEMMER.stem(w) for w in STOPWORDS) | STOPWORDS


def _fold(text: str) -> str:
    lowered = text.lower()
    if lowered.isascii():  # the common case, and 10x cheaper than decomposing
        return lowered
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """Index terms of a text: lower-cased, accents removed, stemmed, stopwords dropped."""
    memo, stem = _STEMMER.memo, _STEMMER.stem
    out = []
    for word in _WORD.findall(_fold(text)):
        found = memo.get(word)
        if found is None:
            # Numbers, codes and ids have no stem, and stemming each new one costs ~50 us.
            found = stem(word) if word.isalpha() else word
        if found not in _STOP_STEMS:
            out.append(found)
    return out


_LEADING = re.compile(r"^(?:the|a|an|my|our|his|her|their)\s+")


def norm_name(text: str) -> str:
    """A name or value as compared: case, accents, punctuation and a leading article or
    possessive ignored ("the Porto office" ~ "porto office", "Inês" ~ "ines")."""
    folded = " ".join(_WORD.findall(_fold(text)))
    return _LEADING.sub("", folded).strip()
