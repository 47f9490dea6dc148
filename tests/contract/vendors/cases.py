"""The vendor table of the shared contract suite: one ``VendorCase`` per HTTP adapter.

Each case names the adapter and gives, as fixture bytes and expected bars, what every
vendor must get right: the first EDT and last EST sessions of 2025 (09:30 ET is 13:30Z,
then 14:30Z), the 2025-11-28 early close (13:00 ET, 18:00Z), daily stamps that become
the session's open, an empty answer, bodies to refuse, and the error answers that map to
each typed ``ProviderError``. ``test_contract.py`` runs the same tests over every row;
what only one vendor does stays in that vendor's ``test_<name>.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mds.domain.models import Interval
from mds.errors import AuthError, NoData, NotEntitled, ProviderError, RateLimited, Unavailable
from mds.providers.alpaca import AlpacaProvider
from mds.providers.alphavantage import AlphaVantageProvider
from mds.providers.finnhub import FinnhubProvider
from mds.providers.fmp import FmpProvider
from mds.providers.http import HttpProvider
from mds.providers.polygon import PolygonProvider
from mds.providers.stooq import StooqProvider
from mds.providers.tiingo import TiingoProvider
from mds.providers.twelvedata import TwelveDataProvider
from mds.providers.yahoo import YahooProvider
from tests.contract.vendors.harness import fixture
from tests.helpers import utc

Values = tuple[float, float, float, float, float]

#: Bodies no vendor may turn into bars.
GARBAGE = (b"", b"<html><body>502 Bad Gateway</body></html>", b"\xff\xfe\x00garbage")


@dataclass(frozen=True)
class Bars:
    """A fixture body for ``interval`` bars over ``[start, end)`` and the bars it must give.

    ``ts`` is every bar's open time in order; ``values`` gives (o, h, l, c, v) of the bars
    at those indexes.
    """

    fixture: str
    interval: Interval
    start: datetime
    end: datetime
    ts: tuple[datetime, ...] = ()
    values: dict[int, Values] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """An error answer (or a 200 that means one) and the typed error it must raise."""

    status: int
    body: bytes
    error: type[ProviderError]
    headers: dict[str, str] = field(default_factory=dict)
    #: The RateLimited.retry_after expected, when the answer fixes one.
    retry_after: float | None = None
    code: str | None = None


@dataclass(frozen=True)
class VendorCase:
    cls: type[HttpProvider]
    #: Adjusted prices? (Stooq offers only adjusted history; the others are asked for raw.)
    adjusted: bool
    first_edt: Bars
    last_est: Bars
    early_close: Bars
    daily: Bars
    #: An answer with nothing in the range: its bars must be [], or NoData be raised.
    empty: Bars
    empty_is_no_data: bool
    high_below_low: str
    #: Vendor-shaped bodies to refuse, beside GARBAGE.
    malformed: tuple[bytes, ...]
    #: Every vendor has a 401, 403, 429 and 5xx among these.
    answers: tuple[Answer, ...]
    #: An interval the vendor does not offer (refused before any request), if any.
    unsupported: Interval | None = None

    def __repr__(self) -> str:
        return f"VendorCase({self.name})"

    @property
    def name(self) -> str:
        return self.cls.name

    def body(self, name: str) -> bytes:
        return fixture(self.name, name)

    @property
    def sessions(self) -> dict[str, Bars]:
        return {
            "first-edt": self.first_edt,
            "last-est": self.last_est,
            "early-close": self.early_close,
            "daily": self.daily,
        }


def _m1(day: str, fixture_name: str, *ts: str, values: dict[int, Values] | None = None) -> Bars:
    """1m bars asked for over the UTC day ``day`` (a whole session and the nights around it)."""
    start = utc(f"{day}T00:00:00")
    return Bars(
        fixture_name, Interval.M1, start, start + timedelta(days=1), tuple(map(utc, ts)), values or {}
    )


def _span(
    fixture_name: str,
    interval: Interval,
    start: str,
    end: str,
    *ts: str,
    values: dict[int, Values] | None = None,
) -> Bars:
    return Bars(fixture_name, interval, utc(start), utc(end), tuple(map(utc, ts)), values or {})


#: Dates as fixtures spell them.
EDT_0930, EDT_0931 = "2025-03-10T13:30:00", "2025-03-10T13:31:00"
EST_0930, EST_0931 = "2025-03-07T14:30:00", "2025-03-07T14:31:00"
CLOSE_1258, CLOSE_1259 = "2025-11-28T17:58:00", "2025-11-28T17:59:00"
DAILY_3_6, DAILY_3_7, DAILY_3_10 = "2025-03-06T14:30:00", "2025-03-07T14:30:00", "2025-03-10T13:30:00"
AAPL_DAILY: dict[int, Values] = {
    0: (234.44, 237.06, 233.32, 235.33, 45170400),
    1: (235.11, 241.37, 234.76, 239.07, 46273600),
    2: (235.54, 236.16, 224.22, 227.48, 72071200),
}
AAPL_EDT_0930: Values = (235.54, 236.16, 234.62, 234.88, 1802355)
AAPL_EDT_0931: Values = (234.87, 235.0, 234.13, 234.25, 452183)
IBM_EDT_0930: Values = (235.54, 236.16, 234.98, 235.51, 1934511.0)

_5XX = Answer(503, b'{"error":"Service Unavailable"}', Unavailable, code="503")
_403 = Answer(403, b'{"message":"forbidden"}', AuthError, code="403")
_401 = Answer(401, b'{"message":"unauthorized"}', AuthError, code="401")
_429 = Answer(429, b"Too Many Requests", RateLimited, headers={"Retry-After": "7"}, retry_after=7.0)


def _answer(
    vendor: str,
    name: str,
    status: int,
    error: type[ProviderError],
    *,
    headers: dict[str, str] | None = None,
    retry_after: float | None = None,
) -> Answer:
    return Answer(status, fixture(vendor, name), error, headers or {}, retry_after)


CASES: tuple[VendorCase, ...] = (
    VendorCase(
        YahooProvider,
        adjusted=False,
        first_edt=_m1(
            "2025-03-10",
            "chart_1m_2025-03-10.json",
            EDT_0930,
            EDT_0931,
            "2025-03-10T13:33:00",  # 13:32 is a row of nulls: no trades, no bar
            values={
                0: (235.5399932861328, 236.16000366210938, 234.6199951171875, 234.8800048828125, 1802355)
            },
        ),
        last_est=_m1(
            "2025-03-07",
            "chart_1m_2025-03-07.json",
            EST_0930,
            EST_0931,
            values={
                0: (235.10000610351562, 236.1999969482422, 234.8000030517578, 236.0, 1520784),
                1: (236.0, 236.4199981689453, 235.5, 236.22999572753906, 390411),
            },
        ),
        early_close=_m1("2025-11-28", "chart_1m_2025-11-28.json", CLOSE_1258, CLOSE_1259),
        daily=_span(
            "chart_1d.json",
            Interval.D1,
            "2025-03-06T00:00:00",
            "2025-03-11T00:00:00",
            DAILY_3_6,
            DAILY_3_7,
            DAILY_3_10,
            # The raw quote arrays, not adjclose.
            values={
                2: (235.5399932861328, 236.16000366210938, 224.22000122070312, 227.47999572753906, 72071200)
            },
        ),
        empty=_m1("2025-03-08", "chart_empty.json"),
        empty_is_no_data=False,
        high_below_low="chart_high_below_low.json",
        malformed=(b"<html>oops</html>", fixture("yahoo", "chart_partial_null.json")),
        answers=(
            _answer("yahoo", "chart_not_found.json", 404, NoData),
            _answer("yahoo", "chart_1m_too_old.json", 422, NoData),
            _answer("yahoo", "chart_not_found.json", 200, NoData),
            Answer(
                401,
                b'{"finance":{"result":null,"error":{"code":"Unauthorized","description":"Invalid Crumb"}}}',
                AuthError,
            ),
            _403,
            Answer(429, b"Too Many Requests\r\n", RateLimited, retry_after=60.0),
            _429,
            _5XX,
        ),
    ),
    VendorCase(
        StooqProvider,
        adjusted=True,
        # Daily only: the session's bar, stamped at its open.
        first_edt=_span(
            "aapl_d.csv",
            Interval.D1,
            "2025-03-10T00:00:00",
            "2025-03-11T00:00:00",
            DAILY_3_10,
            values={0: AAPL_DAILY[2]},
        ),
        last_est=_span(
            "aapl_d.csv",
            Interval.D1,
            "2025-03-07T00:00:00",
            "2025-03-08T00:00:00",
            DAILY_3_7,
            values={0: AAPL_DAILY[1]},
        ),
        early_close=_span(
            "aapl_d_2025-11.csv",
            Interval.D1,
            "2025-11-26T00:00:00",
            "2025-11-29T00:00:00",
            "2025-11-26T14:30:00",
            "2025-11-28T14:30:00",
        ),
        daily=_span(
            "aapl_d.csv",
            Interval.D1,
            "2025-03-06T00:00:00",
            "2025-03-11T00:00:00",
            DAILY_3_6,
            DAILY_3_7,
            DAILY_3_10,
            values=AAPL_DAILY,
        ),
        empty=_span("no_data.txt", Interval.D1, "2025-03-08T00:00:00", "2025-03-09T00:00:00"),
        empty_is_no_data=True,
        high_below_low="high_below_low.csv",
        malformed=(
            b"<html><body>checking your browser</body></html>",
            b"Date,Open,High,Low,Close,Volume\n2025-03-10,235.54,,224.22,227.48,72071200\n",
            b"Date,Open,High\n2025-03-10,1,2\n",
        ),
        answers=(
            _answer("stooq", "hits_limit.txt", 200, RateLimited, retry_after=3600.0),
            Answer(429, b"slow down", RateLimited, headers={"Retry-After": "30"}, retry_after=30.0),
            _answer("stooq", "apikey_page.html", 200, AuthError),
            _401,
            _403,
            _5XX,
        ),
        unsupported=Interval.M1,
    ),
    VendorCase(
        FinnhubProvider,
        adjusted=False,
        first_edt=_m1(
            "2025-03-10",
            "candle_1m_2025-03-10.json",
            EDT_0930,
            EDT_0931,
            values={0: AAPL_EDT_0930, 1: AAPL_EDT_0931},
        ),
        last_est=_m1("2025-03-07", "candle_1m_2025-03-07.json", EST_0930, EST_0931),
        early_close=_m1("2025-11-28", "candle_1m_2025-11-28.json", CLOSE_1258, CLOSE_1259),
        # Candles stamped at 00:00 UTC of the session date.
        daily=_span(
            "candle_1d.json",
            Interval.D1,
            "2025-03-06T00:00:00",
            "2025-03-11T00:00:00",
            DAILY_3_6,
            DAILY_3_7,
            DAILY_3_10,
            values=AAPL_DAILY,
        ),
        empty=_m1("2025-03-08", "no_data.json"),
        empty_is_no_data=True,
        high_below_low="candle_high_below_low.json",
        malformed=(b"not json", b'{"s":"ok","t":[1741613400]}'),
        answers=(
            _answer("finnhub", "error_invalid_key.json", 401, AuthError),
            _answer("finnhub", "error_no_access.json", 403, NotEntitled),
            _answer("finnhub", "error_limit.json", 429, RateLimited, retry_after=60.0),
            _403,
            _429,
            _5XX,
        ),
    ),
    VendorCase(
        AlphaVantageProvider,
        adjusted=False,
        first_edt=_m1(
            "2025-03-10",
            "intraday_1min_2025-03.json",
            EDT_0930,
            EDT_0931,
            "2025-03-10T19:59:00",
            values={0: IBM_EDT_0930},
        ),
        last_est=_m1("2025-03-07", "intraday_1min_2025-03.json", EST_0930, EST_0931, "2025-03-07T20:59:00"),
        early_close=_m1("2025-11-28", "intraday_1min_2025-11.json", "2025-11-28T14:30:00", CLOSE_1259),
        daily=_span(
            "daily_compact.json",
            Interval.D1,
            "2025-03-07T00:00:00",
            "2025-03-11T00:00:00",
            DAILY_3_7,
            DAILY_3_10,
            values={1: (236.10, 239.44, 234.98, 239.07, 4521876.0)},
        ),
        empty=_m1("2025-03-10", "intraday_1min_empty.json"),
        empty_is_no_data=False,
        high_below_low="intraday_1min_high_below_low.json",
        malformed=(fixture("alphavantage", "malformed.json"),),
        answers=(
            # Throttling, bad keys and unknown symbols come with HTTP 200.
            _answer("alphavantage", "throttle_note.json", 200, RateLimited, retry_after=60.0),
            _answer("alphavantage", "throttle_daily.json", 200, RateLimited, retry_after=60.0),
            _answer("alphavantage", "invalid_key.json", 200, AuthError),
            _answer("alphavantage", "invalid_call.json", 200, NoData),
            Answer(502, b"<html>bad gateway</html>", Unavailable),
            _401,
            _403,
            _429,
        ),
        unsupported=Interval.H1,
    ),
    VendorCase(
        PolygonProvider,
        adjusted=False,
        # 13:29Z (09:29 EDT) is a pre-market bar: not on the regular-session grid.
        first_edt=_m1(
            "2025-03-10",
            "aggs_1m_2025-03-10.json",
            EDT_0930,
            EDT_0931,
            "2025-03-10T13:32:00",
            values={0: AAPL_EDT_0930, 1: AAPL_EDT_0931, 2: (234.26, 234.6, 234.01, 234.5, 301224)},
        ),
        last_est=_m1("2025-03-07", "aggs_1m_2025-03-07.json", EST_0930, EST_0931),
        # The 18:00Z bar is after the early close (post-market).
        early_close=_m1("2025-11-28", "aggs_1m_2025-11-28.json", CLOSE_1258, CLOSE_1259),
        # Stamped at midnight America/New_York.
        daily=_span(
            "aggs_1d_2025-03.json",
            Interval.D1,
            "2025-03-06T00:00:00",
            "2025-03-11T00:00:00",
            DAILY_3_6,
            DAILY_3_7,
            DAILY_3_10,
            values=AAPL_DAILY,
        ),
        empty=_m1("2025-03-08", "aggs_empty.json"),
        empty_is_no_data=False,
        high_below_low="aggs_high_below_low.json",
        malformed=(
            b'{"status":"OK","results":[{"t":1741613400000,"o":1.0}]}',
            fixture("polygon", "aggs_null_close.json"),
        ),
        answers=(
            _answer("polygon", "error_unknown_key.json", 401, AuthError),
            _answer("polygon", "error_not_authorized.json", 403, NotEntitled),
            _answer("polygon", "error_rate_limit.json", 429, RateLimited, retry_after=60.0),
            _answer(
                "polygon",
                "error_rate_limit.json",
                429,
                RateLimited,
                headers={"Retry-After": "12"},
                retry_after=12.0,
            ),
            Answer(502, b'{"status":"ERROR","error":"Internal"}', Unavailable),
            _403,
        ),
        unsupported=Interval.H1,
    ),
    VendorCase(
        FmpProvider,
        adjusted=False,
        first_edt=_m1(
            "2025-03-10",
            "chart_1min_2025-03-10.json",
            EDT_0930,
            EDT_0931,
            "2025-03-10T19:59:00",
            values={0: IBM_EDT_0930},
        ),
        last_est=_m1("2025-03-07", "chart_1min_2025-03-07.json", EST_0930, EST_0931, "2025-03-07T20:59:00"),
        early_close=_m1("2025-11-28", "chart_1min_2025-11-28.json", "2025-11-28T14:30:00", CLOSE_1259),
        # The non-split-adjusted endpoint: raw prices as traded.
        daily=_span(
            "eod_non_split_adjusted.json",
            Interval.D1,
            "2025-03-07T00:00:00",
            "2025-03-11T00:00:00",
            DAILY_3_7,
            DAILY_3_10,
            values={0: (235.105, 241.37, 234.76, 239.07, 46273565.0)},
        ),
        empty=_m1("2025-03-10", "empty.json"),
        empty_is_no_data=False,
        high_below_low="chart_1min_high_below_low.json",
        malformed=(fixture("fmp", "malformed.json"),),
        answers=(
            _answer("fmp", "limit_reach.json", 429, RateLimited, retry_after=60.0),
            _answer(
                "fmp", "limit_reach.json", 429, RateLimited, headers={"Retry-After": "17"}, retry_after=17.0
            ),
            _answer("fmp", "invalid_key.json", 401, AuthError),
            _answer("fmp", "invalid_key.json", 200, AuthError),  # a key problem even with a 200
            _answer("fmp", "restricted_endpoint.txt", 402, NotEntitled),
            _answer("fmp", "legacy_endpoint.json", 403, NotEntitled),
            Answer(504, b"upstream timeout", Unavailable),
            _403,
        ),
    ),
    VendorCase(
        TwelveDataProvider,
        adjusted=False,
        first_edt=_m1(
            "2025-03-10",
            "time_series_1min_dst.json",
            EDT_0930,
            EDT_0931,
            "2025-03-10T19:59:00",
            values={0: IBM_EDT_0930},
        ),
        last_est=_m1("2025-03-07", "time_series_1min_dst.json", EST_0930, EST_0931, "2025-03-07T20:59:00"),
        early_close=_m1("2025-11-28", "time_series_1min_early_close.json", "2025-11-28T14:30:00", CLOSE_1259),
        daily=_span(
            "time_series_1day.json",
            Interval.D1,
            "2025-03-07T00:00:00",
            "2025-03-11T00:00:00",
            DAILY_3_7,
            DAILY_3_10,
            values={1: (235.54, 236.16, 224.22, 227.48, 72071199.0)},
        ),
        # "No data is available on the specified dates" (HTTP 200, code 400): no bars.
        empty=_m1("2025-03-08", "no_data.json"),
        empty_is_no_data=False,
        high_below_low="time_series_high_below_low.json",
        malformed=(fixture("twelvedata", "malformed.json"),),
        answers=(
            # Errors usually come with HTTP 200 and the status in the body.
            _answer("twelvedata", "out_of_credits.json", 200, RateLimited, retry_after=60.0),
            _answer(
                "twelvedata",
                "out_of_credits.json",
                429,
                RateLimited,
                headers={"Retry-After": "12"},
                retry_after=12.0,
            ),
            _answer("twelvedata", "invalid_key.json", 200, AuthError),
            _answer("twelvedata", "not_on_plan.json", 200, NotEntitled),
            _answer("twelvedata", "symbol_not_found.json", 200, NoData),
            Answer(502, b"<html>502 Bad Gateway</html>", Unavailable),
            _401,
            _403,
        ),
    ),
    VendorCase(
        AlpacaProvider,
        adjusted=False,
        # 13:29Z (09:29 EDT) is a pre-market IEX bar: dropped.
        first_edt=_m1(
            "2025-03-10",
            "bars_1m_2025-03-10.json",
            EDT_0930,
            EDT_0931,
            "2025-03-10T13:32:00",
            values={0: AAPL_EDT_0930, 1: AAPL_EDT_0931, 2: (234.26, 234.6, 234.01, 234.5, 301224)},
        ),
        last_est=_m1("2025-03-07", "bars_1m_2025-03-07.json", EST_0930, EST_0931),
        early_close=_m1("2025-11-28", "bars_1m_2025-11-28.json", CLOSE_1258, CLOSE_1259),
        # Stamped at midnight America/New_York ("2025-03-06T05:00:00Z").
        daily=_span(
            "bars_1d_2025-03.json",
            Interval.D1,
            "2025-03-06T14:00:00",
            "2025-03-11T00:00:00",
            DAILY_3_6,
            DAILY_3_7,
            DAILY_3_10,
            values=AAPL_DAILY,
        ),
        empty=_m1("2025-03-08", "bars_empty.json"),  # "bars": null
        empty_is_no_data=False,
        high_below_low="bars_high_below_low.json",
        malformed=(
            b'{"bars":[{"t":"2025-03-10T13:30:00Z","o":1.0}],"next_page_token":null}',
            b'{"bars":[{"t":"2025-03-10T13:30:00Z","o":1.0,"h":1.0,"l":1.0,"c":null,"v":1}]}',
        ),
        answers=(
            _answer("alpaca", "error_unauthorized.json", 401, AuthError),
            _answer("alpaca", "error_forbidden.json", 403, AuthError),
            _answer("alpaca", "error_sip_subscription.json", 403, NotEntitled),
            _answer("alpaca", "error_rate_limit.json", 429, RateLimited, retry_after=60.0),
            Answer(500, b'{"message":"internal server error"}', Unavailable),
        ),
        unsupported=Interval.H1,
    ),
    VendorCase(
        TiingoProvider,
        adjusted=False,
        first_edt=_m1(
            "2025-03-10",
            "iex_1m_2025-03-10.json",
            EDT_0930,
            EDT_0931,
            "2025-03-10T13:32:00",
            values={
                0: (235.54, 236.16, 234.62, 234.88, 45058),  # IEX's own volume
                1: (234.87, 235.0, 234.13, 234.25, 11304),
                2: (234.26, 234.6, 234.01, 234.5, 7530),
            },
        ),
        last_est=_m1("2025-03-07", "iex_1m_2025-03-07.json", EST_0930, EST_0931),
        early_close=_m1("2025-11-28", "iex_1m_2025-11-28.json", CLOSE_1258, CLOSE_1259),
        # Raw open/high/low/close/volume, not the adj* fields.
        daily=_span(
            "daily_2025-03.json",
            Interval.D1,
            "2025-03-06T00:00:00",
            "2025-03-11T00:00:00",
            DAILY_3_6,
            DAILY_3_7,
            DAILY_3_10,
            values=AAPL_DAILY,
        ),
        empty=_m1("2025-03-08", "empty.json"),
        empty_is_no_data=False,
        high_below_low="iex_high_below_low.json",
        malformed=(
            b'{"unexpected": true}',
            fixture("tiingo", "iex_no_volume.json"),
            b'[{"date":"2025-03-10T13:30:00.000Z","close":null,"high":1,"low":1,"open":1,"volume":1}]',
        ),
        answers=(
            _answer("tiingo", "error_ticker_not_found.json", 404, NoData),
            _answer("tiingo", "error_invalid_token.json", 401, AuthError),
            # Quota messages come as plain text with HTTP 200.
            _answer("tiingo", "throttle_hourly.txt", 200, RateLimited, retry_after=3600.0),
            Answer(429, b'{"detail":"Request was throttled."}', RateLimited, retry_after=3600.0),
            Answer(
                429,
                b'{"detail":"Request was throttled."}',
                RateLimited,
                headers={"Retry-After": "30"},
                retry_after=30.0,
            ),
            Answer(503, b'{"detail":"Server Error"}', Unavailable),
            _403,
        ),
        unsupported=Interval.H1,
    ),
)

BY_NAME = {case.name: case for case in CASES}
