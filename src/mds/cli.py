"""The `mds` command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from mds.config import ConfigError, Settings, load_settings
from mds.domain.models import Capability, Interval

app = typer.Typer(
    help="MDS: provider-independent, gap-safe market data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect and validate settings.", no_args_is_help=True)
sim_app = typer.Typer(help="The offline sim market.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(sim_app, name="sim")
bench_app = typer.Typer(help="Benchmarks; each prints one JSON line.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

EnvFile = Annotated[
    Path | None, typer.Option("--env-file", help="Read settings from this file too (environment wins)")
]

DEMO_POLICY = "sim,sim_backup"
DEMO_DATABASE_URL = "sqlite:///./var/demo.db"


def _fail(message: str, code: int = 2) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _env_file(env_file: Path | None) -> Path | None:
    if env_file is None and os.environ.get("MDS_ENV_FILE"):
        return Path(os.environ["MDS_ENV_FILE"])
    return env_file


def _demo_defaults(demo: bool) -> dict[str, str]:
    """The demo runs on sim data only, in its own database, so sim bars never mix with
    real ones; anything set explicitly (environment or env file) still wins."""
    if not demo:
        return {}
    return {
        **{f"POLICY_{cap.value.upper()}": DEMO_POLICY for cap in Capability},
        "DATABASE_URL": DEMO_DATABASE_URL,
        # The sim has no vendor budget to protect; the seed's 2 jobs/s would make the demo's
        # start-up backfill (a year of daily bars for 50 symbols) take over a minute.
        "BACKFILL_DISPATCH_RATE_PER_SEC": "50",
    }


def _environ(env_file: Path | None, *, demo: bool = False) -> dict[str, str]:
    from mds.ops.reload import effective_environ

    try:
        return effective_environ(os.environ, _env_file(env_file), _demo_defaults(demo))
    except ConfigError as exc:
        _fail(f"invalid config: {exc.setting}: {exc.message}")
        raise AssertionError("unreachable") from None


def _settings(env_file: Path | None, *, demo: bool = False, **overrides: Any) -> Settings:
    environ = _environ(env_file, demo=demo)
    try:
        return load_settings(environ, **overrides)
    except ConfigError as exc:
        _fail(f"invalid config: {exc.setting}: {exc.message}")
        raise AssertionError("unreachable") from None


def _parse_time(name: str, value: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"{name}: {value!r} is not an ISO-8601 time")
        raise AssertionError("unreachable") from None
    if ts.tzinfo is None:
        _fail(f"{name}: {value!r} has no time zone; add Z or an offset")
    return ts


@config_app.command("validate")
def config_validate(env_file: EnvFile = None) -> None:
    """Check the settings; print the first problem with the setting's name and exit 2."""
    _settings(env_file)
    typer.echo("config ok")


@config_app.command("show")
def config_show(env_file: EnvFile = None) -> None:
    """Print the effective settings as JSON (secrets shown only as set/unset)."""
    s = _settings(env_file)
    out = s.redacted()
    out["effective_policies"] = {c.value: s.policy(c) for c in Capability}
    typer.echo(json.dumps(out, indent=2, sort_keys=True))


@app.command()
def migrate(env_file: EnvFile = None) -> None:
    """Apply pending schema migrations to DATABASE_URL."""
    from mds.storage.factory import open_store

    s = _settings(env_file)

    async def run() -> list[str]:
        store = open_store(s.DATABASE_URL)
        # open() applies migrations too; report what migrate() finds left afterwards.
        await store.open()
        try:
            return await store.migrate()
        finally:
            await store.close()

    asyncio.run(run())
    typer.echo(f"migrations up to date ({s.DATABASE_URL})")


ClockOpt = Annotated[str | None, typer.Option("--clock", help="Start a simulated clock at this UTC time")]
SpeedOpt = Annotated[float, typer.Option(help="Simulated clock speed factor")]
AnchorOpt = Annotated[
    float | None,
    typer.Option(
        "--clock-anchor",
        help="Wall-clock epoch second at which --clock applies (share one time across processes)",
    ),
]


