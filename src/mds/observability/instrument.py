"""Which calls of the long-lived parts get a span: store reads and writes, market reads."""

from __future__ import annotations

from mds.observability.tracing import Tracing, coroutine_methods, instrument
from mds.services.market import MarketService
from mds.storage.base import Store

#: Every Store call but opening, closing and migrating (start-up, not request work).
STORE_CALLS = coroutine_methods(Store, exclude=("open", "close", "migrate"))
#: MarketService reads that reach the store. ``kept_bars`` is left out on purpose: it is a
#: memory look-up cheaper than a span, on the hottest path (the request span covers it).
MARKET_READS = ("bars", "bars_json", "history", "price", "batch")


def instrument_store(store: Store, tracing: Tracing) -> None:
    """Spans ``store.<call>`` around ``store``'s calls, tagged with its backend."""
    system = "postgresql" if type(store).__name__.startswith("Postgres") else "sqlite"
    instrument(store, tracing, "store", STORE_CALLS, {"db.system.name": system})


def instrument_market(market: MarketService, tracing: Tracing) -> None:
    instrument(market, tracing, "market", MARKET_READS)
