"""Webhook delivery: each subscription receives its tenant's events in order, signed.

A delivery is ``POST <url>`` with the event as JSON and the headers ``X-Engram-Event`` (type),
``X-Engram-Delivery`` (event id) and ``X-Engram-Signature: t=<unix time>,v1=<hex>``, where
``<hex>`` is HMAC-SHA256 of ``"<t>.<body>"`` under the subscription's secret (the receiver
recomputes it, and refuses an old ``t`` to stop replays). A 2xx answer delivers the event;
anything else is retried with exponential backoff, up to ``webhook_retries`` attempts, then
given up, and the subscription moves on. Every attempt is in the delivery log.

Several server processes may share one store: a process delivers a subscription only while it
holds its lease in the store (:data:`LEASE` seconds, renewed before every attempt), and reads
the subscription's cursor after taking it, so each event goes out from one process. Delivery is
at least once: a process that dies after a receiver accepted an event but before recording it
leaves that event to be sent again by the next holder (receivers deduplicate on
``X-Engram-Delivery``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime

import httpx

from .. import access
from ..errors import NotFound
from ..memory import Memory
from ..serialize import JSON, to_dict
from ..types import Delivery, Webhook
from .app import ServerState
from .routes import event_json

log = logging.getLogger("engramdb.server.webhooks")

#: Seconds between looks for new events when there was nothing to send.
POLL = 0.5
#: First retry delay; doubled per attempt, at most MAX_DELAY.
BASE_DELAY = 0.5
MAX_DELAY = 60.0
BATCH = 50
#: Seconds a receiver has to answer one attempt.
TIMEOUT = 10.0
#: Seconds a process keeps the right to deliver a subscription without renewing it: longer than
#: the longest wait between two attempts plus one attempt, so only a process that stopped loses it.
LEASE = MAX_DELAY + 2 * TIMEOUT


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Engram-Signature`` header of a body."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, tolerance: float = 300.0) -> bool:
    """Whether ``header`` signs ``body`` under ``secret`` and is at most ``tolerance`` s old:
    what a receiver runs (shown in docs/server.md)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - stamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), header)


async def deliver_forever(state: ServerState) -> None:
    """The server's delivery loop: until cancelled, hand every subscription its new events.

    Each subscription is served by a task of its own, so one whose receiver is down (and is
    retried with backoff) never holds up the events of another, of its tenant or any other.
    """
    running: dict[str, asyncio.Task[int]] = {}
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
        try:
            while True:
                try:
                    sent = await deliver_once(state, client, running)
                except Exception:  # a broken store must not end delivery for good
                    log.exception("engramdb: webhook delivery failed; trying again")
                    sent = 0
                if not sent:
                    await asyncio.sleep(POLL)
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)


async def deliver_once(
    state: ServerState,
    client: httpx.AsyncClient,
    running: dict[str, asyncio.Task[int]] | None = None,
) -> int:
    """One pass over every subscription; how many events were handed over or given up.

    With ``running`` (the loop's tasks by subscription id) the pass starts a task for each
    subscription that has none and counts what the tasks finished since the last pass did;
    without it, it delivers every subscription's pending batch and waits for them.
    """
    if running is None:
        hooks = await state.root.run(access.webhooks, state.memory, every_tenant=True)
        return sum(await asyncio.gather(*(_deliver_hook(state, client, h) for h, _ in hooks)))
    # Finished tasks are collected before the subscriptions are read, so that a new task starts
    # from the cursor its predecessor left (never one read while it was still running).
    done = 0
    for hook_id, task in list(running.items()):
        if not task.done():
            continue
        del running[hook_id]
        if task.cancelled():
            continue
        if (error := task.exception()) is not None:
            log.error("engramdb: delivery to webhook %s failed", hook_id, exc_info=error)
        else:
            done += task.result()
    for hook, _ in await state.root.run(access.webhooks, state.memory, every_tenant=True):
        if hook.id not in running:
            running[hook.id] = asyncio.create_task(_deliver_hook(state, client, hook))
    return done


async def _deliver_hook(state: ServerState, client: httpx.AsyncClient, seen: Webhook) -> int:
    """Deliver a batch of a subscription's new events, if there are any and this process can
    take the subscription's lease; how many were handed over or given up."""
    mem = state.memory.for_tenant(seen.tenant)
    if not await state.root.run(mem.events, seen.cursor, 1):
        return 0  # nothing new: no write to take a lease
    if not await state.root.run(access.lease_webhook, mem, seen.id, state.instance, LEASE):
        return 0  # another process is delivering it (or it was deleted)
    try:
        try:  # its cursor now: another process may have delivered since it was listed
            hook, secret = await state.root.run(access.webhook, mem, seen.id)
        except NotFound:
            return 0
        done = 0
        for entry in await state.root.run(mem.events, hook.cursor, BATCH):
            event = event_json(to_dict(entry))
            wanted = not hook.events or entry.event in hook.events
            if wanted and not await _send(state, client, mem, hook, secret, event):
                return done  # unsubscribed, or the lease was lost
            if not wanted:
                await state.root.run(_skip, mem, hook, entry.id)
            done += 1
        return done
    finally:
        try:
            await state.root.run(access.release_webhook, mem, seen.id, state.instance)
        except Exception:  # the lease runs out by itself
            log.warning("engramdb: could not release the lease of webhook %s", seen.id)


def _skip(mem: Memory, hook: Webhook, event_id: int) -> None:
    access.log_delivery(
        mem, Delivery(hook.tenant, hook.id, event_id, 0, "skipped", None, None,
                      datetime.now(UTC)), advance=True,
    )  # fmt: skip


async def _send(
    state: ServerState,
    client: httpx.AsyncClient,
    mem: Memory,
    hook: Webhook,
    secret: str,
    event: dict[str, JSON],
) -> bool:
    """Deliver one event with retries; True once it is delivered or given up, False when the
    subscription was deleted meanwhile or this process lost its lease."""
    body = json.dumps(event, ensure_ascii=False).encode()
    event_id = int(str(event["id"]))
    for attempt in range(1, state.webhook_retries + 1):
        if not await state.root.run(access.lease_webhook, mem, hook.id, state.instance, LEASE):
            return False  # unsubscribed meanwhile (or lost): not one more attempt from here
        status, error = await _post(client, hook.url, secret, body, event)
        ok = status is not None and 200 <= status < 300
        last = attempt == state.webhook_retries
        outcome = "delivered" if ok else ("gave_up" if last else "failed")
        record = Delivery(
            hook.tenant, hook.id, event_id, attempt, outcome, status, error, datetime.now(UTC)
        )
        await state.root.run(access.log_delivery, mem, record, advance=ok or last)
        if ok or last:
            return True
        await asyncio.sleep(min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)))
    return True


async def _post(
    client: httpx.AsyncClient, url: str, secret: str, body: bytes, event: dict[str, JSON]
) -> tuple[int | None, str | None]:
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "engramdb-webhooks",
        "X-Engram-Event": str(event["type"]),
        "X-Engram-Delivery": str(event["id"]),
        "X-Engram-Signature": sign(secret, stamp, body),
    }
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if response.is_success:
        return response.status_code, None
    # Not the receiver's answer: it may quote the event (many frameworks' validation errors do),
    # and a copy in the log would outlive the erasure of the memory it came from.
    return response.status_code, f"the receiver answered HTTP {response.status_code}"