def _clock(clock: str | None, speed: float, anchor: float | None):  # type: ignore[no-untyped-def]
    from mds.domain.clock import SimulatedClock, SystemClock

    if speed <= 0:
        _fail("--speed must be positive")
    if clock:
        return SimulatedClock(_parse_time("--clock", clock), speed, anchor=anchor)
    if speed != 1.0:
        return SimulatedClock(SystemClock().now(), speed, anchor=anchor)
    return SystemClock()


def _run(
    roles: frozenset[str],
    *,
    demo: bool,
    clock: str | None,
    speed: float,
    anchor: float | None,
    host: str | None,
    port: int | None,
    env_file: Path | None,
    service_only: bool = False,
    consumer: str | None = None,
) -> None:
    import uvicorn

    from mds.api.app import create_app
    from mds.runtime import open_runtime

    settings = _settings(env_file, demo=demo)
    if roles != {"api", "worker", "scheduler"} and settings.QUEUE_BACKEND != "redis":
        _fail(
            "QUEUE_BACKEND: separate api/worker/scheduler processes share work through Redis; set QUEUE_BACKEND=redis"
        )
    the_clock = _clock(clock, speed, anchor)
    logging.basicConfig(
        level=settings.LOG_LEVEL.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if settings.sqlite_path is not None:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)

    app_ = create_app(
        lambda: open_runtime(
            settings,
            clock=the_clock,
            demo=demo,
            roles=roles,
            environ=dict(os.environ),
            env_file=_env_file(env_file),
            env_defaults=_demo_defaults(demo),
            consumer=consumer,
        ),
        service_only=service_only,
    )
    uvicorn.run(
        app_,
        host=host or settings.MDS_HOST,
        port=port or settings.MDS_PORT,
        log_level=settings.LOG_LEVEL.lower(),
        access_log=False,
    )


DemoOpt = Annotated[bool, typer.Option(help="Serve the offline sim market (providers sim, sim_backup)")]
HostOpt = Annotated[str | None, typer.Option(help="Bind address (default MDS_HOST)")]


@app.command()
def serve(
    demo: DemoOpt = False,
    clock: ClockOpt = None,
    speed: SpeedOpt = 1.0,
    clock_anchor: AnchorOpt = None,
    host: HostOpt = None,
    port: Annotated[int | None, typer.Option(help="Port (default MDS_PORT)")] = None,
    env_file: EnvFile = None,
) -> None:
    """Run the API, the collector and the scheduler in one process (the embedded default)."""
    _run(
        frozenset({"api", "worker", "scheduler"}),
        demo=demo,
        clock=clock,
        speed=speed,
        anchor=clock_anchor,
        host=host,
        port=port,
        env_file=env_file,
    )


@app.command()
def api(
    demo: DemoOpt = False,
    clock: ClockOpt = None,
    speed: SpeedOpt = 1.0,
    clock_anchor: AnchorOpt = None,
    host: HostOpt = None,
    port: Annotated[int | None, typer.Option(help="Port (default MDS_PORT)")] = None,
    env_file: EnvFile = None,
) -> None:
    """HTTP only: reads the store, hands backfills to the workers through Redis."""
    _run(
        frozenset({"api"}),
        demo=demo,
        clock=clock,
        speed=speed,
        anchor=clock_anchor,
        host=host,
        port=port,
        env_file=env_file,
    )


@app.command()
def worker(
    demo: DemoOpt = False,
    clock: ClockOpt = None,
    speed: SpeedOpt = 1.0,
    clock_anchor: AnchorOpt = None,
    metrics_port: Annotated[int, typer.Option(help="Port for /health and /metrics")] = 9101,
    name: Annotated[
        str | None, typer.Option(help="Stable consumer name (a restarted worker takes back its jobs)")
    ] = None,
    env_file: EnvFile = None,
) -> None:
    """Consume live and backfill jobs from Redis; store what they fetch."""
    _run(
        frozenset({"worker"}),
        demo=demo,
        clock=clock,
        speed=speed,
        anchor=clock_anchor,
        host=None,
        port=metrics_port,
        env_file=env_file,
        service_only=True,
        consumer=name,
    )


