"""Circuit breaker transitions, cooldown timing and hysteresis, on a ManualClock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.routing.breaker import BreakerState, CircuitBreaker

T0 = datetime(2024, 3, 8, 15, 0, tzinfo=UTC)
HEALTHY = 0.95
BETWEEN = 0.60  # above demote (0.55), below promote (0.70)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def breaker(clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker(
        clock, failure_threshold=3, open_seconds=30, demote_threshold=0.55, promote_threshold=0.70
    )


def fail(b: CircuitBreaker, consecutive: int, health: float = HEALTHY) -> None:
    ticket = b.admit()
    assert ticket is not None
    b.record_failure(ticket, consecutive, health)


def open_breaker(b: CircuitBreaker) -> None:
    for n in (1, 2, 3):
        fail(b, n)
    assert b.state is BreakerState.OPEN


def test_starts_closed(breaker: CircuitBreaker) -> None:
    assert breaker.state is BreakerState.CLOSED
    assert breaker.state.component == 1.0
    assert breaker.can_admit()


def test_opens_after_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    fail(breaker, 1)
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 3)
    assert breaker.state is BreakerState.OPEN
    assert breaker.state.component == 0.0
    assert breaker.admit() is None


def test_demotes_when_health_falls_below_threshold(breaker: CircuitBreaker) -> None:
    fail(breaker, 1, health=0.54)
    assert breaker.state is BreakerState.OPEN


def test_slow_success_can_demote(breaker: CircuitBreaker) -> None:
    ticket = breaker.admit()
    assert ticket is not None
    breaker.record_success(ticket, 0.50)
    assert breaker.state is BreakerState.OPEN


def test_check_health_demotes_outside_a_call(breaker: CircuitBreaker) -> None:
    breaker.check_health(0.56)
    assert breaker.state is BreakerState.CLOSED
    breaker.check_health(0.549)
    assert breaker.state is BreakerState.OPEN


def test_cooldown_timing(breaker: CircuitBreaker, clock: ManualClock) -> None:
    open_breaker(breaker)
    assert breaker.reopens_at == datetime(2024, 3, 8, 15, 0, 30, tzinfo=UTC)
    clock.advance(29.999)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.001)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.state.component == 0.5
    assert breaker.reopens_at is None


def test_probe_exclusivity(breaker: CircuitBreaker, clock: ManualClock) -> None:
    open_breaker(breaker)
    clock.advance(30)
    probe = breaker.admit()
    assert probe is not None and probe.probe
    assert breaker.probe_in_flight
    assert not breaker.can_admit()
    assert breaker.admit() is None
    breaker.release(probe)  # e.g. the probe was rate limited: no verdict
    assert breaker.state is BreakerState.HALF_OPEN
    again = breaker.admit()
    assert again is not None and again.probe


def test_probe_success_above_promote_closes(breaker: CircuitBreaker, clock: ManualClock) -> None:
    open_breaker(breaker)
    clock.advance(30)
    probe = breaker.admit()
    assert probe is not None
    breaker.record_success(probe, 0.70)
    assert breaker.state is BreakerState.CLOSED


def test_hysteresis_between_thresholds_stays_half_open(breaker: CircuitBreaker, clock: ManualClock) -> None:
    open_breaker(breaker)
    clock.advance(30)
    probe = breaker.admit()
    assert probe is not None
    breaker.record_success(probe, BETWEEN)
    assert breaker.state is BreakerState.HALF_OPEN
    # The next probe may go at once; a healthier result then promotes.
    probe = breaker.admit()
    assert probe is not None and probe.probe
    breaker.record_success(probe, 0.71)
    assert breaker.state is BreakerState.CLOSED


def test_probe_failure_reopens_and_restarts_timer(breaker: CircuitBreaker, clock: ManualClock) -> None:
    open_breaker(breaker)
    clock.advance(45)
    probe = breaker.admit()
    assert probe is not None
    breaker.record_failure(probe, 4, HEALTHY)
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == clock.now()
    clock.advance(29)
    assert breaker.state is BreakerState.OPEN
    clock.advance(1)
    assert breaker.state is BreakerState.HALF_OPEN


def test_late_outcomes_of_normal_calls_do_not_move_open_breaker(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    early = breaker.admit()
    assert early is not None
    open_breaker(breaker)
    opened = breaker.opened_at
    clock.advance(10)
    breaker.record_success(early, HEALTHY)
    assert breaker.state is BreakerState.OPEN
    breaker.record_failure(early, 9, HEALTHY)
    assert breaker.opened_at == opened


def test_apply_settings_keeps_state(clock: ManualClock) -> None:
    b = CircuitBreaker.from_settings(load_settings({}), clock)
    assert (b.failure_threshold, b.open_seconds) == (3, 30.0)
    open_breaker(b)
    b.apply_settings(load_settings({"BREAKER_OPEN_SECONDS": "5", "BREAKER_FAILURE_THRESHOLD": "1"}))
    assert b.state is BreakerState.OPEN
    clock.advance(5)
    assert b.state is BreakerState.HALF_OPEN


def test_invalid_thresholds_refused(clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(clock, demote_threshold=0.7, promote_threshold=0.6)
    with pytest.raises(ValueError):
        CircuitBreaker(clock, failure_threshold=0)
