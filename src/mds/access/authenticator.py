"""Checking a presented API key against the store, per request, cheaply.

A checked key is trusted for ``cache_seconds`` (``AUTH_CACHE_SEC``) of real time, so a
request costs a dictionary lookup, not a store round trip, and a key revoked in any
process stops working in every process within that time. Unknown keys are never cached
(the cache stays as small as the key table); instead every failed key counts against
the client's address, and an address over ``failure_limit`` is refused before its key
is even looked at, so keys cannot be guessed at request speed. The failure limit is per
process (``limits``' memory storage): N API processes allow N times the rate, which still
leaves a 256-bit key unguessable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from mds.access.keys import ApiKey, Role, hash_key
from mds.errors import MdsError
from mds.observability.metrics import Metrics
from mds.storage.base import KeyStore


class AccessDenied(MdsError):
    """A request to a guarded route was refused; ``reason`` is the metric label.

    The message never says whether a presented key exists: 401 reads the same for a
    missing, unknown or revoked key.
    """

    status = 401
    title = "Authentication required"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Unauthenticated(AccessDenied):
    def __init__(self, reason: str) -> None:
        super().__init__(
            reason, "a valid API key is required: send Authorization: Bearer <key> or X-API-Key: <key>"
        )


class Forbidden(AccessDenied):
    status = 403
    title = "Forbidden"

    def __init__(self, required: Role) -> None:
        super().__init__("forbidden", f"this route needs a key with the {required.value!r} role or higher")
        self.required = required


class TooManyFailures(AccessDenied):
    status = 429
    title = "Too many failed authentications"

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            "rate_limited",
            f"too many failed authentications from this address; retry in {retry_after:.0f} s",
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """Who a request authenticated as."""

    name: str
    role: Role


class Authenticator:
    """Turns a presented key into a :class:`Principal` allowed ``required``, or refuses."""

    def __init__(
        self,
        keys: KeyStore,
        metrics: Metrics,
        *,
        cache_seconds: float,
        failure_limit: str,
    ) -> None:
        self.keys = keys
        self.metrics = metrics
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[ApiKey, float]] = {}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._limit = parse(failure_limit)

    def configure(self, *, cache_seconds: float, failure_limit: str) -> None:
        """Apply reloaded settings; entries already cached keep their expiry."""
        self.cache_seconds = cache_seconds
        self._limit = parse(failure_limit)

    def cached(self, key: str | None, required: Role) -> Principal | None:
        """The principal if ``key`` was checked recently and allows ``required``; never refuses.

        For paths that must not wait (the kept-bars fast path): None means "ask :meth:`authorize`".
        """
        if not key:
            return None
        entry = self._cache.get(hash_key(key))
        if entry is None or entry[1] < time.monotonic():
            return None
        stored = entry[0]
        return Principal(stored.name, stored.role) if stored.active and stored.role.allows(required) else None

    async def authorize(self, key: str | None, required: Role, *, client: str) -> Principal:
        """Check ``key`` for a route needing ``required``.

        Raises:
            Unauthenticated: No key, or one that is unknown or revoked (401).
            Forbidden: A valid key whose role is below ``required`` (403).
            TooManyFailures: ``client`` failed too often lately (429); its key is not checked.
        """
        if not key:
            raise self._refuse(Unauthenticated("missing"))
        digest = hash_key(key)
        now = time.monotonic()
        entry = self._cache.get(digest)
        stored: ApiKey | None
        if entry is not None and entry[1] >= now:
            stored = entry[0]
        else:
            if not self._limiter.test(self._limit, client):
                reset, _ = self._limiter.get_window_stats(self._limit, client)
                raise self._refuse(TooManyFailures(max(1.0, reset - time.time())))
            stored = await self.keys.api_key_by_hash(digest)
            if stored is not None:
                self._cache[digest] = (stored, now + self.cache_seconds)
        if stored is None or not stored.active:
            self._limiter.hit(self._limit, client)
            raise self._refuse(Unauthenticated("invalid" if stored is None else "revoked"))
        if not stored.role.allows(required):
            raise self._refuse(Forbidden(required))
        return Principal(stored.name, stored.role)

    def _refuse(self, exc: AccessDenied) -> AccessDenied:
        self.metrics.auth_failures_total.labels(reason=exc.reason).inc()
        return exc