@app.command()
def scheduler(
    demo: DemoOpt = False,
    clock: ClockOpt = None,
    speed: SpeedOpt = 1.0,
    clock_anchor: AnchorOpt = None,
    metrics_port: Annotated[int, typer.Option(help="Port for /health and /metrics")] = 9102,
    env_file: EnvFile = None,
) -> None:
    """Sweeper, gap scans and SLO monitor; one active at a time (a Redis lock), others wait."""
    _run(
        frozenset({"scheduler"}),
        demo=demo,
        clock=clock,
        speed=speed,
        anchor=clock_anchor,
        host=None,
        port=metrics_port,
        env_file=env_file,
        service_only=True,
    )


@sim_app.command("bars")
def sim_bars(
    symbol: str,
    interval: Annotated[str, typer.Option(help="1m, 5m, 15m, 1h or 1d")] = "1m",
    start: Annotated[str, typer.Option(help="Inclusive start, ISO-8601 with zone")] = ...,  # type: ignore[assignment]
    end: Annotated[str, typer.Option(help="Exclusive end, ISO-8601 with zone")] = ...,  # type: ignore[assignment]
    seed: Annotated[int | None, typer.Option(help="Ground-truth seed (default SIM_SEED or 42)")] = None,
) -> None:
    """Print the sim ground truth, one JSON object per line."""
    from mds.providers.sim.faults import SimFaults
    from mds.providers.sim.market import ground_truth

    try:
        iv = Interval(interval)
    except ValueError:
        _fail(f"--interval: unknown interval {interval!r}")
        return
    a, b = _parse_time("--start", start), _parse_time("--end", end)
    if a >= b:
        _fail("--start must be before --end")
    if seed is None:
        try:
            seed = SimFaults.from_env(os.environ, prefix="SIM_").seed
        except ConfigError as exc:
            _fail(f"invalid config: {exc.setting}: {exc.message}")
    from mds.serialize import ohlcv_json

    for bar in ground_truth(symbol.upper(), iv, a, b, seed=seed):  # type: ignore[arg-type]
        typer.echo(json.dumps(ohlcv_json(bar)))


@app.command("sim-server")
def sim_server(
    format_: Annotated[
        str, typer.Option("--format", help="Vendor wire format: polygon, finnhub, yahoo, ...")
    ],
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1)")] = 8101,
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    prefix: Annotated[str, typer.Option(help="Fault settings prefix (SIM_, SIM_BACKUP_, ...)")] = "SIM_",
    clock: Annotated[str | None, typer.Option(help="Start a simulated clock at this UTC time")] = None,
    speed: Annotated[float, typer.Option(help="Simulated clock speed factor")] = 1.0,
) -> None:
    """Serve the sim ground truth in a vendor's wire format, with the sim's fault settings."""
    import uvicorn

    from mds.domain.clock import SimulatedClock, SystemClock
    from mds.providers.sim.faults import FaultInjector, SimFaults
    from mds.providers.sim.market import SimMarket, parse_no_trade
    from mds.simserver.app import FORMATS, create_sim_app
    from mds.simserver.context import SimContext

    if format_ not in FORMATS:
        _fail(f"--format: unknown format {format_!r}; one of {', '.join(FORMATS)}")
    try:
        faults = SimFaults.from_env(os.environ, prefix=prefix)
        seed = SimFaults.from_env(os.environ, prefix="SIM_").seed
    except ConfigError as exc:
        _fail(f"invalid config: {exc.setting}: {exc.message}")
        return
    the_clock = SimulatedClock(_parse_time("--clock", clock), speed) if clock else SystemClock()
    try:
        no_trade = parse_no_trade(os.environ.get("SIM_NO_TRADE", ""))
    except ConfigError as exc:
        _fail(f"invalid config: {exc.setting}: {exc.message}")
        return
    market = SimMarket(seed=seed, no_trade=no_trade or None)
    ctx = SimContext(market=market, clock=the_clock, injector=FaultInjector(format_, faults))
    uvicorn.run(create_sim_app(format_, ctx), host=host, port=port, log_level="warning", access_log=False)


