"""`mds bench ...`: run one benchmark, print its figures as one line (``--json``: JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated

import typer

from mds.cli.apps import bench_app
from mds.cli.common import fail

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON line with every figure")]


def _flat(result: Mapping[str, object], prefix: str = "") -> list[str]:
    parts: list[str] = []
    for key, value in result.items():
        if isinstance(value, Mapping):
            parts += _flat(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            parts.append(f"{prefix}{key}=[{len(value)} values]")
        else:
            parts.append(f"{prefix}{key}={'-' if value is None else value}")
    return parts


def _report(result: Mapping[str, object], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
        return
    rest = {k: v for k, v in result.items() if k != "benchmark"}
    typer.echo(f"{result.get('benchmark', 'bench')}: {' '.join(_flat(rest))}")


@bench_app.command("admin")
def bench_admin(
    symbols: Annotated[int, typer.Option(help="Tracked symbols (and failed backfill jobs)")] = 8000,
    requests: Annotated[int, typer.Option(help="Requests per page")] = 50,
    paint_loads: Annotated[int, typer.Option(help="Headless Chromium loads per page (0: none)")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Server response p50/p99 of every /admin page with 8,000 symbols, and first paint in Chromium."""
    from mds.benchmarks import admin

    _report(admin.run(symbols, requests, paint_loads=paint_loads), as_json)


@bench_app.command("startup")
def bench_startup(as_json: JsonOpt = False) -> None:
    """Seconds until `mds serve --demo` serves, until its start-up backfill drains, and its RSS."""
    from mds.benchmarks import startup

    _report(startup.run(), as_json)


