"""Per-key request rate limits: a token bucket per API key, in this process.

Each replica of a server limits on its own (a key may make ``replicas × rate`` requests a
minute across them); a shared limit would put a write on the store in every request's path.
"""

from __future__ import annotations

import threading
import time

from ..errors import RateLimited


class RateLimiter:
    """``per_minute`` requests a minute per key, in bursts of up to a tenth of that (at least
    ten); 0 turns it off."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(10.0, per_minute / 10.0)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Take one request from the key's bucket.

        Raises:
            RateLimited: the bucket is empty; says when to retry.
        """
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise RateLimited(
                    f"this API key made more than {self.rate * 60:g} requests a minute: "
                    f"retry in {wait:.1f} s (the rate_limit setting)",
                    wait,
                )
            self._buckets[key] = (tokens - 1.0, now)
