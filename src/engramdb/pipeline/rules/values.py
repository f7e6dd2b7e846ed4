"""Turning the words after a verb into a clean value, or refusing them.

Each check takes the raw tail of a clause ("Porto now, and I love it") and returns the value
("Porto"), or None when the tail is no value of that kind ("a mess", "it"). The table of
predicates picks one check per rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import lexicon as lex

Check = Callable[[str], str | None]

# Where a noun phrase stops: a new clause, a preposition that starts another phrase, a time
# expression, or a filler that says when rather than what.
_CUT = re.compile(
    r"\s*(?:[,:()\"“”—–]|\s-\s|\.\.\.|\b(?:and|but|or|so|because|since|for|with|when|while|"
    r"where|which|who|that|after|before|until|till|as|if|though|although|from|to|by|in|at|on|"
    r"near|about|around|like|than|just|yet|still|already|even|instead|rather|whenever|"
    r"now|nowadays|these\s+days|at\s+the\s+moment|currently|anymore|any\s+more|again|too|"
    r"as\s+well|lately|recently|last|next|this|yesterday|today|tomorrow|tonight|ago|"
    r"on\s+(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|the\s+\d)|"
    r"in\s+(?:january|february|march|april|may|june|july|august|september|october|"
    r"november|december|spring|summer|autumn|fall|winter|(?:19|20)\d\d)|"
    r"every|each|lol|haha|though|btw|right|actually|honestly|really|either|"
    r"full[-\s]time|part[-\s]time|for\s+now|back\s+then|at\s+all|so\s+much|a\s+lot)\b|"
    r"[^\w\s'’&.+-])",
    re.I,
)
_LEAD = re.compile(r"^(?:the\s+(?:city|town|village|state|country)\s+of\s+|the\s+)", re.I)
_ARTICLE = re.compile(r"^(?:a|an|the|my|our|some|his|her|their)\s+", re.I)
_TRAIL = re.compile(r"[\s.'’-]+$")
_DETERMINER = re.compile(
    r"^(?:a|an|my|our|your|his|her|their|its|this|that|these|those|some|any|no|every|"
    r"same|such|one|two|three|few|many|much|more|lots)\b",
    re.I,
)
_NUMBER = re.compile(r"^\d{1,3}$")
MAX_WORDS = 6


def head(tail: str) -> str:
    """The tail up to where a noun phrase stops, trimmed."""
    cut = _CUT.search(tail)
    phrase = tail[: cut.start()] if cut else tail
    return _TRAIL.sub("", phrase.strip())


def _sane(value: str) -> str | None:
    words = value.split()
    if not words or len(words) > MAX_WORDS or value.lower() in lex.EMPTY_VALUES:
        return None
    return value


def phrase(tail: str) -> str | None:
    """A short noun phrase without its article or possessive ("the guitar" -> "guitar")."""
    return _sane(_ARTICLE.sub("", head(tail)))


def article_phrase(tail: str) -> str | None:
    """A short noun phrase that keeps its article ("a bank", "Google")."""
    value = head(tail)
    if re.match(r"^(?:my|our|his|her|their)\b", value, re.I):
        return None
    return _sane(value)


def proper(tail: str) -> str | None:
    """A name: a place or an organisation ("the city of Porto" -> "Porto"). Lower-case chat is
    accepted, capitalised; a phrase led by a determiner ("a small flat") is refused."""
    value = _LEAD.sub("", head(tail))
    if not value or _DETERMINER.match(value) or value.lower() in lex.EMPTY_VALUES:
        return None
    if value.islower():
        value = " ".join(w[:1].upper() + w[1:] for w in value.split())
    return _sane(value)


def organisation(tail: str) -> str | None:
    """An employer or school: a name, or "a bank"-style description."""
    value = head(tail)
    if re.match(r"^(?:a|an)\s", value, re.I):
        return _sane(value)
    if re.match(r"^(?:home|myself|free|nothing|night|nights|it|the\s+moment)$", value, re.I):
        return None
    return proper(value)


def _last_word_in(words: frozenset[str]) -> Check:
    def check(tail: str) -> str | None:
        value = phrase(tail)
        if value is None or value.split()[-1].lower().rstrip("s") not in words | {
            w.rstrip("s") for w in words
        }:
            return None
        return value

    return check


occupation = _last_word_in(lex.OCCUPATIONS)
possession = _last_word_in(lex.POSSESSIONS)


def _first_word_in(words: frozenset[str]) -> Check:
    def check(tail: str) -> str | None:
        value = phrase(tail)
        if value is None or value.split()[0].lower() not in words:
            return None
        return value

    return check


car = _first_word_in(lex.CAR_MAKES)
phone = _first_word_in(lex.PHONES)
activity = _first_word_in(lex.ACTIVITIES | lex.INSTRUMENTS)
condition = _first_word_in(lex.CONDITIONS)


def pet_kind(tail: str) -> str | None:
    """A kind of pet, singular ("two cats" -> "cat")."""
    value = phrase(re.sub(r"^(?:\w+\s+)?(?=(?:\w+\s+)?\w+$)", "", head(tail)))
    if value is None:
        return None
    word = value.split()[-1].lower()
    singular = word[:-1] if word.endswith("s") and word[:-1] in lex.PETS else word
    return singular if singular in lex.PETS else None


def diet(tail: str) -> str | None:
    """A diet word ("vegan", "gluten free" -> "gluten-free")."""
    value = phrase(tail)
    if value is None:
        return None
    word = re.sub(r"\s+diet$", "", value.lower()).replace(" ", "-")
    return word if word in lex.DIETS else None


def health_state(tail: str) -> str | None:
    """An adjective for a lasting state of health ("pregnant", "diabetic")."""
    value = phrase(tail)
    return value.lower() if value and value.lower() in lex.HEALTH_STATES else None


def nationality(tail: str) -> str | None:
    """A demonym, capitalised ("portuguese" -> "Portuguese")."""
    value = phrase(tail)
    if value is None or value.lower() not in lex.DEMONYMS:
        return None
    return value[:1].upper() + value[1:].lower()


_AGE = re.compile(
    r"^(\d{1,3})(?:\s*(?:years?\s+old|yrs?\s+old|yo|y/o))?\s*"
    r"(?:[,.!]|$|(?:and|last|this|on|in|yesterday|today|next)\b)",
    re.I,
)


def age(tail: str) -> str | None:
    """An age in years, only when nothing but "years old" follows ("34", not "5 minutes")."""
    m = _AGE.match(tail)
    return m.group(1) if m and 0 < int(m.group(1)) < 120 else None


def name(tail: str) -> str | None:
    """A given name: capitalised words ("Sam", "Mary Ann")."""
    m = re.match(r"^((?-i:[A-ZÀ-Þ][^\W\d_]*(?:[ -][A-ZÀ-Þ][^\W\d_]*)?))(?!\w)", tail.strip())
    if m is None or m.group(1).lower() in lex.NOT_NAMES:
        return None
    return m.group(1)


_DOUBLED = frozenset(["run", "swim", "shop", "jog", "get", "sit", "begin", "plan", "chat", "stop"])


def gerund(verb_phrase: str) -> str:
    """ "to cook" -> "cooking": how a liked activity is stored whichever way it was said."""
    words = verb_phrase.split()
    if len(words) < 2 or words[0].lower() != "to":
        return verb_phrase
    verb = words[1].lower()
    if verb in _DOUBLED:
        ing = verb + verb[-1] + "ing"
    elif verb.endswith("e") and not verb.endswith("ee"):
        ing = verb[:-1] + "ing"
    else:
        ing = verb + "ing"
    return " ".join([ing, *words[2:]])


_NOT_LIKED = re.compile(
    r"^(?:to\s+(?:be|have|get|think|say|know|believe|keep|make|see|ask|go|do|add|"
    r"mention|point|hear|try|help|thank|share)\b|it\b|that\b|this\b|you\b|how\b|what\b|"
    r"when\b|the\s+(?:idea|way|fact)\b|totally\b|literally\b|really\b|just\b)",
    re.I,
)


def liked(tail: str) -> str | None:
    """What is liked or disliked: a noun phrase, or an activity ("to cook" -> "cooking")."""
    if _NOT_LIKED.match(tail.strip()):
        return None
    return phrase(gerund(tail.strip()))


def event_noun(tail: str) -> str | None:
    """A short event noun phrase for "my wedding is on ..." (one to three words)."""
    value = phrase(tail)
    return value if value and len(value.split()) <= 3 else None
