"""A per-provider circuit breaker with health-score hysteresis.

Hand-written, as DESIGN.md asks: the breaker's promotion rule depends on MDS's own
health score, which no breaker library models, and it must run on an injected Clock.

    CLOSED ──(N consecutive failures, or H < demote)──▶ OPEN
    OPEN ──(BREAKER_OPEN_SECONDS of clock time; checked lazily)──▶ HALF_OPEN
    HALF_OPEN ──(probe succeeds and H-as-closed ≥ promote)──▶ CLOSED
    HALF_OPEN ──(probe succeeds, H-as-closed < promote)──▶ HALF_OPEN (next probe may go)
    HALF_OPEN ──(probe fails)──▶ OPEN (timer restarts)

Demote and promote are different thresholds on purpose: a provider that was just
demoted must look clearly better, not merely borderline, before it takes traffic again.

The breaker keeps no statistics of its own; the caller passes the consecutive failure
count and the health score "as if closed" (H with breaker component 1.0) with each outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mds.config import Settings
from mds.domain.clock import Clock


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    @property
    def component(self) -> float:
        """This state's share of the health score's breaker component."""
        return _COMPONENT[self]


_COMPONENT = {BreakerState.CLOSED: 1.0, BreakerState.HALF_OPEN: 0.5, BreakerState.OPEN: 0.0}


@dataclass(frozen=True, slots=True)
class Ticket:
    """Permission for one call. ``probe`` is true for the single half-open probe."""

    probe: bool


_NORMAL = Ticket(probe=False)
_PROBE = Ticket(probe=True)


class CircuitBreaker:
    """CLOSED / OPEN / HALF_OPEN state for one provider, timed by an injected Clock.

    Callers ask ``admit()`` before a call and report the outcome with the ticket they got:
    ``record_success``, ``record_failure`` or, for outcomes that say nothing about health
    (rate limit, no data, not entitled, cancellation), ``release``.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        failure_threshold: int = 3,
        open_seconds: float = 30.0,
        demote_threshold: float = 0.55,
        promote_threshold: float = 0.70,
    ) -> None:
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._opened_at: datetime | None = None
        self._probe_in_flight = False
        self.configure(
            failure_threshold=failure_threshold,
            open_seconds=open_seconds,
            demote_threshold=demote_threshold,
            promote_threshold=promote_threshold,
        )

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> CircuitBreaker:
        breaker = cls(clock)
        breaker.apply_settings(settings)
        return breaker

    def configure(
        self,
        *,
        failure_threshold: int,
        open_seconds: float,
        demote_threshold: float,
        promote_threshold: float,
    ) -> None:
        """Set thresholds; the current state is kept (used by hot reload)."""
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if open_seconds <= 0:
            raise ValueError("open_seconds must be positive")
        if not 0.0 <= demote_threshold < promote_threshold <= 1.0:
            raise ValueError("need 0 <= demote_threshold < promote_threshold <= 1")
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self.demote_threshold = demote_threshold
        self.promote_threshold = promote_threshold

    def apply_settings(self, settings: Settings) -> None:
        self.configure(
            failure_threshold=settings.BREAKER_FAILURE_THRESHOLD,
            open_seconds=settings.BREAKER_OPEN_SECONDS,
            demote_threshold=settings.BREAKER_DEMOTE_THRESHOLD,
            promote_threshold=settings.BREAKER_PROMOTE_THRESHOLD,
        )

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The current state; an OPEN breaker whose cooldown has passed reads as HALF_OPEN."""
        if (
            self._state is BreakerState.OPEN
            and self._opened_at is not None
            and self._clock.now() >= self._opened_at + timedelta(seconds=self.open_seconds)
        ):
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = False
        return self._state

    @property
    def probe_in_flight(self) -> bool:
        return self.state is BreakerState.HALF_OPEN and self._probe_in_flight

    @property
    def opened_at(self) -> datetime | None:
        """When the breaker last opened (clock time), or None if it never has."""
        return self._opened_at

    @property
    def reopens_at(self) -> datetime | None:
        """When an OPEN breaker will allow a probe; None unless OPEN."""
        if self.state is not BreakerState.OPEN or self._opened_at is None:
            return None
        return self._opened_at + timedelta(seconds=self.open_seconds)

    def can_admit(self) -> bool:
        """Whether ``admit()`` would let a call through now, without taking the probe."""
        state = self.state
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and not self._probe_in_flight)

    def admit(self) -> Ticket | None:
        """A ticket for one call, or None if the breaker refuses it.

        In HALF_OPEN only one probe is out at a time; taking it is synchronous, so two
        concurrent callers on one event loop can never both get it.
        """
        state = self.state
        if state is BreakerState.CLOSED:
            return _NORMAL
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return _PROBE
        return None

    # -- outcomes ------------------------------------------------------------------------

    def release(self, ticket: Ticket) -> None:
        """The call ended with no verdict on health; a probe slot becomes free again."""
        if ticket.probe:
            self._probe_in_flight = False

    def record_success(self, ticket: Ticket, health_as_closed: float) -> None:
        """A call succeeded. ``health_as_closed`` is H computed with breaker component 1.0."""
        state = self.state
        if ticket.probe:
            self._probe_in_flight = False
            if state is BreakerState.HALF_OPEN and health_as_closed >= self.promote_threshold:
                self._close()
            return
        # A success can still demote: a provider that answers, but slowly and after many
        # recent errors, may score below the demote threshold.
        if state is BreakerState.CLOSED and health_as_closed < self.demote_threshold:
            self._open()
        # Successes of calls admitted before the breaker opened change nothing: only the
        # probe may close it again.

    def record_failure(self, ticket: Ticket, consecutive_failures: int, health_as_closed: float) -> None:
        """A call failed in a way that counts against health."""
        state = self.state
        if ticket.probe:
            self._probe_in_flight = False
            if state is BreakerState.HALF_OPEN:
                self._open()
            return
        if state is BreakerState.CLOSED and (
            consecutive_failures >= self.failure_threshold or health_as_closed < self.demote_threshold
        ):
            self._open()
        # Late failures of calls admitted before the breaker opened do not restart its
        # timer; otherwise a burst of slow failures could keep it open indefinitely.

    def check_health(self, health_as_closed: float) -> None:
        """Demote a CLOSED breaker whose health fell below the threshold outside a call."""
        if self.state is BreakerState.CLOSED and health_as_closed < self.demote_threshold:
            self._open()

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock.now()
        self._probe_in_flight = False

    def _close(self) -> None:
        self._state = BreakerState.CLOSED
        self._probe_in_flight = False
