"""What a stream client may send, checked: each mistake names the field it is about.

    {"action": "subscribe", "symbols": ["AAPL", "MSFT"], "channels": ["bars", "quotes"],
     "interval": "1m", "since": 41, "epoch": "…"}          since/epoch: resume (every symbol)
    {"action": "subscribe", "symbols": ["AAPL"], "cursors": {"AAPL": {"offset": 41, "epoch": "…"}}}
    {"action": "unsubscribe", "symbols": ["AAPL"]}

``/ws/{symbol}?channels=bars,quotes&interval=5m&since=41&epoch=…`` is the same subscribe
for one symbol; ``/ws?symbols=AAPL,MSFT`` for several. ``adjust`` (raw, split, all) adjusts
the snapshot's bars as the REST reads do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mds.domain.jobs import SYMBOL_PATTERN
from mds.stream.messages import CHANNELS, OPTIONS_CHANNELS, STREAM_INTERVALS

_SYMBOL = re.compile(SYMBOL_PATTERN)
#: The snapshot adjustments a subscribe may ask for (mds.corporate.adjust.Adjust).
ADJUSTMENTS = ("raw", "split", "all")
MAX_MESSAGE_BYTES = 64 * 1024


class ProtocolError(ValueError):
    """A client message the server cannot act on; ``field`` names the culprit."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


@dataclass(frozen=True)
class Cursor:
    offset: int
    epoch: str


@dataclass(frozen=True)
class Subscribe:
    symbols: tuple[str, ...]
    channels: frozenset[str] = CHANNELS
    interval: str = "1m"
    cursors: Mapping[str, Cursor] = field(default_factory=dict)
    #: The snapshot's adjustment (raw, split, all); live bars are today's, which no action
    #: known today adjusts, so they need none.
    adjust: str = "raw"


@dataclass(frozen=True)
class Unsubscribe:
    symbols: tuple[str, ...]


Command = Subscribe | Unsubscribe


def parse(text: str) -> Command:
    if len(text) > MAX_MESSAGE_BYTES:
        raise ProtocolError("message", f"messages are at most {MAX_MESSAGE_BYTES} bytes")
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("message", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError("message", "a message is a JSON object with an 'action'")
    action = body.get("action")
    if action == "subscribe":
        symbols = _symbols(body.get("symbols", body.get("symbol")))
        cursors = _cursors(body, symbols)
        return Subscribe(
            symbols,
            _channels(body.get("channels")),
            _interval(body.get("interval")),
            cursors,
            _adjust(body.get("adjust")),
        )
    if action == "unsubscribe":
        return Unsubscribe(_symbols(body.get("symbols", body.get("symbol"))))
    raise ProtocolError("action", f"unknown action {action!r}: use 'subscribe' or 'unsubscribe'")


def from_query(symbols: str, query: Mapping[str, str]) -> Subscribe:
    """The subscribe a ``/ws/{symbol}`` (or ``/ws?symbols=``) URL stands for."""
    channels = query.get("channels")
    body: dict[str, Any] = {
        "channels": channels.split(",") if channels is not None else None,
        "interval": query.get("interval"),
    }
    for name in ("since", "epoch"):
        if name in query:
            body[name] = query[name]
    if "since" in body:
        try:
            body["since"] = int(body["since"])
        except ValueError:
            raise ProtocolError("since", "since is a stream offset: a whole number >= 0") from None
    parsed = _symbols(symbols.split(","))
    return Subscribe(
        parsed,
        _channels(body["channels"]),
        _interval(body["interval"]),
        _cursors(body, parsed),
        _adjust(query.get("adjust")),
    )


def options_from_query(symbol: str, query: Mapping[str, str]) -> Subscribe:
    """The subscribe a ``/ws/options/{symbol}?channels=metrics,chain&since=&epoch=`` URL
    stands for: the underlying's ``options:<SYMBOL>`` stream."""
    (underlying,) = _symbols([symbol])
    stream = f"options:{underlying}"
    channels = query.get("channels")
    picked = OPTIONS_CHANNELS
    if channels is not None:
        names = [c for c in channels.split(",") if c]
        unknown = [c for c in names if c not in OPTIONS_CHANNELS]
        if not names or unknown:
            raise ProtocolError(
                "channels", f"unknown channel {(unknown or [''])[0]!r}: use {sorted(OPTIONS_CHANNELS)}"
            )
        picked = frozenset(names)
    body: dict[str, Any] = {k: query[k] for k in ("since", "epoch") if k in query}
    if "since" in body:
        try:
            body["since"] = int(body["since"])
        except ValueError:
            raise ProtocolError("since", "since is a stream offset: a whole number >= 0") from None
    return Subscribe((stream,), picked, STREAM_INTERVALS[0], _cursors(body, (stream,)))


def _symbols(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ProtocolError("symbols", "symbols is a non-empty list of tickers")
    out: list[str] = []
    for item in value:
        symbol = item.strip().upper() if isinstance(item, str) else None
        if not symbol or not _SYMBOL.match(symbol):
            raise ProtocolError("symbols", f"{item!r} is not a ticker")
        if symbol not in out:
            out.append(symbol)
    return tuple(out)


def _channels(value: Any) -> frozenset[str]:
    if value is None:
        return CHANNELS
    if not isinstance(value, list) or not value:
        raise ProtocolError("channels", f"channels is a non-empty list of {sorted(CHANNELS)}")
    unknown = [c for c in value if c not in CHANNELS]
    if unknown:
        raise ProtocolError("channels", f"unknown channel {unknown[0]!r}: use {sorted(CHANNELS)}")
    return frozenset(value)


def _interval(value: Any) -> str:
    if value is None:
        return STREAM_INTERVALS[0]
    if value not in STREAM_INTERVALS:
        raise ProtocolError(
            "interval", f"interval {value!r} is not streamed: use one of {list(STREAM_INTERVALS)}"
        )
    return str(value)


def _adjust(value: Any) -> str:
    if value is None:
        return "raw"
    if value not in ADJUSTMENTS:
        raise ProtocolError("adjust", f"adjust {value!r} is not one of {list(ADJUSTMENTS)}")
    return str(value)


def _cursors(body: Mapping[str, Any], symbols: tuple[str, ...]) -> dict[str, Cursor]:
    out: dict[str, Cursor] = {}
    if "since" in body or "epoch" in body:
        cursor = _cursor(body.get("since"), body.get("epoch"), "since", "epoch")
        out.update(dict.fromkeys(symbols, cursor))
    given = body.get("cursors")
    if given is not None:
        if not isinstance(given, dict):
            raise ProtocolError("cursors", 'cursors maps a symbol to {"offset": n, "epoch": "..."}')
        for symbol, c in given.items():
            key = str(symbol).upper()
            if key not in symbols:
                raise ProtocolError(
                    "cursors", f"cursor for {symbol!r}, which this message does not subscribe"
                )
            if not isinstance(c, dict):
                raise ProtocolError("cursors", f'cursors.{symbol} is {{"offset": n, "epoch": "..."}}')
            out[key] = _cursor(
                c.get("offset"), c.get("epoch"), f"cursors.{symbol}.offset", f"cursors.{symbol}.epoch"
            )
    return out


def _cursor(offset: Any, epoch: Any, offset_field: str, epoch_field: str) -> Cursor:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ProtocolError(offset_field, "a stream offset is a whole number >= 0")
    if not isinstance(epoch, str) or not epoch:
        raise ProtocolError(epoch_field, "resuming needs the epoch the offset belongs to")
    return Cursor(offset, epoch)
