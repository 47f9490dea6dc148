"""Provider routing: health score, circuit breaker and the router (all hand-written).

See ``health`` for the score H, ``breaker`` for the CLOSED/OPEN/HALF_OPEN machine and
``router`` for how a capability call picks and fails over between providers.
"""

from mds.routing.breaker import BreakerState, CircuitBreaker
from mds.routing.health import ProviderStats, health_score
from mds.routing.router import Routed, Router

__all__ = ["BreakerState", "CircuitBreaker", "ProviderStats", "Routed", "Router", "health_score"]
