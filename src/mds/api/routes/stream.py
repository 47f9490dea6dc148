"""Streaming: ``WS /ws/{symbol}``, ``WS /ws`` (subscribe/unsubscribe), ``WS /ws/options/{symbol}``,
``GET /ws/replay``.

The WebSocket routes authenticate themselves (``accept_websocket``: a socket cannot carry
a route dependency's 401); the replay route is an ordinary guarded GET.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket
from pydantic import BaseModel, Field

from mds.access.keys import Role
from mds.api.deps import MarketDep, RuntimeDep
from mds.api.params import TIME_PATTERN, SymbolQuery, parse_ts
from mds.api.problems import problem_responses
from mds.api.ws_auth import WebSocketRefused, accept_websocket
from mds.errors import InvalidRequest
from mds.stream.messages import error_message
from mds.stream.protocol import ProtocolError, Subscribe, from_query, options_from_query

router = APIRouter(tags=["streaming"], responses=problem_responses(404, 422, 500))
#: WebSocket routes: each calls accept_websocket with the role it needs (see mds.api.app).
ws_router = APIRouter()


class _Socket:
    """A Starlette WebSocket as the hub's Transport."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws

    async def send_text(self, text: str) -> None:
        await self.ws.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, reason=reason)


@ws_router.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    """Many symbols on one socket: send subscribe/unsubscribe messages (or ``?symbols=A,B``)."""
    symbols = websocket.query_params.get("symbols")
    await _serve(websocket, symbols)


@ws_router.websocket("/ws/{symbol}")
async def stream_symbol(websocket: WebSocket, symbol: str) -> None:
    """One symbol: snapshot, then its bars and quotes (``?channels=&interval=&since=&epoch=``)."""
    await _serve(websocket, symbol)


@ws_router.websocket("/ws/options/{symbol}")
async def stream_options(websocket: WebSocket, symbol: str) -> None:
    """One underlying's options: a snapshot (metrics and the whole priced chain), then an
    ``options_metrics`` and an ``options_chain`` (the contracts whose quotes changed) message
    on each refresh. ``?channels=metrics,chain&since=&epoch=`` as for ``/ws/{symbol}``."""
    runtime = websocket.app.state.runtime
    try:
        await accept_websocket(websocket, Role.READ, required=runtime.settings.AUTH_READ_REQUIRED)
    except WebSocketRefused:
        return
    hub = runtime.hub
    async with hub.connect(_Socket(websocket)) as conn:
        try:
            await hub.apply(conn, options_from_query(symbol, websocket.query_params))
        except ProtocolError as exc:
            conn.control(error_message(exc.field, exc.detail))
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            conn.control(
                error_message("message", "this socket streams one underlying's options; it takes no messages")
            )


async def _serve(ws: WebSocket, symbols: str | None) -> None:
    runtime = ws.app.state.runtime
    try:
        await accept_websocket(ws, Role.READ, required=runtime.settings.AUTH_READ_REQUIRED)
    except WebSocketRefused:
        return
    hub = runtime.hub
    async with hub.connect(_Socket(ws)) as conn:
        if symbols is not None:
            try:
                first: Subscribe | None = from_query(symbols, ws.query_params)
            except ProtocolError as exc:
                conn.control(error_message(exc.field, exc.detail))
                first = None
            if first is not None:
                await hub.apply(conn, first)
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                conn.control(error_message("message", "send JSON text frames, not binary"))
                continue
            await hub.receive(conn, text)


class ReplayOut(BaseModel):
    symbol: str = Field(description="The symbol")
    offset: int = Field(description="The stream's current offset (resume from here)")
    epoch: str = Field(description="The stream's current epoch")
    reset: bool = Field(
        description="True when the gap since the given offset cannot be filled: re-read over REST"
    )
    messages: list[dict[str, Any]] = Field(description="Buffered bar and quote messages, oldest first")


@router.get("/ws/replay", response_model=ReplayOut, operation_id="getStreamReplay")
async def replay(
    symbol: SymbolQuery,
    runtime: RuntimeDep,
    market: MarketDep,
    since: Annotated[
        str,
        Query(
            description="A stream offset (messages after it) or a time (messages appended at or after it)",
            pattern=rf"^(\d{{1,18}}|{TIME_PATTERN.strip('^$')})$",
        ),
    ],
    epoch: Annotated[
        str | None,
        Query(
            max_length=64,
            description="The epoch ``since`` belongs to (an offset only; default: the current one)",
        ),
    ] = None,
) -> dict[str, Any]:
    """The replay buffer's messages since an offset or a time, for clients that poll."""
    symbol = symbol.upper()
    await market.require_symbol(symbol)
    log = runtime.stream_log
    if since.isdigit():
        _, current_epoch = await log.head(symbol)
        answer = await log.since(symbol, int(since), epoch or current_epoch)
        entries, offset, current, reset = answer.entries, answer.offset, answer.epoch, answer.reset
    else:
        if epoch is not None:
            raise InvalidRequest("epoch", "epoch goes with an offset, not a time")
        ts = parse_ts("since", since)
        assert ts is not None
        entries = await log.since_time(symbol, ts)
        offset, current = await log.head(symbol)
        reset = False
    return {
        "symbol": symbol,
        "offset": offset,
        "epoch": current,
        "reset": reset,
        "messages": [
            {**e.message, "symbol": e.symbol, "offset": e.offset, "epoch": e.epoch} for e in entries
        ],
    }
