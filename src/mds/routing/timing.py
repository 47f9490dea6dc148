"""Transport time: how long a provider itself took to answer, apart from MDS's own waits.

A provider's latency feeds its health score, and a call that runs past
PROVIDER_TIMEOUT_SEC counts as a failure; both must measure the vendor, never MDS. A
routed call also spends time that MDS causes: waiting for a rate-limit slot (a deep
backlog can make that minutes), and event-loop stalls, when other work holds the loop
while the answer sits in a socket buffer. Charged to the provider, those demoted healthy
providers (see docs/decisions.md, "Latency MDS caused").

So adapters wrap only the exchange with the vendor in ``transport()``: it is timed on
the monotonic wall clock, bounded by the router's timeout, and event-loop stalls seen
while it ran (``loop_stall_seconds``) are taken off. The router reads the total from the
``TransportTimer`` it set for the call (a context variable, so tasks the adapter spawns
add to the same timer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from mds.errors import Unavailable


@dataclass
class TransportTimer:
    """The transport time of one routed call (every exchange it made, summed)."""

    timeout: float
    seconds: float = 0.0
    exchanges: int = 0


_timer: ContextVar[TransportTimer | None] = ContextVar("mds_transport_timer", default=None)

#: Seconds the event loop has stalled so far (monotonic, never decreasing); set by the
#: event-loop lag monitor while it runs. Without one, no stall is taken off.
_stall_source: Callable[[], float] | None = None


def set_stall_source(source: Callable[[], float] | None) -> None:
    """Install (or remove, with None) the function that reports cumulative loop stalls."""
    global _stall_source
    _stall_source = source


def loop_stall_seconds() -> float:
    return _stall_source() if _stall_source is not None else 0.0


@contextmanager
def timed_call(timeout: float) -> Iterator[TransportTimer]:
    """Collect the transport time of the exchanges made inside the block."""
    timer = TransportTimer(timeout=timeout)
    token = _timer.set(timer)
    try:
        yield timer
    finally:
        _timer.reset(token)


@asynccontextmanager
async def transport(provider: str) -> AsyncIterator[None]:
    """Time one exchange with ``provider`` and bound it by the routed call's timeout.

    Outside a routed call (a CLI fetch, a contract test) it only runs the block.

    Raises:
        Unavailable: code ``timeout``, when the exchange outlived the timeout.
    """
    timer = _timer.get()
    if timer is None:
        yield
        return
    started, stalled = time.monotonic(), loop_stall_seconds()
    try:
        async with asyncio.timeout(timer.timeout) as deadline:
            yield
    except TimeoutError:
        if not deadline.expired():
            raise
        raise Unavailable(provider, f"no answer within {timer.timeout:g}s", code="timeout") from None
    finally:
        own_stall = loop_stall_seconds() - stalled
        timer.seconds += max(0.0, time.monotonic() - started - own_stall)
        timer.exchanges += 1