@app.command()
def fetch(
    symbol: str,
    provider: Annotated[str, typer.Option(help="Provider name (sim, yahoo, polygon, ...)")],
    interval: Annotated[str, typer.Option(help="1m, 5m, 15m, 1h or 1d")] = "1d",
    start: Annotated[str, typer.Option(help="Inclusive start, ISO-8601 with zone")] = ...,  # type: ignore[assignment]
    end: Annotated[str, typer.Option(help="Exclusive end, ISO-8601 with zone")] = ...,  # type: ignore[assignment]
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    env_file: EnvFile = None,
) -> None:
    """Print the bars one provider returns for start <= ts < end (debugging a vendor)."""
    from mds.calendar import MarketCalendar
    from mds.config import KNOWN_PROVIDERS, PROVIDER_ALIASES
    from mds.domain.clock import SystemClock
    from mds.errors import ProviderError
    from mds.providers.registry import build_providers
    from mds.serialize import ohlcv_json

    name = PROVIDER_ALIASES.get(provider.lower(), provider.lower())
    if name not in KNOWN_PROVIDERS:
        _fail(f"--provider: unknown provider {provider!r}; one of {', '.join(KNOWN_PROVIDERS)}")
    try:
        iv = Interval(interval)
    except ValueError:
        _fail(f"--interval: unknown interval {interval!r}")
        return
    a, b = _parse_time("--start", start), _parse_time("--end", end)
    if a >= b:
        _fail("--start must be before --end")
    environ = _environ(env_file)
    settings = _settings(env_file, **{f"POLICY_{c.value.upper()}": [name] for c in Capability})

    async def run() -> list:
        providers = build_providers(
            settings, SystemClock(), MarketCalendar(settings.MARKET_CALENDAR), environ
        )
        p = providers[name]
        try:
            if not p.configured:
                _fail(f"{name} is not configured (its API key setting is unset)", 2)
            return await p.fetch_bars(symbol.upper(), iv, a, b)
        finally:
            for each in providers.values():
                await each.aclose()

    try:
        bars = asyncio.run(run())
    except ProviderError as exc:
        typer.echo(f"{exc.kind}: {exc}", err=True)
        raise typer.Exit(1) from None
    for bar in bars:
        if as_json:
            typer.echo(json.dumps({**ohlcv_json(bar), "provider": bar.provider, "adjusted": bar.adjusted}))
        else:
            typer.echo(
                f"{ohlcv_json(bar)['ts']}  {bar.open:>12.4f} {bar.high:>12.4f} {bar.low:>12.4f} "
                f"{bar.close:>12.4f} {bar.volume:>14.0f}  {bar.provider}"
            )
    if not as_json:
        typer.echo(f"{len(bars)} bars from {name}", err=True)


@app.command()
def providers(
    url: Annotated[str, typer.Option(help="A running MDS to ask")] = "http://127.0.0.1:8001",
    env_file: EnvFile = None,
) -> None:
    """Print the provider health table of a running MDS, or the local configuration."""
    import httpx

    try:
        rows = httpx.get(url.rstrip("/") + "/stats/providers", timeout=3).json()["providers"]
        source = f"live from {url}"
    except (httpx.HTTPError, ValueError, KeyError):
        rows = _configured_rows(_settings(env_file))
        source = f"{url} not reachable; configuration only (no health yet)"
    typer.echo(
        f"{'provider':<13}{'configured':<12}{'state':<11}{'H':>6}{'p95 ms':>9}{'err rate':>10}  capabilities"
    )
    for r in rows:
        p95 = "-" if r.get("latency_p95_ms") is None else f"{r['latency_p95_ms']:.0f}"
        typer.echo(
            f"{r['provider']:<13}{('yes' if r['configured'] else 'no'):<12}{r['state']:<11}"
            f"{r['health_score']:>6.2f}{p95:>9}{r['error_ewma']:>10.3f}  {','.join(r['capabilities'])}"
        )
    typer.echo(f"({source})", err=True)


