"""Domain types: what MDS knows about markets, independent of vendors and storage."""

from mds.domain.clock import Clock, ManualClock, SimulatedClock, SystemClock
from mds.domain.models import (
    Bar,
    BarStatus,
    Capability,
    Interval,
    Quote,
    Tier,
    capability_for_interval,
    ensure_utc,
)

__all__ = [
    "Bar",
    "BarStatus",
    "Capability",
    "Clock",
    "Interval",
    "ManualClock",
    "Quote",
    "SimulatedClock",
    "SystemClock",
    "Tier",
    "capability_for_interval",
    "ensure_utc",
]
