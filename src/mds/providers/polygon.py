"""Polygon.io: aggregates (1m/5m/15m/1d), stock snapshots as quotes, option chain snapshots,
corporate actions and company profiles (ticker details).

Wire format (https://polygon.io/docs/stocks/get_v2_aggs_ticker__stocksticker__range__multiplier___timespan___from___to):
``results[]`` of ``{t, o, h, l, c, v, vw, n}`` where ``t`` is the bar's START in epoch
milliseconds (a daily bar is stamped at midnight America/New_York). Long ranges are
paged by ``next_url``, an absolute URL that needs the key again; the adapter keeps its
path and query and sends them to the configured base URL, so a test server or proxy
sees every page. Auth is ``Authorization: Bearer <key>`` (the documented alternative to
``?apiKey=``), which keeps the key out of URLs and logs.

Option chains: ``/v3/snapshot/options/{underlying}`` (``limit`` 250, paged by ``next_url``
like the aggregates), ``O:``-prefixed OCC tickers, times in epoch nanoseconds, and the
underlying's price beside each contract (``underlying_asset.price``).

Corporate actions: ``/v3/reference/splits`` (``execution_date``, ``split_from`` →
``split_to``: ratio = split_to / split_from) and ``/v3/reference/dividends``
(``ex_dividend_date``, ``cash_amount`` in ``currency``, ``declaration_date``,
``record_date``, ``pay_date``, ``dividend_type``), each filtered by date on the server,
``limit`` 1000 (the documented maximum) and paged by ``next_url`` like the aggregates.
Every ``dividend_type`` Polygon lists is cash paid per share and lowers the price on the
ex-date, so all are kept: ``CD`` (regular), ``SC`` (special cash), ``LT``/``ST`` (a fund's
long/short-term capital gain distribution); CRSP adjusts for every cash distribution
alike. Stock dividends are not in this endpoint (they come as splits). A row whose
``cash_amount`` is 0 changes no price and is skipped; one without an amount is a bad
payload. Polygon's amounts are as declared, in the share basis of their own date.

Company profiles: Ticker Details v3, ``/v3/reference/tickers/{ticker}`` →
``{"request_id", "results": {"ticker", "name", "market", "locale", "primary_exchange" (a MIC),
"type", "active", "currency_name" ("usd"), "market_cap" (whole currency units),
"sic_description", "share_class_shares_outstanding", "weighted_shares_outstanding", ...},
"status": "OK"}``. A fund (``type`` ``ETF``) has no ``market_cap`` and no weighted share
count; an unknown ticker is HTTP 404 ``{"status": "NOT_FOUND", "message": "Ticker not
found."}``, which the base's status handling makes NoData.

Not offered: 1h bars. Polygon's hour bars are clock-aligned (09:00, 10:00 ET) and
contain pre-market minutes, while MDS's 1h bars start at the session open (09:30).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import httpx
import msgspec
import orjson

from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Bar, BarStatus, Capability, Interval, OptionQuote, OptionRight, Quote
from mds.domain.profile import CompanyProfile
from mds.errors import NoData, NotEntitled, RateLimited
from mds.providers._gc import gc_paused
from mds.providers.http import (
    HttpProvider,
    Page,
    RequestSpec,
    optional_date,
    profile_text,
    redact,
    retry_after,
)
from mds.providers.sessiongrid import session_grid
from mds.providers.timeconv import from_epoch, local_date, session_open

#: interval → (multiplier, timespan) path segments.
_SPANS = {
    Interval.M1: ("1", "minute"),
    Interval.M5: ("5", "minute"),
    Interval.M15: ("15", "minute"),
    Interval.D1: ("1", "day"),
}


class _Agg(msgspec.Struct, gc=False):
    """One aggregate as Polygon sends it (t: bar start, epoch ms)."""

    t: int
    o: float
    h: float
    l: float  # noqa: E741 - Polygon's field name
    c: float
    v: float


class _Aggs(msgspec.Struct):
    status: str | None = None
    results: list[_Agg] | None = None
    next_url: str | None = None


_AGGS = msgspec.json.Decoder(_Aggs)
SPLITS = "/v3/reference/splits"
DIVIDENDS = "/v3/reference/dividends"
TICKER_DETAILS = "/v3/reference/tickers"
#: The strike of an option row that has none: no listed contract has it, so the pricing
#: layer drops and counts such contracts instead of pricing them.
MISSING_STRIKE = 0.0


class PolygonProvider(HttpProvider):
    name = "polygon"
    capabilities = frozenset(
        {
            Capability.BARS_1M,
            Capability.BARS_5M,
            Capability.EOD,
            Capability.QUOTES_L1,
            Capability.OPTIONS_CHAIN,
            Capability.CORPORATE_ACTIONS,
            Capability.PROFILE,
        }
    )
    default_base_url = "https://api.polygon.io"
    # Free ("Basic") plan: 5 API calls per minute (polygon.io/pricing; the client-python
    # README repeats it: "a free API key ... supports up to 5 API calls per minute").
    default_limits = ("5/minute",)
    key_settings = ("POLYGON_API_KEY",)
    # The request asks for adjusted=false: raw prices as traded (DESIGN: store raw).
    adjusted = False
    page_limit: ClassVar[int] = 50_000  # Polygon's documented maximum `limit`
    quote_batch: ClassVar[int] = 250  # tickers per snapshot request (keeps URLs short)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key('POLYGON_API_KEY')}"}

    # -- bars ----------------------------------------------------------------------
    def bars_request(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> RequestSpec:
        span = _SPANS.get(interval)
        if span is None:
            raise NoData(self.name, f"{interval.value} bars are not offered", code="unsupported")
        if interval is Interval.D1:
            # Daily bars are stamped at midnight ET, before the session open that MDS
            # ranges by, so ask by exchange-local date; fetch_bars trims to [start, end).
            lo, hi = local_date(start).isoformat(), local_date(end - timedelta(microseconds=1)).isoformat()
        else:
            # Millisecond bounds are inclusive on both ends.
            lo = str(int(start.timestamp() * 1000))
            hi = str(int(end.timestamp() * 1000) - 1)
        multiplier, timespan = span
        return RequestSpec(
            path=f"/v2/aggs/ticker/{symbol}/range/{multiplier}/{timespan}/{lo}/{hi}",
            params={"adjusted": "false", "sort": "asc", "limit": str(self.page_limit)},
            headers=self._auth(),
        )

    def parse_bars(
        self, body: bytes, *, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> Page[Bar]:
        # Typed decoding (msgspec) validates every field while it parses: a null, a string
        # or a missing "o" is a BadPayload, and no per-bar dict is ever built.
        with gc_paused(), self.reading("aggregates"):
            return self._parse_aggs(body, symbol=symbol, interval=interval, start=start, end=end)

    def _parse_aggs(
        self, body: bytes, *, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> Page[Bar]:
        try:
            data = _AGGS.decode(body)
        except msgspec.DecodeError as exc:
            raise self.bad(f"malformed aggregates: {exc}") from None
        results = data.results or []
        if data.status not in ("OK", "DELAYED") and not results:
            raise self.bad(f"status {data.status!r} without results")
        name, adjusted = self.name, self.adjusted
        if interval is Interval.D1:
            out = []
            for r in results:
                ts = session_open(local_date(from_epoch(r.t, "ms")), self.calendar)
                if ts is not None:  # a date without a session is not a trading day's bar
                    out.append(Bar(symbol, interval, ts, r.o, r.h, r.l, r.c, r.v, name, adjusted))
        else:
            # One dict lookup per bar both drops pre/post-market bars and yields the
            # canonical UTC datetime (hot path: ~98k bars for a year of 1m).
            grid = session_grid(self.calendar, interval, start, end, scale=1000).get
            # tuple.__new__ skips the NamedTuple's Python-level __new__ (a third of the cost).
            new, final = tuple.__new__, BarStatus.FINAL
            out = [
                new(Bar, (symbol, interval, ts, r.o, r.h, r.l, r.c, r.v, name, adjusted, final, None))
                for r in results
                if (ts := grid(r.t)) is not None
            ]
        return Page(out, self._next({"next_url": data.next_url}))

    def _next(self, data: dict[str, Any]) -> RequestSpec | None:
        next_url = data.get("next_url")
        if not next_url:
            return None
        # Keep path and query (the cursor); the host is ours to choose, the key is not in it.
        parts = urlsplit(str(next_url))
        params = {k: v for k, v in parse_qsl(parts.query) if k.lower() != "apikey"}
        return RequestSpec(path=parts.path, params=params, headers=self._auth())

    # -- quotes --------------------------------------------------------------------
    def quotes_request(self, symbols: Sequence[str]) -> list[RequestSpec]:
        path = "/v2/snapshot/locale/us/markets/stocks/tickers"
        return [
            RequestSpec(path, {"tickers": ",".join(symbols[i : i + self.quote_batch])}, self._auth())
            for i in range(0, len(symbols), self.quote_batch)
        ]

    def parse_quotes(self, body: bytes, symbols: Sequence[str]) -> list[Quote]:
        data = self.json_object(body)
        wanted = set(symbols)
        out: list[Quote] = []
        with self.reading("snapshot"):
            for snap in data.get("tickers") or []:
                if snap["ticker"] not in wanted:
                    continue
                quote, trade = snap.get("lastQuote") or {}, snap.get("lastTrade") or {}
                # The last trade, else the session's close so far, else the previous close.
                last = (
                    trade.get("p") or (snap.get("day") or {}).get("c") or (snap.get("prevDay") or {}).get("c")
                )
                stamp = quote.get("t") or trade.get("t") or snap.get("updated")
                if not last or not stamp:
                    continue
                out.append(
                    Quote(
                        symbol=snap["ticker"],
                        ts=_from_ns(stamp),
                        bid=float(quote["p"]) if quote.get("p") else None,
                        ask=float(quote["P"]) if quote.get("P") else None,
                        last=float(last),
                        bid_size=float(quote["s"]) if quote.get("s") is not None else None,
                        ask_size=float(quote["S"]) if quote.get("S") is not None else None,
                        provider=self.name,
                    )
                )
        return out

    # -- options -------------------------------------------------------------------
    def options_request(self, symbol: str, expiration: date | None, until: date | None = None) -> RequestSpec:
        params = {"limit": "250"}  # the documented maximum page size
        if expiration is not None:
            params["expiration_date"] = expiration.isoformat()
        elif until is not None:
            # The snapshot filters by range itself, so a horizon costs no extra pages.
            params["expiration_date.lte"] = until.isoformat()
        return RequestSpec(f"/v3/snapshot/options/{symbol}", params, self._auth())

    def parse_options(self, body: bytes, *, symbol: str) -> Page[OptionQuote]:
        """One page of the chain snapshot; the next page is its ``next_url`` on our host.

        Times are epoch NANOseconds (``last_quote.last_updated``, ``last_trade.sip_timestamp``).
        A row without a strike is kept with strike 0.0 (no listed contract has it): the
        pricing layer drops such contracts and counts them, so they are never stored.
        """
        data = self.json_object(body)
        out: list[OptionQuote] = []
        with self.reading("option snapshot"):
            for r in data.get("results") or []:
                d, q = r["details"], r.get("last_quote") or {}
                trade, day = r.get("last_trade") or {}, r.get("day") or {}
                stamp = q.get("last_updated") or trade.get("sip_timestamp")
                strike, price = d.get("strike_price"), trade.get("price")
                out.append(
                    OptionQuote(
                        underlying=symbol,
                        contract=str(d["ticker"]).removeprefix("O:"),
                        expiration=date.fromisoformat(d["expiration_date"]),
                        strike=MISSING_STRIKE if strike is None else float(strike),
                        right=OptionRight(d["contract_type"]),
                        bid=_opt(q.get("bid")),
                        ask=_opt(q.get("ask")),
                        # The last trade; without one in the snapshot, the session's close.
                        last=_opt(price if price is not None else day.get("close")),
                        volume=_opt(day.get("volume")),
                        open_interest=_opt(r.get("open_interest")),
                        implied_volatility=_opt(r.get("implied_volatility")),
                        ts=_from_ns(stamp) if stamp else None,
                        provider=self.name,
                        underlying_price=_opt((r.get("underlying_asset") or {}).get("price")),
                    )
                )
        return Page(out, self._next(data))

    # -- corporate actions -----------------------------------------------------------
    def actions_requests(self, symbol: str, start: date, end: date) -> list[RequestSpec]:
        lo, hi = start.isoformat(), end.isoformat()
        return [
            RequestSpec(
                SPLITS,
                {"ticker": symbol, "execution_date.gte": lo, "execution_date.lte": hi, "limit": "1000"},
                self._auth(),
            ),
            RequestSpec(
                DIVIDENDS,
                {"ticker": symbol, "ex_dividend_date.gte": lo, "ex_dividend_date.lte": hi, "limit": "1000"},
                self._auth(),
            ),
        ]

    def parse_actions(self, body: bytes, *, symbol: str, spec: RequestSpec) -> Page[CorporateAction]:
        data = self.json_object(body)
        split = spec.path == SPLITS  # next_url pages keep the path
        out: list[CorporateAction] = []
        with self.reading("splits" if split else "dividends"):
            results = data.get("results") or []
            if not isinstance(results, list):
                raise self.bad("results is not a list")
            for r in results:
                if r.get("ticker", symbol) != symbol:
                    raise self.bad(f"action for {r.get('ticker')!r}, asked {symbol}")
                if split:
                    out.append(
                        CorporateAction(
                            symbol,
                            ActionType.SPLIT,
                            date.fromisoformat(r["execution_date"]),
                            ratio=float(r["split_to"]) / float(r["split_from"]),
                            source=self.name,
                        )
                    )
                    continue
                amount = float(r["cash_amount"])
                if amount == 0:
                    continue  # declared as nothing: no price moves
                out.append(
                    CorporateAction(
                        symbol,
                        ActionType.DIVIDEND,
                        date.fromisoformat(r["ex_dividend_date"]),
                        amount=amount,
                        currency=r.get("currency") or None,
                        declared_date=optional_date(r.get("declaration_date")),
                        record_date=optional_date(r.get("record_date")),
                        pay_date=optional_date(r.get("pay_date")),
                        source=self.name,
                    )
                )
        return Page(out, self._next(data))

    # -- profiles --------------------------------------------------------------------
    def profile_request(self, symbol: str) -> RequestSpec:
        return RequestSpec(f"{TICKER_DETAILS}/{symbol}", {}, self._auth())

    def parse_profile(self, body: bytes, *, symbol: str) -> CompanyProfile:
        row = self.json_object(body).get("results")
        if row is None:  # an unknown ticker is a 404 (NoData by its status); this is a 200
            raise NoData(self.name, f"no ticker details for {symbol}", code="empty")
        if not isinstance(row, dict):
            raise self.bad(f"results is a {type(row).__name__}, expected an object")
        return CompanyProfile(
            symbol=str(row["ticker"]),
            provider=self.name,
            market_cap=self.profile_figure(row, "market_cap"),
            # Polygon's market_cap is the last close times weighted_shares_outstanding (all
            # share classes in this class's units), so that is the count consistent with the
            # cap; share_class_shares_outstanding counts this class alone.
            shares_outstanding=self.profile_figure(row, "weighted_shares_outstanding"),
            currency=profile_text(row.get("currency_name")).upper(),
            name=profile_text(row.get("name")),
            industry=profile_text(row.get("sic_description")),  # Polygon has no sector
            exchange=profile_text(row.get("primary_exchange")),
        )

    # -- failures ------------------------------------------------------------------
    def check_response(self, response: httpx.Response, capability: Capability) -> None:
        status = response.status_code
        if status == 403 and b"NOT_AUTHORIZED" in response.content:
            # {"status":"NOT_AUTHORIZED","message":"You are not entitled to this data. Please
            # upgrade your plan ..."}: a valid key on a plan without this endpoint or range.
            raise NotEntitled(self.name, _message(response), code="403")
        if status == 429:
            # Free keys are limited per minute; without a Retry-After wait out the window.
            raise RateLimited(self.name, _message(response), retry_after=retry_after(response, 60.0))
        super().check_response(response, capability)


def _from_ns(ns: int) -> datetime:
    """Epoch nanoseconds → UTC, cut to microseconds exactly (a float would round them)."""
    ns = int(ns)
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=ns // 1000 % 1_000_000)


def _opt(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _message(response: httpx.Response) -> str:
    try:
        data = orjson.loads(response.content)
        text = data.get("message") or data.get("error") or data.get("status") or ""
    except (orjson.JSONDecodeError, AttributeError):
        text = response.text
    return redact(f"HTTP {response.status_code}: {str(text)[:200]}")


__all__ = ["PolygonProvider"]
