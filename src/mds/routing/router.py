"""The router: picks a provider per capability by policy and health, and fails over.

Hand-written, as DESIGN.md asks: health-aware, deterministic vendor routing is what MDS
adds over its peers, and no library does it.

For a capability the router tries, in order, the providers of ``settings.policy(cap)``
that exist, are configured, offer the capability and have not answered NotEntitled for
it since the last settings update. It skips those whose breaker is open, whose
half-open probe is already out, and those paused by a rate limit. The order is the
policy order (ties cannot arise: the policy is the tie-break), with an allowed
``hint`` moved to the front. Each call runs under PROVIDER_TIMEOUT_SEC; a provider error
is recorded and the next provider is tried within the same call. Any other exception
from a provider (an adapter bug) is recorded as its BadPayload, with the traceback
logged; only cancellation passes through.

One module although long: the order, the breaker's half-open probe, the rate-limit pauses
and the health samples are read and written by the same call path, under one lock-free
event-loop discipline; split, each part would need the others' private state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from opentelemetry.trace import NoOpTracer, SpanKind, StatusCode, Tracer

from mds.config import PROVIDER_ALIASES, Settings
from mds.domain.clock import Clock
from mds.domain.models import Capability
from mds.errors import (
    BadPayload,
    NoData,
    NoProviderAvailable,
    NotEntitled,
    ProviderError,
    RateLimited,
    Unavailable,
)
from mds.observability.metrics import CIRCUIT_STATE_VALUE, Metrics
from mds.providers.base import Provider
from mds.routing.breaker import BreakerState, CircuitBreaker, Ticket
from mds.routing.health import ProviderStats
from mds.routing.history import HISTORY_SAMPLES, HealthSample, Transition, sample
from mds.routing.timing import timed_call

log = logging.getLogger(__name__)

_PROBE_OUT = "skipped: half-open probe in flight"

T = TypeVar("T")


@dataclass(frozen=True)
class Routed(Generic[T]):
    """A provider's answer and how it was reached."""

    value: T
    provider: str
    #: (provider, error kind) for each provider tried before the one that answered.
    attempts: tuple[tuple[str, str], ...]


def _front(name: str, names: list[str]) -> list[str]:
    return [name, *(n for n in names if n != name)]


def _unexpected(provider: str, exc: Exception) -> BadPayload:
    """An exception no adapter should raise (a bug, or an answer no parser foresaw).

    Defence in depth: adapters translate every failure into a ProviderError, so this is
    their bug, but one provider's bug must not fail a call another provider can serve.
    The answer counts as a bad payload of ``provider``; the traceback goes to the log
    (only the type to the error, which callers may see).
    """
    log.error(
        "provider %s raised %s instead of a ProviderError; counted as a bad payload",
        provider,
        type(exc).__name__,
        exc_info=exc,
    )
    err = BadPayload(provider, f"unexpected {type(exc).__name__} in the adapter")
    err.__cause__ = exc
    return err


@dataclass
class _Entry:
    provider: Provider
    stats: ProviderStats
    breaker: CircuitBreaker
    paused_until: datetime | None = None
    not_entitled: set[Capability] = field(default_factory=set)
    history: deque[HealthSample] = field(default_factory=lambda: deque(maxlen=HISTORY_SAMPLES))
    transitions: deque[Transition] = field(default_factory=lambda: deque(maxlen=HISTORY_SAMPLES))
    last_state: BreakerState = BreakerState.CLOSED
    last_opened_at: datetime | None = None
    last_outcome: str = ""
    #: Set while no half-open probe of this provider is out; calls that found one out
    #: wait on it instead of failing (see ``call``).
    probe_over: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.probe_over.set()


