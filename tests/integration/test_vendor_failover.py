"""The router over two sim-servers speaking different vendors' wire formats: stop the first
mid-session, and the second fills in with no bar missing (real sockets, real adapters)."""

from __future__ import annotations

from datetime import UTC, datetime

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval
from mds.ingest.ingestor import BarIngestor
from mds.observability.metrics import Metrics
from mds.providers.registry import build_providers
from mds.providers.sim.market import ground_truth
from mds.routing.router import Router
from mds.storage.sqlite import SqliteStore
from tests.contract.vendors.harness import SimServerProcess

OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
MIDDAY = datetime(2025, 10, 8, 16, 0, tzinfo=UTC)
CLOSE = datetime(2025, 10, 8, 20, 0, tzinfo=UTC)


async def test_failover_between_vendor_formats(tmp_path) -> None:
    primary, backup = SimServerProcess("polygon"), SimServerProcess("finnhub")
    env = {
        "POLICY_BARS_1M": "polygon,finnhub",
        "POLICY_EOD": "polygon,finnhub",
        "POLICY_QUOTES_L1": "polygon,finnhub",
        "POLICY_OPTIONS_CHAIN": "polygon",
        "POLYGON_API_KEY": "k",
        "FINNHUB_API_KEY": "k",
        "POLYGON_BASE_URL": primary.url,
        "FINNHUB_BASE_URL": backup.url,
        "PROVIDER_TIMEOUT_SEC": "5",
    }
    settings = load_settings(env)
    clock = ManualClock(datetime(2025, 10, 8, 20, 30, tzinfo=UTC))
    calendar = MarketCalendar()
    store = SqliteStore(str(tmp_path / "f.db"))
    await store.open()
    providers = build_providers(settings, clock, calendar, env)
    metrics = Metrics()
    ingestor = BarIngestor(
        store=store,
        router=Router(providers, settings, clock, metrics),
        calendar=calendar,
        clock=clock,
        metrics=metrics,
    )
    try:
        morning = await ingestor.ingest("AAPL", Interval.M1, OPEN, MIDDAY)
        assert morning.provider == "polygon" and morning.complete
        primary.stop()
        afternoon = await ingestor.ingest("AAPL", Interval.M1, MIDDAY, CLOSE)
        assert afternoon.provider == "finnhub" and afternoon.complete
        stored = await store.read_bars("AAPL", Interval.M1, OPEN, CLOSE)
        truth = ground_truth("AAPL", Interval.M1, OPEN, CLOSE)
        assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in stored] == [
            (t.ts, t.open, t.high, t.low, t.close, t.volume) for t in truth
        ]
        assert {b.provider for b in stored[:150]} == {"polygon"}
        assert {b.provider for b in stored[150:]} == {"finnhub"}
        assert (
            metrics.value("provider_errors_total", provider="polygon", endpoint="bars_1m", code="connect")
            == 1
        )
    finally:
        for p in providers.values():
            await p.aclose()
        await store.close()
        primary.stop()
        backup.stop()
