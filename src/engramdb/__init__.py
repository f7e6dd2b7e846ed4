"""engramdb: long-term memory for LLM agents — embedded, offline, time-aware, with provenance.

```python
from engramdb import Memory

mem = Memory()
mem.add([{"role": "user", "content": "I moved to Lisbon last month."}], user_id="ana")
mem.search("Where does Ana live?", user_id="ana")
```
"""

from .errors import (
    ConfigError,
    ContentTooLarge,
    EmbedderError,
    EmbedderMismatch,
    EmptyContent,
    EngramError,
    ImportFormatError,
    InvalidFilter,
    InvalidInput,
    InvalidTimestamp,
    LLMError,
    MemoryNotFound,
    MissingScope,
    NotFound,
    StoreError,
    StoreVersionError,
    UnknownRole,
)
from .memory import Memory
from .types import HistoryEntry, Hit, MemoryRecord, Page, Scope, Source, TimeMention

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ContentTooLarge",
    "EmbedderError",
    "EmbedderMismatch",
    "EmptyContent",
    "EngramError",
    "HistoryEntry",
    "Hit",
    "ImportFormatError",
    "InvalidFilter",
    "InvalidInput",
    "InvalidTimestamp",
    "LLMError",
    "Memory",
    "MemoryNotFound",
    "MemoryRecord",
    "MissingScope",
    "NotFound",
    "Page",
    "Scope",
    "Source",
    "StoreError",
    "StoreVersionError",
    "TimeMention",
    "UnknownRole",
    "__version__",
]
