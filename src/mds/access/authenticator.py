"""Checking a presented API key against the store, per request, cheaply.

A checked key is trusted for ``cache_seconds`` (``AUTH_CACHE_SEC``) of real time, counted
from when the store was asked, so a request costs a dictionary lookup, not a store round
trip, and a key revoked in any process stops working in every process within that time.
A key in use is re-read in the background once half that time has passed (one read at a
time per key), so under steady traffic its entry never lapses: otherwise every request in
flight at the moment it lapsed would queue on the store at once, every AUTH_CACHE_SEC. Unknown keys are never cached
(the cache stays as small as the key table); instead every failed key counts against
the client's address, and an address over ``failure_limit`` is refused before its key
is even looked at, so keys cannot be guessed at request speed. The failure limit is per
process (``limits``' memory storage): N API processes allow N times the rate, which still
leaves a 256-bit key unguessable.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        #: Real seconds for the cache (never a simulated market clock); tests may replace it.
        self.monotonic = monotonic
        self.metrics = metrics
        self.cache_seconds = cache_seconds
        # digest -> (the stored key, trusted until, re-read after), in ``monotonic`` seconds
        self._cache: dict[str, tuple[ApiKey, float, float]] = {}
        self._reading: dict[str, asyncio.Future[ApiKey | None]] = {}
        self._refreshes: set[asyncio.Task[ApiKey | None]] = set()
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._limit = parse(failure_limit)

    def configure(self, *, cache_seconds: float, failure_limit: str) -> None:
        """Apply reloaded settings; entries already cached keep their expiry."""
        self.cache_seconds = cache_seconds
        self._limit = parse(failure_limit)

    def admits(self, raw_key: bytes | None, required: Role) -> bool:
        """Whether ``raw_key`` (a header's bytes) was checked recently and allows ``required``.

        Never refuses, counts or waits: for the kept-bars fast path, where False means "take
        the full path", which calls :meth:`authorize`. Kept to a hash and a lookup.
        """
        if not raw_key:
            return False
        digest = hashlib.sha256(raw_key).hexdigest()
        entry = self._cache.get(digest)
        if entry is None:
            return False
        now = self.monotonic()
        if entry[2] <= now:
            self._refresh(digest)
        return entry[1] >= now and entry[0].revoked_at is None and entry[0].role.allows(required)

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
        now = self.monotonic()
        entry = self._cache.get(digest)
        stored: ApiKey | None
        if entry is not None and entry[1] >= now:
            stored = entry[0]
            if entry[2] <= now:
                self._refresh(digest)
        else:
            if not self._limiter.test(self._limit, client):
                reset, _ = self._limiter.get_window_stats(self._limit, client)
                raise self._refuse(TooManyFailures(max(1.0, reset - time.time())))
            stored = await self._read(digest)
        if stored is None or not stored.active:
            self._limiter.hit(self._limit, client)
            raise self._refuse(Unauthenticated("invalid" if stored is None else "revoked"))
        if not stored.role.allows(required):
            raise self._refuse(Forbidden(required))
        return Principal(stored.name, stored.role)

    async def allows_digest(self, digest: str, required: Role) -> bool:
        """Whether the key whose hash is ``digest`` is still active and allows ``required``.

        For sessions started with a key (the admin console's), re-checked on each request
        through the same cache as :meth:`authorize`, so a revoked key ends its sessions
        within ``cache_seconds``. Nothing is counted as a failure: a session is no guess.
        """
        now = self.monotonic()
        entry = self._cache.get(digest)
        if entry is not None and entry[1] >= now:
            stored: ApiKey | None = entry[0]
            if entry[2] <= now:
                self._refresh(digest)
        else:
            stored = await self._read(digest)
        return stored is not None and stored.active and stored.role.allows(required)

    async def _read(self, digest: str) -> ApiKey | None:
        """The stored key, cached; concurrent reads of one key share one store query."""
        pending = self._reading.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ApiKey | None] = asyncio.get_running_loop().create_future()
        self._reading[digest] = future
        asked = self.monotonic()  # trust counts from here, before the store answers
        try:
            stored = await self.keys.api_key_by_hash(digest)
        except asyncio.CancelledError:
            future.cancel()  # waiters see a cancelled read and may ask again
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: only the waiters, if any, re-raise it
            raise
        finally:
            del self._reading[digest]
        if stored is None:
            self._cache.pop(digest, None)
        else:
            self._cache[digest] = (stored, asked + self.cache_seconds, asked + self.cache_seconds / 2)
        future.set_result(stored)
        return stored

    def _refresh(self, digest: str) -> None:
        if digest in self._reading:
            return
        task = asyncio.get_running_loop().create_task(self._read(digest))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task[ApiKey | None]) -> None:
        self._refreshes.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved; a failed re-read leaves the entry to lapse at its time

    def _refuse(self, exc: AccessDenied) -> AccessDenied:
        self.metrics.auth_failures_total.labels(reason=exc.reason).inc()
        return exc