def _configured_rows(settings: Settings) -> list[dict[str, Any]]:
    from mds.calendar import MarketCalendar
    from mds.domain.clock import SystemClock
    from mds.observability.metrics import Metrics
    from mds.providers.registry import build_providers
    from mds.routing.router import Router

    async def run() -> list[dict[str, Any]]:
        ps = build_providers(
            settings, SystemClock(), MarketCalendar(settings.MARKET_CALENDAR), dict(os.environ)
        )
        try:
            return Router(ps, settings, SystemClock(), Metrics()).snapshot()
        finally:
            for p in ps.values():
                await p.aclose()

    return asyncio.run(run())


@app.command()
def ta(
    symbol: str,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="YYYY-MM-DD: what MDS knew at the end of that day")
    ] = None,
    demo: Annotated[bool, typer.Option(help="Read the demo database")] = False,
    env_file: EnvFile = None,
) -> None:
    """Print the symbol's analysis snapshot (indicators from stored daily bars) as JSON."""
    from datetime import date as date_

    from mds.analysis.service import ta_command
    from mds.errors import NotFound
    from mds.runtime import open_runtime

    day = None
    if as_of is not None:
        try:
            day = date_.fromisoformat(as_of)
        except ValueError:
            _fail(f"--as-of: {as_of!r} is not a YYYY-MM-DD date")
    s = _settings(env_file, demo=demo)

    async def run() -> dict[str, Any]:
        async with open_runtime(s, demo=demo, collect=False, environ=_environ(env_file, demo=demo)) as rt:
            return await ta_command(rt, symbol.upper(), as_of=day)

    try:
        typer.echo(json.dumps(asyncio.run(run()), indent=2))
    except NotFound as exc:
        _fail(str(exc), 1)


@app.command()
def gaps(
    interval: Annotated[str, typer.Option(help="1m or 1d")] = "1m",
    start: Annotated[str, typer.Option(help="Inclusive start, ISO-8601 with zone")] = ...,  # type: ignore[assignment]
    end: Annotated[str, typer.Option(help="Exclusive end, ISO-8601 with zone")] = ...,  # type: ignore[assignment]
    symbol: Annotated[list[str] | None, typer.Option(help="Only these symbols (repeatable)")] = None,
    tier: Annotated[str | None, typer.Option(help="Only this tier (T0, T1, T2)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per gap")] = False,
    env_file: EnvFile = None,
) -> None:
    """Compare stored bars with the calendar's expected bars and list what is missing."""
    from mds.calendar import MarketCalendar
    from mds.domain.clock import SystemClock
    from mds.domain.models import Tier
    from mds.ingest.scan import scan_gaps, summarize
    from mds.storage.factory import open_store

    iv = _interval(interval)
    a, b = _parse_time("--start", start), _parse_time("--end", end)
    if a >= b:
        _fail("--start must be before --end")
    tier_ = None
    if tier is not None:
        try:
            tier_ = Tier(tier.upper())
        except ValueError:
            _fail(f"--tier: unknown tier {tier!r}; use T0, T1 or T2")
    s = _settings(env_file)

    async def run() -> tuple[list, int]:
        store = open_store(s.DATABASE_URL)
        await store.open()
        try:
            universe = await store.universe(tier=tier_)
            names = [e.symbol for e in universe]
            if symbol:
                wanted = {x.upper() for x in symbol}
                unknown = sorted(wanted - {e.symbol for e in await store.universe()})
                if unknown:
                    _fail(f"--symbol: not in the universe: {', '.join(unknown)}")
                names = [n for n in names if n in wanted]
            found = await scan_gaps(
                store,
                MarketCalendar(s.MARKET_CALENDAR),
                symbols=names,
                interval=iv,
                start=a,
                end=b,
                now=SystemClock().now(),
            )
            empty = await store.count_confirmed_empty(iv, a, b, names)
            return found, empty
        finally:
            await store.close()

    found, empty = asyncio.run(run())
    for g in found:
        if as_json:
            typer.echo(json.dumps(g.as_dict()))
        else:
            d = g.as_dict()
            typer.echo(
                f"{d['symbol']:<8} {d['interval']:<3} {d['start']} .. {d['end']}  {d['missing_bars']} missing"
            )
    summary = summarize(found)
    typer.echo(
        f"{summary['gaps']} gaps, {summary['missing_bars']} missing bars in {summary['symbols_affected']} symbols; "
        f"{empty} minutes confirmed empty (no trades)",
        err=True,
    )


