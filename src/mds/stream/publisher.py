"""Give each written bar or quote its place in the symbol's stream, then tell every hub.

The offset is assigned once, here, by the replay log (atomically across processes); the
Bus only carries the entry to the API processes' hubs, which fan it out. A hub that
misses a Bus event (pub/sub is fire-and-forget) sees the next offset jump and refills
the gap from the log, so the Bus is never the record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from mds.constants import STREAM_TOPIC
from mds.observability.metrics import Metrics
from mds.stream.base import Bus
from mds.stream.log import Entry, StreamLog, from_micros, to_micros

log = logging.getLogger(__name__)


class StreamPublisher:
    def __init__(
        self, log: StreamLog, bus: Bus, metrics: Metrics, *, wall: Callable[[], float] = time.time
    ) -> None:
        self.log = log
        self.bus = bus
        self.metrics = metrics
        self._wall = wall

    async def publish(self, message: dict[str, Any]) -> Entry | None:
        """Append ``message`` (it names its ``symbol``) and announce it; None if the log failed.

        ``written_at`` (wall seconds) is taken before the append, so the latency a hub
        measures includes the log and the Bus.
        """
        written_at = self._wall()
        try:
            entry = await self.log.append(str(message["symbol"]), message)
        except Exception:  # noqa: BLE001 - the bar is stored; streaming must not fail the write
            log.exception(
                "stream: could not append a %s message for %s", message.get("type"), message["symbol"]
            )
            self.metrics.ws_dropped_messages_total.labels(reason="publish_failed").inc()
            return None
        try:
            await self.bus.publish(STREAM_TOPIC, envelope(entry, written_at))
        except Exception:  # noqa: BLE001 - the entry is in the log; hubs refill it from there
            log.warning("stream: could not announce %s offset %d on the bus", entry.symbol, entry.offset)
        return entry


def envelope(entry: Entry, written_at: float) -> dict[str, Any]:
    """An entry as the Bus carries it."""
    return {
        "symbol": entry.symbol,
        "offset": entry.offset,
        "epoch": entry.epoch,
        "appended_us": to_micros(entry.ts),
        "written_at": written_at,
        "message": entry.message,
    }


def open_envelope(event: dict[str, Any]) -> tuple[Entry, float] | None:
    """The entry and its wall write time, or None for an event that is not an envelope."""
    try:
        entry = Entry(
            symbol=str(event["symbol"]),
            offset=int(event["offset"]),
            epoch=str(event["epoch"]),
            message=dict(event["message"]),
            ts=from_micros(int(event["appended_us"])),
        )
        return entry, float(event["written_at"])
    except (KeyError, TypeError, ValueError):
        return None
