"""Who may reach a store through the server: API keys and webhook subscriptions.

A key belongs to one tenant and has one role. Its secret is shown once, when it is made; the
store keeps only its SHA-256 (the secret is 256 random bits, so a plain hash cannot be searched
backwards) and a short prefix to tell keys apart in a listing. Webhook subscriptions and their
delivery log live in the same store, so server replicas on one database share them.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .errors import InvalidInput, NotFound, Unauthorized
from .types import ApiKey, Delivery, Webhook
from .validate import choice_arg, name_arg, text_arg

if TYPE_CHECKING:
    from .memory import Memory

#: Roles, each allowed what the ones before it are: reader (read and search), writer (add,
#: change, delete memories), admin (keys, webhooks, erasure of users and the tenant).
ROLES: tuple[str, ...] = ("reader", "writer", "admin")
#: Event types a webhook can subscribe to (empty list: all).
EVENT_TYPES: tuple[str, ...] = (
    "create", "update", "delete", "confirm", "supersede", "restore", "split", "merge",
)  # fmt: skip
_PREFIX = "ek_"


def digest(token: str) -> str:
    """The stored form of a key's secret."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(memory: Memory, role: str, name: str | None = None) -> tuple[ApiKey, str]:
    """A new key of ``memory``'s tenant; returns it and its secret (shown only this once).

    Raises:
        InvalidInput: an unknown role.
    """
    role = choice_arg(role, "create_key() role", ROLES)
    label = name_arg(name, "create_key() name") or ""
    token = _PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=uuid.uuid4().hex[:12], tenant=memory.tenant, name=label, role=role,
        prefix=token[:10], created_at=datetime.now(UTC),
    )  # fmt: skip
    with memory._store.transaction() as tx:
        tx.insert_key(key, digest(token))
    return key, token


def authenticate(memory: Memory, token: str | None) -> ApiKey:
    """The live key whose secret is ``token``.

    Raises:
        Unauthorized: no token, or one that is unknown or revoked.
    """
    if not token:
        raise Unauthorized(
            "this request carries no API key: send 'Authorization: Bearer <key>' "
            "(`engram keys create` makes one)"
        )
    key = memory._store.api_key(digest(token))
    if key is None or key.revoked_at is not None:
        raise Unauthorized(
            f"the API key {token[:10]!r}... is unknown or revoked: ask an admin for a new one"
        )
    return key


def allows(role: str, needed: str) -> bool:
    """Whether a key of ``role`` may do what needs ``needed``."""
    return ROLES.index(role) >= ROLES.index(needed)


def keys(memory: Memory, *, every_tenant: bool = False) -> list[ApiKey]:
    """The keys of ``memory``'s tenant (of every tenant with ``every_tenant``), oldest first."""
    return memory._store.api_keys(None if every_tenant else memory.tenant)


def revoke_key(memory: Memory, key_id: str, *, every_tenant: bool = False) -> None:
    """Revoke a key at once: requests with it are refused from now on.

    Raises:
        NotFound: no live key of this tenant has this id.
    """
    ident = text_arg(key_id, "revoke_key() key_id")
    with memory._store.transaction() as tx:
        if not tx.revoke_key(ident, None if every_tenant else memory.tenant):
            raise NotFound(f"no live API key with id {ident!r} (engram keys list shows them)")


def create_webhook(memory: Memory, url: str, events: list[str] | None = None) -> Webhook:
    """Subscribe ``url`` to this tenant's events from now on; returns the subscription (its
    signing secret is read with :func:`webhook_secret`).

    Raises:
        InvalidInput: not an http(s) URL, or an unknown event type.
    """
    target = text_arg(url, "create_webhook() url", max_chars=2000)
    if not target.startswith(("http://", "https://")):
        raise InvalidInput(f"create_webhook() url must start with http:// or https://: {url!r}")
    kinds = [choice_arg(e, "create_webhook() events", EVENT_TYPES) for e in events or []]
    hook = Webhook(
        id=uuid.uuid4().hex[:12], tenant=memory.tenant, url=target, events=kinds,
        created_at=datetime.now(UTC), cursor=0,
    )  # fmt: skip
    with memory._store.transaction() as tx:
        return tx.insert_webhook(hook, "whsec_" + secrets.token_urlsafe(24))


def webhooks(memory: Memory, *, every_tenant: bool = False) -> list[tuple[Webhook, str]]:
    """Subscriptions with their signing secrets."""
    return memory._store.webhooks(None if every_tenant else memory.tenant)


def webhook(memory: Memory, hook_id: str) -> tuple[Webhook, str]:
    """One subscription of this tenant with its secret.

    Raises:
        NotFound: this tenant has no such subscription.
    """
    for hook, secret in webhooks(memory):
        if hook.id == hook_id:
            return hook, secret
    raise NotFound(f"no webhook with id {hook_id!r} in this tenant")


def delete_webhook(memory: Memory, hook_id: str) -> None:
    """Stop a subscription and drop its delivery log.

    Raises:
        NotFound: this tenant has no such subscription.
    """
    with memory._store.transaction() as tx:
        if not tx.delete_webhook(memory.tenant, text_arg(hook_id, "delete_webhook() id")):
            raise NotFound(f"no webhook with id {hook_id!r} in this tenant")


def log_delivery(memory: Memory, delivery: Delivery, *, advance: bool) -> None:
    """Record a delivery attempt; ``advance`` when the event is done with (delivered, or
    given up on after the last retry)."""
    with memory._store.transaction() as tx:
        tx.log_delivery(delivery, advance)


def lease_webhook(memory: Memory, hook_id: str, holder: str, seconds: float) -> bool:
    """Take or renew the right to deliver a subscription of this tenant for ``seconds``: True
    when ``holder`` has it (no one else held it, or their lease ran out)."""
    with memory._store.transaction() as tx:
        return tx.lease_webhook(memory.tenant, hook_id, holder, time.time() + seconds)


def release_webhook(memory: Memory, hook_id: str, holder: str) -> None:
    """Give up ``holder``'s lease on a subscription of this tenant."""
    with memory._store.transaction() as tx:
        tx.release_webhook(memory.tenant, hook_id, holder)


def deliveries(memory: Memory, hook_id: str, limit: int = 100) -> list[Delivery]:
    """A subscription's newest delivery attempts, newest first."""
    webhook(memory, hook_id)
    return memory._store.deliveries(memory.tenant, hook_id, limit)