@app.command()
def backfill(
    symbols: Annotated[list[str], typer.Argument(help="Symbols to fill")],
    interval: Annotated[str, typer.Option(help="1m or 1d")] = "1m",
    start: Annotated[str, typer.Option(help="Inclusive start, ISO-8601 with zone")] = ...,  # type: ignore[assignment]
    end: Annotated[str, typer.Option(help="Exclusive end, ISO-8601 with zone")] = ...,  # type: ignore[assignment]
    demo: Annotated[bool, typer.Option(help="Fill from the sim providers")] = False,
    env_file: EnvFile = None,
) -> None:
    """Fill a range now, through the same queues, limits and retries as the service; shows progress."""
    from mds.ingest.cli_backfill import run_backfill

    iv = _interval(interval)
    a, b = _parse_time("--start", start), _parse_time("--end", end)
    if a >= b:
        _fail("--start must be before --end")
    s = _settings(env_file, demo=demo)
    if (b - a).days > s.BACKFILL_MAX_RANGE_DAYS:
        _fail(f"--end: range exceeds BACKFILL_MAX_RANGE_DAYS={s.BACKFILL_MAX_RANGE_DAYS}")
    environ = _environ(env_file, demo=demo)
    try:
        report = asyncio.run(run_backfill(s, environ, [x.upper() for x in symbols], iv, a, b, demo=demo))
    except ConfigError as exc:
        _fail(str(exc))
        return
    typer.echo(json.dumps(report))
    raise typer.Exit(0 if report["failed"] == 0 else 1)


def _interval(value: str) -> Interval:
    try:
        return Interval(value)
    except ValueError:
        _fail(f"--interval: unknown interval {value!r}; use 1m, 5m, 15m, 1h or 1d")
        raise AssertionError("unreachable") from None


JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON line (the default)")]


@bench_app.command("startup")
def bench_startup(json_: JsonFlag = True) -> None:
    """Seconds until `mds serve --demo` serves, until its start-up backfill drains, and its RSS."""
    from mds.benchmarks import startup

    typer.echo(json.dumps(startup.run()))


@bench_app.command("live")
def bench_live(
    symbols: Annotated[int, typer.Option(help="Symbols in the universe")] = 8000,
    t0: Annotated[int, typer.Option(help="T0 symbols (1m bars every 60 s); the rest T1/T2")] = 1200,
    minutes: Annotated[float, typer.Option(help="Wall minutes to run on the real-rate clock")] = 10.0,
    latency_ms: Annotated[float, typer.Option(help="Sim providers' latency per answer (ms)")] = 20.0,
    burn_cpu: Annotated[int, typer.Option(help="CPU-burning processes beside the server")] = 0,
    json_: JsonFlag = True,
) -> None:
    """T0 live lag, breaker openings and RSS over time of `mds serve` with its start-up backfill queued."""
    from mds.benchmarks import live

    typer.echo(json.dumps(live.run(symbols, t0, minutes, latency_ms, burn_cpu)))


@bench_app.command("parse")
def bench_parse(json_: JsonFlag = True) -> None:
    """Parse a one-year 1m payload (~98k bars) in Polygon's format: bars per second."""
    from mds.benchmarks import parse

    typer.echo(json.dumps(parse.run()))


