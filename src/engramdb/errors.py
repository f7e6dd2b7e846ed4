"""The exception tree of engramdb.

Every error the library raises on purpose is an :class:`EngramError`, and no exception of a
backend, the embedder or the standard library escapes the public API in its place. Interfaces
translate them at the edge: the CLI prints ``str(error)`` on one line and exits non-zero; the
server will map ``error.code`` to an HTTP status. Each message says what was wrong and what to
do about it. Codes are stable: clients may match on them.

```
EngramError                 code
├── InvalidInput            invalid_input      bad argument or message (ValueError too)
│   ├── MissingScope        missing_scope
│   ├── EmptyContent        empty_content
│   ├── UnknownRole         unknown_role
│   ├── InvalidTimestamp    invalid_timestamp
│   ├── ContentTooLarge     content_too_large
│   ├── InvalidFilter       invalid_filter
│   └── InvalidCursor       invalid_cursor
├── NotFound                not_found          unknown id (KeyError too)
│   └── MemoryNotFound      memory_not_found
├── Conflict                conflict
│   └── IdConflict          id_conflict        a message id already names another memory
├── StoreError              store_error        the database cannot be used
│   ├── StoreVersionError   store_version      created by a newer engramdb
│   └── EmbedderMismatch    embedder_mismatch  the store holds vectors of another model
├── EmbedderError           embedder_error     the embedding model failed or is not installed
├── LLMError                llm_error          the language model failed, timed out or answered
│                                              unusably after its retries
├── ImportFormatError       import_format      a file given to import is not in a known format
├── ConfigError             config_error       an unknown or malformed setting
└── AccessError             access_error       the server refused a request
    ├── Unauthorized        unauthorized       no API key, or an unknown or revoked one (401)
    ├── Forbidden           forbidden          the key's role may not do this (403)
    └── RateLimited         rate_limited       the key made too many requests (429)
```
"""

from __future__ import annotations

from typing import ClassVar


def shorten(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: error messages quote input, never all of it."""
    try:
        text = repr(value)
    except ValueError:  # an int of over 4,300 digits, which Python refuses to print
        text = f"<{type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class EngramError(Exception):
    """Base class of every error raised by engramdb."""

    code: ClassVar[str] = "engram_error"


class InvalidInput(EngramError, ValueError):
    """An argument or message is malformed."""

    code = "invalid_input"


class MissingScope(InvalidInput):
    """A read or write named neither ``user_id`` nor ``agent_id``."""

    code = "missing_scope"

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation}() needs a scope: pass user_id=... and/or agent_id=... "
            "(every memory belongs to a user or an agent)"
        )
        self.operation = operation


class EmptyContent(InvalidInput):
    """A message has no text."""

    code = "empty_content"

    def __init__(self, index: int) -> None:
        super().__init__(f"message {index} has empty content: give it some text or leave it out")
        self.index = index


class UnknownRole(InvalidInput):
    """A message's role is not one of the known roles."""

    code = "unknown_role"

    def __init__(self, index: int, role: object, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"message {index} has role {shorten(role)}: use one of {', '.join(allowed)}"
        )
        self.index = index
        self.role = role


class InvalidTimestamp(InvalidInput):
    """A timestamp could not be parsed."""

    code = "invalid_timestamp"

    def __init__(self, value: object, where: str = "timestamp") -> None:
        super().__init__(
            f"{where} {shorten(value)} is not a date: use ISO 8601, e.g. 2023-05-08T13:56:00 "
            "or 2023-05-08T13:56:00+02:00, an aware datetime or epoch seconds"
        )
        self.value = value
        self.where = where


class ContentTooLarge(InvalidInput):
    """A message is longer than the configured limit."""

    code = "content_too_large"

    def __init__(self, index: int | str, size: int, limit: int) -> None:
        where = f"message {index}" if isinstance(index, int) else index
        super().__init__(
            f"{where} has {size} characters, over the limit of {limit}: split it, "
            "or raise the max_content_chars setting (ENGRAM_MAX_CONTENT_CHARS)"
        )
        self.index = index
        self.size = size
        self.limit = limit


class InvalidFilter(InvalidInput):
    """A search filter is malformed."""

    code = "invalid_filter"


class InvalidCursor(InvalidInput):
    """A pagination cursor is not one this listing handed out."""

    code = "invalid_cursor"

    def __init__(self, cursor: object, foreign: bool = False) -> None:
        why = (
            "was made by a listing of another scope or filter"
            if foreign
            else "is not a cursor engramdb handed out"
        )
        super().__init__(
            f"cursor {shorten(cursor)} {why}: pass the next_cursor of the previous page of the "
            "same listing, or no cursor to start from the beginning"
        )
        self.cursor = cursor


class NotFound(EngramError, KeyError):
    """A record does not exist (or not in the given scope)."""

    code = "not_found"

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "not found"


class MemoryNotFound(NotFound):
    """No memory has this id."""

    code = "memory_not_found"

    def __init__(self, memory_id: object) -> None:
        super().__init__(
            f"no memory with id {shorten(memory_id)}: it never existed, was deleted, or belongs "
            "to another tenant (list() shows the ids of a scope)"
        )
        self.memory_id = memory_id


class Conflict(EngramError):
    """A write contradicts what is stored."""

    code = "conflict"


class IdConflict(Conflict):
    """A caller-supplied message id already names a different memory."""

    code = "id_conflict"

    def __init__(self, memory_id: str, why: str) -> None:
        super().__init__(
            f"message id {shorten(memory_id)} already names {why}: an id names one event; "
            "give this message another id, or none"
        )
        self.memory_id = memory_id
        self.why = why


class StoreError(EngramError):
    """The store cannot be opened or used."""

    code = "store_error"


class StoreVersionError(StoreError):
    """The store file was written by a newer version of engramdb."""

    code = "store_version"

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"{path} has schema version {found}, newer than this engramdb supports ({supported}): "
            "upgrade engramdb (pip install -U engramdb) to open it"
        )
        self.found = found
        self.supported = supported


class EmbedderMismatch(StoreError):
    """The store's vectors come from another embedding model."""

    code = "embedder_mismatch"

    def __init__(self, path: str, stored: str, requested: str) -> None:
        super().__init__(
            f"{path} holds vectors from embedder {stored!r}, not {requested!r}: open it with "
            f"embedder={stored!r}, or with Memory(path, embedder={requested!r}, reembed=True) "
            "to re-embed every memory with the new model"
        )
        self.stored = stored
        self.requested = requested


class EmbedderError(EngramError):
    """The embedding model is missing or failed."""

    code = "embedder_error"


class LLMError(EngramError):
    """The language model is missing, failed, timed out, or answered unusably after retries.

    ``retryable`` says whether trying again later may succeed (a rate limit, a 5xx, a timeout,
    output that did not parse) or not (a bad key, an unknown model, a refused request).
    """

    code = "llm_error"

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ImportFormatError(EngramError, ValueError):
    """A file given to import is not in a recognised format."""

    code = "import_format"


class ConfigError(EngramError, ValueError):
    """A setting is unknown or has a malformed value."""

    code = "config_error"


class AccessError(EngramError):
    """A server request was refused before it reached the memory."""

    code = "access_error"


class Unauthorized(AccessError):
    """The request carries no API key, or one the server does not know or has revoked."""

    code = "unauthorized"


class Forbidden(AccessError):
    """The API key's role does not allow this operation."""

    code = "forbidden"


class RateLimited(AccessError):
    """The API key made more requests than its rate limit allows; ``retry_after`` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
