"""Event fan-out behind the Bus protocol: in-process (embedded) and Redis pub/sub."""

from mds.stream.base import Bus, Subscription
from mds.stream.memory import InMemoryBus

__all__ = ["Bus", "InMemoryBus", "Subscription"]
