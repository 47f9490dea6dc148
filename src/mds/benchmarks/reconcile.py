"""Reconciliation of stored 1m bars against a second sim provider.

Target (issue 17): 1,000 symbol-days of 1m bars (sim) reconciled in under 10 s, excluding
the provider's own rate limit. The store (a SQLite file) holds ``symbols`` × ``sessions``
sessions of the ``sim`` provider's 1m bars; ``sim_backup`` (no rate limit, ``noise`` price
noise, default none) is the second provider. Building the store is not timed; the run is:
reading the stored bars, fetching the same ranges from ``sim_backup`` through the router,
comparing bar by bar, and writing the scores.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mds.calendar import get_calendar
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval
from mds.observability.metrics import Metrics
from mds.providers.base import Provider
from mds.providers.sim.faults import SimFaults
from mds.providers.sim.market import SimMarket
from mds.providers.sim.provider import SimProvider
from mds.reconcile.service import Reconciler, ReconcileSettings
from mds.routing.router import Router
from mds.storage.sqlite import SqliteStore

#: Clock time of the run: the sessions compared all closed days before it.
NOW = datetime(2025, 10, 20, 15, 0, tzinfo=UTC)


class _TimedSim(SimProvider):
    """``sim_backup`` that adds up the seconds spent answering, so the report can say how
    much of the run was the provider's own work."""

    seconds = 0.0

    async def fetch_bars(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Bar]:
        t = time.perf_counter()
        try:
            return await super().fetch_bars(symbol, interval, start, end)
        finally:
            self.seconds += time.perf_counter() - t


def _symbol(i: int) -> str:
    return f"R{i:04d}"


async def _run(symbols: int, sessions: int, noise: float) -> dict[str, object]:
    calendar = get_calendar("XNYS")
    clock = ManualClock(NOW)
    market = SimMarket(seed=42, calendar=calendar)
    settings = load_settings({"POLICY_BARS_1M": "sim,sim_backup", "INDEX_SOURCES": ""})
    backup = _TimedSim("sim_backup", market, clock, SimFaults(price_noise=noise))
    providers: dict[str, Provider] = {
        "sim": SimProvider("sim", market, clock, SimFaults()),
        "sim_backup": backup,
    }
    router = Router(providers, settings, clock, Metrics())
    closed = calendar.closed_sessions(NOW - timedelta(days=1), sessions)
    start, end = closed[0].open, closed[-1].close
    names = [_symbol(i) for i in range(symbols)]
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-reconcile-"))
    store = SqliteStore(workdir / "bench.db")
    await store.open()
    try:
        stored = 0
        for name in names:
            bars = await providers["sim"].fetch_bars(name, Interval.M1, start, end)
            stored += (await store.write_bars(bars, as_of=NOW)).inserted
        reconciler = Reconciler(
            store=store, router=router, calendar=calendar, clock=clock, settings=ReconcileSettings()
        )
        t = time.perf_counter()
        report = await reconciler.run(symbols=names, interval=Interval.M1, start=start, end=end)
        seconds = time.perf_counter() - t
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    symbol_days = symbols * len(closed)
    assert report.compared_bars == stored, "every stored bar must have been compared"
    return {
        "benchmark": "reconcile",
        "symbols": symbols,
        "sessions": len(closed),
        "symbol_days": symbol_days,
        "bars_stored": stored,
        "bars_compared": report.compared_bars,
        "bars_differing": report.differing_bars,
        "seconds": round(seconds, 3),
        "ms_per_symbol_day": round(1000.0 * seconds / symbol_days, 3),
        # Wall seconds inside the second provider's fetch_bars (the sim generating its
        # answers: its own cost, like a vendor's response time) and the rest. An upper
        # bound: symbols are checked CONCURRENCY at a time, so a fetch's wall time can
        # include other symbols' work interleaved at its awaits.
        "provider_seconds": round(backup.seconds, 3),
        "reconcile_seconds": round(seconds - backup.seconds, 3),
        "limit_seconds": 10.0,
        "scores": {p: round(s, 4) for p, s in report.providers.items()},
    }


def run(symbols: int = 100, sessions: int = 10, noise: float = 0.0) -> dict[str, object]:
    """Build the store, time one reconciliation of every symbol over every session."""
    return asyncio.run(_run(symbols, sessions, noise))
