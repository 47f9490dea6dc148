"""Option chains, their metrics and strategies: routed, priced by MDS, cached, stored, streamed.

One refresh of an underlying fetches its whole chain through the router
(``POLICY_OPTIONS_CHAIN``, with failover), prices every contract with MDS's own IV
(:mod:`mds.options.chain`), computes the metrics (:mod:`mds.options.metrics`), stores them
point in time in ``options_metrics`` and announces them on the ``options:<SYMBOL>`` stream.
Reads within ``CACHE_TTL_OPTIONS_CHAIN_SEC`` (clock seconds) are served from the priced
chain this process holds, so a metrics read costs no vendor call and no recomputation.
The cache is per process: scaled out, each API process fetches at most once per TTL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, cast
from zoneinfo import ZoneInfo

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Capability, OptionQuote
from mds.domain.options import Chain, OptionsMetricRow, PricedContract
from mds.errors import InvalidRequest, MdsError, NoData, NotFound
from mds.observability.metrics import Metrics
from mds.options.chain import filter_chain, price_chain
from mds.options.metrics import OptionsMetrics, compute_metrics, metric_rows
from mds.options.payoff import Leg
from mds.options.pricing import rate_from_treasury_yield
from mds.options.strategies import SortKey, Strategy, StrategyType, build_strategies
from mds.providers.base import OptionsProvider, Provider
from mds.routing.router import Router
from mds.serialize import iso
from mds.services.macro import MacroService
from mds.services.market import MarketService
from mds.storage.base import OptionsMetricsStore
from mds.stream.hub import Hub, SnapshotSource
from mds.stream.publisher import StreamPublisher

log = logging.getLogger(__name__)

#: The macro series whose newest value is the risk-free rate (3-month Treasury, percent).
RATE_SERIES = "DGS3MO"
STREAM_PREFIX = "options:"


def stream_key(symbol: str) -> str:
    """The stream an underlying's option updates travel on (beside its bar stream)."""
    return f"{STREAM_PREFIX}{symbol}"


@dataclass(frozen=True)
class OptionsSnapshot:
    """One refresh: the priced chain, its metrics, and the contracts whose quotes changed."""

    chain: Chain
    metrics: OptionsMetrics
    changed: list[PricedContract]
    fetched_at: datetime


