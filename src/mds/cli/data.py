"""Commands over the store and the providers: `mds migrate`, `fetch`, `providers`, `gaps`."""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mds.cli.apps import app
from mds.cli.common import EndOpt, EnvFile, StartOpt, environ, fail, parse_interval, parse_window, settings
from mds.domain.models import Capability

if TYPE_CHECKING:
    from mds.config import Settings
    from mds.domain.models import Bar
    from mds.ingest.gaps import Gap


@app.command()
def migrate(env_file: EnvFile = None) -> None:
    """Apply pending schema migrations to DATABASE_URL."""
    from mds.redact import redact
    from mds.storage.factory import open_store

    s = settings(env_file)

    async def run() -> list[str]:
        store = open_store(s.DATABASE_URL)
        # open() applies migrations too; report what migrate() finds left afterwards.
        await store.open()
        try:
            return await store.migrate()
        finally:
            await store.close()

    asyncio.run(run())
    typer.echo(f"migrations up to date ({redact(s.DATABASE_URL)})")


@app.command()
def fetch(
    symbol: str,
    provider: Annotated[str, typer.Option(help="Provider name (sim, yahoo, polygon, ...)")],
    interval: Annotated[str, typer.Option(help="1m, 5m, 15m, 1h or 1d")] = "1d",
    *,
    start: StartOpt,
    end: EndOpt,
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
        fail(f"--provider: unknown provider {provider!r}; one of {', '.join(KNOWN_PROVIDERS)}")
    iv = parse_interval(interval)
    a, b = parse_window(start, end)
    env = environ(env_file)
    s = settings(env_file, overrides={f"POLICY_{c.value.upper()}": [name] for c in Capability})

    async def run() -> list[Bar]:
        providers = build_providers(s, SystemClock(), MarketCalendar(s.MARKET_CALENDAR), env)
        p = providers[name]
        try:
            if not p.configured:
                fail(f"{name} is not configured (its API key setting is unset)")
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
        rows = _configured_rows(settings(env_file))
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


def _configured_rows(s: Settings) -> list[dict[str, Any]]:
    from mds.calendar import MarketCalendar
    from mds.domain.clock import SystemClock
    from mds.observability.metrics import Metrics
    from mds.providers.registry import build_providers
    from mds.routing.router import Router

    async def run() -> list[dict[str, Any]]:
        ps = build_providers(s, SystemClock(), MarketCalendar(s.MARKET_CALENDAR), dict(os.environ))
        try:
            return Router(ps, s, SystemClock(), Metrics()).snapshot()
        finally:
            for p in ps.values():
                await p.aclose()

    return asyncio.run(run())


@app.command()
def gaps(
    interval: Annotated[str, typer.Option(help="1m or 1d")] = "1m",
    *,
    start: StartOpt,
    end: EndOpt,
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

    iv = parse_interval(interval)
    a, b = parse_window(start, end)
    tier_ = None
    if tier is not None:
        try:
            tier_ = Tier(tier.upper())
        except ValueError:
            fail(f"--tier: unknown tier {tier!r}; use T0, T1 or T2")
    s = settings(env_file)

    async def run() -> tuple[list[Gap], int]:
        store = open_store(s.DATABASE_URL)
        await store.open()
        try:
            names = [e.symbol for e in await store.universe(tier=tier_)]
            if symbol:
                wanted = {x.upper() for x in symbol}
                unknown = sorted(wanted - {e.symbol for e in await store.universe()})
                if unknown:
                    fail(f"--symbol: not in the universe: {', '.join(unknown)}")
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
            return found, await store.count_confirmed_empty(iv, a, b, names)
        finally:
            await store.close()

    found, empty = asyncio.run(run())
    for g in found:
        d = g.as_dict()
        if as_json:
            typer.echo(json.dumps(d))
        else:
            typer.echo(
                f"{d['symbol']:<8} {d['interval']:<3} {d['start']} .. {d['end']}  {d['missing_bars']} missing"
            )
    summary = summarize(found)
    typer.echo(
        f"{summary['gaps']} gaps, {summary['missing_bars']} missing bars in {summary['symbols_affected']} symbols; "
        f"{empty} minutes confirmed empty (no trades)",
        err=True,
    )
