"""FRED (St. Louis Fed): economic series with their release history (ALFRED vintages).

Wire format (https://fred.stlouisfed.org/docs/api/fred/series_observations.html,
https://fred.stlouisfed.org/docs/api/fred/series_vintagedates.html,
https://fred.stlouisfed.org/docs/api/fred/errors.html):

* ``GET /fred/series/observations?series_id&api_key&file_type=json&observation_start
  &observation_end&realtime_start&realtime_end&limit&offset`` answers
  ``{realtime_start, realtime_end, observation_start, observation_end, units, output_type,
  file_type, order_by, sort_order, count, offset, limit, observations: [{realtime_start,
  realtime_end, date, value}]}``. Values are strings; ``"."`` is a missing value (None
  here, never 0). ``realtime_end`` ``9999-12-31`` means "still current" (None here). At
  most 100,000 rows per request: longer answers are paged with ``offset``.
* ``GET /fred/series/vintagedates?series_id&realtime_start&realtime_end&limit&offset``
  answers ``{..., count, offset, limit, vintage_dates: ["YYYY-MM-DD", ...]}``, at most
  10,000 dates per request.
* Errors are HTTP 400/404/423/429/500 with ``{"error_code": 400, "error_message": "Bad
  Request.  The value for variable api_key is not registered.  Read ..."}``. A key that is
  missing, malformed or unregistered is ``AuthError``; ``"The series does not exist."`` is
  ``NoData``; 429 (``"Too Many Requests.  Exceeded Rate Limit"``) is ``RateLimited``,
  after Retry-After when sent, else :data:`RETRY_AFTER_S`; 5xx is ``Unavailable``.

The key travels as the ``api_key`` query parameter, so it is in every URL: ``redact``
hides ``api_key=`` wherever a URL is quoted, and :meth:`FredProvider.fetch_macro_series`
replaces the key's value in any error it raises.

Point in time. FRED clips every row's realtime period to the period asked for. Without
vintages the adapter asks ``realtime_end=9999-12-31`` (``realtime_start`` defaults to
FRED's today), so each row is the value current today, known from today on, as far as
this answer can tell. With vintages it asks every realtime period (ALFRED), but FRED
refuses a request whose realtime period holds more than 2,000 vintage dates ("Bad
Request.  There are 2004 vintage dates in the specified real-time period: 1776-07-04 to
9999-12-31.  This exceeds the maximum number of vintage dates allowed (2000)."; daily
series such as DFF or T10Y2Y pass that in a few years). So the adapter first lists the
series' vintage dates, cuts them into windows of :data:`MAX_VINTAGES` dates, asks the
observations of each window, and stitches back the rows that a window boundary cut in two
(same date and value, one period ending the day before the next begins).

The realtime window starts at ``start`` when one is given: a value cannot be published
before the day it describes, so vintages older than ``start`` hold no row of the range
(forecast series, whose dates run ahead of their releases, are not what MDS tracks).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar

import httpx
import orjson

from mds.domain.macro import MacroObservation
from mds.domain.models import Capability
from mds.errors import AuthError, NoData, ProviderError, RateLimited, Unavailable
from mds.providers.http import HttpProvider, Page, RequestSpec, redact, retry_after

T = TypeVar("T")

OBSERVATIONS = "/fred/series/observations"
VINTAGE_DATES = "/fred/series/vintagedates"
#: FRED's earliest and latest realtime dates ("the beginning and the end of time").
EARLIEST = date(1776, 7, 4)
LATEST = date(9999, 12, 31)
#: Vintage dates per observations request: FRED refuses more than 2,000; one less leaves
#: room should FRED count a window's first day as a vintage of its own.
MAX_VINTAGES = 1999
#: Page sizes: FRED's maxima for observations and for vintage dates.
OBSERVATIONS_LIMIT = 100_000
VINTAGE_DATES_LIMIT = 10_000
#: Back-off after a 429 without Retry-After: FRED's budget is counted per minute.
RETRY_AFTER_S = 20.0


class FredProvider(HttpProvider):
    name = "fred"
    capabilities = frozenset({Capability.MACRO})
    default_base_url = "https://api.stlouisfed.org"
    # FRED documents 120 requests per minute per key; asking at most 2 a second keeps to it
    # without bursts. FRED_RATE_PER_MIN adds a per-minute budget on top (it can only slow).
    default_limits = ("2/second",)
    key_settings = ("FRED_API_KEY",)

    # -- requests (pure) -----------------------------------------------------------------
    def _params(self, series: str, **extra: str) -> dict[str, str]:
        return {"series_id": series, "api_key": self.key("FRED_API_KEY"), "file_type": "json", **extra}

    def observations_request(
        self,
        series: str,
        *,
        start: date | None,
        end: date | None,
        realtime: tuple[date, date] | None,
        offset: int = 0,
    ) -> RequestSpec:
        """One page of ``series``' observations; ``realtime`` is the realtime period asked
        (None: FRED's today until the end of time, the values current today)."""
        params = self._params(series)
        if start is not None:
            params["observation_start"] = start.isoformat()
        if end is not None:
            params["observation_end"] = end.isoformat()
        if realtime is None:
            params["realtime_end"] = LATEST.isoformat()
        else:
            params["realtime_start"], params["realtime_end"] = (
                realtime[0].isoformat(),
                realtime[1].isoformat(),
            )
        params["limit"], params["offset"] = str(OBSERVATIONS_LIMIT), str(offset)
        return RequestSpec(OBSERVATIONS, params)

    def vintage_dates_request(self, series: str, *, realtime_start: date, offset: int = 0) -> RequestSpec:
        """One page of the dates on which ``series`` was published or revised."""
        params = self._params(
            series,
            realtime_start=realtime_start.isoformat(),
            realtime_end=LATEST.isoformat(),
            limit=str(VINTAGE_DATES_LIMIT),
            offset=str(offset),
        )
        return RequestSpec(VINTAGE_DATES, params)

    # -- parsing (pure) ------------------------------------------------------------------
    def parse_observations(self, body: bytes, *, series: str, spec: RequestSpec) -> Page[MacroObservation]:
        """One answer of ``fred/series/observations``; ``next`` asks the rest of ``count``."""
        data = self._object(body)
        out: list[MacroObservation] = []
        with self.reading("observation"):
            for row in data["observations"]:
                raw = row["value"]
                value = None if raw == "." else float(raw)
                if value is not None and not math.isfinite(value):
                    raise self.bad(f"{series} {row['date']}: value {raw!r} is not a number")
                end = date.fromisoformat(row["realtime_end"])
                out.append(
                    MacroObservation(
                        series=series,
                        date=date.fromisoformat(row["date"]),
                        value=value,
                        realtime_start=date.fromisoformat(row["realtime_start"]),
                        realtime_end=None if end == LATEST else end,
                        provider=self.name,
                    )
                )
            return Page(out, _next_page(spec, data, len(out)))

    def parse_vintage_dates(self, body: bytes, *, spec: RequestSpec) -> Page[date]:
        """One answer of ``fred/series/vintagedates``."""
        data = self._object(body)
        with self.reading("vintage dates"):
            dates = [date.fromisoformat(d) for d in data["vintage_dates"]]
            return Page(dates, _next_page(spec, data, len(dates)))

    def _object(self, body: bytes) -> dict[str, Any]:
        data = self.json_object(body)
        if "error_code" in data or "error_message" in data:
            # Errors come with an error status; one inside a 200 is read the same way.
            code = data.get("error_code")
            raise self._error(code if isinstance(code, int) else 400, _message(data), None)
        return data

    # -- errors --------------------------------------------------------------------------
    def check_response(self, response: httpx.Response, capability: Capability) -> None:
        if response.status_code < 400:
            return
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and "error_message" in data:
            raise self._error(response.status_code, _message(data), response)
        if response.status_code == 429:
            text = redact(response.text[:200])
            raise RateLimited(self.name, text, retry_after=retry_after(response, RETRY_AFTER_S), code="429")
        super().check_response(response, capability)

    def _error(self, status: int, message: str, response: httpx.Response | None) -> ProviderError:
        """The typed error for FRED's ``error_message`` under HTTP ``status``."""
        lowered = message.lower()
        if status == 429:
            wait = RETRY_AFTER_S if response is None else retry_after(response, RETRY_AFTER_S)
            return RateLimited(self.name, message, retry_after=wait, code="429")
        if status >= 500 or status == 423:
            return Unavailable(self.name, message, code=str(status))
        if "api_key" in lowered or status in (401, 403):
            # "Variable api_key has not been set.", "... is not a 32 character alpha-numeric
            # lower-case string.", "The value for variable api_key is not registered."
            return AuthError(self.name, message, code="invalid_key")
        if "series does not exist" in lowered or status == 404:
            return NoData(self.name, message, code="unknown_series")
        if "vintage dates" in lowered:
            return NoData(self.name, message, code="vintage_limit")
        return NoData(self.name, message, code=str(status))

    # -- I/O -----------------------------------------------------------------------------
    async def fetch_macro_series(
        self,
        series: str,
        *,
        start: date | None = None,
        end: date | None = None,
        vintages: bool = False,
    ) -> list[MacroObservation]:
        """Observations of ``series`` dated ``start..end`` (inclusive), oldest first.

        With ``vintages`` every value ever published (each with its realtime period,
        chunked below FRED's vintage limit); without, the values current today. Errors
        never carry the key (the base class wraps every ``fetch_*``).
        """
        if not vintages:
            return await self._observations(series, start, end, None)
        return await self._all_vintages(series, start, end)

    async def _all_vintages(
        self, series: str, start: date | None, end: date | None
    ) -> list[MacroObservation]:
        window_start = start or EARLIEST
        vintage_dates = await self._paged(
            self.vintage_dates_request(series, realtime_start=window_start),
            lambda body, spec: self.parse_vintage_dates(body, spec=spec),
        )
        rows: list[MacroObservation] = []
        for realtime in vintage_windows(window_start, vintage_dates, MAX_VINTAGES):
            rows.extend(await self._observations(series, start, end, realtime))
        return stitch(rows)

    async def _observations(
        self, series: str, start: date | None, end: date | None, realtime: tuple[date, date] | None
    ) -> list[MacroObservation]:
        return await self._paged(
            self.observations_request(series, start=start, end=end, realtime=realtime),
            lambda body, spec: self.parse_observations(body, series=series, spec=spec),
        )

    async def _paged(self, spec: RequestSpec, parse: Callable[[bytes, RequestSpec], Page[T]]) -> list[T]:
        out: list[T] = []
        next_spec: RequestSpec | None = spec
        pages = 0
        while next_spec is not None:
            pages += 1
            if pages > self.max_pages:
                raise self.bad(f"more than {self.max_pages} pages; refusing to follow")
            page = parse(await self.get(next_spec, Capability.MACRO), next_spec)
            out.extend(page.items)
            next_spec = page.next
        return out


def _message(data: dict[str, Any]) -> str:
    # FRED puts two spaces after each sentence; one reads better in logs and answers.
    return redact(" ".join(str(data.get("error_message", "")).split()))[:300]


def _next_page(spec: RequestSpec, data: dict[str, Any], got: int) -> RequestSpec | None:
    """The request for the rows after this page, or None when ``count`` is reached."""
    offset = int(data.get("offset", spec.params.get("offset", 0)))
    if got == 0 or offset + got >= int(data["count"]):
        return None
    return RequestSpec(spec.path, {**spec.params, "offset": str(offset + got)}, spec.headers)


def vintage_windows(start: date, vintage_dates: list[date], size: int) -> list[tuple[date, date]]:
    """Realtime periods that together cover ``start`` to the end of time, each holding at
    most ``size`` of ``vintage_dates``; none when there are no vintages at all.

    The first period begins at ``start``, each later one on a vintage date, and each ends
    the day before the next begins; the last ends at FRED's 9999-12-31.
    """
    dates = sorted({d for d in vintage_dates if d >= start})
    if not dates:
        return []
    starts = [start, *dates[size::size]]
    ends = [s - timedelta(days=1) for s in starts[1:]] + [LATEST]
    return list(zip(starts, ends, strict=True))


def stitch(rows: list[MacroObservation]) -> list[MacroObservation]:
    """Rows of several realtime windows as one history, ordered by date then realtime start.

    A row seen twice (same date and realtime start) is kept once; a value whose period a
    window boundary cut in two (same value, one period ending the day before the other
    begins) becomes one row again.
    """
    unique = {(r.date, r.realtime_start): r for r in rows}
    out: list[MacroObservation] = []
    for key in sorted(unique):
        row = unique[key]
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.date == row.date
            and prev.value == row.value
            and prev.realtime_end is not None
            and prev.realtime_end + timedelta(days=1) == row.realtime_start
        ):
            out[-1] = MacroObservation(
                prev.series, prev.date, prev.value, prev.realtime_start, row.realtime_end, prev.provider
            )
        else:
            out.append(row)
    return out


__all__ = ["FredProvider", "stitch", "vintage_windows"]
