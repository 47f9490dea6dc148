"""Acceptance: one trading session on a virtual clock with outages and lossy providers.

210 symbols in three tiers; the primary sim is down 14:00-14:30, the backup 14:10-14:20
(so every provider is down for ten minutes); both drop 1% of bars from every answer and
enforce a rate limit. While the session runs, T0's newest stored bar is never more than
two T0 cadences behind the clock, except while every provider is down and just after.
When the session ends and the backlog drains, the store must equal the sim's ground
truth for every symbol and minute, no rate limit may have been exceeded, T0's share of
the backlog standing when the providers came back must have drained before T1's, and no
outage job may be dead-lettered.

The session runs on a ``VirtualClock``: time moves only when the service is idle, so a
slow or loaded machine makes the test take longer, never the service fall behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mds.config import Settings, load_settings
from mds.domain.clock import VirtualClock
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillStatus
from mds.ingest.scan import scan_gaps
from mds.providers.sim.market import ground_truth
from mds.runtime import open_runtime
from tests.helpers import SIM_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAY = datetime(2025, 10, 8, tzinfo=UTC)
OPEN, CLOSE = DAY.replace(hour=13, minute=30), DAY.replace(hour=20)
PRIMARY_DOWN = (DAY.replace(hour=14), DAY.replace(hour=14, minute=30))
ALL_DOWN = (DAY.replace(hour=14, minute=10), DAY.replace(hour=14, minute=20))
TIERS = {Tier.T0: 60, Tier.T1: 70, Tier.T2: 80}
BAR = timedelta(minutes=1)

# Nominal speed: what MDS's clock-to-real conversions use (a backfill retry put off by
# d / speed real seconds stands for d clock seconds). The replay runs as fast as the
# work allows, whatever this is.
SPEED = 240.0
CADENCE_T0 = 60
BREAKER_OPEN_SECONDS = 30
# The seeds' bound: T0's newest bar at most two cadences behind the clock. Exact here:
# sweeps fall on whole minutes (the clock starts on one and the sweeper ticks every 15 s),
# and a sweep stores every bar closed by then, so the lag is 0 after it and at most one
# cadence before the next. A bar the vendor dropped from an answer (1%) is fetched again
# by the next sweep if its backfill has not stored it first: two cadences at most.
LAG_BOUND = 2 * CADENCE_T0
SAMPLE_EVERY = 5.0  # clock seconds between looks at T0's newest bars
# Not checked while every provider is down, nor while the router recovers from it: a
# breaker whose half-open probe failed just before 14:20 waits BREAKER_OPEN_SECONDS for
# the next probe; the first sweep after that (within one cadence) takes the probe, and the
# symbols it fetches beside the probe wait for it (the router holds calls that find a
# probe out) and are stored with it. The primary-only outage (14:00-14:10 and
# 14:20-14:30) is checked: failover within each call must hide it.
RECOVERY = timedelta(seconds=BREAKER_OPEN_SECONDS + CADENCE_T0)
UNCHECKED = (ALL_DOWN[0], ALL_DOWN[1] + RECOVERY)
SESSION_END = CLOSE + timedelta(minutes=3)  # the sweep after the close has run by then
DRAIN_DEADLINE = CLOSE + timedelta(hours=3)  # clock time for the backlog to drain
WALL_LIMIT = 1200.0  # real seconds: a hang (time that stopped moving) fails the test


def _universe(path: Path) -> list[tuple[str, Tier]]:
    rows = [(f"{t.value}S{i:03d}", t) for t, n in TIERS.items() for i in range(n)]
    path.write_text("symbol,tier\n" + "".join(f"{s},{t.value}\n" for s, t in rows))
    return rows


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Sample:
    """One look at T0's newest stored bars, all taken at clock time ``t``."""

    t: datetime
    lag: float  # seconds: min(t, CLOSE) - the close of the worst symbol's newest bar
    symbol: str
    behind: int  # T0 symbols beyond LAG_BOUND
    live_depth: int
    live_inflight: int
    backfills_waiting: int
    breakers: str

    def checked(self) -> bool:
        return OPEN <= self.t < SESSION_END and not UNCHECKED[0] <= self.t < UNCHECKED[1]

    def describe(self) -> str:
        return (
            f"{self.t.time()} lag {self.lag:.0f}s ({self.symbol}, {self.behind} symbols over), "
            f"live queue {self.live_depth} waiting/{self.live_inflight} in flight, "
            f"{self.backfills_waiting} backfills, breakers {self.breakers}"
        )


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


