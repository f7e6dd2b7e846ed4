"""Readers that turn other tools' files into conversations to ``Memory.add``.

Formats: one message per JSON line, LoCoMo, LongMemEval (``.json`` or ``.json.gz``), and a ChatGPT
data export's ``conversations.json``. Every reader checks its input and raises
:class:`ImportFormatError` naming the file, the place and what was expected.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from .errors import EngramError, ImportFormatError
from .temporal import parse_timestamp

FORMATS = ("engramdb", "jsonl", "locomo", "longmemeval", "chatgpt")


@dataclass
class Conversation:
    """One session's messages, with the scope the file gives them (if any)."""

    user_id: str | None
    session_id: str | None
    messages: list[dict[str, Any]]
    agent_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _open(path: str | Path) -> IO[str]:
    p = Path(path)
    if p.suffix == ".gz":
        return gzip.open(p, "rt", encoding="utf-8")
    return p.open(encoding="utf-8")


@contextmanager
def _reading(path: str | Path) -> Iterator[None]:
    """A file that cannot be read as UTF-8 text becomes an ImportFormatError naming it."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise ImportFormatError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}): convert it to UTF-8 first"
        ) from exc
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ImportFormatError(f"{path}: not a complete gzip file ({exc})") from exc
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read it ({exc.strerror or exc})") from exc


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{where}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except (ValueError, RecursionError) as exc:  # a number of over 4,300 digits; deep nesting
        raise ImportFormatError(f"{where}: JSON that cannot be read ({exc})") from exc


def _load_json(path: str | Path) -> Any:
    with _reading(path), _open(path) as fh:
        text = fh.read()
    return _parse(text, str(path))


@contextmanager
def _record(where: str) -> Iterator[None]:
    """A record of another tool's file that does not have its format's shape (a list where an
    object belongs, a field of the wrong type) becomes an ImportFormatError naming it."""
    try:
        yield
    except ImportFormatError:
        raise
    except EngramError as exc:  # e.g. a date that is not one
        raise ImportFormatError(f"{where}: {exc}") from exc
    except (
        AttributeError,
        KeyError,
        IndexError,
        TypeError,
        ValueError,
        OverflowError,
        OSError,
    ) as exc:
        detail = f"no field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ImportFormatError(f"{where}: not in the expected shape ({detail})") from exc


def detect_format(path: str | Path) -> str:
    """Which of :data:`FORMATS` a file is, from its first bytes and shape."""
    with _reading(path), _open(path) as fh:
        head = fh.read(4096)
    stripped = head.lstrip()
    if stripped.startswith("{"):
        first_line = stripped.split("\n", 1)[0]
        return "engramdb" if '"engramdb_export"' in first_line else "jsonl"
    if not stripped.startswith("["):
        raise ImportFormatError(f"{path}: not JSON or JSON lines; give one of {', '.join(FORMATS)}")
    data = _load_json(path)
    sample = data[0] if isinstance(data, list) and data else {}
    if isinstance(sample, Mapping):
        if "conversation" in sample and "qa" in sample:
            return "locomo"
        if "haystack_sessions" in sample:
            return "longmemeval"
        if "mapping" in sample:
            return "chatgpt"
    raise ImportFormatError(
        f"{path}: a JSON list of an unknown kind; pass --format ({', '.join(FORMATS[1:])})"
    )


def read(path: str | Path, fmt: str) -> Iterator[Conversation]:
    """The conversations in a file of a given format (not ``engramdb``: see portable.py)."""
    readers = {
        "jsonl": read_messages_jsonl,
        "locomo": read_locomo,
        "longmemeval": read_longmemeval,
        "chatgpt": read_chatgpt_export,
    }
    if fmt not in readers:
        raise ImportFormatError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return readers[fmt](path)


def _require(record: object, key: str, where: str) -> Any:
    if not isinstance(record, Mapping):
        raise ImportFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if key not in record:
        raise ImportFormatError(f"{where}: missing field {key!r}")
    return record[key]


# --- JSONL ------------------------------------------------------------------------------------

_SCOPE_KEYS = ("user_id", "agent_id", "session_id")


def read_messages_jsonl(path: str | Path) -> Iterator[Conversation]:
    """One message per line: ``{role, content, name?, timestamp?, metadata?, user_id?,
    agent_id?, session_id?}``; consecutive lines of the same scope and session form a batch."""
    current: Conversation | None = None
    for number, record in json_lines(path):
        _require(record, "content", f"{path}:{number}")
        key = tuple(record.get(k) for k in _SCOPE_KEYS)
        message = {k: v for k, v in record.items() if k not in _SCOPE_KEYS}
        if current is None or (current.user_id, current.agent_id, current.session_id) != key:
            if current is not None:
                yield current
            current = Conversation(user_id=key[0], agent_id=key[1], session_id=key[2], messages=[])
        current.messages.append(message)
    if current is not None:
        yield current


def json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSON-lines file."""
    with _reading(path), _open(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            record = _parse(line, f"{path}:{number}")
            if not isinstance(record, dict):
                raise ImportFormatError(f"{path}:{number}: expected a JSON object per line")
            yield number, record


# --- LoCoMo -----------------------------------------------------------------------------------


def load_locomo(path: str | Path) -> list[dict[str, Any]]:
    """The samples of a LoCoMo file."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise ImportFormatError(f"{path}: LoCoMo is a JSON list of samples")
    return data


def read_locomo(path: str | Path) -> Iterator[Conversation]:
    """LoCoMo: one user per sample, one session per ``session_N``; turns keep their ``dia_id``.

    Speaker A is the ``user`` role and speaker B the ``assistant`` role; both keep their names.
    Turns of a session get its date plus one second each, so their order survives.
    """
    for index, sample in enumerate(load_locomo(path)):
        with _record(f"{path}: sample {index}"):
            sessions = list(locomo_sample(sample, index, str(path)))
        yield from sessions


def locomo_sample(sample: Mapping[str, Any], index: int, path: str) -> Iterator[Conversation]:
    """The sessions of one LoCoMo sample."""
    where = f"{path}: sample {index}"
    conv = _require(sample, "conversation", where)
    user = str(sample.get("sample_id", f"locomo-{index}"))
    speaker_a = _require(conv, "speaker_a", where)
    n = 1
    while f"session_{n}" in conv:
        yield _locomo_session(conv, n, user, speaker_a, where)
        n += 1


def _locomo_session(
    conv: Mapping[str, Any], n: int, user: str, speaker_a: str, where: str
) -> Conversation:
    date = parse_timestamp(_require(conv, f"session_{n}_date_time", where))
    messages = []
    for i, turn in enumerate(conv[f"session_{n}"]):
        text = str(_require(turn, "text", f"{where} session_{n} turn {i}"))
        if turn.get("blip_caption"):
            text += f" [shares a photo: {turn['blip_caption']}]"
        messages.append(
            {
                "role": "user" if turn.get("speaker") == speaker_a else "assistant",
                "name": turn.get("speaker"),
                "content": text,
                "timestamp": (date + timedelta(seconds=i)).isoformat(),
                "metadata": {"dia_id": turn.get("dia_id")},
            }
        )
    return Conversation(user_id=user, session_id=f"session_{n}", messages=messages)


# --- LongMemEval ------------------------------------------------------------------------------


def load_longmemeval(path: str | Path) -> list[dict[str, Any]]:
    """The questions of a LongMemEval file."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise ImportFormatError(f"{path}: LongMemEval is a JSON list of questions")
    return data


def read_longmemeval(path: str | Path) -> Iterator[Conversation]:
    """LongMemEval: one user per question, its haystack sessions in order.

    Each turn's metadata has ``turn`` (``<session id>:<index>``) and ``has_answer``.
    """
    for index, question in enumerate(load_longmemeval(path)):
        where = f"{path}: question {index}"
        with _record(where):
            sessions = list(longmemeval_question(question, where))
        yield from sessions


def longmemeval_question(question: Mapping[str, Any], where: str) -> Iterator[Conversation]:
    """The haystack sessions of one LongMemEval question, as conversations of its user."""
    user = str(_require(question, "question_id", where))
    sessions = zip(
        _require(question, "haystack_session_ids", where),
        _require(question, "haystack_dates", where),
        _require(question, "haystack_sessions", where),
        strict=True,
    )
    for session_id, date, turns in sessions:
        messages = longmemeval_messages(str(session_id), parse_timestamp(date), turns)
        if messages:
            yield Conversation(user_id=user, session_id=str(session_id), messages=messages)


def longmemeval_messages(
    session_id: str, date: datetime, turns: list[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """A LongMemEval session as messages (empty turns dropped, order kept by seconds)."""
    return [
        {
            "role": turn["role"],
            "content": turn["content"],
            "timestamp": (date + timedelta(seconds=i)).isoformat(),
            "metadata": {"turn": f"{session_id}:{i}", "has_answer": bool(turn.get("has_answer"))},
        }
        for i, turn in enumerate(turns)
        if str(turn.get("content", "")).strip()
    ]


# --- ChatGPT export ---------------------------------------------------------------------------


def read_chatgpt_export(path: str | Path) -> Iterator[Conversation]:
    """A ChatGPT data export's ``conversations.json``: the active branch of each conversation.

    The export stores a tree of message nodes; the conversation as last seen is the path from
    ``current_node`` up through ``parent`` links. System and hidden messages, and nodes without
    text, are skipped. Each conversation becomes a session named by its id. A first message
    without its own time takes the conversation's ``create_time``; a later one none, so it
    follows the message before it (two "ok"s without times are two messages, not one event).
    """
    data = _load_json(path)
    if not isinstance(data, list):
        raise ImportFormatError(f"{path}: a ChatGPT export is a JSON list of conversations")
    for index, conv in enumerate(data):
        where = f"{path}: conversation {index}"
        with _record(where):
            mapping = _require(conv, "mapping", where)
            messages: list[dict[str, Any]] = []
            for n in _active_branch(mapping, conv.get("current_node"), where):
                found = _chatgpt_message(mapping[n], conv, first=not messages)
                if found is not None:
                    messages.append(found)
        if messages:
            session = str(conv.get("conversation_id") or conv.get("id") or f"chatgpt-{index}")
            yield Conversation(
                user_id=None,
                session_id=session,
                messages=messages,
                metadata={"title": conv.get("title")},
            )


def _active_branch(mapping: Mapping[str, Any], leaf: str | None, where: str) -> list[str]:
    if leaf is None:  # no current node recorded: take the newest leaf
        leaves = [k for k, v in mapping.items() if not v.get("children")]
        leaf = max(leaves, key=lambda k: _node_time(mapping[k]), default=None)
    path: list[str] = []
    node = leaf
    while node is not None:
        if node not in mapping or node in path:
            raise ImportFormatError(f"{where}: broken parent chain at node {node!r}")
        path.append(node)
        node = mapping[node].get("parent")
    return list(reversed(path))


def _node_time(node: Mapping[str, Any]) -> float:
    message = node.get("message") or {}
    return float(message.get("create_time") or 0)


def _chatgpt_message(
    node: Mapping[str, Any], conv: Mapping[str, Any], *, first: bool
) -> dict[str, Any] | None:
    message = node.get("message")
    if not message:
        return None
    role = (message.get("author") or {}).get("role")
    meta = message.get("metadata") or {}
    if role not in ("user", "assistant", "tool") or meta.get(
        "is_visually_hidden_from_conversation"
    ):
        return None
    parts = (message.get("content") or {}).get("parts") or []
    text = "\n".join(p for p in parts if isinstance(p, str)).strip()
    if not text:
        return None
    when = message.get("create_time") or (conv.get("create_time") if first else None)
    out: dict[str, Any] = {
        "role": role,
        "content": text,
        "metadata": {"chatgpt_id": node.get("id")},
    }
    if when:
        out["timestamp"] = datetime.fromtimestamp(float(when), tz=UTC).isoformat()
    return out


__all__ = ["FORMATS", "Conversation", "detect_format", "read"]
