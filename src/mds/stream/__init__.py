"""Event fan-out behind the Bus protocol (in-process and Redis pub/sub), and the per-symbol
replay log behind the StreamLog protocol (in-process and Redis) that lets clients resume."""

from mds.stream.base import Bus, Subscription
from mds.stream.log import Entry, Replay, StreamLog
from mds.stream.log_memory import InMemoryStreamLog
from mds.stream.memory import InMemoryBus

__all__ = ["Bus", "Entry", "InMemoryBus", "InMemoryStreamLog", "Replay", "StreamLog", "Subscription"]