# Past the test's own WALL_LIMIT, so that its message (time stopped moving) is what a hang shows.
@pytest.mark.timeout(WALL_LIMIT + 60)
async def test_session_with_outages_drains_to_ground_truth(tmp_path: Path) -> None:
    universe = _universe(tmp_path / "universe.csv")
    env = {
        **SIM_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path}/acc.db",
        "UNIVERSE_FILE": str(tmp_path / "universe.csv"),
        "CADENCE_T0__bars_1m": str(CADENCE_T0),
        "CADENCE_T1__bars_1m": "300",
        "CADENCE_T2__bars_1m": "900",
        **{f"CADENCE_{t}__quotes_l1": "86400" for t in ("T0", "T1", "T2")},
        "BREAKER_OPEN_SECONDS": str(BREAKER_OPEN_SECONDS),
        "SIM_OUTAGES": f"{_iso(PRIMARY_DOWN[0])}/{_iso(PRIMARY_DOWN[1])}",
        "SIM_BACKUP_OUTAGES": f"{_iso(ALL_DOWN[0])}/{_iso(ALL_DOWN[1])}",
        "SIM_MISSING_RATE": "0.01",
        "SIM_BACKUP_MISSING_RATE": "0.01",
        "SIM_RATE_LIMIT_PER_MIN": "900",
        "SIM_BACKUP_RATE_LIMIT_PER_MIN": "900",
        "LIVE_MAX_WINDOW_MINUTES": "5",
        "BACKFILL_LOOKBACK_DAYS_1M": "1",
        "BACKFILL_LOOKBACK_DAYS_1D": "0",
        "BACKFILL_CHUNK_MINUTES": "60",
        "BACKFILL_DISPATCH_RATE_PER_SEC": "10",
        "GAP_SCAN_INTERVAL_SEC": "600",
    }
    settings = load_settings(env)
    clock = VirtualClock(OPEN - timedelta(minutes=2), SPEED)
    breaker_log = _Lines()
    router_log = logging.getLogger("mds.routing.router")
    router_log.addHandler(breaker_log)
    wall0 = time.monotonic()
    try:
        async with asyncio.timeout(WALL_LIMIT), clock.driving():
            summary = await _run_session(settings, env, clock, universe, breaker_log)
    finally:
        router_log.removeHandler(breaker_log)
    print(f"\n{summary}; {clock.advances} clock advances; wall time {time.monotonic() - wall0:.0f} s")


def _check_live_lag(samples: list[Sample], breaker_log: _Lines) -> str:
    """Backfills never starved live ingestion and failover hid the primary's outage: T0's
    newest bar stayed within two cadences of the clock at every look outside UNCHECKED."""
    checked = [s for s in samples if s.checked()]
    looks = ((SESSION_END - OPEN) - (UNCHECKED[1] - UNCHECKED[0])) / timedelta(seconds=SAMPLE_EVERY)
    assert len(checked) > 0.9 * looks, f"too few looks: {len(checked)}"
    assert any(s.backfills_waiting for s in checked), "expected lower-tier backlogs while T0 was collecting"
    over = [s for s in checked if s.lag > LAG_BOUND]
    transitions = [line for line in breaker_log.lines if line.startswith("breaker ")]
    assert not over, (
        f"T0's newest bar trailed the clock by more than {LAG_BOUND}s at {len(over)} of {len(checked)} "
        "looks:\n  "
        + "\n  ".join(s.describe() for s in over[:15])
        + "\nbreaker transitions:\n  "
        + "\n  ".join(transitions[:40])
    )
    worst = max(checked, key=lambda s: s.lag)
    recovered = next((s.t for s in samples if s.t >= ALL_DOWN[1] and s.lag <= LAG_BOUND), None)
    return (
        f"T0 lag over {len(checked)} looks: max {worst.lag:.0f}s at {worst.t.time()} (bound {LAG_BOUND}s), "
        f"back within the bound at {recovered.time() if recovered else None} after the all-down outage; "
        f"{len(transitions)} breaker transitions"
    )


