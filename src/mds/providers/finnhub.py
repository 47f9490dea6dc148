"""Finnhub: stock candles, level-1 quotes and company profiles. Key: ``FINNHUB_API_KEY``.

Wire formats (see tests/fixtures/vendors/finnhub/SOURCE.md): ``/stock/candle`` answers
parallel arrays ``{"c","h","l","o","t","v","s":"ok"}`` with ``t`` in epoch seconds, or
``{"s":"no_data"}``; ``/quote`` answers ``{"c","d","dp","h","l","o","pc","t"}``;
``/stock/profile2`` answers ``{"country","currency","estimateCurrency","exchange",
"finnhubIndustry","ipo","logo","marketCapitalization","name","phone","shareOutstanding",
"ticker","weburl"}`` with ``marketCapitalization`` and ``shareOutstanding`` in millions
(multiplied out here), or ``{}`` for a symbol it does not know.
The key goes in the ``X-Finnhub-Token`` header (documented beside the ``token`` query
parameter) so it never sits in a URL that could be logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from mds.domain.models import Bar, Capability, Interval, Quote
from mds.domain.profile import CompanyProfile
from mds.errors import AuthError, NoData, NotEntitled, RateLimited
from mds.providers import timeconv
from mds.providers.http import HttpProvider, Page, RequestSpec, profile_text, redact, retry_after

_RESOLUTIONS = {
    Interval.M1: "1",
    Interval.M5: "5",
    Interval.M15: "15",
    Interval.H1: "60",
    Interval.D1: "D",
}


class FinnhubProvider(HttpProvider):
    """Finnhub's REST API v1."""

    name = "finnhub"
    capabilities = frozenset(
        {
            Capability.BARS_1M,
            Capability.BARS_5M,
            Capability.EOD,
            Capability.QUOTES_L1,
            Capability.PROFILE,
        }
    )
    default_base_url = "https://finnhub.io"
    # https://finnhub.io/docs/api/rate-limit: free plan 60 calls/minute, and 30 calls/second
    # on top of every plan's limit; beyond either Finnhub answers 429.
    default_limits = ("60/minute", "30/second")
    key_settings = ("FINNHUB_API_KEY",)
    # Candles are asked for with adjusted=false (raw prices), the documented default.
    adjusted = False

    def _auth(self) -> dict[str, str]:
        return {"X-Finnhub-Token": self.key("FINNHUB_API_KEY")}

    # -- bars ----------------------------------------------------------------------
    def bars_request(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> RequestSpec:
        resolution = _RESOLUTIONS.get(interval)
        if resolution is None:
            raise NoData(self.name, f"{interval.value} bars are not offered", code="unsupported")
        # Finnhub selects candles by their own stamp, and stamps a day at 00:00 UTC, before
        # the open we keep as ts: ask daily from that midnight. `to` is inclusive; the base
        # trims to start <= ts < end afterwards.
        if interval is Interval.D1:
            start = datetime.combine(timeconv.local_date(start), time(), UTC)
        return RequestSpec(
            "/api/v1/stock/candle",
            {
                "symbol": symbol,
                "resolution": resolution,
                "from": str(int(start.timestamp())),
                "to": str(int(end.timestamp())),
                "adjusted": "false",
            },
            self._auth(),
        )

    def parse_bars(
        self, body: bytes, *, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> Page[Bar]:
        with self.reading("candles"):
            doc = self.json_object(body)
            status = doc.get("s")
            if status == "no_data":
                raise NoData(self.name, f"{symbol}: no_data for {interval.value}", code="no_data")
            if status != "ok":
                raise self.bad(f"candle status {status!r}")
            found = [doc.get(k) for k in ("t", "o", "h", "l", "c", "v")]
            columns = [col for col in found if isinstance(col, list)]
            if len(columns) != len(found) or len({len(c) for c in columns}) != 1:
                raise self.bad("candle arrays missing or of different lengths")
            bars: list[Bar] = []
            for t, o, h, low, c, v in zip(*columns, strict=True):
                if None in (t, o, h, low, c, v):
                    raise self.bad(f"{symbol} candle at {t}: null in {(o, h, low, c, v)}")
                ts = self._bar_time(t, interval)
                if ts is not None:
                    bars.append(self.bar(symbol, interval, ts, o, h, low, c, v))
            return Page(bars)

    def _bar_time(self, t: Any, interval: Interval) -> datetime | None:
        if not isinstance(t, int | float):
            raise self.bad(f"candle time {t!r} is not epoch seconds")
        ts = timeconv.from_epoch(t)
        if interval is not Interval.D1:
            return ts
        # Daily candles have been stamped at 00:00 UTC of the session date, and earlier at
        # the 09:30 ET open (Finnhub-API issues #449, #151). The UTC date is the session
        # date under both (and under midnight ET); the NY date of 00:00Z is the day before.
        # A date without a session is skipped.
        return timeconv.session_open(ts.date(), self.calendar)

    # -- quotes --------------------------------------------------------------------
    def quotes_request(self, symbols: Sequence[str]) -> list[RequestSpec]:
        return [RequestSpec("/api/v1/quote", {"symbol": s}, self._auth()) for s in symbols]

    async def fetch_quotes(self, symbols: Sequence[str]) -> list[Quote]:
        # One call per symbol, and the body does not name its symbol: pair each body with
        # the symbol its request asked for (the base passes all symbols to parse_quotes).
        out: list[Quote] = []
        for symbol, spec in zip(symbols, self.quotes_request(symbols), strict=True):
            body = await self.get(spec, Capability.QUOTES_L1)
            out.extend(self.parse_quotes(body, [symbol]))
        return out

    def parse_quotes(self, body: bytes, symbols: Sequence[str]) -> list[Quote]:
        doc = self.json_object(body)
        if len(symbols) != 1:
            raise ValueError("a Finnhub quote body answers exactly one symbol")
        with self.reading("quote"):
            last, at = doc.get("c"), doc.get("t")
            if not isinstance(last, int | float) or not isinstance(at, int | float):
                raise self.bad(f"quote without c/t: {body[:80]!r}")
            if at == 0 or last == 0:
                return []  # Finnhub's answer for an unknown symbol: all zeros, t=0
            # /quote carries no bid/ask; the last trade price and its time are all there is.
            return [
                Quote(
                    symbol=symbols[0],
                    ts=timeconv.from_epoch(at),
                    bid=None,
                    ask=None,
                    last=float(last),
                    provider=self.name,
                )
            ]

    # -- profiles ------------------------------------------------------------------
    def profile_request(self, symbol: str) -> RequestSpec:
        return RequestSpec("/api/v1/stock/profile2", {"symbol": symbol}, self._auth())

    def parse_profile(self, body: bytes, *, symbol: str) -> CompanyProfile:
        doc = self.json_object(body)
        if not doc:
            raise NoData(self.name, f"no profile for {symbol}", code="empty")
        return CompanyProfile(
            symbol=str(doc["ticker"]),
            provider=self.name,
            market_cap=self.profile_figure(doc, "marketCapitalization", scale=1e6),
            shares_outstanding=self.profile_figure(doc, "shareOutstanding", scale=1e6),
            currency=profile_text(doc.get("currency")),
            name=profile_text(doc.get("name")),
            industry=profile_text(doc.get("finnhubIndustry")),
            exchange=profile_text(doc.get("exchange")),
        )

    # -- errors --------------------------------------------------------------------
    def check_response(self, response: httpx.Response, capability: Capability) -> None:
        status = response.status_code
        if status == 429:
            raise RateLimited(self.name, _message(response), retry_after=_retry_after(response), code="429")
        if status == 403 and "access to this resource" in _message(response):
            # Candles are outside the free plan: not a fault of the provider, and not
            # retryable with this key.
            raise NotEntitled(self.name, _message(response), code="403")
        if status in (401, 403):
            raise AuthError(self.name, _message(response), code=str(status))
        super().check_response(response, capability)


def _message(response: httpx.Response) -> str:
    """Finnhub's ``{"error": "..."}`` text (never the URL: it may carry a token)."""
    try:
        doc = orjson.loads(response.content)
        text = doc.get("error") if isinstance(doc, dict) else None
    except orjson.JSONDecodeError:
        text = None
    return redact(f"HTTP {response.status_code}: {text or response.text[:120]}")


def _retry_after(response: httpx.Response) -> float:
    """Retry-After if sent; else X-Ratelimit-Reset (epoch s) less the response's Date."""
    if "retry-after" in response.headers:
        return retry_after(response)
    try:
        reset = float(response.headers["x-ratelimit-reset"])
        now = parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return 60.0  # the free limit is per minute; a minute always clears it
    return min(60.0, max(1.0, reset - now))
