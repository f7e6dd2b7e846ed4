"""The first step of the write path: validate messages and turn them into rows.

Everything is checked before anything is written, so a bad message in a batch leaves the store
untouched.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..backends.base import Row
from ..errors import ContentTooLarge, EmptyContent, InvalidInput, UnknownRole
from ..temporal import annotate, find_time_mentions, parse_timestamp
from ..types import ROLES, Scope

MessageInput = Mapping[str, Any] | str
_STEP = timedelta(milliseconds=1)
#: Separates a message's own text from the quoted turn before it in its index key.
CONTEXT_MARK = "\n(after "
#: How much of the previous turn a message is indexed with (lexical key).
_CONTEXT_CHARS = 300
#: How much of it the dense key keeps. Every character is embedded and costs ingest time; on the
#: dev sets 100 characters recalled as well as 300 (LoCoMo recall@10 0.733 vs 0.736, LongMemEval
#: 24 questions s_recall_all@5 1.0 vs 0.96) and embedded 1.3x (LoCoMo) to 1.7x (LongMemEval) faster.
EMBED_CONTEXT_CHARS = 100
_FIELDS = frozenset({"role", "content", "name", "timestamp", "metadata"})


@dataclass(frozen=True)
class Prepared:
    """A validated message, ready to embed and store."""

    row: Row
    embed_text: str


def normalise(messages: MessageInput | Sequence[MessageInput]) -> list[Mapping[str, Any]]:
    """Accept one string, one message dict, or a list of either."""
    if isinstance(messages, (str, Mapping)):
        messages = [messages]
    if not isinstance(messages, Sequence):
        raise InvalidInput("messages must be a string, a message dict or a list of them")
    out: list[Mapping[str, Any]] = []
    for index, message in enumerate(messages):
        if isinstance(message, str):
            out.append({"role": "user", "content": message})
        elif isinstance(message, Mapping):
            out.append(message)
        else:
            raise InvalidInput(
                f"message {index} is a {type(message).__name__}: give a dict "
                "like {'role': 'user', 'content': '...'} or a string"
            )
    if not out:
        raise InvalidInput("add() got no messages: give at least one")
    return out


def prepare(
    messages: Sequence[Mapping[str, Any]],
    *,
    scope: Scope,
    session_id: str | None,
    metadata: Mapping[str, Any] | None,
    max_chars: int,
    now: datetime,
) -> list[Prepared]:
    """Validate every message and build its row (raises on the first bad one).

    A message without a timestamp takes the one of the message before it in the batch plus a
    millisecond (a reply happens when the conversation does, not when it is imported), or
    ``now`` if none has one.
    """
    out: list[Prepared] = []
    for i, m in enumerate(messages):
        # One millisecond after the previous message keeps the batch's order wherever messages
        # are sorted by time (context, neighbours), without inventing a visible time.
        default = (
            datetime.fromtimestamp(out[-1].row.occurred_at, tz=now.tzinfo) + _STEP if out else now
        )
        out.append(_prepare_one(i, m, scope, session_id, metadata or {}, max_chars, now, default))
    return out


def with_context(prepared: list[Prepared], previous: Row | None) -> list[Prepared]:
    """Index each message together with the turn before it in its session.

    A reply ("Yes, last weekend!") says little on its own; keyed with the turn it answers, both
    the lexical and the dense index can find it (key expansion; +8 points of evidence recall on
    LoCoMo dev, see docs/benchmarks.md). ``previous`` is the stored turn before the batch.
    """
    out: list[Prepared] = []
    for p in prepared:
        if previous is not None:
            p.row.index_text = _with_previous(p.row.index_text, previous)
            p = Prepared(row=p.row, embed_text=embed_key(p.row.index_text))
        out.append(p)
        previous = p.row
    return out


def embed_key(index_text: str) -> str:
    """The text embedded for a message: its index key with the quoted previous turn cut to its
    last ``EMBED_CONTEXT_CHARS`` characters. A pure function of the index key, so adding,
    correcting and re-embedding all give the same vector."""
    own, mark, quoted = index_text.rpartition(CONTEXT_MARK)
    if not mark:
        return index_text
    if EMBED_CONTEXT_CHARS <= 0:
        return own
    who, sep, tail = quoted.partition(": ")
    if not sep:
        who, tail = "", quoted
    tail = tail.removesuffix(")")
    return f"{own}{CONTEXT_MARK}{who}{sep}{_tail(tail, EMBED_CONTEXT_CHARS)})"


def _tail(text: str, chars: int) -> str:
    """The last ``chars`` characters of ``text``, from a word start, marked as cut."""
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    return "…" + cut[cut.find(" ") + 1 :]


def _with_previous(own: str, previous: Row) -> str:
    # The message's own text comes first so that an embedder truncating long input (MiniLM
    # reads 256 tokens) never loses it; only the end of the turn before is kept, since that is
    # what a reply answers ("...did you like it?" -> "Loved it!").
    who = f"{previous.name}: " if previous.name else ""
    return f"{own}{CONTEXT_MARK}{who}{_tail(previous.text, _CONTEXT_CHARS)})"


def _prepare_one(
    index: int,
    message: Mapping[str, Any],
    scope: Scope,
    session_id: str | None,
    batch_metadata: Mapping[str, Any],
    max_chars: int,
    now: datetime,
    default_time: datetime,
) -> Prepared:
    unknown = sorted(set(message) - _FIELDS)
    if unknown:
        raise InvalidInput(
            f"message {index} has unknown field(s) {', '.join(unknown)}: "
            f"allowed are {', '.join(sorted(_FIELDS))}"
        )
    role = message.get("role", "user")
    if role not in ROLES:
        raise UnknownRole(index, role, ROLES)
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        raise EmptyContent(index)
    if len(content) > max_chars:
        raise ContentTooLarge(index, len(content), max_chars)
    name = message.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidInput(f"message {index}: name must be a string")
    raw_time = message.get("timestamp")
    occurred = default_time if raw_time is None else parse_timestamp(raw_time)
    own_metadata = message.get("metadata") or {}
    if not isinstance(own_metadata, Mapping):
        raise InvalidInput(f"message {index}: metadata must be a dict")
    meta = {**batch_metadata, **own_metadata}
    check_json(index, meta)
    speaker_time = _speaker_time(raw_time, occurred)
    mentions = find_time_mentions(content, speaker_time)
    index_text = _index_text(name, content, annotate(content, speaker_time))
    row = Row(
        id=str(uuid.uuid4()),
        scope=scope,
        kind="message",
        session_id=session_id,
        role=role,
        name=name,
        text=content,
        occurred_at=occurred.timestamp(),
        recorded_at=now.timestamp(),
        updated_at=now.timestamp(),
        metadata=meta,
        time_mentions=[mention_dict(m) for m in mentions],
        content_hash=content_hash(role, name, content, raw_time),
        index_text=index_text,
    )
    return Prepared(row=row, embed_text=index_text)


def _speaker_time(raw: Any, occurred: datetime) -> datetime:
    """The message time on the speaker's own clock, when the timestamp said which.

    "Yesterday" said at 01:00 in Lisbon summer time is the day before in Lisbon, which is two
    days before in UTC terms; resolving against the UTC time would be a day off.
    """
    local: datetime | None = raw if isinstance(raw, datetime) else None
    if isinstance(raw, str):
        try:
            local = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            local = None
    if local is None or local.tzinfo is None:
        return occurred
    return local


def _index_text(name: str | None, content: str, notes: str) -> str:
    text = f"{name}: {content}" if name else content
    return f"{text} ({notes})" if notes else text


def index_text_for(name: str | None, content: str, occurred: datetime, previous: Row | None) -> str:
    """The text a message is indexed and embedded under: the turn before it, then the speaker,
    the content and its resolved dates."""
    text = _index_text(name, content, annotate(content, occurred))
    return text if previous is None else _with_previous(text, previous)


def mention_dict(m: Any) -> dict[str, Any]:
    return {
        "text": m.text,
        "start": m.start.isoformat(),
        "end": m.end.isoformat(),
        "granularity": m.granularity,
    }


def check_json(index: int, meta: Mapping[str, Any]) -> None:
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"message {index}: metadata is not JSON-serialisable ({exc}): "
            "use strings, numbers, booleans, lists and dicts"
        ) from exc


def content_hash(role: str, name: str | None, content: str, timestamp: Any) -> str:
    """Identity of a message for idempotent adds: same role, speaker, text and given time."""
    stamp = None if timestamp is None else str(timestamp)
    payload = json.dumps([role, name, content, stamp], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def embed_hash(embedder_name: str, text: str) -> str:
    """Key of the embedding cache: the model and the exact text embedded."""
    return hashlib.sha256(f"{embedder_name}\x00{text}".encode()).hexdigest()
