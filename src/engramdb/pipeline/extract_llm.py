"""Claims from episodes by a language model: one call per batch of messages.

The model reads the batch numbered, each message with its speaker and its date, and answers with
claims that cite message numbers. Only what users say is a source: an assistant turn is context
(it makes "yes, that one" understandable) but its first-person statements are not facts about
the user. A batch over ``max_chars`` is cut into several calls at message boundaries.

The prompt lists messages one per line, as ``[n] YYYY-MM-DD Weekday | Maya (user): text`` (a
context turn: ``... | assistant: text``). :class:`engramdb.llms.test.TestLLM` reads that format,
so a change here must change it too (a test holds the two together).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from ..llms.base import LLM, Message
from ..records import (
    CLAIM_KINDS,
    ENTITY_TYPES,
    PROFILE_ATTRIBUTES,
    SINGLE_VALUED,
    Claim,
    EntityRef,
    Row,
)
from .messages import speaker_clock

#: Characters of numbered messages per model call.
MAX_CHARS = 6000
#: Longest claim text kept; longer ones are cut (a claim is one sentence, not a summary).
MAX_STATEMENT = 500
#: Attribute names beyond the profile vocabulary that the prompt suggests.
EXTRA_ATTRIBUTES = ("plan", "event", "goal", "habit", "colleague", "trip")
#: Subjects a model writes when it means the speaker.
_SPEAKER_WORDS = frozenset({"", "i", "me", "myself", "user", "the user", "speaker", "the speaker"})
_THE_USER = re.compile(r"\b(?:[Tt]he user|User)\b")
_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")
_SNAKE = re.compile(r"[^a-z0-9]+")

_VOCABULARY = ", ".join(sorted(SINGLE_VALUED | PROFILE_ATTRIBUTES | set(EXTRA_ATTRIBUTES)))

SYSTEM_PROMPT = f"""You turn a conversation into long-term memories about the people in it.
Read the numbered messages. Extract every durable fact, preference, plan, event and \
relationship that a user states about themselves or the people in their life: one memory per \
fact, and a message often holds several. Messages not marked (user) are \
context only: never extract what the assistant says.

