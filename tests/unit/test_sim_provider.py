"""SimProvider and SimFaults: each injectable fault, and how faults are configured."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

import pytest

from mds.domain.clock import ManualClock
from mds.domain.models import BarStatus, Capability, Interval
from mds.errors import BadPayload, ConfigError, RateLimited, Unavailable
from mds.providers.base import Provider
from mds.providers.sim import SimFaults, SimMarket, SimProvider, ground_truth
from tests.helpers import utc

SESSION_START, SESSION_END = utc(2025, 6, 11, 13, 30), utc(2025, 6, 11, 20)
NOW = utc(2025, 6, 11, 15, 0)


@pytest.fixture(scope="module")
def market() -> SimMarket:
    return SimMarket(seed=42)


def make(
    market: SimMarket, now: datetime = NOW, name: str = "sim", **faults: object
) -> tuple[SimProvider, ManualClock]:
    clock = ManualClock(now)
    return SimProvider(name, market, clock, SimFaults(**faults), rng_seed=1), clock  # type: ignore[arg-type]


async def test_a_healthy_provider_serves_what_is_known_at_now(market: SimMarket) -> None:
    provider, _ = make(market, name="sim_backup")
    as_protocol: Provider = provider  # a type checker proves SimProvider fits the protocol
    assert as_protocol.name == "sim_backup"
    bars = await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)
    assert len(bars) == 90  # 13:30 .. 14:59, nothing from 15:00 on
    assert bars == market.bars("AAPL", Interval.M1, SESSION_START, NOW, provider="sim_backup")
    hours = await provider.fetch_bars("AAPL", Interval.H1, SESSION_START, SESSION_END)
    assert [b.status for b in hours] == [BarStatus.FINAL, BarStatus.PROVISIONAL]
    assert provider.configured and Capability.QUOTES_L1 in provider.capabilities
    await provider.aclose()


async def test_outside_sessions_is_an_empty_answer(market: SimMarket) -> None:
    provider, _ = make(market, now=utc(2025, 7, 7))
    assert await provider.fetch_bars("AAPL", Interval.M1, utc(2025, 7, 4), utc(2025, 7, 5)) == []
    assert await provider.fetch_bars("AAPL", Interval.D1, utc(2025, 7, 5), utc(2025, 7, 7)) == []


def test_names_must_say_sim(market: SimMarket) -> None:
    with pytest.raises(ValueError, match="sim"):
        SimProvider("yahoo", market, ManualClock(NOW), SimFaults())


async def test_quotes(market: SimMarket) -> None:
    provider, clock = make(market)
    quotes = await provider.fetch_quotes(["AAPL", "MSFT"])
    assert [q.symbol for q in quotes] == ["AAPL", "MSFT"]
    assert all(q.ts == NOW and q.provider == "sim" for q in quotes)
    assert quotes[0] == market.quote("AAPL", NOW)
    clock.advance(600)
    assert (await provider.fetch_quotes(["AAPL"]))[0].last == market.quote("AAPL", clock.now()).last


# -- faults -----------------------------------------------------------------------------


async def test_outage_window(market: SimMarket) -> None:
    window = (utc(2025, 6, 11, 14), utc(2025, 6, 11, 14, 30))
    provider, clock = make(market, now=utc(2025, 6, 11, 13, 59, 59), outages=(window,))
    assert await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)
    for inside in (window[0], utc(2025, 6, 11, 14, 29, 59)):
        clock.set(inside)
        with pytest.raises(Unavailable) as err:
            await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)
        assert err.value.code == "503" and err.value.provider == "sim"
        with pytest.raises(Unavailable):
            await provider.fetch_quotes(["AAPL"])
    clock.set(window[1])
    assert await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)


async def test_error_rate_one_always_fails_and_zero_never(market: SimMarket) -> None:
    provider, _ = make(market, error_rate=1.0)
    for _ in range(5):
        with pytest.raises(Unavailable) as err:
            await provider.fetch_bars("AAPL", Interval.M5, SESSION_START, SESSION_END)
        assert err.value.code == "500"
    provider, _ = make(market, error_rate=0.0)
    for _ in range(5):
        assert await provider.fetch_bars("AAPL", Interval.M5, SESSION_START, SESSION_END)


async def test_error_rate_half_fails_about_half(market: SimMarket) -> None:
    provider, _ = make(market, error_rate=0.5)
    failures = 0
    for _ in range(200):
        try:
            await provider.fetch_quotes(["AAPL"])
        except Unavailable:
            failures += 1
    assert 60 < failures < 140


async def test_rate_limit_and_recovery(market: SimMarket) -> None:
    provider, clock = make(market, rate_limit_per_min=3)
    for _ in range(3):
        await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)
        clock.advance(10)
    # Calls at t=0, 10, 20; now t=30: the first slot frees at t=60.
    with pytest.raises(RateLimited) as err:
        await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)
    assert err.value.retry_after == pytest.approx(30, abs=1)
    assert not err.value.counts_as_failure
    with pytest.raises(RateLimited):
        await provider.fetch_quotes(["AAPL"])  # quotes share the budget
    clock.advance(60)
    for _ in range(3):
        await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)
    with pytest.raises(RateLimited):
        await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)


async def test_missing_rate_drops_a_fresh_subset_each_time(market: SimMarket) -> None:
    provider, _ = make(market, missing_rate=0.3)
    truth = market.bars("AAPL", Interval.M1, SESSION_START, NOW)
    first = await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)
    second = await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)
    assert 0 < len(first) < len(truth) and 0 < len(second) < len(truth)
    assert {b.ts for b in first} != {b.ts for b in second}
    by_ts = {b.ts: b for b in truth}
    assert all(by_ts[b.ts] == b for b in first + second)  # what is served is still true
    # Together, retries recover bars that one response lost.
    assert len({b.ts for b in first} | {b.ts for b in second}) > len(first)


async def test_malformed_rate_one_is_a_bad_payload(market: SimMarket) -> None:
    provider, _ = make(market, malformed_rate=1.0)
    messages = set()
    for _ in range(20):
        with pytest.raises(BadPayload) as err:
            await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)
        text = str(err.value)
        messages.update(kind for kind in ("non-finite", "< low") if kind in text)
        assert err.value.provider == "sim"
    assert messages == {"non-finite", "< low"}  # both kinds of corruption are drawn
    # An empty answer has nothing to corrupt.
    assert await provider.fetch_bars("AAPL", Interval.M1, utc(2025, 7, 4), utc(2025, 7, 5)) == []


async def test_fault_draws_are_reproducible_with_a_seed(market: SimMarket) -> None:
    async def run() -> list[int]:
        provider, _ = make(market, missing_rate=0.5)
        return [
            len(await provider.fetch_bars("AAPL", Interval.M1, SESSION_START, SESSION_END)) for _ in range(3)
        ]

    assert await run() == await run()


async def test_latency_is_real_time(market: SimMarket) -> None:
    provider, _ = make(market, latency_ms=50)
    t0 = time.perf_counter()
    await provider.fetch_quotes(["AAPL"])
    assert time.perf_counter() - t0 >= 0.045


async def test_two_providers_share_one_truth(market: SimMarket) -> None:
    clock = ManualClock(utc(2025, 6, 12))
    sim = SimProvider("sim", market, clock, SimFaults(error_rate=1.0))
    backup = SimProvider("sim_backup", market, clock, SimFaults())
    with pytest.raises(Unavailable):
        await sim.fetch_bars("AAPL", Interval.D1, utc(2025, 6, 1), utc(2025, 6, 12))
    bars = await backup.fetch_bars("AAPL", Interval.D1, utc(2025, 6, 1), utc(2025, 6, 12))
    truth = ground_truth("AAPL", Interval.D1, utc(2025, 6, 1), utc(2025, 6, 12))
    assert [b.with_(provider="sim") for b in bars] == truth


# -- configuration ----------------------------------------------------------------------


def test_defaults_are_a_perfect_provider() -> None:
    assert SimFaults.from_env({}) == SimFaults()
    assert SimFaults().rate_limit_per_min is None and SimFaults().seed == 42


def test_from_env_with_two_prefixes() -> None:
    env = {
        "SIM_SEED": "7",
        "SIM_LATENCY_MS": "25",
        "SIM_ERROR_RATE": "0.1",
        "SIM_OUTAGES": "2025-10-08T14:00:00Z/2025-10-08T14:30:00Z, "
        "2025-10-09T10:00:00-04:00/2025-10-09T11:00:00-04:00",
        "SIM_RATE_LIMIT_PER_MIN": "30",
        "SIM_MISSING_RATE": "0.02",
        "SIM_MALFORMED_RATE": "0.01",
        "SIM_BACKUP_SEED": "7",
        "SIM_BACKUP_ERROR_RATE": "0",
        "SIM_BACKUP_RATE_LIMIT_PER_MIN": "",
    }
    sim = SimFaults.from_env(env, "SIM_")
    assert sim == SimFaults(
        seed=7,
        latency_ms=25.0,
        error_rate=0.1,
        outages=(
            (utc(2025, 10, 8, 14), utc(2025, 10, 8, 14, 30)),
            (utc(2025, 10, 9, 14), utc(2025, 10, 9, 15)),
        ),
        rate_limit_per_min=30,
        missing_rate=0.02,
        malformed_rate=0.01,
    )
    assert sim.outages[1][0].tzinfo is not None
    assert sim.in_outage(utc(2025, 10, 9, 14, 59)) and not sim.in_outage(utc(2025, 10, 9, 15))
    # SIM_ settings do not leak into the backup, whose prefix is longer.
    assert SimFaults.from_env(env, "SIM_BACKUP_") == SimFaults(seed=7)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ERROR_RATE", "1.5"),
        ("ERROR_RATE", "-0.1"),
        ("ERROR_RATE", "often"),
        ("MISSING_RATE", "nan"),
        ("MALFORMED_RATE", "2"),
        ("LATENCY_MS", "-5"),
        ("RATE_LIMIT_PER_MIN", "0"),
        ("RATE_LIMIT_PER_MIN", "2.5"),
        ("SEED", "x"),
        ("OUTAGES", "2025-10-08T14:00:00Z"),
        ("OUTAGES", "yesterday/today"),
        ("OUTAGES", "2025-10-08T14:30:00Z/2025-10-08T14:00:00Z"),
        ("OUTAGES", "2025-10-08T14:00:00/2025-10-08T14:30:00"),  # no zone
    ],
)
@pytest.mark.parametrize("prefix", ["SIM_", "SIM_BACKUP_"])
def test_bad_values_name_the_setting(prefix: str, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        SimFaults.from_env({prefix + key: value}, prefix)
    assert err.value.setting == prefix + key


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(ConfigError):
        SimFaults(error_rate=2.0)
    with pytest.raises(ConfigError):
        SimFaults(outages=((utc(2025, 1, 2), utc(2025, 1, 1)),))
    assert math.isclose(SimFaults(latency_ms=1).latency_ms, 1.0)
    assert SimFaults(outages=((utc(2025, 1, 1), utc(2025, 1, 2)),)).in_outage(
        utc(2025, 1, 1) + timedelta(hours=1)
    )


async def test_respect_limit_waits_instead_of_drawing_a_429() -> None:
    from datetime import UTC, datetime

    from mds.domain.clock import ManualClock
    from mds.providers.sim.faults import SimFaults
    from mds.providers.sim.market import SimMarket
    from mds.providers.sim.provider import SimProvider

    clock = ManualClock(datetime(2025, 10, 8, 15, 0, tzinfo=UTC))
    p = SimProvider("sim", SimMarket(), clock, SimFaults(rate_limit_per_min=10), respect_limit=True)
    for _ in range(30):
        await p.fetch_quotes(["SPY"])  # never raises RateLimited
    # 9 calls per clock minute (98% of 10, rounded down): 30 calls need more than three clock minutes.
    assert (clock.now() - datetime(2025, 10, 8, 15, 0, tzinfo=UTC)).total_seconds() >= 180
