"""MDS in TimescaleDB mode, on a real TimescaleDB (see tests/timescale_support.py).

The migrations run through ``mds migrate`` and ``PostgresStore.open`` exactly as in
production. Background workers do not run in the WASM build the suite usually gets, so
policies are checked as registered and then run by hand (``run_job``,
``refresh_continuous_aggregate``, ``compress_chunk``), which is what the workers would
call.

One empty database per session (``timescale_url``), one client at a time: stores have
a one-connection pool and SQL goes through the store's connection. Every test uses
symbols of its own, so the order they run in does not matter.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from mds.api.app import create_app
from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval, Quote
from mds.runtime import Runtime, open_runtime
from mds.services.rollup import rollup
from mds.storage.migrate import POSTGRES_MIGRATIONS, TIMESCALEDB_MIGRATIONS, discover
from mds.storage.postgres import PostgresStore
from tests.helpers import SIM_ENV
from tests.helpers import rows as ohlcv
from tests.timescale_support import (
    INSTALL_TIMEOUT,
    START_TIMEOUT,
    timescale_url,  # noqa: F401  (the session fixture)
)

# The first test also pays for the session's server: installing PGlite when it is not
# cached yet (CI installs it up front) and starting it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(INSTALL_TIMEOUT + START_TIMEOUT + 60)]

CAL = MarketCalendar()
M1, M5, H1, D1 = Interval.M1, Interval.M5, Interval.H1, Interval.D1
LATER = datetime(2030, 1, 1, tzinfo=UTC)  # "now" for the Python rollup: every bucket closed
CORE_VERSIONS = [m.version for m in discover(POSTGRES_MIGRATIONS)]
TIMESCALE_LEDGER = [(m.version, m.name) for m in discover(TIMESCALEDB_MIGRATIONS)]
EXTVERSION = "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"


@dataclass(frozen=True)
class Migrated:
    url: str
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def migrated(timescale_url: str, tmp_path_factory: pytest.TempPathFactory) -> Migrated:  # noqa: F811
    """The session's TimescaleDB database, migrated by ``mds migrate`` in a process of its own."""
    env = {k: v for k, v in os.environ.items() if k != "MDS_ENV_FILE"} | {"DATABASE_URL": timescale_url}
    done = subprocess.run(
        [sys.executable, "-m", "mds.cli", "migrate"],
        cwd=tmp_path_factory.mktemp("migrate"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return Migrated(timescale_url, done.stdout, done.stderr)


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(url, pool_min=1, pool_max=1, retry_max_seconds=5)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def rows(store: PostgresStore, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await store.db.fetch(sql, *args)]


async def value(store: PostgresStore, sql: str, *args: Any) -> Any:
    found = await rows(store, sql, *args)
    assert len(found) == 1 and len(found[0]) == 1, (sql, found)
    return found[0][0]


async def job_id(store: PostgresStore, proc: str, table: str | None = None) -> int:
    sql = (
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE proc_name = $1 AND hypertable_name IS NOT DISTINCT FROM $2"
    )
    return int(await value(store, sql, proc, table))


async def chunk_compressed(store: PostgresStore, table: str, ts: datetime) -> bool:
    """Whether the chunk of ``table`` holding ``ts`` is compressed."""
    sql = (
        "SELECT is_compressed FROM timescaledb_information.chunks"
        " WHERE hypertable_name = $1 AND range_start <= $2 AND range_end > $2"
    )
    return bool(await value(store, sql, table, ts))


def session_bars(symbol: str, days: list[date], seed: int) -> list[Bar]:
    """Every 1m bar of the sessions on ``days``: a random walk, cents and whole shares."""
    rnd = random.Random(seed)
    price = 100.0
    out: list[Bar] = []
    for day in days:
        session = CAL.session_on(day)
        assert session is not None, day
        ts = session.open
        while ts < session.close:
            o = price
            c = round(max(1.0, o + rnd.randint(-50, 50) / 100), 2)
            h = round(max(o, c) + rnd.randint(0, 30) / 100, 2)
            lo = round(min(o, c) - rnd.randint(0, 30) / 100, 2)
            out.append(Bar(symbol, M1, ts, o, h, lo, c, float(rnd.randint(100, 5000)), "sim"))
            price = c
            ts += M1.delta
    return out


# --------------------------------------------------------------------------- schema


async def test_mds_migrate_sets_up_timescaledb(migrated: Migrated) -> None:
    assert "migrations up to date" in migrated.stdout
    assert "could not be set up" not in migrated.stderr, migrated.stderr
    async with opened(migrated.url) as store:
        assert str(await value(store, EXTVERSION)).startswith("2.")
        ledger = await rows(store, "SELECT version, name FROM schema_migrations_timescaledb")
        assert ledger == TIMESCALE_LEDGER
        core = await rows(store, "SELECT version FROM schema_migrations ORDER BY version")
        assert [v for (v,) in core] == CORE_VERSIONS

        dims = await rows(
            store,
            "SELECT hypertable_name, column_name, time_interval FROM timescaledb_information.dimensions"
            " WHERE hypertable_schema = 'public'",
        )
        assert sorted(dims) == [
            ("candle_history", "ts", timedelta(days=7)),
            ("candles", "ts", timedelta(days=1)),
            ("quotes_l1", "ts", timedelta(days=1)),
        ]
        # Chunk exclusion replaces the BRIN index; the history trigger is still there.
        assert await rows(store, "SELECT to_regclass('ix_candles_ts_brin') IS NULL") == [(True,)]
        triggers = await rows(store, "SELECT tgname FROM pg_trigger WHERE tgrelid = 'candles'::regclass")
        assert ("candles_keep_history",) in triggers

        settings = await rows(
            store,
            "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index, orderby_asc"
            " FROM timescaledb_information.compression_settings WHERE hypertable_schema = 'public'"
            " ORDER BY 1, segmentby_column_index NULLS LAST, orderby_column_index",
        )
        assert settings == [
            ("candle_history", "symbol", 1, None, None),
            ("candle_history", "interval", 2, None, None),
            ("candle_history", "ts", None, 1, True),
            ("candle_history", "revision", None, 2, True),
            ("candles", "symbol", 1, None, None),
            ("candles", "interval", 2, None, None),
            ("candles", "ts", None, 1, True),
        ]

        jobs = {
            (proc, table): (schedule, json.loads(config))
            for proc, table, schedule, config in await rows(
                store,
                "SELECT proc_name, hypertable_name, schedule_interval, config FROM timescaledb_information.jobs"
                " WHERE scheduled AND proc_name <> 'policy_job_stat_history_retention'",  # TimescaleDB's own
            )
        }
        day = timedelta(days=1)
        assert jobs[("policy_compression", "candles")][1]["compress_after"] == "14 days"
        assert jobs[("policy_compression", "candle_history")][1]["compress_after"] == "14 days"
        assert jobs[("policy_retention", "quotes_l1")][1]["drop_after"] == "14 days"
        assert jobs[("mds_expire_1m_bars", None)] == (day, {"keep": "365 days"})
        refresh = {}
        for (proc, _), (schedule, config) in jobs.items():
            if proc == "policy_refresh_continuous_aggregate":
                view = await _cagg_of(store, config["mat_hypertable_id"])
                refresh[view] = (schedule, config["start_offset"], config["end_offset"])
        assert refresh == {
            "candles_5m": (timedelta(minutes=5), "3 days", "00:05:00"),
            "candles_1h": (timedelta(minutes=30), "7 days", "01:00:00"),
        }
        assert len(jobs) == 6, sorted(jobs)

        caggs = await rows(
            store,
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
            " ORDER BY view_name",
        )
        assert caggs == [("candles_1h", False), ("candles_5m", False)]


async def _cagg_of(store: PostgresStore, mat_hypertable_id: int) -> str:
    sql = "SELECT user_view_name FROM _timescaledb_catalog.continuous_agg WHERE mat_hypertable_id = $1"
    return str(await value(store, sql, mat_hypertable_id))


async def test_second_migrate_applies_nothing_and_backend_info_says_timescaledb(migrated: Migrated) -> None:
    ledgers = (
        "SELECT 'timescaledb', version, applied_at FROM schema_migrations_timescaledb"
        " UNION ALL SELECT 'core', version, applied_at FROM schema_migrations ORDER BY 1, 2"
    )
    async with opened(migrated.url) as store:
        before = await rows(store, ledgers)
        assert await store.migrate() == []
        info = await store.backend_info()
        version = await value(store, EXTVERSION)
        assert await rows(store, ledgers) == before
    assert len(before) == len(CORE_VERSIONS) + len(TIMESCALE_LEDGER)
    assert (info["backend"], info["mode"], info["timescaledb"]) == ("postgresql", "timescaledb", True)
    assert info["timescaledb_version"] == version
    assert info["pool"]["max"] == 1
    assert (info["rollups"], info["continuous_aggregates"]) == ("in_database", ["candles_5m", "candles_1h"])


async def test_health_shows_timescaledb_mode(migrated: Migrated) -> None:
    env = {
        **SIM_ENV,
        "DATABASE_URL": migrated.url,
        "DB_POOL_MIN_SIZE": "1",
        "DB_POOL_MAX_SIZE": "1",
    }
    clock = ManualClock(datetime(2025, 10, 8, 15, 0, tzinfo=UTC))
    async with open_runtime(load_settings(env), clock=clock, demo=True, collect=False, environ=env) as rt:

        @asynccontextmanager
        async def same_runtime() -> AsyncIterator[Runtime]:
            yield rt

        app = create_app(same_runtime)
        app.state.runtime = rt
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mds") as client:
            r = await client.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["checks"]["store"] == "ok"
    assert (body["store"]["mode"], body["store"]["timescaledb"]) == ("timescaledb", True)


# ------------------------------------------------------------- continuous aggregates

ROLLUP_CASES = {
    "normal_day": ("TSNORM", [date(2025, 10, 8)]),
    # The day after Thanksgiving closes at 13:00 ET: the last hour is 12:30-13:00.
    "early_close": ("TSHALF", [date(2025, 11, 28)]),
    # EDT -> EST between the two sessions: the open moves from 13:30 to 14:30 UTC.
    "dst_ends": ("TSFALL", [date(2025, 10, 31), date(2025, 11, 3)]),
    "dst_starts": ("TSSPRG", [date(2025, 3, 7), date(2025, 3, 10)]),
}


@pytest.mark.parametrize("case", sorted(ROLLUP_CASES))
async def test_continuous_aggregates_equal_the_calendar_rollup(migrated: Migrated, case: str) -> None:
    symbol, days = ROLLUP_CASES[case]
    bars = session_bars(symbol, days, seed=len(case))
    start = datetime.combine(days[0], datetime.min.time(), UTC)
    end = datetime.combine(days[-1], datetime.min.time(), UTC) + timedelta(days=1)
    async with opened(migrated.url) as store:
        written = await store.write_bars(bars, as_of=end)
        assert (written.inserted, written.revised) == (len(bars), 0)
        stored = await store.read_bars(symbol, M1, start, end)
        assert ohlcv(stored) == ohlcv(bars)
        views = await rows(
            store,
            "SELECT view_name, materialization_hypertable_schema, materialization_hypertable_name"
            " FROM timescaledb_information.continuous_aggregates",
        )
        sessions = [(s.open, s.close) for s in CAL.sessions(start, end)]
        for interval, view in ((M5, "candles_5m"), (H1, "candles_1h")):
            expected = ohlcv(rollup(stored, interval, CAL, LATER))
            refresh = "CALL refresh_continuous_aggregate($1::regclass, $2::timestamptz, $3::timestamptz)"
            await store.db.execute(refresh, view, start, end)
            got = await rows(
                store,
                f"SELECT ts, open, high, low, close, volume, bars FROM {view} WHERE symbol = $1 ORDER BY ts",
                symbol,
            )
            assert [r[:6] for r in got] == expected, (view, got[:3], expected[:3])
            assert sum(r[6] for r in got) == len(bars)
            assert max(r[6] for r in got) == interval.seconds // 60
            # Refreshed means materialised: the same rows straight from the cagg's hypertable.
            schema, table = next((s, t) for v, s, t in views if v == view)
            materialised = await rows(
                store,
                # Identifiers from the TimescaleDB catalog, not input.
                f'SELECT ts, open, high, low, close, volume FROM "{schema}"."{table}" WHERE symbol = $1 ORDER BY ts',
                symbol,
            )
            assert materialised == expected
            # The service's own read path (date_bin in the database) agrees on a hypertable.
            rolled = await store.read_rollup(symbol, interval, start, end, sessions)
            assert ohlcv(rolled) == expected
        hours = [r[0] for r in await rows(store, "SELECT ts FROM candles_1h WHERE symbol = $1", symbol)]
        assert {s.open for s in CAL.sessions(start, end)} <= set(hours)
        assert all(ts.minute == 30 for ts in hours)


# ------------------------------------------------------------------ point in time


async def test_revision_goes_to_history_on_the_hypertable(migrated: Migrated) -> None:
    bars = session_bars("TSPIT", [date(2025, 9, 15)], seed=1)[:30]
    t0, t1 = bars[0].ts, bars[-1].ts + M1.delta
    first = datetime(2025, 9, 15, 20, 5, tzinfo=UTC)
    second = first + timedelta(hours=3)
    changed = bars[7]._replace(close=bars[7].close + 1, high=bars[7].high + 1)
    async with opened(migrated.url) as store:
        await store.write_bars(bars, as_of=first)
        result = await store.write_bars([changed], as_of=second)
        assert (result.inserted, result.revised) == (0, 1)
        history = await rows(
            store,
            "SELECT ts, close, revision, superseded_at FROM candle_history WHERE symbol = 'TSPIT'",
        )
        assert history == [(bars[7].ts, bars[7].close, 0, second)]
        # The trigger's insert went through the hypertable into one of its chunks.
        stored_in = await value(
            store, "SELECT tableoid::regclass::text FROM candle_history WHERE symbol = 'TSPIT'"
        )
        assert stored_in.startswith("_timescaledb_internal."), stored_in
        now = await store.read_bars("TSPIT", M1, t0, t1)
        then = await store.read_bars("TSPIT", M1, t0, t1, as_of=first + timedelta(minutes=1))
        before = await store.read_bars("TSPIT", M1, t0, t1, as_of=first - timedelta(seconds=1))
        revisions = await store.bar_revisions("TSPIT", M1, bars[7].ts)
    assert now[7].close == changed.close and now[7].as_of == second
    assert ohlcv(then) == ohlcv(bars) and then[7].as_of == first
    assert before == []
    assert [b.close for b in revisions] == [bars[7].close, changed.close]


async def test_reads_and_revisions_survive_compression(migrated: Migrated) -> None:
    day = date(2025, 6, 2)
    bars = session_bars("TSZIP", [day], seed=2)
    start = datetime.combine(day, datetime.min.time(), UTC)
    end = start + timedelta(days=1)
    first = end
    second = end + timedelta(hours=1)
    third = end + timedelta(hours=2)
    sessions = [(s.open, s.close) for s in CAL.sessions(start, end)]
    async with opened(migrated.url) as store:
        await store.write_bars(bars, as_of=first)
        await store.write_bars(
            [bars[100]._replace(close=bars[100].close + 2, high=bars[100].high + 2)], as_of=second
        )

        async def snapshot() -> tuple[Any, ...]:
            return (
                await store.read_bars("TSZIP", M1, start, end),
                await store.read_bars("TSZIP", M1, start, end, as_of=first),
                await store.read_bars("TSZIP", M1, start, end, limit=5),
                await store.latest_bar("TSZIP", M1),
                await store.bar_timestamps("TSZIP", M1, start, end),
                await store.bar_revisions("TSZIP", M1, bars[100].ts),
                await store.read_rollup("TSZIP", H1, start, end, sessions),
                await store.read_rollup("TSZIP", H1, start, end, sessions, as_of=first),
            )

        plain = await snapshot()
        compressed = await rows(
            store,
            "SELECT compress_chunk(c, if_not_compressed => true)::text FROM show_chunks('candles',"
            " newer_than => $1::timestamptz, older_than => $2::timestamptz) c"
            " UNION ALL SELECT compress_chunk(c, if_not_compressed => true)::text FROM show_chunks('candle_history',"
            " newer_than => $1::timestamptz - interval '7 days', older_than => $2::timestamptz + interval '7 days') c",
            start,
            end,
        )
        assert len(compressed) >= 2
        states = await rows(
            store,
            "SELECT hypertable_name, bool_and(is_compressed) FROM timescaledb_information.chunks"
            " WHERE format('%I.%I', chunk_schema, chunk_name) = ANY($1::text[]) GROUP BY 1 ORDER BY 1",
            [c for (c,) in compressed],
        )
        assert states == [("candle_history", True), ("candles", True)]
        stats = await rows(
            store,
            "SELECT compression_status, after_compression_total_bytes FROM chunk_compression_stats('candles')"
            " WHERE format('%I.%I', chunk_schema, chunk_name) = ANY($1::text[])",
            [c for (c,) in compressed],
        )
        assert stats and all(status == "Compressed" and size for status, size in stats)

        assert await snapshot() == plain

        # Writes into compressed chunks: an identical batch changes nothing, a correction
        # is a new revision with the old one filed as history, as before compression.
        again = await store.write_bars(bars[:100], as_of=third)
        assert (again.inserted, again.revised, again.unchanged) == (0, 0, 100)
        fixed = bars[200]._replace(low=bars[200].low - 1)
        revised = await store.write_bars([fixed], as_of=third)
        assert (revised.inserted, revised.revised) == (0, 1)
        current = await store.read_bars("TSZIP", M1, start, end)
        past = await store.read_bars("TSZIP", M1, start, end, as_of=second)
        revisions = await store.bar_revisions("TSZIP", M1, bars[200].ts)
    assert current[200].low == fixed.low and current[100].close == bars[100].close + 2
    assert past == plain[0]
    assert [b.low for b in revisions] == [bars[200].low, fixed.low]


# ------------------------------------------------------------ policies, run by hand


async def test_quote_retention_policy_drops_chunks_older_than_14_days(migrated: Migrated) -> None:
    async with opened(migrated.url) as store:
        now = await value(store, "SELECT date_trunc('minute', now())")
        old, recent = now - timedelta(days=30), now - timedelta(days=1)
        quotes = [Quote("TSQ", ts, 9.9, 10.1, 10.0, provider="sim") for ts in (old, recent)]
        assert await store.write_quotes(quotes) == 2
        await store.db.execute("CALL run_job($1)", await job_id(store, "policy_retention", "quotes_l1"))
        left = await rows(store, "SELECT ts FROM quotes_l1 WHERE symbol = 'TSQ'")
    assert left == [(recent,)]


async def test_1m_expiry_job_deletes_old_1m_bars_only(migrated: Migrated) -> None:
    async with opened(migrated.url) as store:
        now = await value(store, "SELECT date_trunc('day', now())")
        old, recent = now - timedelta(days=400), now - timedelta(days=30)
        minute = [Bar("TSOLD", M1, ts, 10.0, 11.0, 9.0, 10.5, 100.0, "sim") for ts in (old, recent)]
        daily = [Bar("TSOLD", D1, old, 10.0, 11.0, 9.0, 10.5, 1e6, "sim")]
        await store.write_bars(minute + daily, as_of=now)
        await store.write_bars([minute[0]._replace(close=10.25)], as_of=now + timedelta(seconds=1))
        before = await rows(store, "SELECT count(*) FROM candle_history WHERE symbol = 'TSOLD'")
        assert before == [(1,)]
        await store.db.execute("CALL run_job($1)", await job_id(store, "mds_expire_1m_bars"))
        left = await rows(
            store, "SELECT interval, ts FROM candles WHERE symbol = 'TSOLD' ORDER BY interval, ts"
        )
        history = await rows(store, "SELECT count(*) FROM candle_history WHERE symbol = 'TSOLD'")
    assert left == [("1d", old), ("1m", recent)]
    assert history == [(0,)]


async def test_compression_policy_compresses_chunks_older_than_14_days(migrated: Migrated) -> None:
    async with opened(migrated.url) as store:
        now = await value(store, "SELECT date_trunc('minute', now())")
        old, recent = now - timedelta(days=20), now - timedelta(days=2)
        bars = [Bar("TSPOL", M1, ts, 10.0, 11.0, 9.0, 10.5, 100.0, "sim") for ts in (old, recent)]
        await store.write_bars(bars, as_of=now)
        await store.db.execute("CALL run_job($1)", await job_id(store, "policy_compression", "candles"))
        states = [await chunk_compressed(store, "candles", ts) for ts in (old, recent)]
        read = await store.read_bars("TSPOL", M1, old, now)
    assert states == [True, False]
    assert ohlcv(read) == ohlcv(bars)


# Last in the file: a retention pass deletes every old 5m bar of the shared database.
async def test_retention_deletes_old_5m_bars_on_the_hypertable_and_leaves_1m_to_the_policy(
    migrated: Migrated,
) -> None:
    from mds.services.retention import TIMESCALE_SKIP, enforce_retention

    async with opened(migrated.url) as store:
        now = await value(store, "SELECT date_trunc('day', now())")
        old, recent = now - timedelta(days=200), now - timedelta(days=30)
        five = [Bar("TSRET", M5, ts, 10.0, 11.0, 9.0, 10.5, 100.0, "sim") for ts in (old, recent)]
        minute = [Bar("TSRET", M1, old, 10.0, 11.0, 9.0, 10.5, 100.0, "sim")]
        await store.write_bars(five + minute, as_of=now)
        await store.write_bars([five[0]._replace(close=10.25)], as_of=now + timedelta(seconds=1))
        report = await enforce_retention(
            store, ManualClock(now), max_days_5m=90, max_days_1m=30, timescale=True
        )
        left = await rows(
            store, "SELECT interval, ts FROM candles WHERE symbol = 'TSRET' ORDER BY interval, ts"
        )
        history = await rows(store, "SELECT count(*) FROM candle_history WHERE symbol = 'TSRET'")
    assert (
        report["intervals"]["5m"]["deleted_bars"] >= 1 and report["intervals"]["5m"]["deleted_history"] >= 1
    )
    assert report["intervals"]["1m"] == {"max_days": 30, "skipped": TIMESCALE_SKIP}
    assert left == [("1m", old), ("5m", recent)]  # 1m is the TimescaleDB job's to expire
    assert history == [(0,)]
