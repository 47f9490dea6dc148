"""Chaos: stop PostgreSQL for 20 s under a running `mds serve`.

Writes retry, /health goes degraded and comes back, and nothing acknowledged is lost: when
the database returns, the session's bars are complete and equal the ground truth. Uses a
throwaway PostgreSQL on its own port; the machine's server is never touched.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from mds.calendar import MarketCalendar
from mds.domain.models import Interval
from mds.providers.sim.market import ground_truth
from tests.conftest import skip_or_fail
from tests.helpers import utc as _ts
from tests.pgserver import Throwaway
from tests.pgserver import Unavailable as PgUnavailable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)


def test_postgres_down_20s_health_degrades_and_nothing_is_lost(start_mds) -> None:
    try:
        pg = Throwaway()
        pg.init()
        pg.start()
    except PgUnavailable as exc:
        skip_or_fail(f"throwaway PostgreSQL: {exc}")
    try:
        mds = start_mds(
            ["serve", "--demo", "--clock", "2025-10-08T14:00:00Z", "--speed", "30"],
            env={"DATABASE_URL": pg.url, "DB_RETRY_MAX_SECONDS": "60", "BACKFILL_LOOKBACK_DAYS_1D": "10"},
        )
        assert mds.get("/health").json()["store"]["backend"] == "postgresql"
        mds.wait_until(
            lambda: (
                mds.get("/ops/cursor/AAPL/1m/auto").status_code == 200
                and _ts(mds.get("/ops/cursor/AAPL/1m/auto").json()["last_ts"])
                >= OPEN.replace(hour=14, minute=1)
            ),
            60,
            "ingestion before the outage",
        )

        pg.stop("immediate")
        down_at = time.monotonic()
        health = mds.wait_until(
            lambda: (r := mds.get("/health")).status_code == 503 and r.json(), 15, "degraded /health"
        )
        assert health["status"] == "degraded" and health["checks"]["store"].startswith("error")
        time.sleep(max(0.0, 20 - (time.monotonic() - down_at)))
        pg.start()

        mds.wait_until(lambda: mds.get("/health").status_code == 200, 30, "/health back")
        # The clock ran on during the outage (30x: ten simulated minutes); collection resumes
        # from the cursors and the backlog fills the outage.
        target = OPEN.replace(hour=14, minute=12)
        mds.wait_until(
            lambda: _ts(mds.get("/ops/cursor/AAPL/1m/auto").json()["last_ts"]) >= target,
            90,
            "ingestion after",
        )
        want = MarketCalendar().expected_bar_times(Interval.M1, OPEN, target)

        def complete():  # type: ignore[no-untyped-def]
            bars = mds.get("/stocks/AAPL/intraday", start=OPEN.isoformat(), end=target.isoformat()).json()[
                "bars"
            ]
            return bars if len(bars) == len(want) else None

        bars = mds.wait_until(complete, 90, "a complete session after the outage")
        truth = ground_truth("AAPL", Interval.M1, OPEN, target)
        assert [_ts(b["ts"]) for b in bars] == want
        assert [b["close"] for b in bars] == [t.close for t in truth]
        assert target - OPEN == timedelta(minutes=42)
    finally:
        pg.destroy()
