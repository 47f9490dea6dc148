"""``Client`` (blocking) and ``AsyncClient``: MDS over HTTP, answers as DataFrames.

Both are one class of methods, :class:`_Endpoints`, written once: each method builds a
:class:`~mds.client.calls.Call` and hands it to ``_send``, which the sync client runs with
an ``httpx.Client`` and the async client with an ``httpx.AsyncClient``. So ``Client.history``
returns a frame and ``AsyncClient.history`` an awaitable of the same frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Iterable
from typing import Any, Generic, TypeVar

import httpx
import orjson

from mds.client import calls
from mds.client.calls import Adjust, Call, TimeLike
from mds.client.errors import problem_error
from mds.client.frames import Frame, FrameKind

R = TypeVar("R")

DEFAULT_TIMEOUT = 30.0


def auth_headers(api_key: str | None) -> dict[str, str]:
    # Bearer rather than X-API-Key (the server takes both): httpx masks an Authorization
    # header when a request or client is printed, so the key does not end up in a log.
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def decode(call: Call, response: httpx.Response) -> Frame:
    """The frame of a 2xx answer; raises the typed error of a 4xx/5xx one."""
    if response.status_code >= 400:
        raise problem_error(response.status_code, response.headers, response.content)
    return call.decode(orjson.loads(response.content))


class _Endpoints(ABC, Generic[R]):
    """Every endpoint, once; ``R`` is a frame (sync) or an awaitable of one (async)."""

    base_url: str

    @abstractmethod
    def _send(self, call: Call) -> R: ...

    def history(
        self,
        symbol: str,
        period: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        interval: str = "1d",
        adjust: Adjust | None = "raw",
        as_of: TimeLike | None = None,
        date: TimeLike | None = None,
        *,
        frame: FrameKind = "pandas",
    ) -> R:
        """Bars of ``symbol``: index ``ts`` (UTC), columns open, high, low, close, volume,
        provider, status, as_of, adjusted; the answer's range and adjustment in ``attrs``.

        Args:
            period: ``5d``, ``1mo``, ``1y``, ``ytd``, ``max`` ... ending now (server default 1mo).
            start, end: A range instead of a period (``start <= ts < end``).
            interval: ``1d``, or ``1m``/``5m``/``15m``/``1h`` (then at most the last 31 days).
            adjust: ``raw`` (as stored), ``split`` or ``all`` (splits and dividends).
            as_of: Knowledge time: only what MDS knew then.
            date: Event time: only bars whose session is on or before this day.
        """
        return self._send(
            calls.history(
                symbol,
                period=period,
                start=start,
                end=end,
                interval=interval,
                adjust=adjust,
                as_of=as_of,
                date=date,
                frame=frame,
            )
        )

    def intraday(
        self,
        symbol: str,
        interval: str = "1m",
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        as_of: TimeLike | None = None,
        adjust: Adjust | None = "raw",
        *,
        frame: FrameKind = "pandas",
    ) -> R:
        """Intraday bars in ``start <= ts < end`` (default: the latest session up to now)."""
        return self._send(
            calls.intraday(
                symbol, interval=interval, start=start, end=end, as_of=as_of, adjust=adjust, frame=frame
            )
        )

    def ta(
        self,
        symbol: str,
        date: TimeLike | None = None,
        as_of: TimeLike | None = None,
        *,
        frame: FrameKind = "pandas",
    ) -> R:
        """The technical snapshot (RSI, MAs, MACD, ADX, performance ...) as one row indexed by
        ``symbol``; ``attrs["reasons"]`` says why a field is null.

        Args:
            date: Event time: computed on the bars up to this session.
            as_of: Knowledge time: a date (end of that day) or an aware datetime.

        The series is adjusted as the server's ANALYSIS_ADJUST setting says (split by default).
        """
        return self._send(calls.ta(symbol, date=date, as_of=as_of, frame=frame))

    def coverage(self, symbol: str | None = None, *, frame: FrameKind = "pandas") -> R:
        """Without ``symbol``: the tracked set, one row per symbol with its ``last`` daily bar
        (SLA, freshness buckets in ``attrs``). With it: the symbol's runs of missing daily bars
        indexed by ``start`` (its freshness in ``attrs``)."""
        return self._send(calls.coverage(symbol, frame=frame))

    def macro(
        self,
        factor: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        as_of: TimeLike | None = None,
        *,
        frame: FrameKind = "pandas",
    ) -> R:
        """Without ``factor``: every factor's latest value, indexed by ``factor_key``. With it:
        its observations dated ``start..end`` (inclusive) as published on ``as_of``, indexed by
        ``date``."""
        return self._send(calls.macro(factor, start=start, end=end, as_of=as_of, frame=frame))

    def options_chain(
        self,
        symbol: str,
        expiration: TimeLike | None = None,
        max_days: int | None = None,
        *,
        frame: FrameKind = "pandas",
    ) -> R:
        """The priced option chain indexed by OCC ``contract``: one ``expiration``, or every one
        up to ``max_days`` out; spot, rate and expirations in ``attrs``."""
        return self._send(calls.options_chain(symbol, expiration=expiration, max_days=max_days, frame=frame))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"


class Client(_Endpoints[Frame]):
    """A blocking MDS client: ``Client("http://127.0.0.1:8001", api_key=...)``.

    Use it as a context manager, or call :meth:`close`. ``transport`` is handed to httpx
    (a test passes a mock one).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=auth_headers(api_key), timeout=timeout, transport=transport
        )

    def _send(self, call: Call) -> Frame:
        return decode(call, self._http.get(call.path, params=dict(call.params)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Endpoints[Awaitable[Frame]]):
    """The asyncio MDS client: every method returns an awaitable; :meth:`stream` follows
    bars and quotes over the WebSocket. ``async with AsyncClient(url) as mds: ...``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=auth_headers(api_key), timeout=timeout, transport=transport
        )

    async def _send(self, call: Call) -> Frame:
        return decode(call, await self._http.get(call.path, params=dict(call.params)))

    def stream(
        self,
        symbols: str | Iterable[str],
        *,
        channels: Iterable[str] | None = None,
        interval: str = "1m",
        retries: int | None = None,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Follow ``symbols`` over ``WS /ws``: every message as a dict (``snapshot``, ``bar``,
        ``quote``, ``resumed``, ``reset``, ``error`` ...), resuming after a dropped connection
        from the last offset seen, so no bar or quote is lost or repeated.

        Args:
            channels: ``bars``, ``quotes`` (default both).
            interval: ``1m`` or ``5m`` bars.
            retries: Reconnects in a row before giving up (None: keep trying); a connection
                that delivered a message resets the count.
            backoff, max_backoff: Seconds before the first reconnect, doubling up to the max.
        """
        from mds.client.stream import follow

        return follow(
            self.base_url,
            self._api_key,
            [symbols] if isinstance(symbols, str) else list(symbols),
            channels=None if channels is None else list(channels),
            interval=interval,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
