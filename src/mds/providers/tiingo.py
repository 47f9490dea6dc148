"""Tiingo: end-of-day prices (1d) and IEX intraday prices (1m/5m/15m).

Wire formats (https://api.tiingo.com/documentation/end-of-day,
https://api.tiingo.com/documentation/iex, tiingo-python's recorded fixtures):

* EOD ``/tiingo/daily/<ticker>/prices``: a JSON array of ``{date, open, high, low, close,
  volume, adjOpen, ..., divCash, splitFactor}``; ``date`` is the session date stamped
  ``T00:00:00.000Z``. The adapter reads the raw fields, never the ``adj*`` ones.
* IEX ``/iex/<ticker>/prices?resampleFreq=1min``: ``{date, open, high, low, close[, volume]}``
  with ``date`` the bar START as ISO-8601 (``Z`` or an offset). Volume is sent only when
  ``columns`` asks for it, and it is IEX's own volume, not the consolidated tape's.

Corporate actions come from the same EOD rows: a row whose ``splitFactor`` is not 1 is a
split effective that session (``splitFactor`` is new shares per old, 4.0 for AAPL's
2020-08-31 4:1), and a row with ``divCash > 0`` a cash dividend going ex that session,
as paid (raw). Tiingo publishes no declaration, record or pay dates.

Auth is ``Authorization: Token <key>`` (the documented alternative to ``?token=``).
Tiingo has no paging; intraday answers are capped in size, so long intraday ranges are
fetched in date chunks (see ``fetch_bars``). Not offered: 1h bars (alignment of Tiingo's
hourly resampling to the 09:30 open is undocumented) and quotes.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

import httpx
import orjson

from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Bar, Capability, Interval, ensure_utc
from mds.errors import NoData, RateLimited
from mds.providers.http import HttpProvider, Page, RequestSpec, redact, retry_after
from mds.providers.sessiongrid import session_grid
from mds.providers.timeconv import NEW_YORK, local_date, session_open

_RESAMPLE = {Interval.M1: "1min", Interval.M5: "5min", Interval.M15: "15min"}
#: Calendar days per intraday request: at most ~15 sessions of 1m bars (~5,900 rows),
#: well under the ~10,000 rows Tiingo returns per intraday request.
_CHUNK_DAYS = {Interval.M1: 21, Interval.M5: 100, Interval.M15: 300}
_HOUR, _DAY = 3600.0, 86400.0


class TiingoProvider(HttpProvider):
    name = "tiingo"
    capabilities = frozenset({Capability.BARS_1M, Capability.EOD, Capability.CORPORATE_ACTIONS})
    default_base_url = "https://api.tiingo.com"
    # Free plan: 50 requests per hour and 1,000 per day (500 unique symbols a month),
    # per https://www.tiingo.com/about/pricing.
    default_limits = ("50/hour", "1000/day")
    key_settings = ("TIINGO_API_KEY",)
    # The adapter reads open/high/low/close/volume, Tiingo's raw (unadjusted) fields.
    adjusted = False
    chunk_days: ClassVar[dict[Interval, int]] = _CHUNK_DAYS

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.key('TIINGO_API_KEY')}"}

    def bars_request(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> RequestSpec:
        # Both endpoints take inclusive exchange-local dates; fetch_bars trims to [start, end).
        first, last = local_date(start).isoformat(), local_date(end - timedelta(microseconds=1)).isoformat()
        if interval is Interval.D1:
            params = {"startDate": first, "endDate": last, "resampleFreq": "daily", "format": "json"}
            return RequestSpec(f"/tiingo/daily/{symbol}/prices", params, self._auth())
        freq = _RESAMPLE.get(interval)
        if freq is None:
            raise NoData(self.name, f"{interval.value} bars are not offered", code="unsupported")
        params = {
            "startDate": first,
            "endDate": last,
            "resampleFreq": freq,
            "columns": "open,high,low,close,volume",  # volume only comes when asked for
            "afterHours": "false",
            "format": "json",
        }
        return RequestSpec(f"/iex/{symbol}/prices", params, self._auth())

    async def fetch_bars(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Bar]:
        """Intraday ranges longer than one request can hold are fetched chunk by chunk.

        Tiingo has no cursor, and a chunk with no bars (a halt, a range before a listing)
        says nothing about the next one, so the chunk plan is made here up front rather
        than inferred from each response in ``parse_bars``.
        """
        interval, start, end = Interval(interval), ensure_utc(start), ensure_utc(end)
        days = self.chunk_days.get(interval)
        if days is None:
            return await super().fetch_bars(symbol, interval, start, end)
        out: list[Bar] = []
        for lo, hi in _chunks(start, end, days):
            out.extend(await super().fetch_bars(symbol, interval, lo, hi))
        return out

    def parse_bars(
        self, body: bytes, *, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> Page[Bar]:
        rows = self._rows(body)
        out: list[Bar] = []
        name, adjusted = self.name, self.adjusted
        with self.reading("price row"):
            grid = None if interval is Interval.D1 else session_grid(self.calendar, interval, start, end).get
            for r in rows:
                if grid is None:
                    # "2015-01-02T00:00:00.000Z": the date is the session's; skip non-session dates.
                    ts = session_open(date.fromisoformat(r["date"][:10]), self.calendar)
                else:
                    # IEX bars outside regular hours (should afterHours be ignored) are dropped.
                    ts = grid(int(datetime.fromisoformat(r["date"]).timestamp()))
                if ts is not None:
                    o, h, low, c = float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"])
                    out.append(Bar(symbol, interval, ts, o, h, low, c, float(r["volume"]), name, adjusted))
        return Page(out)

    def actions_requests(self, symbol: str, start: date, end: date) -> list[RequestSpec]:
        params = {"startDate": start.isoformat(), "endDate": end.isoformat(), "format": "json"}
        return [RequestSpec(f"/tiingo/daily/{symbol}/prices", params, self._auth())]

    def parse_actions(self, body: bytes, *, symbol: str, spec: RequestSpec) -> Page[CorporateAction]:
        out: list[CorporateAction] = []
        with self.reading("price row"):
            for r in self._rows(body):
                day = date.fromisoformat(r["date"][:10])
                factor, cash = float(r["splitFactor"]), float(r["divCash"])
                if factor != 1.0:
                    out.append(CorporateAction(symbol, ActionType.SPLIT, day, ratio=factor, source=self.name))
                if cash > 0:
                    out.append(
                        CorporateAction(symbol, ActionType.DIVIDEND, day, amount=cash, source=self.name)
                    )
                elif cash < 0:
                    raise self.bad(f"{symbol} {day}: divCash {cash} is negative")
        return Page(out)

    def _rows(self, body: bytes) -> list[dict[str, Any]]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise self.bad(f"invalid JSON: {exc}") from None
        if isinstance(data, dict) and "detail" in data:
            # e.g. {"detail": "Error: Ticker 'XYZ' not found"}
            raise NoData(self.name, redact(str(data["detail"])[:200]), code="not_found")
        if not isinstance(data, list):
            raise self.bad("expected a JSON array of price rows")
        return data

    def check_response(self, response: httpx.Response, capability: Capability) -> None:
        status = response.status_code
        body = response.content[:300]
        if status == 200 and body.lstrip().startswith(b"You have run over"):
            # Quota messages come as plain text with HTTP 200, e.g. "You have run over your
            # hourly request allocation. Please upgrade ..." (tiingo-python issue #45).
            text = body.decode(errors="replace")
            wait = _HOUR if "hour" in text else _DAY
            raise RateLimited(self.name, redact(text[:200]), retry_after=wait, code="quota")
        if status == 429:
            # The free plan's tightest window is the hour.
            raise RateLimited(
                self.name,
                redact(f"HTTP 429: {response.text[:200]}"),
                retry_after=retry_after(response, _HOUR),
            )
        super().check_response(response, capability)


def _chunks(start: datetime, end: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at exchange-local midnights every ``days`` days."""
    out: list[tuple[datetime, datetime]] = []
    day = local_date(start)
    lo = start
    while lo < end:
        day += timedelta(days=days)
        hi = min(end, datetime.combine(day, time(0), NEW_YORK))
        if hi > lo:
            out.append((lo, hi))
        lo = hi
    return out


__all__ = ["TiingoProvider"]
