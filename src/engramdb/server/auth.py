"""Who is calling: an API key resolved to its tenant and role."""

from __future__ import annotations

from dataclasses import dataclass

from .. import access
from ..errors import Forbidden
from ..memory import Memory


@dataclass(frozen=True)
class Principal:
    """The caller of a request: every read and write it makes is scoped to ``tenant``."""

    tenant: str
    role: str  # reader, writer, admin
    key_id: str | None  # None when the server runs without auth (loopback only)


def authenticate(memory: Memory, token: str | None) -> Principal:
    """The principal of an API key.

    Raises:
        Unauthorized: no key, or an unknown or revoked one.
    """
    key = access.authenticate(memory, token)
    return Principal(key.tenant, key.role, key.id)


def allows(principal: Principal, needed: str) -> bool:
    """Whether the principal's role covers ``needed`` (reader < writer < admin)."""
    return access.allows(principal.role, needed)


def require(principal: Principal, needed: str, what: str) -> None:
    """Refuse an operation the principal's role does not cover.

    Raises:
        Forbidden: names the operation and the role it needs.
    """
    if not allows(principal, needed):
        raise Forbidden(
            f"{what} needs a {needed} key; this key is a {principal.role} key "
            f"(an admin can make one: engram keys create --role {needed})"
        )


def bearer(authorization: str | None, api_key: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or of ``X-API-Key``."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return api_key or None


LOOPBACK = ("127.0.0.1", "::1", "localhost")
