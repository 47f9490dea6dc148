"""Scale-out: a scheduler, two workers and two API processes on one Redis and one store.

A worker is killed with SIGKILL in the middle of its work and another takes its place;
the bars served by both API processes must still equal the sim's ground truth, minute
by minute, with nothing missing and nothing twice.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis

from mds.calendar import MarketCalendar
from mds.domain.models import Interval
from mds.providers.sim.market import ground_truth
from tests.e2e.conftest import Proc, create_key, free_port, wait_for
from tests.helpers import utc as _ts
from tests.redis_support import key_prefix, redis_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
# The clock starts at 14:00 and the lookback is one day from when the scheduler scans, which
# is as late as its start-up takes (at 60x, each wall second is a clock minute; a loaded
# machine took over 5 s). Bars from half an hour later are inside the window however slow.
LOOKBACK_START = datetime(2025, 10, 7, 14, 30, tzinfo=UTC)
SYMBOLS = ["AAPL", "MSFT", "SPY", "JPM"]


def _wait(predicate, timeout: float, what: str, procs: list[Proc]):  # type: ignore[no-untyped-def]
    return wait_for(predicate, timeout, what, procs, allowed_exits=(0, -9))  # a worker is killed on purpose


def test_scheduler_two_workers_two_apis_survive_a_killed_worker(tmp_path: Path, database_url: str) -> None:
    url, prefix = redis_url(), key_prefix()
    anchor = time.time() + 4.0  # every process's clock reads 14:00 at this wall-clock second
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_", "POLICY_", "DATABASE_URL"))}
    env = {
        **base,
        "QUEUE_BACKEND": "redis",
        "RLC_REDIS_URL": url,
        "RATE_LIMIT_STORAGE_URI": url,
        "RLC_REDIS_JOBS_KEY": f"{prefix}jobs",
        **{f"RLC_REDIS_BACKFILL_KEYS__T{i}": f"{prefix}backfills:T{i}" for i in range(3)},
        "DATABASE_URL": database_url,
        "BACKFILL_LOOKBACK_DAYS_1M": "1",
        "BACKFILL_LOOKBACK_DAYS_1D": "10",
        "SIM_MISSING_RATE": "0.02",
        "SIM_BACKUP_MISSING_RATE": "0.02",
        "BACKFILL_RETRY_BASE_SECONDS": "1",
    }
    clock = ["--demo", "--clock", "2025-10-08T14:00:00Z", "--speed", "60", "--clock-anchor", f"{anchor}"]
    api_ports = [free_port(), free_port()]
    headers = {"X-API-Key": create_key(env, tmp_path, role="ops")}
    procs: list[Proc] = []
    try:
        procs.append(
            Proc(["scheduler", *clock, "--metrics-port", str(free_port())], env, tmp_path / "scheduler.log")
        )
        procs.append(
            Proc(
                ["worker", *clock, "--metrics-port", str(free_port()), "--name", "w1"],
                env,
                tmp_path / "w1.log",
            )
        )
        procs.append(
            Proc(
                ["worker", *clock, "--metrics-port", str(free_port()), "--name", "w2"],
                env,
                tmp_path / "w2.log",
            )
        )
        for i, port in enumerate(api_ports):
            procs.append(Proc(["api", *clock, "--port", str(port)], env, tmp_path / f"api{i}.log"))
        apis = [f"http://127.0.0.1:{p}" for p in api_ports]

        def cursor(api: str, symbol: str) -> datetime | None:
            r = httpx.get(f"{api}/ops/cursor/{symbol}/1m/auto", headers=headers, timeout=5)
            return _ts(r.json()["last_ts"]) if r.status_code == 200 else None

        _wait(
            lambda: all((c := cursor(apis[0], s)) and c >= OPEN.replace(hour=14, minute=4) for s in SYMBOLS),
            90,
            "live ingestion through the workers",
            procs,
        )

        # Kill a worker mid-run (no goodbye), start another in its place.
        procs[1].p.send_signal(signal.SIGKILL)
        procs[1].p.wait()
        procs.append(
            Proc(
                ["worker", *clock, "--metrics-port", str(free_port()), "--name", "w3"],
                env,
                tmp_path / "w3.log",
            )
        )

        target = OPEN.replace(hour=14, minute=10)
        _wait(
            lambda: all((c := cursor(apis[1], s)) and c >= target for s in SYMBOLS),
            150,
            "ingestion after the kill",
            procs,
        )
        end = target
        want = MarketCalendar().expected_bar_times(Interval.M1, LOOKBACK_START, end)

        def complete(api: str, symbol: str):  # type: ignore[no-untyped-def]
            r = httpx.get(
                f"{api}/stocks/{symbol}/intraday",
                params={"start": (LOOKBACK_START).isoformat(), "end": end.isoformat()},
                timeout=10,
            )
            bars = r.json()["bars"]
            return bars if len(bars) == len(want) else None

        for i, symbol in enumerate(SYMBOLS):
            api = apis[i % 2]
            bars = _wait(lambda a=api, s=symbol: complete(a, s), 150, f"{symbol} complete", procs)
            truth = ground_truth(symbol, Interval.M1, LOOKBACK_START, end)
            assert [_ts(b["ts"]) for b in bars] == want  # nothing missing, nothing twice
            assert [(b["open"], b["high"], b["low"], b["close"], b["volume"]) for b in bars] == [
                (t.open, t.high, t.low, t.close, t.volume) for t in truth
            ]
        # Exactly one scheduler led; both APIs answer from the same store.
        assert "leadership acquired" in (tmp_path / "scheduler.log").read_text()
        h = [httpx.get(f"{a}/health", timeout=5).json() for a in apis]
        assert all(x["checks"]["store"] == "ok" for x in h)
    finally:
        for pr in procs:
            pr.stop()
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()
