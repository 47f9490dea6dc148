"""What every HTTP vendor adapter shares: send, page, limit, and map failures to typed errors.

A vendor module subclasses ``HttpProvider`` and writes only pure translation:
``bars_request`` (domain → request), ``parse_bars`` (bytes → bars and the next page),
``quotes_request`` / ``parse_quotes``, ``actions_requests`` / ``parse_actions`` (splits and
dividends), and, where the vendor needs it, ``check_response`` for its own ways of saying
"throttled" or "not entitled" with a 200 or a 403. Every paged walk goes through ``paged``.

Parsers read a body inside ``with self.reading(...)``: whatever Python raises on a body
of the wrong shape (a string where a number belongs, a time past what ``datetime``
holds) leaves the adapter as ``BadPayload``, never as a ``ValueError``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, Generic, ParamSpec, TypeVar

import httpx
import orjson
from limits import RateLimitItem

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.actions import CorporateAction
from mds.domain.models import (
    Bar,
    Capability,
    Interval,
    OptionQuote,
    Quote,
    capability_for_interval,
    ensure_utc,
)
from mds.domain.profile import CompanyProfile
from mds.errors import (
    AuthError,
    BadPayload,
    NoData,
    NotEntitled,
    ProviderError,
    RateLimited,
    Unavailable,
)
from mds.providers.base import validate_bars, validate_profile
from mds.providers.ratelimit import RateLimiter, parse_limits
from mds.redact import hide, redact
from mds.routing.timing import transport

T = TypeVar("T")

#: What Python raises on vendor data of the wrong shape: a missing key or row, a wrong
#: type, an unparsable number or date, a ratio over zero, and a time past what ``datetime``
#: holds (``fromtimestamp`` raises OverflowError, ValueError or, on some platforms, OSError).
SHAPE_ERRORS: tuple[type[Exception], ...] = (
    ZeroDivisionError,
    KeyError,
    IndexError,
    TypeError,
    ValueError,
    AttributeError,
    OverflowError,
    OSError,
)


@dataclass(frozen=True)
class RequestSpec:
    """One GET: ``path`` is relative to the base URL unless it is absolute (a next_url)."""

    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next: RequestSpec | None = None


class _RedactUrls(logging.Filter):
    """Hide key-like query parameters in what the ``httpx`` logger writes.

    httpx logs every response at INFO as ``HTTP Request: GET <full URL> ...``, and some
    vendors (FMP, Alpha Vantage) take the key as a query parameter: without this, any log
    level below WARNING writes the key once per call. The record's arguments are
    rewritten, not dropped, so the request lines stay useful when debugging a vendor.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(str(a)) if isinstance(a, str | httpx.URL) else a for a in record.args)
        return True


