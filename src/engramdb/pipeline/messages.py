"""The first step of the write path: validate messages and turn them into episode rows.

Everything is checked before anything is written, so a bad message in a batch leaves the store
untouched. Keys get the turn before them later, inside the write transaction (:mod:`.ingest`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import (
    ContentTooLarge,
    EmptyContent,
    InvalidInput,
    InvalidTimestamp,
    UnknownRole,
    shorten,
)
from ..records import Keys, Row, event_key
from ..temporal import find_time_mentions, parse_timestamp, speaker_offset
from ..temporal import speaker_clock as temporal_clock
from ..types import ROLES, Scope
from ..validate import epoch, is_unicode, metadata_arg, name_arg
from .keys import own_key

MessageInput = Mapping[str, Any] | str
_STEP = timedelta(milliseconds=1)
_FIELDS = frozenset({"id", "role", "content", "name", "timestamp", "metadata"})


def normalise(messages: object) -> list[Mapping[str, Any]]:
    """Accept one string, one message dict, or a list of either."""
    if isinstance(messages, (str, Mapping)):
        messages = [messages]
    if not isinstance(messages, Sequence) or isinstance(messages, (bytes, bytearray)):
        raise InvalidInput(
            "messages must be a string, a message dict or a list of them, "
            f"got {type(messages).__name__}"
        )
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
) -> list[Row]:
    """Validate every message and build its episode row (raises on the first bad one).

    A message without a timestamp takes the one of the message before it in the batch plus a
    millisecond (a reply happens when the conversation does, not when it is imported), or
    ``now`` if none has one.

    Identity: a message whose instant the caller gave, directly or through an earlier message
    of the batch, is the same event as a stored one with the same session, role, speaker, text
    and instant (so re-sending a batch stores nothing twice); a message whose instant is "now"
    is always a new event ("yes" said twice is two answers).
    """
    batch_meta = metadata_arg(metadata, "add() metadata")
    out: list[Row] = []
    for i, m in enumerate(messages):
        out.append(
            _row(i, m, scope, session_id, batch_meta, max_chars, now, out[-1] if out else None)
        )
    return out


def _row(
    index: int,
    message: Mapping[str, Any],
    scope: Scope,
    session_id: str | None,
    batch_metadata: Mapping[str, Any],
    max_chars: int,
    now: datetime,
    previous: Row | None,
) -> Row:
    unknown = sorted(k if isinstance(k, str) else shorten(k, 40) for k in set(message) - _FIELDS)
    if unknown:
        raise InvalidInput(
            f"message {index} has unknown field(s) {', '.join(unknown)}: "
            f"allowed are {', '.join(sorted(_FIELDS))}"
        )
    role = message.get("role", "user")
    if not isinstance(role, str) or role not in ROLES:
        raise UnknownRole(index, role, ROLES)
    content = _content(index, message.get("content"), max_chars)
    name = name_arg(message.get("name"), f"message {index} name")
    caller_id = name_arg(message.get("id"), f"message {index} id")
    raw_time = message.get("timestamp")
    # A reply without a time happens just after the turn before it in the batch, on the same
    # clock, and is the same event again if that turn's time was the caller's.
    anchored = previous is not None and previous.dedupe_key is not None
    if raw_time is None and previous is not None:
        occurred = previous.occurred_at + _STEP.total_seconds()
        offset = previous.tz_offset
    elif raw_time is None:
        occurred, offset = now.timestamp(), local_offset(now)
    else:
        occurred = timestamp_arg(raw_time, f"message {index} timestamp")
        offset = speaker_offset(raw_time)
    meta = {**batch_metadata, **metadata_arg(message.get("metadata"), f"message {index} metadata")}
    clock = speaker_clock(occurred, offset)
    return Row(
        id=caller_id or str(uuid.uuid4()),
        scope=scope,
        kind="message",
        session_id=session_id,
        role=role,
        name=name,
        text=content,
        occurred_at=occurred,
        recorded_at=now.timestamp(),
        updated_at=now.timestamp(),
        metadata=meta,
        time_mentions=[mention_dict(m) for m in find_time_mentions(content, clock)],
        keys=Keys(own=own_key(name, content, clock)),
        # A caller's id is the identity; else a caller's time makes one; else always new.
        dedupe_key=(
            event_key(session_id, role, name, content, occurred)
            if caller_id is None and (raw_time is not None or anchored)
            else None
        ),
        tz_offset=offset,
    )


def timestamp_arg(value: object, where: str) -> float:
    """Epoch seconds of a caller's timestamp; InvalidTimestamp names ``where``."""
    try:
        return epoch(parse_timestamp(value))  # type: ignore[arg-type]
    except (InvalidTimestamp, OverflowError, ValueError, OSError) as exc:
        raise InvalidTimestamp(value, where) from exc


def _content(index: int, content: object, max_chars: int) -> str:
    if content is None:
        raise EmptyContent(index)
    if not isinstance(content, str):
        raise InvalidInput(
            f"message {index} content must be a string, got {type(content).__name__}: "
            "give the text of the message"
        )
    if not content.strip():
        raise EmptyContent(index)
    if len(content) > max_chars:
        raise ContentTooLarge(index, len(content), max_chars)
    if not is_unicode(content):
        raise InvalidInput(
            f"message {index} content is not valid Unicode (it holds lone surrogates, e.g. "
            "bytes that were not UTF-8): decode the input as UTF-8 first"
        )
    return content


def local_offset(moment: datetime) -> int | None:
    """The machine's UTC offset at a moment, in seconds (None if the platform cannot say)."""
    try:
        delta = moment.astimezone().utcoffset()
    except (OverflowError, OSError, ValueError):
        return None
    return None if delta is None else int(delta.total_seconds())


def speaker_clock(instant: float, offset: int | None) -> datetime:
    """Epoch seconds on the speaker's own clock (UTC when unknown, or when that clock would show
    a year after 9999 or before 1)."""
    try:
        moment = datetime.fromtimestamp(instant, tz=UTC)
    except (OverflowError, ValueError, OSError):
        moment = (
            datetime.max.replace(tzinfo=UTC) if instant > 0 else datetime.min.replace(tzinfo=UTC)
        )
    return temporal_clock(moment, offset)


def mention_dict(m: Any) -> dict[str, Any]:
    return {
        "text": m.text,
        "start": m.start.isoformat(),
        "end": m.end.isoformat(),
        "granularity": m.granularity,
    }
