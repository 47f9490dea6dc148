"""The client-side limiter never lets more calls through than configured."""

from __future__ import annotations

import asyncio
import time

from mds.providers.ratelimit import RateLimiter, parse_limits


async def test_calls_beyond_the_limit_wait_for_the_window() -> None:
    limiter = RateLimiter()
    limits = parse_limits(["3/second"])
    t0 = time.monotonic()
    stamps = []
    for _ in range(6):
        await limiter.acquire("vendor", limits)
        stamps.append(time.monotonic() - t0)
    # Three pass at once; the next three wait for the one-second window to move.
    assert all(s < 0.5 for s in stamps[:3])
    assert all(s >= 0.9 for s in stamps[3:])
    assert limiter.waits >= 1


async def test_concurrent_callers_share_one_budget_and_keys_are_separate() -> None:
    limiter = RateLimiter()
    limits = parse_limits(["4/second"])
    t0 = time.monotonic()
    done: list[float] = []

    async def call(key: str) -> None:
        await limiter.acquire(key, limits)
        done.append(time.monotonic() - t0)

    await asyncio.gather(*(call("a") for _ in range(8)), *(call("b") for _ in range(4)))
    fast = [d for d in done if d < 0.5]
    assert len(fast) == 8  # 4 of "a" and all 4 of "b"
    assert len(done) == 12


async def test_no_limits_means_no_wait() -> None:
    limiter = RateLimiter()
    for _ in range(100):
        await limiter.acquire("x", [])
    assert limiter.waits == 0


async def test_rate_per_min_setting_overrides_the_vendors_minute_limit() -> None:
    from mds.calendar import MarketCalendar
    from mds.config import load_settings
    from mds.providers.registry import vendor_class

    cal = MarketCalendar()
    for value, expected in (("12", "12 per 1 minute"), ("7.5", "450 per 1 hour")):
        p = vendor_class("fmp")(settings=load_settings({"FMP_RATE_PER_MIN": value}), calendar=cal)
        try:
            assert expected in [str(limit) for limit in p.limits]
            assert "250 per 1 day" in [str(limit) for limit in p.limits]  # the daily cap stays
        finally:
            await p.aclose()


async def test_two_workers_on_one_redis_never_exceed_one_budget_together() -> None:
    from tests.redis_support import key_prefix, redis_url

    url, prefix = redis_url(), key_prefix() + "rl"
    # Two limiters with their own connections stand for two worker processes.
    workers = [RateLimiter(url, key_prefix=prefix), RateLimiter("async+" + url, key_prefix=prefix)]
    limits = parse_limits(["5/second"])
    t0 = time.monotonic()
    stamps: list[float] = []

    async def call(limiter: RateLimiter) -> None:
        await limiter.acquire("vendor", limits)
        stamps.append(time.monotonic() - t0)

    try:
        await asyncio.gather(*(call(w) for w in workers for _ in range(6)))
        stamps.sort()
        assert len(stamps) == 12
        # One budget between them, not two: at most five in the half second after the first
        # grant (counted from the first grant, not from t0, which includes connecting to Redis).
        assert sum(s < stamps[0] + 0.5 for s in stamps) <= 5
        # Moving window: any six consecutive calls span at least about a second.
        assert all(stamps[i + 5] - stamps[i] >= 0.9 for i in range(len(stamps) - 5))
        assert sum(w.waits for w in workers) >= 1
    finally:
        await workers[0].reset()
        for w in workers:
            await w.aclose()


async def test_limiters_with_separate_redis_prefixes_have_separate_budgets() -> None:
    from tests.redis_support import key_prefix, redis_url

    url = redis_url()
    a, b = RateLimiter(url, key_prefix=key_prefix() + "rl"), RateLimiter(url, key_prefix=key_prefix() + "rl")
    limits = parse_limits(["3/second"])
    t0 = time.monotonic()
    try:
        for limiter in (a, b):
            for _ in range(3):
                await limiter.acquire("vendor", limits)
        assert time.monotonic() - t0 < 0.5 and a.waits == b.waits == 0
    finally:
        for limiter in (a, b):
            await limiter.reset()
            await limiter.aclose()