async def _run_session(
    settings: Settings,
    env: dict[str, str],
    clock: VirtualClock,
    universe: list[tuple[str, Tier]],
    breaker_log: _Lines,
) -> str:
    t0_symbols = [s for s, t in universe if t is Tier.T0]
    async with open_runtime(settings, clock=clock, environ=env) as rt:
        assert rt.collector is not None
        backfiller = rt.collector.backfiller
        samples: list[Sample] = []
        moved: list[datetime] = []

        async def look() -> None:
            while True:
                now = clock.now()
                # One query for every T0 symbol's newest bar (a query each made the look the
                # test's own largest cost: 60 store reads every 5 clock seconds).
                newest = await rt.store.last_bar_times(Interval.M1, t0_symbols)
                # Before the open nothing can be behind: an older bar counts as the open.
                closes = [(max(newest[s] + BAR, OPEN) if s in newest else OPEN, s) for s in t0_symbols]
                if clock.now() != now:
                    moved.append(now)  # the clock ran on while the store was being read
                reached = min(now, CLOSE)
                oldest, symbol = min(closes)
                samples.append(
                    Sample(
                        t=now,
                        lag=(reached - oldest).total_seconds(),
                        symbol=symbol,
                        behind=sum((reached - c).total_seconds() > LAG_BOUND for c, _ in closes),
                        live_depth=await rt.live_queue.depth(),
                        live_inflight=await rt.live_queue.inflight(),
                        backfills_waiting=backfiller.queued(),
                        breakers=",".join(f"{p}={rt.router.state(p).value}" for p in ("sim", "sim_backup")),
                    )
                )
                await clock.sleep(SAMPLE_EVERY)

        looker = asyncio.get_running_loop().create_task(look())
        await clock.sleep((SESSION_END - clock.now()).total_seconds())
        looker.cancel()
        await asyncio.gather(looker, return_exceptions=True)
        assert not moved, f"the virtual clock moved while a look read the store: {moved[:5]}"
        live_lag = _check_live_lag(samples, breaker_log)

        # After the close: scan until nothing is missing and the backlog is empty.
        symbols = [s for s, _ in universe]
        while True:
            if backfiller.active() == 0:
                gaps = await scan_gaps(
                    rt.store,
                    rt.calendar,
                    symbols=symbols,
                    interval=Interval.M1,
                    start=OPEN,
                    end=CLOSE,
                    now=clock.now(),
                )
                if not gaps:
                    break
                await backfiller.enqueue_gaps(gaps, Tier.T2)
            assert clock.now() < DRAIN_DEADLINE, f"backlog did not drain: {backfiller.active()} active"
            await clock.sleep(5)
        drained = clock.now()

        # Every symbol and minute equals the ground truth; nothing is duplicated or invented.
        for symbol, _ in universe:
            stored = await rt.store.read_bars(symbol, Interval.M1, OPEN, CLOSE)
            truth = ground_truth(symbol, Interval.M1, OPEN, CLOSE)
            assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in stored] == [
                (t.ts, t.open, t.high, t.low, t.close, t.volume) for t in truth
            ], symbol
        assert await rt.store.count_confirmed_empty(Interval.M1, OPEN, CLOSE) == 0

        # No provider's rate limit was exceeded.
        for name in ("sim", "sim_backup"):
            assert (
                rt.metrics.value("provider_errors_total", provider=name, endpoint="bars_1m", code="429") == 0
            )
        assert rt.metrics.value("provider_errors_total", provider="sim", endpoint="bars_1m", code="503") > 0

        # Jobs for the outage windows, queued while they lasted or soon after: none dead-lettered.
        jobs = await rt.store.list_backfills(limit=100_000)
        outage_jobs = [
            j
            for j in jobs
            if j.start < PRIMARY_DOWN[1]
            and j.end > PRIMARY_DOWN[0]
            and j.created_at <= PRIMARY_DOWN[1] + timedelta(minutes=15)
        ]
        assert not [j for j in outage_jobs if j.status is BackfillStatus.FAILED], "outage jobs dead-lettered"
        # The backlog standing when the providers came back (jobs for the hole that every
        # provider's outage left, queued while it lasted) drained T0 first. Not every outage
        # job: the hole's last minutes are queued by the first sweeps after it, and a bar one
        # answer dropped at 14:2x is backfilled in seconds whatever its tier; either would
        # decide the order by when it was found, not by priority.
        hole_jobs = [
            j
            for j in outage_jobs
            if j.start < ALL_DOWN[1] and j.end > ALL_DOWN[0] and j.created_at <= ALL_DOWN[1]
        ]
        done_at = {
            t: max(
                (j.updated_at for j in hole_jobs if j.priority is t and j.status is BackfillStatus.DONE),
                default=None,
            )
            for t in Tier
        }
        assert done_at[Tier.T0] is not None and done_at[Tier.T1] is not None
        assert done_at[Tier.T0] <= done_at[Tier.T1], done_at
        last = max(d for d in done_at.values() if d is not None)
        drain = (last - ALL_DOWN[1]).total_seconds()
        outage = (ALL_DOWN[1] - ALL_DOWN[0]).total_seconds()
        return (
            f"{live_lag}; all providers down {outage / 60:.0f} min (the primary "
            f"{(PRIMARY_DOWN[1] - PRIMARY_DOWN[0]).total_seconds() / 60:.0f} min); its backlog drained "
            f"{drain / 60:.1f} clock-min after it ended ({drain / outage:.2f}x the outage); "
            f"T0 done {done_at[Tier.T0].time()}, T1 done {done_at[Tier.T1].time()}; {len(hole_jobs)} jobs "
            f"standing, {len(outage_jobs)} outage jobs, {len(jobs)} jobs in all; drained at {drained.time()}"
        )
