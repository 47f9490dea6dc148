"""Live T0 lag of `mds serve` at 8,000 symbols on a real-rate clock, start-up backfill queued (issue #10).

The server runs a simulated clock at speed 1 that starts inside an XNYS session and reads
its start at the moment of spawn (``--clock-anchor``), so "clock now" here and there agree.
Everything is measured from the spawn:

* seconds until ``/health`` answers; until the first T0 symbol is up to date (holds the 1m
  bar that closed as the clock started, ``ts`` = start − 1 min, or a newer one); until every
  T0 symbol is (the SQLite file, read-only, polled every second);
* every 5 s, ``/metrics``: ``live_lag_seconds{tier="T0"}`` (stat ``max`` and ``p95``),
  ``circuit_opened_total`` (absent counts as 0), ``circuit_state``, ``jobs_processed_total``
  by type, ``backfill_queue_depth``/``_bytes``, ``event_loop_lag_seconds``; and the server's RSS;
* every 15 s (5 s after each quarter minute of the clock), T0's lag recomputed from the
  database, not trusting the service's gauge.

``t0_lag_p99_s`` is the p99 (nearest rank) over the 5 s samples of the per-sample ``max``
gauge, counting only samples taken once one cadence has passed since the spawn (the
clock's start); ``t0_lag_max_s`` is their maximum. ``t0_lag_p99_s_db``/``_max_s_db`` are the
same over the 15 s database samples, each sample being the largest lag of any T0 symbol.
A metric the server does not export is reported as null.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from mds.benchmarks.startup import free_port, rss_mb
from mds.calendar import MarketCalendar
from mds.config import Settings, load_settings
from mds.domain.models import Interval

CADENCE_S = 60
POLICY = "sim,sim_backup"
METRICS_EVERY_S = 5.0
DB_LAG_EVERY_S = 15.0
#: The clock starts on a minute and bars close on minutes: samples taken right on the
#: minute would always find the just-closed bar "not late yet", so they are taken 5 s later.
DB_LAG_PHASE_S = 5.0
RSS_EVERY_S = 30.0
#: Metrics the report reads; the ones never seen are listed in ``metrics_missing``.
WATCHED = (
    "live_lag_seconds",
    "circuit_opened_total",
    "circuit_state",
    "jobs_processed_total",
    "backfill_queue_depth",
    "backfill_queue_bytes",
    "event_loop_lag_seconds_bucket",
)

Samples = dict[str, list[tuple[dict[str, str], float]]]


# -- pure helpers -------------------------------------------------------------------------


def write_universe(path: Path, symbols: int, t0: int) -> list[str]:
    """A ``symbol,tier`` CSV: ``t0`` T0 symbols, the rest 35% T1 and 65% T2. Returns the T0 ones."""
    if not 0 < t0 <= symbols:
        raise ValueError(f"t0 must be in 1..symbols (got {t0} of {symbols})")
    t1 = round((symbols - t0) * 0.35)
    rows = [(f"T0S{i:05d}", "T0") for i in range(t0)]
    rows += [(f"T1S{i:05d}", "T1") for i in range(t1)]
    rows += [(f"T2S{i:05d}", "T2") for i in range(symbols - t0 - t1)]
    path.write_text("symbol,tier\n" + "".join(f"{s},{t}\n" for s, t in rows))
    return [s for s, t in rows if t == "T0"]


def clock_start(calendar: MarketCalendar, minutes: float, today: date | None = None) -> datetime:
    """Half an hour after the open of the latest past session that has ``minutes`` (+2) left.

    Half an hour after the open is 14:00Z in summer; in winter 14:00Z is before the open.
    """
    day = (today or datetime.now(UTC).date()) - timedelta(days=1)
    for _ in range(60):
        session = calendar.session_on(day)
        if session is not None:
            start = session.open + timedelta(minutes=30)
            if start + timedelta(minutes=minutes + 2) <= session.close:
                return start
        day -= timedelta(days=1)
    raise ValueError(f"no session in the last 60 days has {minutes} minutes after its first half hour")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile, ``q`` in (0, 1]; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def histogram_quantile(buckets: Iterable[tuple[float, float]], q: float) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative ``(le, count)`` buckets.

    Linear inside the bucket the rank falls in; a rank in the ``+Inf`` bucket gives the
    highest finite bound. None when the histogram is empty.
    """
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return lower
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return lower


