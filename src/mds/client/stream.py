"""Following ``WS /ws`` across dropped connections, resuming by offset.

Every message the server sends names its ``symbol``, ``offset`` and ``epoch``. The client
keeps, per symbol, the cursor of the last snapshot, bar or quote it handed out; after a
drop it reconnects and subscribes again with those cursors (``"cursors": {"AAPL":
{"offset": 41, "epoch": "…"}}``), so the server replays exactly what was missed (``resumed``
then the bars and quotes after the cursor), or, when its replay buffer no longer reaches
back, says ``reset`` and sends a fresh snapshot. A bar or quote at or before the cursor of
its epoch is a repeat and is dropped, so none is handed out twice however the drop fell.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from mds.client.api import auth_headers
from mds.client.errors import problem_error

#: Messages that move a symbol's cursor: what the server's log holds, and the snapshot
#: (its offset is the log's head when it was taken). ``resumed`` carries the head too, but
#: the replayed messages after it are older, so it must not move the cursor.
_CURSOR_TYPES = frozenset({"snapshot", "bar", "quote", "reset"})
_LOGGED_TYPES = frozenset({"bar", "quote"})
#: A snapshot holds a session of bars (or a whole option chain): more than websockets' 1 MiB.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass
class Cursor:
    offset: int
    epoch: str


class Cursors:
    """The last position handed out per symbol, and the repeat filter."""

    def __init__(self) -> None:
        self.by_symbol: dict[str, Cursor] = {}

    def accept(self, message: dict[str, Any]) -> bool:
        """Whether to hand ``message`` out (False: a bar or quote already handed out)."""
        kind, symbol = message.get("type"), message.get("symbol")
        offset, epoch = message.get("offset"), message.get("epoch")
        if kind not in _CURSOR_TYPES or not isinstance(symbol, str):
            return True
        if not isinstance(offset, int) or not isinstance(epoch, str):
            return True
        known = self.by_symbol.get(symbol)
        if kind in _LOGGED_TYPES and known is not None and known.epoch == epoch and offset <= known.offset:
            return False
        self.by_symbol[symbol] = Cursor(offset, epoch)
        return True

    def subscribe(self, symbols: Sequence[str], channels: list[str] | None, interval: str) -> str:
        """The subscribe message: with the cursors known, a resume; else a fresh start."""
        body: dict[str, Any] = {"action": "subscribe", "symbols": list(symbols), "interval": interval}
        if channels is not None:
            body["channels"] = channels
        known = {s: c for s, c in self.by_symbol.items() if s in symbols}
        if known:
            body["cursors"] = {s: {"offset": c.offset, "epoch": c.epoch} for s, c in known.items()}
        return orjson.dumps(body).decode()


def ws_url(base_url: str) -> str:
    if base_url.startswith("https://"):
        return "wss://" + base_url.removeprefix("https://") + "/ws"
    return "ws://" + base_url.removeprefix("http://") + "/ws"


async def follow(
    base_url: str,
    api_key: str | None,
    symbols: list[str],
    *,
    channels: list[str] | None,
    interval: str,
    retries: int | None,
    backoff: float,
    max_backoff: float,
) -> AsyncGenerator[dict[str, Any], None]:
    """Messages of ``symbols`` until the caller stops; see :meth:`AsyncClient.stream`.

    Raises:
        AuthError: The server refused the key (not retried: another try would fail alike).
        MDSError: The handshake was refused with another 4xx.
        OSError, ConnectionClosed: ``retries`` reconnects in a row failed.
    """
    wanted = [s.strip().upper() for s in symbols]
    cursors = Cursors()
    failures, delay = 0, backoff
    while True:
        try:
            async with connect(
                ws_url(base_url), additional_headers=auth_headers(api_key), max_size=MAX_MESSAGE_BYTES
            ) as ws:
                await ws.send(cursors.subscribe(wanted, channels, interval))
                async for text in ws:
                    message = orjson.loads(text)
                    failures, delay = 0, backoff
                    if message.get("type") == "error" and isinstance(message.get("status"), int):
                        # A refused key: the server says why, then closes with 1008.
                        raise problem_error(message["status"], {}, orjson.dumps(message))
                    if cursors.accept(message):
                        yield message
        except InvalidStatus as exc:
            response = exc.response
            if response.status_code < 500:
                raise problem_error(
                    response.status_code, dict(response.headers), bytes(response.body or b"")
                ) from None
            error: Exception | None = exc
        except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
            error = exc
        else:
            error = None  # the server closed cleanly (a restart, a slow-client close): resume too
        failures += 1
        if retries is not None and failures > retries:
            if error is None:
                return
            raise error
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_backoff)
