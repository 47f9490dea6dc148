"""What a stream message looks like, in one place: the JSON a WebSocket client receives.

Every message is one JSON object with ``type``, ``symbol``, ``offset`` and ``epoch``. The
types a client meets: ``snapshot``, ``bar``, ``quote``, ``reset``, ``dropped``, ``error``,
``options_metrics`` and ``options_chain`` (on ``/ws/options/{symbol}``),
plus ``resumed`` (the answer to a resume, carrying the current offset even when nothing
was missed) and ``unsubscribed``. ``bar`` and ``quote`` are what the replay log keeps; the
others are made per client.
"""

from __future__ import annotations

from typing import Any

from mds.domain.models import Bar, Interval, Quote
from mds.serialize import bar_json, quote_json

BARS = "bars"
QUOTES = "quotes"
CHANNELS = frozenset({BARS, QUOTES})
#: An underlying's option stream (``options:<SYMBOL>``): metrics and changed contracts.
OPTIONS_METRICS = "metrics"
OPTIONS_CHAIN = "chain"
OPTIONS_CHANNELS = frozenset({OPTIONS_METRICS, OPTIONS_CHAIN})
_CHANNEL_OF = {
    "bar": BARS,
    "quote": QUOTES,
    "options_metrics": OPTIONS_METRICS,
    "options_chain": OPTIONS_CHAIN,
}
#: Intervals a client may stream: 1m as written, 5m rolled up from it.
STREAM_INTERVALS = (Interval.M1.value, Interval.M5.value)


def bar_message(bar: Bar) -> dict[str, Any]:
    """A ``bar`` message: the bar's fields at the top level (offset and epoch come with the log)."""
    return {"type": "bar", **bar_json(bar)}


def quote_message(quote: Quote) -> dict[str, Any]:
    return {"type": "quote", **quote_json(quote)}


def channel_of(message: dict[str, Any]) -> str | None:
    return _CHANNEL_OF.get(str(message.get("type")))


def content_key(message: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two bar or quote messages say the same thing (a snapshot and a live message)."""
    return (message.get("type"), message.get("interval"), message.get("ts"), message.get("as_of"))


def cursor_fields(symbol: str | None, offset: int | None, epoch: str | None) -> dict[str, Any]:
    return {"symbol": symbol, "offset": offset, "epoch": epoch}


def error_message(
    field: str, detail: str, *, symbol: str | None = None, offset: int | None = None, epoch: str | None = None
) -> dict[str, Any]:
    """An ``error``: which field of the client's message was wrong and why; the socket stays up."""
    return {"type": "error", **cursor_fields(symbol, offset, epoch), "field": field, "detail": detail}