def _redact_httpx_log() -> None:
    # Installed by the first adapter built (not at import), once per process.
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactUrls) for f in httpx_log.filters):
        httpx_log.addFilter(_RedactUrls())


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _hiding_keys(fetch: Callable[_P, Coroutine[Any, Any, _R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Wrap a ``fetch_*`` method so no error it raises carries the provider's keys.

    Vendors echo what they were sent ("invalid key test-key ...") in bodies that error
    messages quote; ``redact`` only catches ``key=value`` pairs, so the configured
    secrets themselves are replaced too, on the way out of every fetch.
    """

    @functools.wraps(fetch)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await fetch(*args, **kwargs)
        except ProviderError as exc:
            provider = args[0]
            assert isinstance(provider, HttpProvider)
            provider.hide_keys_in(exc)
            raise

    return wrapper


class HttpProvider:
    """Base of the vendor adapters. Class attributes declare the vendor; hooks translate."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]
    default_base_url: ClassVar[str]
    #: The vendor's documented free-tier limits, e.g. ("5/minute", "25/day").
    default_limits: ClassVar[tuple[str, ...]] = ()
    #: Settings that must all be set for the provider to be configured.
    key_settings: ClassVar[tuple[str, ...]] = ()
    #: Whether the vendor's bars are split/dividend adjusted as requested by this adapter.
    adjusted: ClassVar[bool] = False
    max_pages: ClassVar[int] = 200
    #: Each GET is wrapped in ``transport()``: latency and timeouts exclude limiter waits.
    times_transport: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every fetch entry point, the base's and any a vendor overrides, hides the keys.
        super().__init_subclass__(**kwargs)
        for name in (
            "fetch_bars",
            "fetch_quotes",
            "fetch_options_chain",
            "fetch_macro_series",
            "fetch_corporate_actions",
            "fetch_profile",
        ):
            if name in cls.__dict__:
                setattr(cls, name, _hiding_keys(cls.__dict__[name]))

    def __init__(
        self,
        *,
        settings: Settings,
        calendar: MarketCalendar,
        limiter: RateLimiter | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.calendar = calendar
        self.limiter = limiter or RateLimiter()
        upper = self.name.upper()
        self.base_url = (getattr(settings, f"{upper}_BASE_URL", None) or self.default_base_url).rstrip("/")
        per_min = getattr(settings, f"{upper}_RATE_PER_MIN", None)
        specs = [s for s in self.default_limits if not (per_min and s.endswith("/minute"))]
        if per_min:
            # `limits` takes whole numbers: 7.5/minute is written as 450/hour.
            specs.append(
                f"{int(per_min)}/minute" if float(per_min).is_integer() else f"{int(per_min * 60)}/hour"
            )
        self.limits: list[RateLimitItem] = parse_limits(specs)
        self._client = client or httpx.AsyncClient(timeout=settings.PROVIDER_TIMEOUT_SEC)
        self._owns_client = client is None
        _redact_httpx_log()

    # -- configuration -------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return all(getattr(self.settings, k, None) is not None for k in self.key_settings)

    def key(self, setting: str) -> str:
        secret = getattr(self.settings, setting)
        return secret.get_secret_value() if secret is not None else ""

    def hide_keys_in(self, exc: ProviderError) -> None:
        """Replace this provider's configured secrets in ``exc``'s message, in place."""
        secrets = [self.key(s) for s in self.key_settings]
        exc.message = hide(exc.message, secrets)
        exc.args = tuple(hide(a, secrets) if isinstance(a, str) else a for a in exc.args)

    # -- hooks each vendor implements (pure) ---------------------------------------
    def bars_request(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> RequestSpec:
        raise NoData(self.name, f"{interval.value} bars are not offered", code="unsupported")

    def parse_bars(
        self, body: bytes, *, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> Page[Bar]:
        raise NoData(self.name, "bars are not offered", code="unsupported")

    def quotes_request(self, symbols: Sequence[str]) -> list[RequestSpec]:
        raise NoData(self.name, "quotes are not offered", code="unsupported")

    def parse_quotes(self, body: bytes, symbols: Sequence[str]) -> list[Quote]:
        raise NoData(self.name, "quotes are not offered", code="unsupported")

    def options_request(self, symbol: str, expiration: date | None, until: date | None = None) -> RequestSpec:
        """The first request of a chain: one ``expiration``, or all up to ``until`` where the
        vendor can filter by range (the base filters what comes back either way)."""
        raise NoData(self.name, "option chains are not offered", code="unsupported")

    def options_next(self, first: RequestSpec, page: Page[OptionQuote]) -> RequestSpec | None:
        """The request after ``page``; vendors whose cursor needs the first query again override it."""
        return page.next

    def parse_options(self, body: bytes, *, symbol: str) -> Page[OptionQuote]:
        raise NoData(self.name, "option chains are not offered", code="unsupported")

    def actions_requests(self, symbol: str, start: date, end: date) -> list[RequestSpec]:
        """The first request of each walk that together list ``symbol``'s splits and
        dividends from ``start`` to ``end`` (vendors that cannot filter by date ask for all;
        the base keeps ``start <= ex_date <= end``)."""
        raise NoData(self.name, "corporate actions are not offered", code="unsupported")

    def parse_actions(self, body: bytes, *, symbol: str, spec: RequestSpec) -> Page[CorporateAction]:
        """One answer of the walk ``spec`` belongs to: actions in their own ex-date's share
        basis, and the next page's request."""
        raise NoData(self.name, "corporate actions are not offered", code="unsupported")

    def profile_request(self, symbol: str) -> RequestSpec:
        raise NoData(self.name, "company profiles are not offered", code="unsupported")

    def parse_profile(self, body: bytes, *, symbol: str) -> CompanyProfile:
        """The vendor's profile of ``symbol``: market cap in whole ``currency`` units, shares
        in shares; ``NoData`` when the answer says it knows no such symbol."""
        raise NoData(self.name, "company profiles are not offered", code="unsupported")

    def check_response(self, response: httpx.Response, capability: Capability) -> None:
        """Raise the typed error a response means; the default reads the HTTP status.

        Vendors override this for their own conventions (throttling in a 200 body, a 403
        that means "not on your plan"), calling ``super().check_response`` for the rest.
        """
        status = response.status_code
        if status < 400:
            return
        detail = _short(response)
        if status == 429:
            raise RateLimited(self.name, detail, retry_after=retry_after(response), code="429")
        if status in (401, 403):
            raise AuthError(self.name, detail, code=str(status))
        if status == 402:
            raise NotEntitled(self.name, detail, code="402")
        if status in (404, 400, 422):
            raise NoData(self.name, detail, code=str(status))
        raise Unavailable(self.name, detail, code=str(status))

    # -- I/O -----------------------------------------------------------------------
    @_hiding_keys
    async def fetch_bars(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Bar]:
        interval = Interval(interval)
        start, end = ensure_utc(start), ensure_utc(end)
        capability = capability_for_interval(interval)
        spec: RequestSpec | None = self.bars_request(symbol, interval, start, end)
        bars: list[Bar] = []
        pages = 0
        while spec is not None:
            pages += 1
            if pages > self.max_pages:
                raise BadPayload(self.name, f"more than {self.max_pages} pages; refusing to follow")
            body = await self.get(spec, capability)
            page = self.parse_bars(body, symbol=symbol, interval=interval, start=start, end=end)
            bars.extend(page.items)
            spec = page.next
        # Vendors pad ranges to whole days; keep exactly what was asked for.
        bars = [b for b in bars if start <= b.ts < end]
        return validate_bars(self.name, bars, symbol=symbol, interval=interval, start=start, end=end)

    @_hiding_keys
    async def fetch_quotes(self, symbols: Sequence[str]) -> list[Quote]:
        out: list[Quote] = []
        for spec in self.quotes_request(symbols):
            body = await self.get(spec, Capability.QUOTES_L1)
            out.extend(self.parse_quotes(body, symbols))
        return out

    @_hiding_keys
    async def fetch_options_chain(
        self, symbol: str, expiration: date | None = None, *, until: date | None = None
    ) -> list[OptionQuote]:
        first = self.options_request(symbol, expiration, None if expiration is not None else until)
        out = await self.paged(
            first,
            Capability.OPTIONS_CHAIN,
            lambda body, _spec: self.parse_options(body, symbol=symbol),
            lambda page: self.options_next(first, page),
        )
        # Vendors whose request cannot say "until" get it applied here.
        return out if until is None else [q for q in out if q.expiration <= until]

    @_hiding_keys
    async def fetch_corporate_actions(self, symbol: str, start: date, end: date) -> list[CorporateAction]:
        """Every split and dividend of ``symbol`` with ``start <= ex_date <= end``, by ex_date.

        Each walk of ``actions_requests`` is followed page by page; amounts are in the share
        basis of their own ex_date (the vendor's ``parse_actions`` translates where needed).
        """
        out: list[CorporateAction] = []
        for first in self.actions_requests(symbol, start, end):
            out.extend(
                await self.paged(
                    first,
                    Capability.CORPORATE_ACTIONS,
                    lambda body, spec: self.parse_actions(body, symbol=symbol, spec=spec),
                )
            )
        return sorted((a for a in out if start <= a.ex_date <= end), key=lambda a: (a.ex_date, a.type.value))

    @_hiding_keys
    async def fetch_profile(self, symbol: str) -> CompanyProfile:
        """One GET of the vendor's profile of ``symbol``; a profile unfit to store is BadPayload."""
        body = await self.get(self.profile_request(symbol), Capability.PROFILE)
        with self.reading("profile"):
            profile = self.parse_profile(body, symbol=symbol)
        try:
            return validate_profile(self.name, profile, symbol=symbol)
        except BadPayload as exc:
            self.hide_keys_in(exc)  # the message quotes vendor text, which may echo the key
            raise

    async def paged(
        self,
        first: RequestSpec,
        capability: Capability,
        parse: Callable[[bytes, RequestSpec], Page[T]],
        follow: Callable[[Page[T]], RequestSpec | None] | None = None,
    ) -> list[T]:
        """Every item of a paged walk from ``first``: ``parse`` reads one answer (it gets the
        request it answers), ``follow`` names the next request (default: the page's own)."""
        spec: RequestSpec | None = first
        out: list[T] = []
        pages = 0
        while spec is not None:
            pages += 1
            if pages > self.max_pages:
                raise BadPayload(self.name, f"more than {self.max_pages} pages; refusing to follow")
            page = parse(await self.get(spec, capability), spec)
            out.extend(page.items)
            spec = follow(page) if follow is not None else page.next
        return out

    async def get(self, spec: RequestSpec, capability: Capability) -> bytes:
        """One rate-limited GET; transport failures and error statuses become typed errors."""
        await self.limiter.acquire(self.name, self.limits)
        url = (
            spec.path
            if spec.path.startswith(("http://", "https://"))
            else f"{self.base_url}/{spec.path.lstrip('/')}"
        )
        try:
            async with transport(self.name):
                response = await self._client.get(
                    url, params=spec.params or None, headers=spec.headers or None
                )
        except httpx.TimeoutException:
            raise Unavailable(self.name, f"timeout on {redact(url)}", code="timeout") from None
        except httpx.HTTPError as exc:
            raise Unavailable(self.name, f"{type(exc).__name__} on {redact(url)}", code="connect") from None
        self.check_response(response, capability)
        return response.content

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- helpers for subclasses ----------------------------------------------------
    def bad(self, message: str) -> BadPayload:
        exc = BadPayload(self.name, message)
        self.hide_keys_in(exc)  # parsers quote the body, which may echo the key
        return exc

    def json_object(self, body: bytes) -> dict[str, Any]:
        """``body`` as a JSON object, or BadPayload saying what it was instead."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise self.bad(f"not JSON: {body[:80]!r}") from None
        if not isinstance(doc, dict):
            raise self.bad(f"expected a JSON object, got {type(doc).__name__}")
        return doc

    def profile_figure(self, row: dict[str, Any], field: str, *, scale: float = 1.0) -> float | None:
        """A company profile's figure (market cap, share count) in units: ``scale`` times the
        sent value. Missing, null or 0 is unknown (vendors' way for funds and ETFs), not
        worthless; anything but a number is a bad payload."""
        value = row.get(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.bad(f"{field} {value!r} is not a number")
        return float(value) * scale if value else None

    @contextmanager
    def reading(self, what: str) -> Iterator[None]:
        """Raise ``SHAPE_ERRORS`` from the block as BadPayload naming ``what`` was read.

        Typed errors the block raises (BadPayload, NoData ...) pass through unchanged.
        """
        try:
            yield
        except SHAPE_ERRORS as exc:
            raise self.bad(f"malformed {what}: {type(exc).__name__}: {exc}"[:300]) from None

    def bar(
        self,
        symbol: str,
        interval: Interval,
        ts: datetime,
        o: float,
        h: float,
        low: float,
        c: float,
        v: float,
    ) -> Bar:
        return Bar(
            symbol, interval, ts, float(o), float(h), float(low), float(c), float(v), self.name, self.adjusted
        )


def profile_text(value: Any) -> str:
    """A company profile's text field; vendors write null or "" for what they do not know."""
    return "" if value is None else str(value).strip()


def optional_date(value: Any) -> date | None:
    """A vendor's ``YYYY-MM-DD`` date (a longer ISO stamp is cut to its date), or None for
    the ways vendors say "unknown": null, ``""``, ``"None"`` (Alpha Vantage), ``"n/a"``."""
    if value is None:
        return None
    text = str(value).strip()
    if text.lower() in ("", "none", "null", "n/a", "0000-00-00"):
        return None
    return date.fromisoformat(text[:10])


def retry_after(response: httpx.Response, default: float = 60.0) -> float:
    """Seconds from a Retry-After header (seconds form), else ``default``."""
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


def _short(response: httpx.Response) -> str:
    text = response.text[:200].replace("\n", " ")
    return redact(f"HTTP {response.status_code} from {response.request.url.path}: {text}")


__all__ = [
    "SHAPE_ERRORS",
    "HttpProvider",
    "Page",
    "ProviderError",
    "RequestSpec",
    "optional_date",
    "redact",
    "retry_after",
]