def parse_metrics(text: str) -> Samples:
    """Prometheus text → ``{sample name: [(labels, value), ...]}``."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def pick(samples: Samples, name: str, **labels: str) -> list[float]:
    """Values of ``name`` whose labels include ``labels``."""
    return [v for lab, v in samples.get(name, ()) if all(lab.get(k) == x for k, x in labels.items())]


def newest_bars(conn: sqlite3.Connection, symbols: Iterable[str]) -> dict[str, int | None]:
    """Each symbol's newest stored 1m bar ``ts`` (epoch seconds), None without one.

    One primary-key seek per symbol: a ``GROUP BY`` would scan every stored bar.
    """
    sql = "SELECT MAX(ts) FROM candles WHERE symbol = ? AND interval = ?"
    return {s: conn.execute(sql, (s, Interval.M1.value)).fetchone()[0] for s in symbols}


def lags_from_newest(
    newest: Mapping[str, int | None], now: datetime, calendar: MarketCalendar, since: datetime
) -> dict[str, float]:
    """Live lag per symbol, in seconds, from its newest stored 1m bar.

    The lag is 0 while the first expected bar after the newest has not closed yet, else
    ``now`` minus that bar's close. A symbol with no bar at all counts from the first
    expected bar at or after ``since`` (this measures live lag, not history).
    """
    if not newest:
        return {}
    floor = int(since.timestamp()) - 1
    after = {s: floor if ts is None else int(ts) for s, ts in newest.items()}
    lo = min(after.values()) + 1
    expected = calendar.expected_epochs(Interval.M1, datetime.fromtimestamp(lo, UTC), now)
    now_s = now.timestamp()
    out: dict[str, float] = {}
    for symbol, last in after.items():
        i = int(expected.searchsorted(last, side="right"))
        if i >= len(expected):
            out[symbol] = 0.0  # the next bar has not even opened
            continue
        close = calendar.bar_end(datetime.fromtimestamp(int(expected[i]), UTC), Interval.M1)
        out[symbol] = max(0.0, now_s - close.timestamp())
    return out


# -- the run ------------------------------------------------------------------------------


def _server_env(workdir: Path, universe: Path, latency_ms: float) -> dict[str, str]:
    ours = ("SIM_", "POLICY_", "CADENCE_", "BACKFILL_", "TIER_MAXS", "MDS_", "DATABASE_URL", "UNIVERSE_FILE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    defaults = Settings.model_fields
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{workdir}/live.db",
            "UNIVERSE_FILE": str(universe),
            **{f"POLICY_{c}": POLICY for c in ("BARS_1M", "EOD", "QUOTES_L1", "OPTIONS_CHAIN")},
            "SIM_LATENCY_MS": str(latency_ms),
            "SIM_BACKUP_LATENCY_MS": str(latency_ms),
            "CADENCE_T0__bars_1m": str(CADENCE_S),
            # The defaults, said out loud: the start-up backfill is what this run is about.
            "BACKFILL_LOOKBACK_DAYS_1M": str(defaults["BACKFILL_LOOKBACK_DAYS_1M"].default),
            "BACKFILL_LOOKBACK_DAYS_1D": str(defaults["BACKFILL_LOOKBACK_DAYS_1D"].default),
        }
    )
    load_settings(env)  # refuse a misnamed setting here rather than in the child
    return env


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, wait: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _due(now: float, next_at: float, every: float) -> tuple[bool, float]:
    """Whether a periodic sample is due, and when the next one is (no catch-up bursts)."""
    if now < next_at:
        return False, next_at
    return True, max(next_at + every, now + every / 2)


def _rss(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        return rss_mb(pid)[0]
    return None


def _tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def run(
    symbols: int = 8000,
    t0: int = 1200,
    minutes: float = 10.0,
    latency_ms: float = 20.0,
    burn_cpu: int = 0,
    database: str = "sqlite",
) -> dict[str, object]:
    if database != "sqlite":
        raise ValueError("database: only sqlite")
    calendar = MarketCalendar("XNYS")
    start = clock_start(calendar, minutes)
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-live-"))
    t0_symbols = write_universe(workdir / "universe.csv", symbols, t0)
    env = _server_env(workdir, workdir / "universe.csv", latency_ms)
    db_path = workdir / "live.db"
    log_path = workdir / "serve.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mds = str(Path(sys.executable).with_name("mds"))
    iso = start.isoformat().replace("+00:00", "Z")
    start_s = int(start.timestamp())

    serving = first_bar = all_bars = None
    gauge_max: list[tuple[float, float]] = []  # (elapsed s, value)
    gauge_p95: list[tuple[float, float]] = []
    db_max: list[tuple[float, float]] = []
    rss_series: list[list[float]] = []
    rss_all: list[float] = []
    depth_max: float | None = None
    bytes_at_depth_max: float | None = None
    last: Samples = {}
    seen: set[str] = set()
    circuit_open_samples = scrape_failures = 0
    error: str | None = None

    burners: list[subprocess.Popen[bytes]] = []
    proc: subprocess.Popen[bytes] | None = None
    conn: sqlite3.Connection | None = None
    try:
        for _ in range(burn_cpu):
            burners.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        anchor = time.time()  # the server's clock reads `start` at this instant
        args = [mds, "serve", "--port", str(port), "--clock", iso, "--speed", "1"]
        spawned = time.perf_counter()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [*args, "--clock-anchor", repr(anchor)],
                cwd=workdir,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        end = spawned + minutes * 60
        next_metrics = next_rss = spawned
        next_db_lag = spawned + DB_LAG_PHASE_S
        with httpx.Client(timeout=10) as client:
            tick = spawned
            while (now_p := time.perf_counter()) < end:
                if proc.poll() is not None:
                    error = f"mds serve exited with {proc.returncode}: {_tail(log_path)}"
                    break
                elapsed = now_p - spawned
                if serving is None:
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(url + "/health", timeout=2).status_code == 200:
                            serving = time.perf_counter() - spawned
                if conn is None and db_path.exists():
                    with contextlib.suppress(sqlite3.Error):
                        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
                newest: dict[str, int | None] | None = None
                if conn is not None and (all_bars is None or now_p >= next_db_lag):
                    with contextlib.suppress(sqlite3.Error):  # not migrated yet: next tick
                        newest = newest_bars(conn, t0_symbols)
                if newest is not None and all_bars is None:
                    # Up to date at start: the bar that closed as the clock started (start on a minute).
                    live = sum(1 for ts in newest.values() if ts is not None and ts >= start_s - 60)
                    if live and first_bar is None:
                        first_bar = time.perf_counter() - spawned
                    if live == len(t0_symbols):
                        all_bars = time.perf_counter() - spawned
                if newest is not None and now_p >= next_db_lag:
                    _, next_db_lag = _due(now_p, next_db_lag, DB_LAG_EVERY_S)
                    clock_now = start + timedelta(seconds=time.time() - anchor)
                    lags = lags_from_newest(newest, clock_now, calendar, start)
                    db_max.append((elapsed, max(lags.values())))
                due, next_metrics = _due(now_p, next_metrics, METRICS_EVERY_S)
                if due and serving is None:
                    next_metrics = now_p  # first scrape as soon as it serves
                elif due:
                    try:
                        samples = parse_metrics(client.get(url + "/metrics").text)
                    except (httpx.HTTPError, ValueError):
                        scrape_failures += 1
                        samples = {}
                    if samples:
                        last = samples
                        seen.update(n for n in WATCHED if n in samples)
                        for series, stat in ((gauge_max, "max"), (gauge_p95, "p95")):
                            values = pick(samples, "live_lag_seconds", tier="T0", stat=stat)
                            if values:
                                series.append((elapsed, max(values)))
                        if 0.0 in pick(samples, "circuit_state"):
                            circuit_open_samples += 1
                        tiers = pick(samples, "backfill_queue_depth")  # one per tier
                        depth = [sum(tiers)] if tiers else []
                        if depth and (depth_max is None or depth[0] > depth_max):
                            depth_max = depth[0]
                            size = pick(samples, "backfill_queue_bytes")
                            bytes_at_depth_max = size[0] if size else None
                    if (mb := _rss(proc.pid)) is not None:
                        rss_all.append(mb)
                due, next_rss = _due(now_p, next_rss, RSS_EVERY_S)
                if due and (mb := _rss(proc.pid)) is not None:
                    rss_series.append([round(elapsed), round(mb, 1)])
                tick = max(tick + 1.0, time.perf_counter())
                time.sleep(max(0.0, tick - time.perf_counter()))
            if serving is None and error is None:
                error = f"/health never answered: {_tail(log_path)}"
            if proc.poll() is None and (mb := _rss(proc.pid)) is not None:
                rss_series.append([round(time.perf_counter() - spawned), round(mb, 1)])
    finally:
        if conn is not None:
            conn.close()
        if proc is not None:
            _stop(proc)
        for b in burners:
            _stop(b, signal.SIGKILL, 5)
        shutil.rmtree(workdir, ignore_errors=True)

    def steady(series: list[tuple[float, float]]) -> list[float]:
        return [v for t, v in series if t >= CADENCE_S]

    def rounded(x: float | None, nd: int = 3) -> float | None:
        return None if x is None else round(x, nd)

    jobs: dict[str, float] = {}
    for labels, v in last.get("jobs_processed_total", ()):
        jobs[labels.get("type", "")] = jobs.get(labels.get("type", ""), 0.0) + v
    loop_buckets = [(float(lab["le"]), v) for lab, v in last.get("event_loop_lag_seconds_bucket", ())]
    loop_p99 = histogram_quantile(loop_buckets, 0.99)
    rss_all += [r for _, r in rss_series]
    return {
        "benchmark": "live",
        "symbols": symbols,
        "t0": t0,
        "minutes": minutes,
        "latency_ms": latency_ms,
        "burn_cpu": burn_cpu,
        "clock_start": iso,
        "seconds_to_serving": rounded(serving),
        "seconds_to_first_t0_bar": rounded(first_bar),
        "seconds_to_all_t0_bars": rounded(all_bars),
        "t0_lag_p99_s": rounded(percentile(steady(gauge_max), 0.99)),
        "t0_lag_max_s": rounded(max(steady(gauge_max), default=None)),
        "t0_lag_p95_gauge_max_s": rounded(max(steady(gauge_p95), default=None)),
        "t0_lag_p99_s_db": rounded(percentile(steady(db_max), 0.99)),
        "t0_lag_max_s_db": rounded(max(steady(db_max), default=None)),
        "bound_s": CADENCE_S + latency_ms / 1000,
        "breaker_openings": int(sum(pick(last, "circuit_opened_total"))) if last else None,
        "circuit_open_samples": circuit_open_samples,
        "live_jobs": int(jobs["bars_fetch"]) if "bars_fetch" in jobs else None,
        "backfill_jobs": int(jobs["backfill"]) if "backfill" in jobs else None,
        "jobs_processed": {k: int(v) for k, v in sorted(jobs.items())},
        "event_loop_lag_p99_ms": rounded(None if loop_p99 is None else loop_p99 * 1000, 1),
        "rss_mb": rss_series,
        "rss_mb_max": rounded(max(rss_all, default=None), 1),
        "backfill_queue_depth_max": depth_max,
        "bytes_per_queued_job": (
            round(bytes_at_depth_max / depth_max) if bytes_at_depth_max is not None and depth_max else None
        ),
        "metrics_missing": [n for n in WATCHED if n not in seen and n != "circuit_opened_total"],
        "metrics_scrape_failures": scrape_failures,
        "error": error,
    }
