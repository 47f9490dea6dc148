"""The Provider protocol and the checks every provider's output passes before storage."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from mds.domain.actions import CorporateAction
from mds.domain.macro import MacroObservation
from mds.domain.models import Bar, Capability, Interval, OptionQuote, Quote
from mds.domain.profile import CompanyProfile
from mds.errors import BadPayload


class Provider(Protocol):
    """A source of bars and quotes. Failures are raised as ``mds.errors.ProviderError``s.

    ``name``, ``capabilities`` and ``times_transport`` are read-only members: a vendor
    adapter declares them once for its class (``ClassVar``s of ``HttpProvider``), a sim
    provider per instance, and the router only reads them.
    """

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    @property
    def times_transport(self) -> bool:
        """True when the adapter wraps each exchange with the vendor in
        ``mds.routing.timing.transport()``; the router then measures and times out only
        that, not MDS's own waits. Providers without it are measured as a whole."""
        ...

    @property
    def configured(self) -> bool:
        """False when the provider lacks its key; the router skips it without an error."""
        ...

    async def fetch_bars(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Bar]:
        """Bars with ``start <= ts < end``, ``ts`` the UTC open time, in time order."""
        ...

    async def fetch_quotes(self, symbols: Sequence[str]) -> list[Quote]: ...

    async def aclose(self) -> None: ...


class OptionsProvider(Provider, Protocol):
    """A provider with ``Capability.OPTIONS_CHAIN``."""

    async def fetch_options_chain(
        self, symbol: str, expiration: date | None = None, *, until: date | None = None
    ) -> list[OptionQuote]:
        """Every contract of ``symbol``'s chain as quoted: one ``expiration``, or every one
        listed on or before ``until`` (all when both are None)."""
        ...


class MacroProvider(Provider, Protocol):
    """A provider with ``Capability.MACRO``: economic series with their release history."""

    async def fetch_macro_series(
        self,
        series: str,
        *,
        start: date | None = None,
        end: date | None = None,
        vintages: bool = False,
    ) -> list[MacroObservation]:
        """Observations of ``series`` dated ``start..end`` (inclusive). With ``vintages``,
        every value ever published (each with its realtime period, ALFRED); without, the
        values current today."""
        ...


class CorporateActionsProvider(Provider, Protocol):
    """A provider with ``Capability.CORPORATE_ACTIONS``: splits and cash dividends."""

    async def fetch_corporate_actions(self, symbol: str, start: date, end: date) -> list[CorporateAction]:
        """Every split and dividend of ``symbol`` with ``start <= ex_date <= end``, by ex_date.

        Amounts are in the share basis of their own ex_date (a vendor that reports dividends
        adjusted for later splits is translated back); ``as_of`` is left None.
        """
        ...


class ProfileProvider(Provider, Protocol):
    """A provider with ``Capability.PROFILE``: a company's market cap and share count."""

    async def fetch_profile(self, symbol: str) -> CompanyProfile:
        """What the vendor says about ``symbol`` now (``as_of`` left None); ``NoData`` when it
        knows no such symbol, ``BadPayload`` when its answer is unfit to store."""
        ...


def validate_bars(
    provider: str,
    bars: Sequence[Bar],
    *,
    symbol: str,
    interval: Interval,
    start: datetime,
    end: datetime,
) -> list[Bar]:
    """Return ``bars`` sorted by time, or raise BadPayload if any one is unfit to store.

    One bad bar rejects the whole response: a vendor that sends an impossible bar may
    have sent other wrong ones that look plausible.
    """
    seen: set[datetime] = set()
    for bar in bars:
        if bar.symbol != symbol or bar.interval is not interval:
            raise BadPayload(
                provider, f"bar for {bar.symbol}/{bar.interval.value}, asked {symbol}/{interval.value}"
            )
        problems = bar.problems()
        if problems:
            raise BadPayload(provider, f"{symbol} {bar.ts.isoformat()}: {'; '.join(problems)}")
        if not (start <= bar.ts < end):
            raise BadPayload(provider, f"{symbol} bar at {bar.ts.isoformat()} outside the range asked")
        if bar.ts in seen:
            raise BadPayload(provider, f"{symbol} duplicate bar at {bar.ts.isoformat()}")
        seen.add(bar.ts)
    return sorted(bars, key=lambda b: b.ts)


def validate_profile(provider: str, profile: CompanyProfile, *, symbol: str) -> CompanyProfile:
    """Return ``profile`` labelled with ``provider``, or raise BadPayload if it is unfit to store
    (another symbol's, a negative or non-finite figure, or nothing said at all)."""
    problems = profile.problems()
    if profile.symbol != symbol:
        problems.insert(0, f"profile for {profile.symbol!r}, asked {symbol}")
    if problems:
        raise BadPayload(provider, f"{symbol} profile: {'; '.join(problems)}")
    return profile if profile.provider == provider else dataclasses.replace(profile, provider=provider)
