"""Request bodies of the REST API, for the OpenAPI document and a first shape check.

They only say which fields exist and their JSON types; every value is then checked by
:class:`~engramdb.Memory` itself, so an error names the field the same way whichever door
it came through.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Timestamp = str | float | int


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(_Body):
    role: str = Field("user", description="user, assistant, system or tool.")
    content: str = Field(description="What was said.")
    name: str | None = Field(None, description="The speaker's name.")
    timestamp: Timestamp | None = Field(
        None, description="When it was said: ISO 8601 or epoch seconds (default: now)."
    )
    metadata: dict[str, Any] | None = None
    id: str | None = Field(None, description="Your id for the message: stored once under it.")


class AddBody(_Body):
    messages: list[Message] | str = Field(description="One text (a user turn) or a list.")
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] | None = Field(None, description="Merged into every message's.")


class SearchBody(_Body):
    query: str
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    limit: int = 10
    as_of: Timestamp | None = Field(None, description="Answer as if it were then.")
    filters: dict[str, Any] | None = Field(
        None, description="since, until (event time), kinds (list), metadata (equal values)."
    )
    include_expired: bool = True


class ContextBody(_Body):
    query: str
    user_id: str | None = None
    agent_id: str | None = None
    max_tokens: int | None = None
    as_of: Timestamp | None = None


class UpdateBody(_Body):
    text: str | None = None
    metadata: dict[str, Any] | None = Field(None, description="Merged; a key set to null goes.")


class BatchUpdateItem(UpdateBody):
    id: str


class BatchUpdateBody(_Body):
    updates: list[BatchUpdateItem] = Field(max_length=1000)


class BatchDeleteBody(_Body):
    ids: list[str] = Field(max_length=1000)


class WebhookBody(_Body):
    url: str = Field(description="Where events are POSTed (http or https).")
    events: list[str] | None = Field(None, description="Event types to send (default: all).")


class KeyBody(_Body):
    role: str = Field("reader", description="reader, writer or admin.")
    name: str | None = None
