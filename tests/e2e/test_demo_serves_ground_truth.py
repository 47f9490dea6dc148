"""`mds serve --demo` on a simulated clock serves exactly the sim's ground truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mds.calendar import MarketCalendar
from mds.domain.models import Interval
from mds.providers.sim.market import ground_truth
from tests.helpers import utc as _ts

pytestmark = pytest.mark.e2e

CLOCK = "2025-10-08T14:00:00Z"
SESSION_OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
SYMBOLS = ["AAPL", "MSFT", "SPY", "JPM"]  # three T0 and one T1


def _assert_matches_truth(
    bars: list[dict], symbol: str, interval: Interval, start: datetime, end: datetime
) -> None:
    truth = ground_truth(symbol, interval, start, end)
    expected = MarketCalendar().expected_bar_times(interval, start, end)
    got_ts = [_ts(b["ts"]) for b in bars]
    assert len(got_ts) == len(set(got_ts)), f"{symbol}: duplicate bars"
    assert got_ts == expected, f"{symbol} {interval.value}: missing {sorted(set(expected) - set(got_ts))[:5]}"
    for b, t in zip(bars, truth, strict=True):
        assert (b["open"], b["high"], b["low"], b["close"], b["volume"]) == (
            t.open,
            t.high,
            t.low,
            t.close,
            t.volume,
        ), f"{symbol} {b['ts']}"
        assert b["provider"].startswith("sim")
        assert b["status"] == "final"
        assert b["as_of"] is not None


@pytest.mark.slow  # ~12 s: a simulated session served end to end
def test_demo_serves_gap_free_ground_truth(start_mds) -> None:
    # 2% of bars go missing from every response, so the gap check has work to do.
    mds = start_mds(
        ["serve", "--demo", "--clock", CLOCK, "--speed", "60"],
        # The coverage cache lives 2 × COVERAGE_REFRESH_SEC (default 1 h) of clock time, beyond
        # the hourly monitor_coverage_health schedule's next run.
        env={"SIM_MISSING_RATE": "0.02", "SIM_BACKUP_MISSING_RATE": "0.02"},
    )

    def cursors_past(minute: datetime):
        out = {}
        for s in SYMBOLS:
            r = mds.get(f"/ops/cursor/{s}/1m/auto")
            if r.status_code != 200 or _ts(r.json()["last_ts"]) < minute:
                return None
            out[s] = _ts(r.json()["last_ts"])
        return out

    # The clock started at 14:00; live sweeps must carry the cursors past 14:05.
    cursors = mds.wait_until(
        lambda: cursors_past(datetime(2025, 10, 8, 14, 5, tzinfo=UTC)), 60, "live cursors"
    )

    def complete(symbol: str, end: datetime):
        r = mds.get(
            f"/stocks/{symbol}/intraday", interval="1m", start=SESSION_OPEN.isoformat(), end=end.isoformat()
        )
        assert r.status_code == 200, r.text
        bars = r.json()["bars"]
        want = MarketCalendar().expected_bar_times(Interval.M1, SESSION_OPEN, end)
        return bars if len(bars) == len(want) else None

    for symbol in SYMBOLS:
        end = cursors[symbol] + timedelta(minutes=1)
        # Gaps from missing bars are backfilled within a few simulated minutes.
        bars = mds.wait_until(lambda s=symbol, e=end: complete(s, e), 60, f"{symbol} complete")
        _assert_matches_truth(bars, symbol, Interval.M1, SESSION_OPEN, end)

    # The previous session was backfilled on start, minute by minute.
    prev_open, prev_close = (
        datetime(2025, 10, 7, 13, 30, tzinfo=UTC),
        datetime(2025, 10, 7, 20, 0, tzinfo=UTC),
    )
    r = mds.get(
        "/stocks/AAPL/intraday", interval="1m", start=prev_open.isoformat(), end=prev_close.isoformat()
    )
    mds.wait_until(
        lambda: (
            len(
                mds.get(
                    "/stocks/AAPL/intraday",
                    interval="1m",
                    start=prev_open.isoformat(),
                    end=prev_close.isoformat(),
                ).json()["bars"]
            )
            == 390
        ),
        60,
        "previous session",
    )
    r = mds.get(
        "/stocks/AAPL/intraday", interval="1m", start=prev_open.isoformat(), end=prev_close.isoformat()
    )
    _assert_matches_truth(r.json()["bars"], "AAPL", Interval.M1, prev_open, prev_close)

    # Rollups agree with the sim's own 5m bars.
    r = mds.get(
        "/stocks/SPY/intraday", interval="5m", start=prev_open.isoformat(), end=prev_close.isoformat()
    )
    assert r.status_code == 200
    _assert_matches_truth(r.json()["bars"], "SPY", Interval.M5, prev_open, prev_close)

    # Daily history: a year of sessions, equal to the sim's daily bars.
    def daily_complete():
        bars = mds.get("/stocks/MSFT/history", period="1y").json()["bars"]
        return bars if len(bars) >= 240 else None

    daily = mds.wait_until(daily_complete, 60, "daily history")
    # Today's session is still open: its daily bar, if there, is provisional.
    closed = [b for b in daily if _ts(b["ts"]) < SESSION_OPEN]
    assert all(b["status"] == "provisional" for b in daily[len(closed) :])
    first, last = _ts(closed[0]["ts"]), _ts(closed[-1]["ts"])
    _assert_matches_truth(closed, "MSFT", Interval.D1, first, last + timedelta(seconds=1))

    price = mds.get("/stocks/AAPL/price").json()
    assert price["symbol"] == "AAPL" and price["price"] > 0 and price["provider"].startswith("sim")

    # The demo tracks the sim's index lists, and its coverage view is real: every tracked
    # symbol holds the last closed session (2025-10-07) in daily and in 5m, from the cache.
    tracked = mds.get("/api/v1/market-data/tracked").json()
    assert {"SP500", "NASDAQ100", "DOW30"} == set(tracked["indices"]) and min(tracked["indices"].values()) > 0
    assert "SPY" in tracked["all"] and "AAPL" in tracked["all"]

    def coverage_ok():
        c = mds.get("/api/v1/market-data/coverage").json()
        return c if c["status"] == "ok" and c["tracked_count"] == len(tracked["all"]) else None

    cov = mds.wait_until(coverage_ok, 90, "coverage ok")
    assert cov["meta"]["source"] == "cache" and cov["indices"] == tracked["indices"]
    assert cov["daily"]["freshness"]["<=24h"] == cov["m5"]["freshness"]["<=24h"] == len(tracked["all"])
    assert _ts(cov["daily"]["last"]["MSFT"]) >= datetime(
        2025, 10, 7, 13, 30, tzinfo=UTC
    )  # today's, if any, is provisional


def test_failover_when_primary_is_down(start_mds) -> None:
    # The primary sim is down for the whole morning: everything must come from sim_backup.
    mds = start_mds(
        ["serve", "--demo", "--clock", CLOCK, "--speed", "60"],
        env={"SIM_OUTAGES": "2025-10-06T00:00:00Z/2025-10-08T18:00:00Z"},
    )
    mds.wait_until(
        lambda: (
            mds.get("/ops/cursor/AAPL/1m/sim_backup").status_code == 200
            and _ts(mds.get("/ops/cursor/AAPL/1m/auto").json()["last_ts"])
            >= datetime(2025, 10, 8, 14, 3, tzinfo=UTC)
        ),
        60,
        "failover ingestion",
    )
    end = _ts(mds.get("/ops/cursor/AAPL/1m/auto").json()["last_ts"]) + timedelta(minutes=1)
    want = MarketCalendar().expected_bar_times(Interval.M1, SESSION_OPEN, end)
    mds.wait_until(
        lambda: (
            len(
                mds.get("/stocks/AAPL/intraday", start=SESSION_OPEN.isoformat(), end=end.isoformat()).json()[
                    "bars"
                ]
            )
            == len(want)
        ),
        60,
        "complete session after failover",
    )
    bars = mds.get("/stocks/AAPL/intraday", start=SESSION_OPEN.isoformat(), end=end.isoformat()).json()[
        "bars"
    ]
    _assert_matches_truth(bars, "AAPL", Interval.M1, SESSION_OPEN, end)
    assert {b["provider"] for b in bars} == {"sim_backup"}

    stats = mds.get("/stats/providers").json()
    states = {p["provider"]: p["state"] for p in stats["providers"]}
    assert states["sim"] in ("open", "half_open")
    assert states["sim_backup"] == "closed"
    metrics = mds.get("/metrics").text
    assert 'provider_selected_total{capability="bars_1m",provider="sim_backup"}' in metrics
    assert 'provider_errors_total{code="503",endpoint="bars_1m",provider="sim"}' in metrics