class OptionsService:
    def __init__(
        self,
        *,
        router: Router,
        store: OptionsMetricsStore,
        market: MarketService,
        macro: MacroService,
        clock: Clock,
        calendar: MarketCalendar,
        settings: Settings,
        metrics: Metrics,
        publisher: StreamPublisher | None = None,
    ) -> None:
        self.router = router
        self.store = store
        self.market = market
        self.macro = macro
        self.clock = clock
        self.calendar = calendar
        self.settings = settings
        self.metrics = metrics
        self.publisher = publisher
        self._cache: dict[str, OptionsSnapshot] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # -- reads ---------------------------------------------------------------------------
    async def current(self, symbol: str) -> OptionsSnapshot:
        """The cached snapshot while fresh, else a refresh (one at a time per symbol)."""
        entry = await self.market.require_symbol(symbol)
        cached = self._fresh(entry.symbol)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(entry.symbol, asyncio.Lock())
        async with lock:
            cached = self._fresh(entry.symbol)  # another caller refreshed while this one waited
            return cached if cached is not None else await self._refresh(entry.symbol)

    async def refresh(self, symbol: str) -> OptionsSnapshot:
        """Fetch, price, store and announce now, whatever the cache holds."""
        entry = await self.market.require_symbol(symbol)
        async with self._locks.setdefault(entry.symbol, asyncio.Lock()):
            return await self._refresh(entry.symbol)

    async def chain(
        self, symbol: str, *, expiration: date | None = None, max_days: int | None = None
    ) -> Chain:
        """The priced chain: one ``expiration`` (422 naming it when not listed), else every
        expiration up to ``max_days`` (default OPTIONS_MAX_DAYS) calendar days out."""
        snap = await self.current(symbol)
        today = self._today()
        if expiration is not None and expiration not in snap.chain.expirations:
            listed = ", ".join(d.isoformat() for d in snap.chain.expirations[:12])
            raise InvalidRequest(
                "expiration",
                f"{expiration.isoformat()} is not a listed expiration of {snap.chain.symbol} within"
                f" OPTIONS_MAX_DAYS ({self.settings.OPTIONS_MAX_DAYS} days); listed: {listed}",
            )
        if max_days is not None and max_days > self.settings.OPTIONS_MAX_DAYS:
            raise InvalidRequest(
                "max_days",
                f"at most OPTIONS_MAX_DAYS ({self.settings.OPTIONS_MAX_DAYS}), the horizon MDS fetches",
            )
        days = None if expiration is not None else (max_days or self.settings.OPTIONS_MAX_DAYS)
        return filter_chain(snap.chain, expiration=expiration, max_days=days, today=today)

    async def strategies(
        self,
        symbol: str,
        *,
        type: StrategyType,
        max_days: int | None,
        limit: int,
        sort: SortKey,
    ) -> tuple[OptionsSnapshot, list[Strategy]]:
        snap = await self.current(symbol)
        found = build_strategies(
            snap.chain,
            type=type,
            max_days=max_days or self.settings.OPTIONS_MAX_DAYS,
            today=self._today(),
            limit=limit,
            sort=sort,
        )
        return snap, found

    async def history(
        self,
        symbol: str,
        *,
        metric: str | None,
        tenor: str | None,
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> list[OptionsMetricRow]:
        entry = await self.market.require_symbol(symbol)
        return await self.store.options_metrics_history(
            entry.symbol, metric=metric, tenor=tenor, start=start, end=end, limit=limit
        )

    # -- the refresh ---------------------------------------------------------------------
    def _fresh(self, symbol: str) -> OptionsSnapshot | None:
        snap = self._cache.get(symbol)
        ttl = timedelta(seconds=self.settings.CACHE_TTL_OPTIONS_CHAIN_SEC)
        if snap is not None and self.clock.now() - snap.fetched_at < ttl:
            return snap
        return None

    async def _refresh(self, symbol: str) -> OptionsSnapshot:
        try:
            routed = await self.router.call(
                Capability.OPTIONS_CHAIN, partial(_fetch, symbol=symbol, until=self._horizon())
            )
        except NoData as exc:
            raise NotFound("option chain", f"{symbol} ({exc.provider}: {exc.message or 'no data'})") from None
        quotes: Sequence[OptionQuote] = routed.value
        if not quotes:
            raise NotFound("option chain", f"{symbol} (no contracts listed by {routed.provider})")
        now = self.clock.now()
        spot = await self._spot(symbol, quotes)
        rate, rate_source = await self._rate()
        chain = price_chain(
            quotes,
            symbol=symbol,
            spot=spot,
            as_of=now,
            rate=rate,
            rate_source=rate_source,
            provider=routed.provider,
            calendar=self.calendar,
        )
        if chain.dropped:
            # Crossed, negative or strike-less contracts: never priced, stored or served.
            self.metrics.provider_bad_payloads_total.labels(provider=routed.provider).inc(chain.dropped)
            log.warning(
                "%s option chain from %s: %d contracts dropped", symbol, routed.provider, chain.dropped
            )
        computed = compute_metrics(chain)
        previous = self._cache.get(symbol)
        snap = OptionsSnapshot(chain, computed, _changed(previous, chain), now)
        self._cache[symbol] = snap
        try:
            await self.store.write_options_metrics(metric_rows(computed))
        except Exception:  # noqa: BLE001 - the answer stands; the history misses one point
            log.exception("%s: options metrics not stored", symbol)
        await self._announce(snap)
        return snap

    async def _spot(self, symbol: str, quotes: Sequence[OptionQuote]) -> float:
        """The vendor's underlying price beside the chain (same moment as its quotes), else
        the newest price MDS knows."""
        for q in quotes:
            if q.underlying_price is not None and q.underlying_price > 0:
                return q.underlying_price
        price = await self.market.price(symbol)
        return float(price["price"])

    async def _rate(self) -> tuple[float, str]:
        row = await self.macro.latest_value(RATE_SERIES)
        if row is not None and row.value is not None:
            return rate_from_treasury_yield(row.value), f"{RATE_SERIES} {row.date.isoformat()}"
        return self.settings.RISK_FREE_RATE, "RISK_FREE_RATE"

    async def _announce(self, snap: OptionsSnapshot) -> None:
        if self.publisher is None:
            return
        symbol = snap.chain.symbol
        # The stream key last: metrics_json carries the underlying's own "symbol".
        await self.publisher.publish(
            {
                **metrics_json(snap.metrics),
                "type": "options_metrics",
                "symbol": stream_key(symbol),
                "underlying": symbol,
            }
        )
        await self.publisher.publish(
            {
                "type": "options_chain",
                "symbol": stream_key(symbol),
                **chain_header(snap.chain),
                "changed": len(snap.changed),
                "contracts": [contract_json(c) for c in snap.changed],
            }
        )

    def _horizon(self) -> date:
        return self._today() + timedelta(days=self.settings.OPTIONS_MAX_DAYS)

    def _today(self) -> date:
        return self.clock.now().astimezone(ZoneInfo(self.calendar.zone)).date()

    async def stream_snapshot(self, symbol: str) -> dict[str, Any]:
        """What an options stream client gets first: the current metrics and whole chain."""
        snap = await self.current(symbol)
        return {
            "underlying": snap.chain.symbol,
            "metrics": metrics_json(snap.metrics),
            "chain": chain_json(snap.chain),
        }


class StreamSnapshots:
    """The hub's snapshot source and symbol check for both kinds of stream: an
    ``options:<SYMBOL>`` stream gets the options snapshot, any other the bars one."""

    def __init__(self, bars: SnapshotSource, options: OptionsService, market: MarketService) -> None:
        self.bars = bars
        self.options = options
        self.market = market

    async def take(
        self, symbol: str, interval: str, channels: frozenset[str], adjust: str = "raw"
    ) -> dict[str, Any]:
        if not symbol.startswith(STREAM_PREFIX):
            return await self.bars.take(symbol, interval, channels, adjust)
        underlying = symbol.removeprefix(STREAM_PREFIX)
        try:
            return await self.options.stream_snapshot(underlying)
        except MdsError as exc:
            # No chain right now (no provider, none listed): the client stays subscribed and
            # gets the next refresh that succeeds; the snapshot says why it is empty.
            return {"underlying": underlying, "metrics": None, "chain": None, "error": str(exc)[:300]}

    async def known(self, symbol: str) -> bool:
        return await self.market.has_symbol(symbol.removeprefix(STREAM_PREFIX))


async def refresh_streamed(options: OptionsService, hub: Hub, clock: Clock) -> None:
    """While clients watch an underlying's options stream, refresh it once per cache TTL so
    each refresh reaches them (runs in API processes, where the hub's clients are)."""
    while True:
        # Wall seconds for the TTL's clock seconds: a loop that slept on a manual clock
        # would move that clock for everyone else.
        await asyncio.sleep(options.settings.CACHE_TTL_OPTIONS_CHAIN_SEC / clock.speed)
        for stream in hub.watched(STREAM_PREFIX):
            try:
                await options.current(stream.removeprefix(STREAM_PREFIX))
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.warning("options stream %s: refresh failed: %s", stream, exc)


async def _fetch(provider: Provider, *, symbol: str, until: date) -> list[OptionQuote]:
    # The router calls only providers that declare Capability.OPTIONS_CHAIN, which implement it.
    return await cast(OptionsProvider, provider).fetch_options_chain(symbol, None, until=until)


def _quote_key(c: PricedContract) -> tuple[Any, ...]:
    q = c.quote
    return (q.bid, q.ask, q.last, q.volume, q.open_interest)


def _changed(previous: OptionsSnapshot | None, chain: Chain) -> list[PricedContract]:
    """Contracts new or with a different quote since the previous refresh (all, the first time)."""
    if previous is None:
        return list(chain.contracts)
    before = {c.quote.contract: _quote_key(c) for c in previous.chain.contracts}
    return [c for c in chain.contracts if before.get(c.quote.contract) != _quote_key(c)]


# -- JSON --------------------------------------------------------------------------------


def contract_json(c: PricedContract) -> dict[str, Any]:
    q = c.quote
    return {
        "contract": q.contract,
        "type": q.right.value,
        "strike": q.strike,
        "expiration": q.expiration.isoformat(),
        "bid": q.bid,
        "ask": q.ask,
        "mid": _round(c.mid, 6),
        "last": q.last,
        "volume": q.volume,
        "open_interest": q.open_interest,
        "vendor_iv": q.implied_volatility,
        "iv": _round(c.iv, 6),
        "iv_reason": c.iv_reason.value if c.iv_reason is not None else None,
        "delta": _round(c.delta, 6),
        "quote_time": iso(q.ts) if q.ts is not None else None,
    }


def chain_header(chain: Chain) -> dict[str, Any]:
    return {
        "underlying": chain.symbol,
        "as_of": iso(chain.as_of),
        "spot": chain.spot,
        "rate": chain.rate,
        "rate_source": chain.rate_source,
        "dividend_yield": chain.dividend_yield,
        "provider": chain.provider,
        "dropped": chain.dropped,
        "expirations": [d.isoformat() for d in chain.expirations],
    }


def chain_json(chain: Chain) -> dict[str, Any]:
    return {
        "symbol": chain.symbol,
        **chain_header(chain),
        "count": len(chain.contracts),
        "contracts": [contract_json(c) for c in chain.contracts],
    }


def metrics_json(m: OptionsMetrics) -> dict[str, Any]:
    return {**m.to_json(), "as_of": iso(m.as_of)}


def leg_json(leg: Leg) -> dict[str, Any]:
    return {
        "contract": leg.contract,
        "type": leg.right.value if leg.right is not None else "stock",
        "strike": leg.strike,
        "expiration": leg.expiration.isoformat() if leg.expiration is not None else None,
        "side": "long" if leg.side > 0 else "short",
        "quantity": leg.quantity,
        "price": leg.price,
        "iv": _round(leg.iv, 6),
        "delta": _round(leg.delta, 6),
    }


def strategy_json(s: Strategy) -> dict[str, Any]:
    return {
        "type": s.type.value,
        "expiration": s.expiration.isoformat(),
        "days": s.days,
        "legs": [leg_json(leg) for leg in s.legs],
        "net": round(s.net, 6),
        "net_kind": "credit" if s.net > 0 else "debit" if s.net < 0 else "even",
        "max_profit": _round(s.max_profit, 6),
        "max_loss": _round(s.max_loss, 6),
        "breakevens": [round(b, 6) for b in s.breakevens],
        "pop": round(s.pop, 6),
        "pop_iv": round(s.pop_iv, 6),
        "return_on_risk": _round(s.return_on_risk, 6),
        "multiplier": s.multiplier,
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


__all__ = [
    "OptionsService",
    "OptionsSnapshot",
    "chain_json",
    "contract_json",
    "metrics_json",
    "stream_key",
    "strategy_json",
]
