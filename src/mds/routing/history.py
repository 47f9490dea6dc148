"""What the router remembers of a provider's health: H samples with their components, and
breaker transitions with their reason (seed: "provider health history").

A sample keeps every factor of H (see :mod:`mds.routing.health`), so a dip can be read
after the fact: which input pulled H down, not only that it fell.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mds.routing.breaker import BreakerState
from mds.routing.health import ProviderStats, latency_component

#: Samples of H and breaker transitions kept per provider.
HISTORY_SAMPLES = 60


@dataclass(frozen=True, slots=True)
class HealthSample:
    """H after one outcome, and the components it was multiplied from."""

    at: datetime
    health: float
    state: BreakerState
    breaker: float
    latency: float
    error: float
    completeness: float
    quality: float
    latency_p95_ms: float | None
    consecutive_failures: int

    def as_json(self) -> dict[str, Any]:
        p95 = self.latency_p95_ms
        return {
            "at": self.at.isoformat(),
            "health_score": round(self.health, 4),
            "state": self.state.value,
            "components": {
                "breaker": self.breaker,
                "latency": round(self.latency, 4),
                "error": round(self.error, 4),
                "completeness": round(self.completeness, 4),
                "quality": round(self.quality, 4),
            },
            "latency_p95_ms": None if p95 is None else round(p95, 3),
            "consecutive_failures": self.consecutive_failures,
        }


@dataclass(frozen=True, slots=True)
class Transition:
    """One breaker state change: when (clock time), between which states, and why."""

    at: datetime
    from_state: BreakerState
    to_state: BreakerState
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "from": self.from_state.value,
            "to": self.to_state.value,
            "reason": self.reason,
        }


def sample(at: datetime, stats: ProviderStats, state: BreakerState, latency_cap_ms: float) -> HealthSample:
    """The sample of ``stats`` under breaker ``state`` at ``at``."""
    p95 = stats.latency_p95_ms
    return HealthSample(
        at=at,
        health=stats.health(state.component, latency_cap_ms),
        state=state,
        breaker=state.component,
        latency=latency_component(p95, latency_cap_ms),
        error=1.0 - min(1.0, max(0.0, stats.error_ewma)),
        completeness=stats.completeness,
        quality=stats.quality,
        latency_p95_ms=p95,
        consecutive_failures=stats.consecutive_failures,
    )