@bench_app.command("live")
def bench_live(
    symbols: Annotated[int, typer.Option(help="Symbols in the universe")] = 8000,
    t0: Annotated[int, typer.Option(help="T0 symbols (1m bars every 60 s); the rest T1/T2")] = 1200,
    minutes: Annotated[float, typer.Option(help="Wall minutes to run on the real-rate clock")] = 10.0,
    latency_ms: Annotated[float, typer.Option(help="Sim providers' latency per answer (ms)")] = 20.0,
    burn_cpu: Annotated[int, typer.Option(help="CPU-burning processes beside the server")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """T0 live lag, breaker openings and RSS over time of `mds serve` with its start-up backfill queued."""
    from mds.benchmarks import live

    _report(live.run(symbols, t0, minutes, latency_ms, burn_cpu), as_json)


@bench_app.command("parse")
def bench_parse(as_json: JsonOpt = False) -> None:
    """Parse a one-year 1m payload (~98k bars) in Polygon's format: bars per second."""
    from mds.benchmarks import parse

    _report(parse.run(), as_json)


@bench_app.command("gaps")
def bench_gaps(
    symbols: Annotated[int, typer.Option(help="Symbols, one session of 1m bars each")] = 8000,
    as_json: JsonOpt = False,
) -> None:
    """Full gap scan of one session of 1m bars for N symbols in the SQLite store."""
    from mds.benchmarks import gaps

    _report(gaps.run(symbols), as_json)


@bench_app.command("drain")
def bench_drain(
    jobs: Annotated[int, typer.Option(help="Backfill jobs in the backlog")] = 1200,
    rate: Annotated[float, typer.Option(help="Provider limit, requests per clock-second")] = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Drain a backlog behind a rate-limited sim provider: utilization of the limit, breaches."""
    from mds.benchmarks import drain

    _report(drain.run(jobs, rate), as_json)


@bench_app.command("indicators")
def bench_indicators(
    symbols: Annotated[int, typer.Option(help="Symbols")] = 8000,
    bars: Annotated[int, typer.Option(help="Daily bars per symbol")] = 270,
    as_json: JsonOpt = False,
) -> None:
    """The full snapshot for N symbols vs the same TA-Lib calls alone, in one run."""
    from mds.benchmarks import indicators

    _report(indicators.run(symbols, bars), as_json)


@bench_app.command("snapshots")
def bench_snapshots(
    symbols: Annotated[int, typer.Option(help="Symbols")] = 8000,
    as_json: JsonOpt = False,
) -> None:
    """Full snapshot refresh of N symbols from the SQLite store, end to end."""
    from mds.benchmarks import snapshots

    _report(snapshots.run(symbols), as_json)


@bench_app.command("ingest")
def bench_ingest(
    backend: Annotated[str, typer.Option(help="postgres")] = "postgres",
    bars: Annotated[int, typer.Option(help="1m bars to write")] = 1_000_000,
    as_json: JsonOpt = False,
) -> None:
    """Write N bars through the PostgreSQL store vs a raw COPY into the same schema, one run."""
    if backend != "postgres":
        fail("--backend: only postgres (the SQLite store has `mds bench store`)")
    from mds.benchmarks import pg

    _report(pg.ingest(bars), as_json)


@bench_app.command("read")
def bench_read(
    backend: Annotated[str, typer.Option(help="postgres")] = "postgres",
    clients: Annotated[int, typer.Option(help="Concurrent HTTP clients")] = 50,
    seconds: Annotated[float, typer.Option(help="How long to measure")] = 10.0,
    auth: Annotated[bool, typer.Option(help="AUTH_READ_REQUIRED=true; every request sends a key")] = False,
    as_json: JsonOpt = False,
) -> None:
    """One symbol-day of 1m bars through the HTTP API under concurrent clients (PostgreSQL)."""
    if backend != "postgres":
        fail("--backend: only postgres")
    from mds.benchmarks import pg

    _report(pg.read(clients, seconds, auth=auth), as_json)


@bench_app.command("tracing")
def bench_tracing(
    clients: Annotated[int, typer.Option(help="Concurrent HTTP clients")] = 50,
    seconds: Annotated[float, typer.Option(help="Seconds measured per mode, in all")] = 10.0,
    rounds: Annotated[int, typer.Option(help="Turns the modes take (order rotating)")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """`bench read` p99 with tracing off, on without an exporter, and exporting to a loopback
    OTLP collector, side by side in one run (PostgreSQL); limits 1.05x and 1.2x of off."""
    from mds.benchmarks import tracing

    _report(tracing.run(clients, seconds, rounds), as_json)


@bench_app.command("store")
def bench_store(
    symbols: Annotated[int, typer.Option(help="Symbols")] = 100,
    bars: Annotated[int, typer.Option(help="1m bars per symbol")] = 390,
    as_json: JsonOpt = False,
) -> None:
    """SQLite PIT store throughput, and whether latest reads pay for history."""
    from mds.benchmarks import store

    _report(store.run(symbols, bars), as_json)


@bench_app.command("enqueue")
def bench_enqueue(
    backend: Annotated[str, typer.Option(help="sqlite or postgres")] = "sqlite",
    jobs: Annotated[int, typer.Option(help="Backfill jobs to enqueue (three per symbol)")] = 24_000,
    as_json: JsonOpt = False,
) -> None:
    """A start-up gap scan's backfills through the real Backfiller: jobs/s, bytes per queued job."""
    if backend not in ("sqlite", "postgres"):
        fail("--backend: sqlite or postgres")
    from mds.benchmarks import enqueue

    _report(enqueue.run(backend, jobs), as_json)


@bench_app.command("universe")
def bench_universe(
    rows: Annotated[int, typer.Option(help="Symbols in the generated NASDAQ Trader directory")] = 12_000,
    as_json: JsonOpt = False,
) -> None:
    """Universe import of a NASDAQ Trader directory into SQLite, then again with 2% changed (target < 2 s)."""
    from mds.benchmarks import universe

    _report(universe.run(rows), as_json)


@bench_app.command("coverage")
def bench_coverage(
    backend: Annotated[str, typer.Option(help="sqlite or postgres")] = "sqlite",
    symbols: Annotated[int, typer.Option(help="Tracked symbols")] = 8000,
    sessions: Annotated[int, typer.Option(help="Daily bars per symbol")] = 260,
    reads: Annotated[int, typer.Option(help="Reads of the cached snapshot")] = 200,
    cache: Annotated[str, typer.Option(help="memory or redis (MDS_BENCH_REDIS_URL)")] = "memory",
    as_json: JsonOpt = False,
) -> None:
    """Coverage snapshot of N tracked symbols from the store (target < 2 s), and reads of the
    cached snapshot (p99 target < 20 ms)."""
    if backend not in ("sqlite", "postgres"):
        fail("--backend: sqlite or postgres")
    if cache not in ("memory", "redis"):
        fail("--cache: memory or redis")
    from mds.benchmarks import coverage

    _report(coverage.run(backend, symbols, sessions, reads, cache), as_json)


@bench_app.command("scheduler")
def bench_scheduler(
    schedules: Annotated[
        int, typer.Option(help="Schedules the leader plans (cron in six zones, XNYS)")
    ] = 1000,
    days: Annotated[float, typer.Option(help="Clock days the tick walk covers")] = 7.0,
    fires: Annotated[int, typer.Option(help="Fires per fire-latency round (burst, paced)")] = 100,
    backend: Annotated[
        str, typer.Option(help="Store of the fire-latency rounds: sqlite or postgres")
    ] = "sqlite",
    queue: Annotated[str, typer.Option(help="Task queues: memory or redis (MDS_BENCH_REDIS_URL)")] = "memory",
    as_json: JsonOpt = False,
) -> None:
    """The leader's tick over N schedules (p99 target < 5 ms), and fire latency: a due
    schedule's run starts within 1 s of its due time, over two rounds of fires."""
    if backend not in ("sqlite", "postgres"):
        fail("--backend: sqlite or postgres")
    if queue not in ("memory", "redis"):
        fail("--queue: memory or redis")
    from mds.benchmarks import scheduler

    _report(scheduler.run(backend, queue, schedules, days, fires), as_json)


@bench_app.command("ws")
def bench_ws(
    clients: Annotated[int, typer.Option(help="WebSocket clients, spread evenly over the symbols")] = 1000,
    symbols: Annotated[int, typer.Option(help="Symbols, each getting one bar per clock minute")] = 500,
    seconds: Annotated[float, typer.Option(help="Wall seconds to publish for")] = 30.0,
    speed: Annotated[float, typer.Option(help="Clock speed: clock minutes per wall minute")] = 60.0,
    compression: Annotated[
        bool, typer.Option(help="Clients offer permessage-deflate (the websockets library's default)")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Fan-out of one `mds api`: publish latency, drops, RSS per client, the clients' CPU share."""
    from mds.benchmarks import ws

    try:
        result = ws.run(clients, symbols, seconds, speed, compression)
    except (RuntimeError, ValueError) as exc:
        fail(f"bench ws: {exc}", code=1)
    _report(result, as_json)


@bench_app.command("options")
def bench_options(
    contracts: Annotated[int, typer.Option(help="Contracts whose IVs are solved in one call")] = 5000,
    repeats: Annotated[int, typer.Option(help="Timed solves (the median counts)")] = 7,
    vollib_contracts: Annotated[int, typer.Option(help="Contracts solved one by one by vollib")] = 1000,
    metrics_contracts: Annotated[int, typer.Option(help="Contracts in the metrics' chain")] = 2000,
    metrics_runs: Annotated[int, typer.Option(help="Timed metrics computations")] = 300,
    as_json: JsonOpt = False,
) -> None:
    """IV of a 5,000-contract chain (target >= 50,000 contracts/s; vollib's own rate beside
    it), and the options metrics computed on a 2,000-contract chain."""
    from mds.benchmarks import options

    _report(
        options.run_iv_bench(contracts, repeats, vollib_contracts, metrics_contracts, metrics_runs), as_json
    )


@bench_app.command("options-api")
def bench_options_api(
    requests: Annotated[int, typer.Option(help="Sequential GET /options/{symbol}/metrics")] = 500,
    chain_requests: Annotated[int, typer.Option(help="Sequential GET /options/{symbol}/chain")] = 100,
    contracts: Annotated[int, typer.Option(help="Contracts the cached chain holds at least")] = 2000,
    symbol: Annotated[str, typer.Option(help="A demo symbol (the sim lists its chain)")] = "MSFT",
    as_json: JsonOpt = False,
) -> None:
    """GET /options/{symbol}/metrics on a cached ~2,000-contract chain over loopback HTTP
    (p99 target < 50 ms), and the chain read beside it."""
    from mds.benchmarks import options_api

    try:
        result = options_api.run(requests, chain_requests, contracts, symbol.upper())
    except (RuntimeError, ValueError) as exc:
        fail(f"bench options-api: {exc}", code=1)
    _report(result, as_json)


@bench_app.command("adjust")
def bench_adjust(
    rounds: Annotated[int, typer.Option(help="Reads of each kind, alternating raw, split, all")] = 300,
    only: Annotated[
        str | None, typer.Option(help="raw, split or all: only that kind's reads (to time two processes)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Adjusted against raw reads of a symbol-year of daily bars and a symbol-day of 1m bars,
    side by side (limit: adjusted <= 1.2x raw)."""
    from mds.benchmarks import adjust
    from mds.corporate.adjust import Adjust

    if only is not None and only not in ("raw", "split", "all"):
        fail(f"--only: {only!r} is not one of raw, split, all")
    _report(adjust.run(rounds, Adjust(only) if only else None), as_json)


@bench_app.command("export")
def bench_export(
    symbols: Annotated[int, typer.Option(help="Symbols, each a year of daily bars")] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Export a year of daily bars per symbol to a partitioned Parquet dataset (limit: 500 in < 10 s)."""
    from mds.benchmarks import export

    _report(export.run(symbols), as_json)


@bench_app.command("reconcile")
def bench_reconcile(
    symbols: Annotated[int, typer.Option(help="Symbols, each with SESSIONS sessions of 1m bars")] = 100,
    sessions: Annotated[int, typer.Option(help="Sessions per symbol")] = 10,
    noise: Annotated[float, typer.Option(help="Price noise of the second provider (0 = clean)")] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile 1,000 symbol-days of stored 1m bars against a second sim provider (target < 10 s)."""
    from mds.benchmarks import reconcile

    _report(reconcile.run(symbols, sessions, noise), as_json)
