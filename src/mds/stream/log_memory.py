"""The in-process StreamLog: a bounded deque per symbol; the epoch dies with the process.

Appends never await, so offsets are assigned atomically within the event loop. There is
no idle expiry: the symbols of one process are bounded by the universe, and each keeps at
most ``max_messages`` entries.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mds.domain.clock import Clock
from mds.stream.log import Entry, Replay, to_micros


@dataclass
class _History:
    epoch: str
    head: int = 0
    entries: deque[Entry] = field(default_factory=deque)


class InMemoryStreamLog:
    """Replay log for the embedded (one-process) deployment."""

    def __init__(self, clock: Clock, *, max_messages: int = 5000) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self._clock = clock
        self._max = max_messages
        self._logs: dict[str, _History] = {}

    def _history(self, symbol: str) -> _History:
        log = self._logs.get(symbol)
        if log is None:
            log = self._logs[symbol] = _History(uuid.uuid4().hex, entries=deque(maxlen=self._max))
        return log

    async def append(self, symbol: str, message: dict[str, Any]) -> Entry:
        # A JSON round trip, so this log hands back what the Redis one does and a caller
        # mutating its dict afterwards cannot rewrite history.
        stored = json.loads(json.dumps(message))
        log = self._history(symbol)
        log.head += 1
        entry = Entry(symbol, log.head, log.epoch, stored, self._clock.now())
        log.entries.append(entry)
        return entry

    async def since(self, symbol: str, offset: int, epoch: str) -> Replay:
        log = self._history(symbol)
        oldest = log.entries[0].offset if log.entries else log.head + 1
        if epoch != log.epoch or offset > log.head or offset < oldest - 1:
            return Replay(log.head, log.epoch, reset=True)
        missed = list(itertools.islice(log.entries, offset - oldest + 1, None))
        return Replay(log.head, log.epoch, missed)

    async def since_time(self, symbol: str, ts: datetime) -> list[Entry]:
        at = to_micros(ts)
        return [e for e in self._history(symbol).entries if to_micros(e.ts) >= at]

    async def head(self, symbol: str) -> tuple[int, str]:
        log = self._history(symbol)
        return log.head, log.epoch

    async def close(self) -> None:
        self._logs.clear()
