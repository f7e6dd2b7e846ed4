"""The exception tree of engramdb.

Every error the library raises on purpose is an :class:`EngramError`. Interfaces translate them at
the edge: the CLI prints ``str(error)`` on one line and exits non-zero. Each message says what was
wrong and what to do about it.

```
EngramError
├── InvalidInput            bad argument or message (ValueError too)
│   ├── MissingScope
│   ├── EmptyContent
│   ├── UnknownRole
│   ├── InvalidTimestamp
│   ├── ContentTooLarge
│   └── InvalidFilter
├── NotFound                unknown id (KeyError too)
│   └── MemoryNotFound
├── StoreError              the database cannot be used
│   ├── StoreVersionError   created by a newer engramdb
│   └── EmbedderMismatch    the store holds vectors of another embedding model
├── EmbedderError           the embedding model failed or is not installed
├── ImportFormatError       a file given to import is not in a known format
└── ConfigError             an unknown or malformed setting
```
"""

from __future__ import annotations


class EngramError(Exception):
    """Base class of every error raised by engramdb."""


class InvalidInput(EngramError, ValueError):
    """An argument or message is malformed."""


class MissingScope(InvalidInput):
    """A read or write named neither ``user_id`` nor ``agent_id``."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation}() needs a scope: pass user_id=... and/or agent_id=... "
            "(every memory belongs to a user or an agent)"
        )
        self.operation = operation


class EmptyContent(InvalidInput):
    """A message has no text."""

    def __init__(self, index: int) -> None:
        super().__init__(f"message {index} has empty content: give it some text or leave it out")
        self.index = index


class UnknownRole(InvalidInput):
    """A message's role is not one of the known roles."""

    def __init__(self, index: int, role: object, allowed: tuple[str, ...]) -> None:
        super().__init__(f"message {index} has role {role!r}: use one of {', '.join(allowed)}")
        self.index = index
        self.role = role


class InvalidTimestamp(InvalidInput):
    """A timestamp could not be parsed."""

    def __init__(self, value: object, where: str = "timestamp") -> None:
        super().__init__(
            f"{where} {value!r} is not a date: use ISO 8601, e.g. 2023-05-08T13:56:00 "
            "or 2023-05-08T13:56:00+02:00"
        )
        self.value = value


class ContentTooLarge(InvalidInput):
    """A message is longer than the configured limit."""

    def __init__(self, index: int, size: int, limit: int) -> None:
        super().__init__(
            f"message {index} has {size} characters, over the limit of {limit}: split it, "
            "or raise the max_content_chars setting (ENGRAM_MAX_CONTENT_CHARS)"
        )
        self.index = index
        self.size = size
        self.limit = limit


class InvalidFilter(InvalidInput):
    """A search filter is malformed."""


class NotFound(EngramError, KeyError):
    """A record does not exist (or not in the given scope)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "not found"


class MemoryNotFound(NotFound):
    """No memory has this id."""

    def __init__(self, memory_id: str) -> None:
        super().__init__(
            f"no memory with id {memory_id!r}: it never existed or was deleted "
            "(list the scope's memories with `engram list`)"
        )
        self.memory_id = memory_id


class StoreError(EngramError):
    """The store cannot be opened or used."""


class StoreVersionError(StoreError):
    """The store file was written by a newer version of engramdb."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"{path} has schema version {found}, newer than this engramdb supports ({supported}): "
            "upgrade engramdb (pip install -U engramdb) to open it"
        )
        self.found = found
        self.supported = supported


class EmbedderMismatch(StoreError):
    """The store's vectors come from another embedding model."""

    def __init__(self, path: str, stored: str, requested: str) -> None:
        super().__init__(
            f"{path} holds vectors from embedder {stored!r}, not {requested!r}: open it with "
            f"embedder={stored!r}, or pass reembed=True (CLI: engram reembed) to re-embed "
            "every memory with the new model"
        )
        self.stored = stored
        self.requested = requested


class EmbedderError(EngramError):
    """The embedding model is missing or failed."""


class ImportFormatError(EngramError, ValueError):
    """A file given to import is not in a recognised format."""


class ConfigError(EngramError, ValueError):
    """A setting is unknown or has a malformed value."""