@bench_app.command("gaps")
def bench_gaps(
    symbols: Annotated[int, typer.Option(help="Symbols, one session of 1m bars each")] = 8000,
    json_: JsonFlag = True,
) -> None:
    """Full gap scan of one session of 1m bars for N symbols in the SQLite store."""
    from mds.benchmarks import gaps as bench

    typer.echo(json.dumps(bench.run(symbols)))


@bench_app.command("drain")
def bench_drain(
    jobs: Annotated[int, typer.Option(help="Backfill jobs in the backlog")] = 1200,
    rate: Annotated[float, typer.Option(help="Provider limit, requests per clock-second")] = 5.0,
    json_: JsonFlag = True,
) -> None:
    """Drain a backlog behind a rate-limited sim provider: utilization of the limit, breaches."""
    from mds.benchmarks import drain

    typer.echo(json.dumps(drain.run(jobs, rate)))


@bench_app.command("indicators")
def bench_indicators(
    symbols: Annotated[int, typer.Option(help="Symbols")] = 8000,
    bars: Annotated[int, typer.Option(help="Daily bars per symbol")] = 270,
    json_: JsonFlag = True,
) -> None:
    """The full snapshot for N symbols vs the same TA-Lib calls alone, in one run."""
    from mds.benchmarks import indicators

    typer.echo(json.dumps(indicators.run(symbols, bars)))


@bench_app.command("snapshots")
def bench_snapshots(
    symbols: Annotated[int, typer.Option(help="Symbols")] = 8000,
    json_: JsonFlag = True,
) -> None:
    """Full snapshot refresh of N symbols from the SQLite store, end to end."""
    from mds.benchmarks import snapshots

    typer.echo(json.dumps(snapshots.run(symbols)))


@bench_app.command("ingest")
def bench_ingest(
    backend: Annotated[str, typer.Option(help="postgres")] = "postgres",
    bars: Annotated[int, typer.Option(help="1m bars to write")] = 1_000_000,
    json_: JsonFlag = True,
) -> None:
    """Write N bars through the PostgreSQL store vs a raw COPY into the same schema, one run."""
    if backend != "postgres":
        _fail("--backend: only postgres (the SQLite store has `mds bench store`)")
    from mds.benchmarks import pg

    typer.echo(json.dumps(pg.ingest(bars)))


@bench_app.command("read")
def bench_read(
    backend: Annotated[str, typer.Option(help="postgres")] = "postgres",
    clients: Annotated[int, typer.Option(help="Concurrent HTTP clients")] = 50,
    seconds: Annotated[float, typer.Option(help="How long to measure")] = 10.0,
    json_: JsonFlag = True,
) -> None:
    """One symbol-day of 1m bars through the HTTP API under concurrent clients (PostgreSQL)."""
    if backend != "postgres":
        _fail("--backend: only postgres")
    from mds.benchmarks import pg

    typer.echo(json.dumps(pg.read(clients, seconds)))


@bench_app.command("store")
def bench_store(
    symbols: Annotated[int, typer.Option(help="Symbols")] = 100,
    bars: Annotated[int, typer.Option(help="1m bars per symbol")] = 390,
    json_: JsonFlag = True,
) -> None:
    """SQLite PIT store throughput, and whether latest reads pay for history."""
    from mds.benchmarks import store

    typer.echo(json.dumps(store.run(symbols, bars)))


@bench_app.command("enqueue")
def bench_enqueue(
    backend: Annotated[str, typer.Option(help="sqlite or postgres")] = "sqlite",
    jobs: Annotated[int, typer.Option(help="Backfill jobs to enqueue (three per symbol)")] = 24_000,
    json_: JsonFlag = True,
) -> None:
    """A start-up gap scan's backfills through the real Backfiller: jobs/s, bytes per queued job."""
    if backend not in ("sqlite", "postgres"):
        _fail("--backend: sqlite or postgres")
    from mds.benchmarks import enqueue

    typer.echo(json.dumps(enqueue.run(backend, jobs)))


if __name__ == "__main__":  # pragma: no cover
    app()