class Router:
    """Routes capability calls to providers by policy and health; see the module docstring.

    Args:
        providers: every provider instance by name; unconfigured ones may be included.
        settings: policies, thresholds and timeouts; replace with ``update_settings``.
        clock: the time source for breaker cooldowns, rate-limit pauses and history.
        metrics: where provider counters and gauges go.
    """

    def __init__(
        self,
        providers: Mapping[str, Provider],
        settings: Settings,
        clock: Clock,
        metrics: Metrics,
        *,
        tracer: Tracer | None = None,
    ) -> None:
        self._settings = settings
        self._tracer = tracer or NoOpTracer()
        self._clock = clock
        self._metrics = metrics
        self._entries: dict[str, _Entry] = {
            name: _Entry(
                provider=p,
                stats=ProviderStats(),
                breaker=CircuitBreaker.from_settings(settings, clock),
            )
            for name, p in providers.items()
        }
        for name in self._entries:
            self._publish(name)

    @property
    def settings(self) -> Settings:
        return self._settings

    # -- choosing ------------------------------------------------------------------------

    def _candidates(self, capability: Capability) -> list[str]:
        """Policy-ordered providers that could serve ``capability`` at all (health aside)."""
        out: list[str] = []
        for name in self._settings.policy(capability):
            entry = self._entries.get(name)
            if entry is None or not entry.provider.configured:
                continue
            if capability not in entry.provider.capabilities:
                continue
            if capability in entry.not_entitled:
                continue
            out.append(name)
        return out

    def _skip_reason(self, name: str, now: datetime) -> str | None:
        """Why ``name`` cannot take a call now, or None if it can."""
        entry = self._entries[name]
        # The breaker is asked first: a provider both open and paused is not one a
        # caller should be told to retry at the end of the pause.
        state = entry.breaker.state
        if state is BreakerState.OPEN:
            return "skipped: open"
        if state is BreakerState.HALF_OPEN and entry.breaker.probe_in_flight:
            return _PROBE_OUT
        if entry.paused_until is not None and now < entry.paused_until:
            return f"skipped: rate limited until {entry.paused_until.isoformat()}"
        return None

    def _honoured_hint(self, routable: list[str], hint: str | None) -> str | None:
        """The hinted provider if the override is allowed and it is routable, else None."""
        if hint is None or not self._settings.ALLOW_SOURCE_OVERRIDE:
            return None
        key = hint.strip().lower()
        key = PROVIDER_ALIASES.get(key, key)
        return key if key in routable else None

    def order(self, capability: Capability, *, hint: str | None = None) -> list[str]:
        """The providers that would be tried for ``capability`` right now, in order."""
        now = self._clock.now()
        capability = Capability(capability)
        routable = [n for n in self._candidates(capability) if self._skip_reason(n, now) is None]
        first = self._honoured_hint(routable, hint)
        return routable if first is None else _front(first, routable)

    # -- calling -------------------------------------------------------------------------

    async def call(
        self,
        capability: Capability,
        op: Callable[[Provider], Awaitable[T]],
        *,
        hint: str | None = None,
        only: str | None = None,
    ) -> Routed[T]:
        """Run ``op`` against providers in routing order until one answers.

        Args:
            capability: what is asked for; selects the policy.
            op: the request, given a provider (e.g. ``lambda p: p.fetch_bars(...)``).
            hint: a preferred provider; honoured only with ALLOW_SOURCE_OVERRIDE and
                when that provider is routable now.
            only: ask this provider and no other (reconciliation compares named vendors);
                it still goes through its breaker, pauses and health figures, and a
                provider outside the capability's candidates is simply not asked.

        Returns:
            The first answer, which provider gave it, and the failed attempts before it.

        Raises:
            NoData: every provider that answered said it has no data (the first such
                error is raised; failures and skips of others do not change that).
            NoProviderAvailable: nobody answered. ``errors`` maps each provider to why;
                ``retry_after`` is the seconds until the soonest rate-limit pause ends
                when pauses were the only obstacle, else None.
        """
        capability = Capability(capability)
        self._refresh_gauges()
        candidates = self._candidates(capability)
        if only is not None:
            candidates = [n for n in candidates if n == only]
        # Unroutable candidates stay in the list so the error can say why each was
        # skipped. The hint counts only for a provider routable when the call starts.
        first = self._honoured_hint(self.order(capability), hint)
        ordered = candidates if first is None else _front(first, candidates)

        errors: dict[str, str] = {}
        attempts: list[tuple[str, str]] = []
        no_data: list[NoData] = []
        pauses: list[float] = []  # seconds until each rate-limited provider resumes
        other_obstacle = False

        # A provider whose half-open probe another call has out is tried again once that
        # probe has ended, instead of failing this call: when a provider comes back after
        # an outage, the probe closes its breaker and the calls that waited go through,
        # rather than a whole sweep failing but the one symbol that took the probe.
        pending = deque(ordered)
        awaiting_probe: list[str] = []
        waited = False
        while pending or (awaiting_probe and not waited):
            if not pending:
                waited = True
                await self._probes_over(awaiting_probe)
                pending.extend(awaiting_probe)
                continue
            name = pending.popleft()
            entry = self._entries[name]
            now = self._clock.now()
            # Re-checked per provider: a concurrent call may have taken a probe or paused
            # a provider while this call was waiting on an earlier one.
            reason = self._skip_reason(name, now)
            ticket = entry.breaker.admit() if reason is None else None
            if ticket is None:
                errors[name] = reason or "skipped: open"
                if reason == _PROBE_OUT and not waited:
                    awaiting_probe.append(name)
                elif reason and reason.startswith("skipped: rate limited") and entry.paused_until:
                    pauses.append((entry.paused_until - now).total_seconds())
                else:
                    other_obstacle = True
                continue
            if ticket.probe:
                entry.probe_over.clear()
            try:
                value, latency_ms = await self._attempt(name, entry, capability, op)
            except Exception as raised:
                err = raised if isinstance(raised, ProviderError) else _unexpected(name, raised)
                self._on_error(name, entry, capability, ticket, err)
                attempts.append((name, err.kind))
                errors[name] = f"{err.kind}: {err.message}" if err.message else err.kind
                if isinstance(err, NoData):
                    no_data.append(err)
                elif isinstance(err, RateLimited):
                    pauses.append(max(0.0, float(err.retry_after)))
                elif not isinstance(err, NotEntitled):
                    other_obstacle = True
                continue
            except BaseException:
                # Cancellation (or the process exiting): no verdict on the provider, free
                # the probe, and let it through.
                entry.breaker.release(ticket)
                entry.probe_over.set()
                raise
            self._on_success(name, entry, capability, ticket, latency_ms)
            return Routed(value=value, provider=name, attempts=tuple(attempts))

        if no_data:
            raise no_data[0]
        for name in self._excluded(capability):
            errors.setdefault(name, "skipped: not entitled")
        exc = NoProviderAvailable(capability.value, errors)
        exc.retry_after = min(pauses) if pauses and not other_obstacle else None
        raise exc

    async def _attempt(
        self,
        name: str,
        entry: _Entry,
        capability: Capability,
        op: Callable[[Provider], Awaitable[T]],
    ) -> tuple[T, float | None]:
        """Run ``op``; return its value and the provider's latency in ms (None: no exchange).

        Adapters that time their own transport (``times_transport``) are measured and
        timed out around the exchange with the vendor only, so rate-limit waits and
        event-loop stalls are never charged to them (``mds.routing.timing``). For any
        other provider the whole call is measured and bounded.
        """
        with self._tracer.start_as_current_span(
            f"provider {capability.value}",
            kind=SpanKind.CLIENT,
            attributes={"mds.provider": name, "mds.capability": capability.value},
            record_exception=False,  # the outcome says what went wrong; vendor errors are routine
            set_status_on_exception=False,
        ) as span:
            try:
                value, latency_ms = await self._exchange(name, entry, op)
            except ProviderError as err:
                span.set_attribute("mds.outcome", err.kind)
                raise
            except Exception as exc:  # counted as the provider's bad payload (see ``call``)
                span.set_attribute("mds.outcome", "bad_payload")
                span.set_status(StatusCode.ERROR, type(exc).__name__)
                raise
            span.set_attribute("mds.outcome", "success")
            return value, latency_ms

    async def _exchange(
        self, name: str, entry: _Entry, op: Callable[[Provider], Awaitable[T]]
    ) -> tuple[T, float | None]:
        timeout = self._settings.PROVIDER_TIMEOUT_SEC
        if getattr(entry.provider, "times_transport", False):
            with timed_call(timeout) as timer:
                value = await op(entry.provider)
            return value, (timer.seconds * 1000.0 if timer.exchanges else None)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout) as cm:
                value = await op(entry.provider)
        except TimeoutError:
            # Only our own deadline is a provider timeout; a TimeoutError op raised
            # itself before the deadline is a bug (``call`` counts it as a bad payload).
            if not cm.expired():
                raise
            raise Unavailable(name, f"no answer within {timeout:g}s", code="timeout") from None
        return value, (time.perf_counter() - started) * 1000.0

    async def _probes_over(self, names: list[str]) -> None:
        """Wait until no probe of ``names`` is out, at most PROVIDER_TIMEOUT_SEC (real time:
        the probe's own exchange is bounded by that)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.PROVIDER_TIMEOUT_SEC):
                for name in names:
                    await self._entries[name].probe_over.wait()

    def _excluded(self, capability: Capability) -> list[str]:
        """Providers left out of ``capability`` only because they answered NotEntitled."""
        return [
            n
            for n in self._settings.policy(capability)
            if n in self._entries
            and self._entries[n].provider.configured
            and capability in self._entries[n].not_entitled
        ]

    # -- outcomes ------------------------------------------------------------------------

    def _on_success(
        self, name: str, entry: _Entry, capability: Capability, ticket: Ticket, latency_ms: float | None
    ) -> None:
        entry.stats.record_success(latency_ms)
        entry.probe_over.set()
        entry.last_outcome = "success" if latency_ms is None else f"success in {latency_ms:.0f} ms"
        entry.breaker.record_success(ticket, self._health_as_closed(entry))
        self._metrics.provider_selected_total.labels(capability=capability.value, provider=name).inc()
        if latency_ms is not None:
            self._metrics.provider_latency_ms.labels(provider=name, endpoint=capability.value).observe(
                latency_ms
            )
        self._after_outcome(name)

    def _on_error(
        self, name: str, entry: _Entry, capability: Capability, ticket: Ticket, err: ProviderError
    ) -> None:
        self._metrics.provider_errors_total.labels(
            provider=name, endpoint=capability.value, code=err.code
        ).inc()
        if isinstance(err, BadPayload):
            self._metrics.provider_bad_payloads_total.labels(provider=name).inc()
        if isinstance(err, RateLimited):
            # Back-off, not ill health: pause the provider, leave its figures alone.
            resume = self._clock.now() + timedelta(seconds=max(0.0, float(err.retry_after)))
            if entry.paused_until is None or resume > entry.paused_until:
                entry.paused_until = resume
        elif isinstance(err, NotEntitled):
            entry.not_entitled.add(capability)
        entry.last_outcome = f"{err.kind} ({err.code})"
        entry.probe_over.set()
        if entry.stats.record_error(err):
            entry.breaker.record_failure(
                ticket, entry.stats.consecutive_failures, self._health_as_closed(entry)
            )
        else:
            entry.breaker.release(ticket)
        self._after_outcome(name)

    def record_completeness(self, provider: str, ratio: float) -> None:
        """Fold a response's completeness (delivered / expected bars, 0..1) into ``provider``.

        Raises:
            KeyError: ``provider`` is not one the router was built with.
            ValueError: ``ratio`` is outside [0, 1].
        """
        entry = self._entries.get(provider)
        if entry is None:
            raise KeyError(f"unknown provider {provider!r}")
        entry.stats.record_completeness(ratio)
        entry.last_outcome = f"a completeness report of {ratio:.2f}"
        entry.breaker.check_health(self._health_as_closed(entry))
        self._after_outcome(provider)

    def record_quality(self, provider: str, score: float) -> None:
        """Adopt ``provider``'s data-quality score from reconciliation (0..1); a score that
        takes H-as-closed below the demote threshold opens its breaker now.

        Raises:
            KeyError: ``provider`` is not one the router was built with.
            ValueError: ``score`` is outside [0, 1].
        """
        entry = self._entries.get(provider)
        if entry is None:
            raise KeyError(f"unknown provider {provider!r}")
        entry.stats.record_quality(score)
        entry.last_outcome = f"a data-quality score of {score:.2f}"
        entry.breaker.check_health(self._health_as_closed(entry))
        self._after_outcome(provider)

    def quality(self, provider: str) -> float:
        """The data-quality score ``provider`` is routed with (1.0 until scored)."""
        return self._entries[provider].stats.quality

    # -- health and reporting ------------------------------------------------------------

    def _health_as_closed(self, entry: _Entry) -> float:
        return entry.stats.health(1.0, self._settings.RECENT_LATENCY_CAP_MS)

    def _health(self, entry: _Entry) -> float:
        return entry.stats.health(entry.breaker.state.component, self._settings.RECENT_LATENCY_CAP_MS)

    def health(self, provider: str) -> float:
        """The current H of ``provider``."""
        return self._health(self._entries[provider])

    def state(self, provider: str) -> BreakerState:
        """The breaker state of ``provider``."""
        return self._entries[provider].breaker.state

    def _publish(self, name: str) -> float:
        entry = self._entries[name]
        h = self._health(entry)
        self._metrics.circuit_state.labels(provider=name).set(CIRCUIT_STATE_VALUE[entry.breaker.state.value])
        self._metrics.provider_health_score.labels(provider=name).set(h)
        return h

    def _after_outcome(self, name: str) -> None:
        self._publish(name)
        entry = self._entries[name]
        now = self._clock.now()
        entry.history.append(
            sample(now, entry.stats, entry.breaker.state, self._settings.RECENT_LATENCY_CAP_MS)
        )
        if entry.breaker.opened_at != entry.last_opened_at:
            entry.last_opened_at = entry.breaker.opened_at
            self._metrics.circuit_opened_total.labels(provider=name).inc()
        self._note_transition(name, entry, now, f"after {entry.last_outcome}")

    def _note_transition(self, name: str, entry: _Entry, now: datetime, cause: str) -> None:
        """Record and log a state change of ``name``'s breaker since it was last looked at."""
        state = entry.breaker.state
        if state is entry.last_state:
            return
        at = now
        if entry.last_state is BreakerState.OPEN and state is BreakerState.HALF_OPEN:
            # Open -> half-open happens with time, not with an outcome: date it when the
            # cooldown ended, not when someone happened to look.
            opened = entry.breaker.opened_at
            cooldown = entry.breaker.open_seconds
            if opened is not None:
                at = min(now, opened + timedelta(seconds=cooldown))
            cause = f"open for BREAKER_OPEN_SECONDS={cooldown:g}"
        stats = entry.stats
        # Every transition keeps the figures behind it, so an opening can be explained after
        # the fact (which input pushed H down, or how many failures).
        reason = (
            f"{cause}; H-as-closed {self._health_as_closed(entry):.3f}, latency p95 "
            f"{'-' if stats.latency_p95_ms is None else f'{stats.latency_p95_ms:.0f}'} ms, "
            f"error ewma {stats.error_ewma:.3f}, completeness {stats.completeness:.3f}, "
            f"quality {stats.quality:.3f}, consecutive failures {stats.consecutive_failures}"
        )
        entry.transitions.append(Transition(at, entry.last_state, state, reason))
        log.warning("breaker %s: %s -> %s %s", name, entry.last_state.value, state.value, reason)
        entry.last_state = state

    def _refresh_gauges(self) -> None:
        # Open → half-open happens lazily with time, not with an outcome; refresh so the
        # gauges do not show a cooled-down provider as open until its next call.
        now = self._clock.now()
        for name, entry in self._entries.items():
            self._publish(name)
            self._note_transition(name, entry, now, "observed")

    def snapshot(self) -> list[dict[str, Any]]:
        """One dict per provider (sorted by name) for /stats/providers."""
        self._refresh_gauges()
        now = self._clock.now()
        out: list[dict[str, Any]] = []
        for name in sorted(self._entries):
            entry = self._entries[name]
            stats = entry.stats
            p95 = stats.latency_p95_ms
            caps = sorted(Capability(c).value for c in entry.provider.capabilities)
            paused = entry.paused_until if entry.paused_until and now < entry.paused_until else None
            out.append(
                {
                    "provider": name,
                    "configured": bool(entry.provider.configured),
                    "capabilities": caps,
                    "state": entry.breaker.state.value,
                    "health_score": round(self._health(entry), 4),
                    "latency_p95_ms": None if p95 is None else round(p95, 3),
                    "error_ewma": round(stats.error_ewma, 4),
                    "completeness": round(stats.completeness, 4),
                    "quality": round(stats.quality, 4),
                    "consecutive_failures": stats.consecutive_failures,
                    "paused_until": paused.isoformat() if paused else None,
                    "not_entitled": sorted(c.value for c in entry.not_entitled),
                    "h_history": [(s.at.isoformat(), round(s.health, 4)) for s in entry.history],
                }
            )
        return out

    def health_history(self, provider: str) -> dict[str, Any]:
        """The last HISTORY_SAMPLES samples of ``provider``'s H with their components, and its
        last breaker transitions, oldest first.

        Raises:
            KeyError: ``provider`` is not one the router routes to.
        """
        entry = self._entries.get(provider)
        if entry is None:
            raise KeyError(f"unknown provider {provider!r}")
        self._refresh_gauges()
        return {
            "provider": provider,
            "state": entry.breaker.state.value,
            "health_score": round(self._health(entry), 4),
            "samples": [s.as_json() for s in entry.history],
            "transitions": [t.as_json() for t in entry.transitions],
        }

    # -- hot reload ----------------------------------------------------------------------

    def replace_provider(self, name: str, provider: Provider) -> Provider | None:
        """Route ``name`` to ``provider`` from now on; return the adapter it replaces, if any.

        A reload rebuilds an adapter whose key, base URL or rate limit changed: the vendor is
        the same, so its figures, breaker, pause and history stay. A name not routed before
        gets a fresh entry (a vendor a reloaded policy names for the first time).
        """
        entry = self._entries.get(name)
        if entry is None:
            self._entries[name] = _Entry(
                provider=provider,
                stats=ProviderStats(),
                breaker=CircuitBreaker.from_settings(self._settings, self._clock),
            )
            self._publish(name)
            return None
        old, entry.provider = entry.provider, provider
        # A new key may come with a new plan: try what the old one was refused again.
        entry.not_entitled.clear()
        return old

    def update_settings(self, settings: Settings) -> None:
        """Adopt new policies and thresholds; keep stats, breaker states and pauses.

        NotEntitled exclusions are cleared: a reload is how an operator says "the plan
        changed, try again".
        """
        self._settings = settings
        for name, entry in self._entries.items():
            entry.breaker.apply_settings(settings)
            entry.not_entitled.clear()
            self._publish(name)