For each memory give:
- subject: whom it is about, by name (the speaker's name for "I" and "my").
- statement: one standalone sentence in the third person that names the subject, with no \
pronouns and with absolute dates. Resolve "yesterday", "last week", "next Friday" against the \
date of the message that says it.
- attribute: a snake_case name; prefer one of: {_VOCABULARY}.
- value: short ("Porto", "Acme Corp", "Ana").
- kind: one of {", ".join(CLAIM_KINDS)}.
- messages: the numbers of the messages it comes from.
- valid_from: the date (YYYY-MM-DD) it became true when the text says or implies it, else null. \
Dates in [dates: ...] after a message are what its time words mean.
- ends: false, unless the message says a value stopped being true ("no longer", "stopped", \
"quit", "moved out"); value is then the value that ended (moving from A to B ends A and \
starts B: two claims).
- entities: the people, places, organizations, pets and things it names, each with a type \
({", ".join(ENTITY_TYPES)}) and its relation to the subject ("sister", "employer", "home") or null.

Skip greetings, small talk, questions and guesses. With nothing worth remembering, answer \
{{"claims": []}}.

Example. Messages:
[1] 2024-03-05 Tuesday | Sam (user): I started at Initech yesterday! My brother Tom lives \
in Oslo. [dates: "yesterday" = Monday 2024-03-04]
Answer:
{{"claims": [{{"subject": "Sam", "statement": "Sam started working at Initech on 4 March \
2024.", "attribute": "works_at", "value": "Initech", "kind": "event", "messages": [1], \
"valid_from": "2024-03-04", "ends": false, "entities": [{{"name": "Initech", \
"type": "organization", "relation": "employer"}}]}}, {{"subject": "Sam", \
"statement": "Sam has a brother named Tom.", "attribute": "brother", "value": "Tom", \
"kind": "relationship", "messages": [1], "valid_from": null, "ends": false, "entities": \
[{{"name": "Tom", "type": "person", "relation": "brother"}}]}}, {{"subject": "Tom", \
"statement": "Sam's brother Tom lives in Oslo.", "attribute": "lives_in", "value": "Oslo", \
"kind": "fact", "messages": [1], "valid_from": null, "ends": false, "entities": [{{"name": \
"Oslo", "type": "place", "relation": "home"}}]}}]}}

Answer with one JSON object only."""

_ENTITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string", "enum": list(ENTITY_TYPES)},
        "relation": {"type": ["string", "null"]},
    },
    "required": ["name", "type", "relation"],
    "additionalProperties": False,
}
_CLAIM_FIELDS = (
    "subject", "statement", "attribute", "value", "kind", "messages", "valid_from", "ends",
    "entities",
)  # fmt: skip
_CLAIM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "subject": {"type": "string"},
        "statement": {"type": "string"},
        "attribute": {"type": "string"},
        "value": {"type": "string"},
        "kind": {"type": "string", "enum": list(CLAIM_KINDS)},
        "messages": {"type": "array", "items": {"type": "integer"}},
        "valid_from": {"type": ["string", "null"]},
        "ends": {"type": "boolean"},
        "entities": {"type": "array", "items": _ENTITY_SCHEMA},
    },
    "required": list(_CLAIM_FIELDS),
    "additionalProperties": False,
}
#: What the model must answer: ``{"claims": [...]}``.
CLAIMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"claims": {"type": "array", "items": _CLAIM_SCHEMA}},
    "required": ["claims"],
    "additionalProperties": False,
}

SubjectFor = Callable[[Row], str | None]


def extract_with_llm(
    llm: LLM,
    rows: Sequence[Row],
    *,
    subject_for: SubjectFor,
    max_chars: int = MAX_CHARS,
    max_tokens: int = 2048,
) -> list[Claim]:
    """The claims a model finds in a batch of episodes, deduplicated, in the order found.

    Args:
        llm: the model to ask.
        rows: episodes in conversation order (one ``add`` batch or a session window).
        subject_for: the display name of a row's speaker when it is a user whose statements
            are facts ("Maya"); None for assistant turns and anything else that is context only.
        max_chars: characters of numbered messages per call; a longer batch takes several.
        max_tokens: the longest answer asked of the model per call.

    Raises:
        LLMError: the model failed, or answered unusably after its retries. An empty list
            always means the model found nothing, never that it failed.
    """
    found: list[Claim] = []
    for chunk in chunks(rows, subject_for, max_chars):
        if not any(subject_for(row) for row in chunk):
            continue  # only context: nothing here can be a source
        answer, _ = llm.complete_json(
            prompt(chunk, subject_for), CLAIMS_SCHEMA, name="claims", max_tokens=max_tokens
        )
        found += claims_from_answer(answer, chunk, subject_for)
    return dedupe(found)


def prompt(rows: Sequence[Row], subject_for: SubjectFor) -> list[Message]:
    """The messages of one extraction call: fixed instructions first (a cacheable prefix)."""
    lines = "\n".join(message_line(i, row, subject_for) for i, row in enumerate(rows, 1))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Messages:\n{lines}\nAnswer:"},
    ]


def message_line(number: int, row: Row, subject_for: SubjectFor) -> str:
    """``[n] 2024-05-28 Tuesday | Maya (user): text`` (newlines folded: one message a line)."""
    day = speaker_clock(row.occurred_at, row.tz_offset)
    name = subject_for(row)
    speaker = f"{name} (user)" if name else _context_speaker(row)
    text = " ".join(row.text.split())
    return f"[{number}] {day:%Y-%m-%d} {day:%A} | {speaker}: {text}{date_notes(row)}"


def date_notes(row: Row) -> str:
    """The dates the rule-based resolver found in a message, as a hint for the model:
    `` [dates: "yesterday" = Monday 2024-05-27]`` (small models resolve dates poorly)."""
    notes = [_date_note(mention) for mention in row.time_mentions]
    found = [note for note in notes if note]
    return f" [dates: {'; '.join(found)}]" if found else ""


def _date_note(mention: Mapping[str, Any]) -> str:
    try:
        start = datetime.fromisoformat(mention["start"])
        last = datetime.fromisoformat(mention["end"]) - timedelta(days=1)
    except (KeyError, TypeError, ValueError):
        return ""
    words = " ".join(str(mention.get("text", "")).split())
    if mention.get("granularity") in ("day", "time") or last.date() <= start.date():
        return f'"{words}" = {start:%A} {start:%Y-%m-%d}'
    return f'"{words}" = {start:%Y-%m-%d} to {last:%Y-%m-%d}'


def _context_speaker(row: Row) -> str:
    role = row.role or "system"
    # Only sources carry "(user)": a named context turn must not look like one.
    return f"{row.name}, {role}" if row.name else role


def chunks(rows: Sequence[Row], subject_for: SubjectFor, max_chars: int) -> Iterator[list[Row]]:
    """Runs of consecutive rows whose numbered lines fit ``max_chars`` (a longer row goes alone)."""
    chunk: list[Row] = []
    size = 0
    for row in rows:
        length = len(message_line(len(chunk) + 1, row, subject_for)) + 1
        if chunk and size + length > max_chars:
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += length
    if chunk:
        yield chunk


def claims_from_answer(
    answer: Mapping[str, Any], rows: Sequence[Row], subject_for: SubjectFor
) -> list[Claim]:
    """A parsed answer's claims; items lacking a statement or a user message to cite are dropped."""
    items = answer.get("claims")
    out: list[Claim] = []
    for item in items if isinstance(items, list) else []:
        claim = _claim(item, rows, subject_for) if isinstance(item, Mapping) else None
        if claim is not None:
            out.append(claim)
    return out


def dedupe(claims: Sequence[Claim]) -> list[Claim]:
    """One claim per (subject, attribute, value, ends, kind), citing the sources of all copies."""
    kept: dict[tuple[str, str, str, bool, str], Claim] = {}
    for claim in claims:
        key = (
            claim.subject.casefold(), claim.attribute, claim.value.casefold(), claim.ends,
            claim.kind,
        )  # fmt: skip
        first = kept.get(key)
        if first is None:
            kept[key] = claim
            continue
        merged = tuple(dict.fromkeys(first.source_ids + claim.source_ids))
        kept[key] = replace(first, source_ids=merged)
    return list(kept.values())


def _claim(item: Mapping[str, Any], rows: Sequence[Row], subject_for: SubjectFor) -> Claim | None:
    sources = _sources(item.get("messages"), rows, subject_for)
    statement = _text(item.get("statement"))
    if not sources or not statement:
        return None
    speaker = subject_for(sources[0]) or ""
    subject = _text(item.get("subject"))
    if subject.casefold() in _SPEAKER_WORDS:
        subject = speaker
    attribute = snake(_text(item.get("attribute"))) or "note"
    kind = _text(item.get("kind")).lower()
    return Claim(
        subject=subject,
        attribute=attribute,
        value=_text(item.get("value")) or statement,
        text=_cut(_THE_USER.sub(speaker, statement)),
        kind=kind if kind in CLAIM_KINDS else "fact",
        source_ids=tuple(row.id for row in sources),
        valid_from=_valid_from(item.get("valid_from"), sources[0]),
        ends=item.get("ends") is True,
        single=attribute in SINGLE_VALUED,
        entities=_entities(item.get("entities")),
    )


def _sources(numbers: object, rows: Sequence[Row], subject_for: SubjectFor) -> list[Row]:
    """The cited rows that are user messages, in citation order, each once."""
    cited = numbers if isinstance(numbers, list) else [numbers]
    out: list[Row] = []
    for number in cited:
        index = _message_number(number)
        if index is None or not 1 <= index <= len(rows):
            continue
        row = rows[index - 1]
        if subject_for(row) and all(row.id != seen.id for seen in out):
            out.append(row)
    return out


def _message_number(value: object) -> int | None:
    """An int, or a string like ``"3"`` / ``"[3]"`` (models quote numbers); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = value.strip().strip("[]#").strip()
        return int(digits) if digits.isascii() and digits.isdigit() else None
    return None


def _valid_from(value: object, first: Row) -> float:
    """Midnight of the given date on the speaker's clock; else the first source's time."""
    match = _DATE.match(value) if isinstance(value, str) else None
    if match is None:
        return first.occurred_at
    zone = timezone(timedelta(seconds=first.tz_offset or 0))
    try:
        year, month, day = (int(part) for part in match.groups())
        return datetime(year, month, day, tzinfo=zone).timestamp()
    except (ValueError, OverflowError):
        return first.occurred_at


def _entities(value: object) -> tuple[EntityRef, ...]:
    out: list[EntityRef] = []
    for item in value if isinstance(value, list) else []:
        name = _text(item.get("name")) if isinstance(item, Mapping) else ""
        if not name:
            continue
        kind = _text(item.get("type")).lower()
        relation = _text(item.get("relation"))
        ref = EntityRef(name, kind if kind in ENTITY_TYPES else "thing", relation or None)
        if ref not in out:
            out.append(ref)
    return tuple(out)


def snake(name: str) -> str:
    """``"Lives In"`` → ``"lives_in"``."""
    return _SNAKE.sub("_", name.strip().lower()).strip("_")


def _text(value: object) -> str:
    """A model's string, stripped; numbers become text; anything else is empty."""
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _cut(text: str) -> str:
    return text if len(text) <= MAX_STATEMENT else text[: MAX_STATEMENT - 1].rstrip() + "…"
