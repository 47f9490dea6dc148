"""Alpaca Market Data: stock bars (1m/5m/15m/1d), snapshots as quotes, option chains.

Wire format (https://docs.alpaca.markets/reference/stockbarsingle, alpaca-py's tests):
``{"bars": [{t, o, h, l, c, v, n, vw}], "symbol": ..., "next_page_token": ...}`` with
``t`` the bar's START as RFC-3339 UTC; daily bars are stamped at midnight
America/New_York (``2022-02-01T05:00:00Z``). ``bars`` is null when there are none.
Pages are linked by ``next_page_token``, sent back as ``page_token`` with the same query.
Auth is the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` header pair.

The adapter asks for ``adjustment=raw`` and ``feed=iex`` (the free plan's feed; SIP data
of the last 15 minutes needs a paid subscription and answers 403, mapped to NotEntitled).
Not offered: 1h bars (Alpaca's ``1Hour`` bars are clock-aligned at 09:00, 10:00 ET and
include pre-market trades; MDS's 1h bars start at the 09:30 open).

Option chains (``/v1beta1/options/snapshots/{underlying}``, alpaca-py ``get_option_chain``):
``{"snapshots": {OCC symbol: {latestQuote {ap, as, ax, bp, bs, bx, c, t}, latestTrade {c, p,
s, t, x}, impliedVolatility, greeks, dailyBar {v, ...}}}, "next_page_token"}``. Contract
terms come from the OCC symbol itself; there is no open interest and no underlying price
(both None). The adapter asks for ``feed=indicative`` (the free plan's options feed).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import httpx
import orjson

from mds.domain.models import Bar, Capability, Interval, OptionQuote, OptionRight, Quote
from mds.errors import AuthError, NoData, NotEntitled, RateLimited
from mds.providers.http import HttpProvider, Page, RequestSpec, redact
from mds.providers.sessiongrid import session_grid
from mds.providers.timeconv import NEW_YORK, local_date, session_open

_TIMEFRAMES = {Interval.M1: "1Min", Interval.M5: "5Min", Interval.M15: "15Min", Interval.D1: "1Day"}
#: An OCC option symbol: root (up to 6), YYMMDD expiration, C/P, strike x 1000 in 8 digits.
_OCC = re.compile(r"(?P<root>[A-Z0-9.]{1,6})(?P<day>\d{6})(?P<right>[CP])(?P<strike>\d{8})")


def _rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_ts(text: str) -> datetime:
    """RFC-3339 (``Z`` or an offset; nanosecond fractions are cut to microseconds) → UTC."""
    return datetime.fromisoformat(text).astimezone(UTC)


class AlpacaProvider(HttpProvider):
    name = "alpaca"
    capabilities = frozenset(
        {
            Capability.BARS_1M,
            Capability.BARS_5M,
            Capability.EOD,
            Capability.QUOTES_L1,
            Capability.OPTIONS_CHAIN,
        }
    )
    default_base_url = "https://data.alpaca.markets"
    # Free ("Basic") market data plan: 200 historical API calls per minute
    # (docs.alpaca.markets/docs/about-market-data-api#subscription-plans).
    default_limits = ("200/minute",)
    key_settings = ("ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY")
    # The request asks for adjustment=raw: prices as traded.
    adjusted = False
    page_limit: ClassVar[int] = 10_000  # the documented maximum `limit`
    feed: ClassVar[str] = "iex"
    options_feed: ClassVar[str] = "indicative"  # the free plan's options feed (OPRA is paid)
    options_page_limit: ClassVar[int] = 1000  # the documented maximum for option snapshots

    def _auth(self) -> dict[str, str]:
        return {
            "APCA-API-KEY-ID": self.key("ALPACA_API_KEY_ID"),
            "APCA-API-SECRET-KEY": self.key("ALPACA_API_SECRET_KEY"),
        }

    def bars_request(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> RequestSpec:
        timeframe = _TIMEFRAMES.get(interval)
        if timeframe is None:
            raise NoData(self.name, f"{interval.value} bars are not offered", code="unsupported")
        if interval is Interval.D1:
            # Daily bars are stamped at midnight ET, before the open MDS ranges by.
            start = datetime.combine(local_date(start), datetime.min.time(), NEW_YORK)
        params = {
            "timeframe": timeframe,
            "start": _rfc3339(start),
            "end": _rfc3339(end),
            "limit": str(self.page_limit),
            "adjustment": "raw",
            "feed": self.feed,
            "sort": "asc",
        }
        return RequestSpec(f"/v2/stocks/{symbol}/bars", params, self._auth())

    def parse_bars(
        self, body: bytes, *, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> Page[Bar]:
        data = self.json_object(body)
        rows = data.get("bars") or []
        if not isinstance(rows, list):
            raise self.bad("bars is not a list")
        out: list[Bar] = []
        name, adjusted = self.name, self.adjusted
        with self.reading("bars"):
            grid = None if interval is Interval.D1 else session_grid(self.calendar, interval, start, end).get
            for r in rows:
                stamp = _parse_ts(r["t"])
                # Daily: the stamp's ET date names the session. Intraday: keep regular-hours
                # bars only (the IEX feed includes pre- and post-market bars).
                ts = (
                    session_open(local_date(stamp), self.calendar)
                    if grid is None
                    else grid(int(stamp.timestamp()))
                )
                if ts is not None:
                    o, h, low, c, v = (
                        float(r["o"]),
                        float(r["h"]),
                        float(r["l"]),
                        float(r["c"]),
                        float(r["v"]),
                    )
                    out.append(Bar(symbol, interval, ts, o, h, low, c, v, name, adjusted))
        token = data.get("next_page_token")
        if not token:
            return Page(out)
        # The same query again with the token; the request's range is recomputed from
        # the original start/end so the page sees the same parameters.
        first = self.bars_request(symbol, interval, start, end)
        return Page(out, RequestSpec(first.path, {**first.params, "page_token": str(token)}, first.headers))

    def quotes_request(self, symbols: Sequence[str]) -> list[RequestSpec]:
        # Snapshots carry the latest trade (our `last`) and the latest quote in one call.
        params = {"symbols": ",".join(symbols), "feed": self.feed}
        return [RequestSpec("/v2/stocks/snapshots", params, self._auth())]

    def parse_quotes(self, body: bytes, symbols: Sequence[str]) -> list[Quote]:
        data = self.json_object(body)
        out: list[Quote] = []
        with self.reading("snapshot"):
            for symbol in symbols:
                snap = data.get(symbol)
                if not snap:
                    continue
                trade, quote = snap.get("latestTrade") or {}, snap.get("latestQuote") or {}
                if not trade.get("p"):
                    continue
                stamp = quote.get("t") or trade["t"]
                out.append(
                    Quote(
                        symbol=symbol,
                        ts=_parse_ts(stamp),
                        bid=float(quote["bp"]) if quote.get("bp") else None,
                        ask=float(quote["ap"]) if quote.get("ap") else None,
                        last=float(trade["p"]),
                        bid_size=float(quote["bs"]) if quote.get("bs") is not None else None,
                        ask_size=float(quote["as"]) if quote.get("as") is not None else None,
                        provider=self.name,
                    )
                )
        return out

    # -- options -------------------------------------------------------------------
    def options_request(self, symbol: str, expiration: date | None, until: date | None = None) -> RequestSpec:
        params = {"feed": self.options_feed, "limit": str(self.options_page_limit)}
        if expiration is not None:
            params["expiration_date"] = expiration.isoformat()
        elif until is not None:
            params["expiration_date_lte"] = until.isoformat()
        return RequestSpec(f"/v1beta1/options/snapshots/{symbol}", params, self._auth())

    def parse_options(self, body: bytes, *, symbol: str) -> Page[OptionQuote]:
        """One page of the chain. Its ``next`` carries only ``page_token``: Alpaca wants the
        first request's query again beside it, which ``options_next`` adds."""
        data = self.json_object(body)
        snapshots = data.get("snapshots") or {}
        if not isinstance(snapshots, dict):
            raise self.bad("snapshots is not an object")
        with self.reading("option snapshots"):
            out = [self._option(symbol, contract, snap or {}) for contract, snap in snapshots.items()]
        token = data.get("next_page_token")
        nxt = (
            RequestSpec(f"/v1beta1/options/snapshots/{symbol}", {"page_token": str(token)}) if token else None
        )
        return Page(out, nxt)

    def _option(self, symbol: str, contract: str, snap: dict[str, Any]) -> OptionQuote:
        occ = _OCC.fullmatch(contract)
        if occ is None:
            raise self.bad(f"not an OCC option symbol: {contract[:40]!r}")
        quote, trade = snap.get("latestQuote") or {}, snap.get("latestTrade") or {}
        stamp = quote.get("t") or trade.get("t")
        volume = (snap.get("dailyBar") or {}).get("v")
        return OptionQuote(
            underlying=symbol,
            contract=contract,
            expiration=datetime.strptime(occ["day"], "%y%m%d").date(),
            strike=int(occ["strike"]) / 1000,
            right=OptionRight.CALL if occ["right"] == "C" else OptionRight.PUT,
            bid=_opt(quote.get("bp")),
            ask=_opt(quote.get("ap")),
            last=_opt(trade.get("p")),
            volume=_opt(volume),
            open_interest=None,  # Alpaca's snapshots carry none
            implied_volatility=_opt(snap.get("impliedVolatility")),
            ts=_parse_ts(stamp) if stamp else None,
            provider=self.name,
        )

    def options_next(self, first: RequestSpec, page: Page[OptionQuote]) -> RequestSpec | None:
        # The same query again with the token (as bars page).
        if page.next is None:
            return None
        return RequestSpec(first.path, {**first.params, **page.next.params}, first.headers)

    def check_response(self, response: httpx.Response, capability: Capability) -> None:
        status = response.status_code
        message = _message(response)
        if status == 403 and "subscription does not permit" in message:
            raise NotEntitled(self.name, message, code="403")
        if status in (401, 403):
            raise AuthError(self.name, message, code=str(status))
        if status == 429:
            raise RateLimited(self.name, message, retry_after=_retry_after(response))
        super().check_response(response, capability)


def _opt(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _retry_after(response: httpx.Response) -> float:
    """Retry-After if sent, else until X-RateLimit-Reset (epoch s), else the 1-minute window."""
    with contextlib.suppress(KeyError, ValueError):  # absent or not seconds: try the reset header
        return max(0.0, float(response.headers["retry-after"]))
    try:
        # The per-minute window resets within a minute; clamp a skewed clock's answer.
        return min(max(float(response.headers["x-ratelimit-reset"]) - time.time(), 1.0), 60.0)
    except (KeyError, ValueError):
        return 60.0


def _message(response: httpx.Response) -> str:
    try:
        text = orjson.loads(response.content).get("message", "")
    except (orjson.JSONDecodeError, AttributeError):
        text = response.text
    return redact(f"HTTP {response.status_code}: {str(text)[:200]}")


__all__ = ["AlpacaProvider"]
