"""`mds serve` and the scaled-out roles `mds api`, `mds worker`, `mds scheduler`.

The four commands share their options (demo, clock, env file); ``service_command``
declares those once and hands them to the command as one ``ServiceOptions``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mds.cli.apps import app
from mds.cli.common import EnvFile, demo_defaults, env_file_path, fail, parse_time, settings

if TYPE_CHECKING:
    from mds.config import Settings
    from mds.domain.clock import Clock

DemoOpt = Annotated[bool, typer.Option(help="Serve the offline sim market (providers sim, sim_backup)")]
ClockOpt = Annotated[str | None, typer.Option("--clock", help="Start a simulated clock at this UTC time")]
SpeedOpt = Annotated[float, typer.Option(help="Simulated clock speed factor")]
AnchorOpt = Annotated[
    float | None,
    typer.Option(
        "--clock-anchor",
        help="Wall-clock epoch second at which --clock applies (share one time across processes)",
    ),
]
HostOpt = Annotated[str | None, typer.Option(help="Bind address (default MDS_HOST)")]
PortOpt = Annotated[int | None, typer.Option(help="Port (default MDS_PORT)")]
MetricsPortOpt = Annotated[int, typer.Option(help="Port for /health and /metrics")]


@dataclass(frozen=True)
class ServiceOptions:
    """The options every service command takes."""

    demo: bool = False
    clock: str | None = None
    speed: float = 1.0
    clock_anchor: float | None = None
    env_file: Path | None = None


def _option(name: str, annotation: object) -> inspect.Parameter:
    default = getattr(ServiceOptions, name)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# In --help order: these before the command's own options, env file after them.
_LEADING = [
    _option("demo", DemoOpt),
    _option("clock", ClockOpt),
    _option("speed", SpeedOpt),
    _option("clock_anchor", AnchorOpt),
]
_TRAILING = [_option("env_file", EnvFile)]


def service_command(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command(opts: ServiceOptions, **own)`` the shared options as CLI options.

    Typer reads a command's options from its signature, so the wrapper shows the shared
    options beside the command's own and packs them into ``opts`` when called.
    """
    own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]
    shared = [*_LEADING, *_TRAILING]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        opts = ServiceOptions(**{p.name: kwargs.pop(p.name) for p in shared})
        command(opts, **kwargs)

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in [*_LEADING, *own, *_TRAILING]]
    wrapper.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def _clock(opts: ServiceOptions) -> Clock:
    from mds.domain.clock import SimulatedClock, SystemClock

    if opts.speed <= 0:
        fail("--speed must be positive")
    if opts.clock:
        return SimulatedClock(parse_time("--clock", opts.clock), opts.speed, anchor=opts.clock_anchor)
    if opts.speed != 1.0:
        return SimulatedClock(SystemClock().now(), opts.speed, anchor=opts.clock_anchor)
    return SystemClock()


def run_service(
    roles: frozenset[str],
    opts: ServiceOptions,
    *,
    host: str | None,
    port: int | None,
    service_only: bool = False,
    consumer: str | None = None,
) -> None:
    """Validate settings, then serve ``roles`` until interrupted."""
    import uvicorn

    from mds.api.app import create_app
    from mds.runtime import ALL_ROLES, open_runtime

    s = settings(opts.env_file, demo=opts.demo)
    if roles != ALL_ROLES and s.QUEUE_BACKEND != "redis":
        fail(
            "QUEUE_BACKEND: separate api/worker/scheduler processes share work through Redis; set QUEUE_BACKEND=redis"
        )
    clock = _clock(opts)
    logging.basicConfig(
        level=s.LOG_LEVEL.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if s.sqlite_path is not None:
        s.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    if opts.demo and roles == ALL_ROLES:  # `mds serve --demo`: one process, no race for the key
        _demo_key(s)

    api = create_app(
        lambda: open_runtime(
            s,
            clock=clock,
            demo=opts.demo,
            roles=roles,
            environ=dict(os.environ),
            env_file=env_file_path(opts.env_file),
            env_defaults=demo_defaults(opts.demo, today=clock.now().date()),
            consumer=consumer,
        ),
        service_only=service_only,
    )
    uvicorn.run(
        api,
        host=host or s.MDS_HOST,
        port=port or s.MDS_PORT,
        log_level=s.LOG_LEVEL.lower(),
        access_log=False,
        # Heartbeats are the WebSocket library's: it pings, and drops a peer that does not answer.
        ws_ping_interval=s.WS_PING_INTERVAL_SEC,
        ws_ping_timeout=s.WS_PING_TIMEOUT_SEC,
    )


def _demo_key(s: Settings) -> None:
    """Make sure the demo database has an admin key, so the README's /ops examples work."""
    import asyncio

    from mds.access.admin import ensure_demo_key
    from mds.domain.clock import SystemClock
    from mds.storage.factory import open_store

    directory = s.sqlite_path.parent if s.sqlite_path is not None else Path("var")

    async def run() -> tuple[str | None, Path]:
        store = open_store(s.DATABASE_URL)
        await store.open()
        try:
            return await ensure_demo_key(store, directory, now=SystemClock().now())
        finally:
            await store.close()

    key, path = asyncio.run(run())
    if key is not None:
        typer.echo(f"demo admin API key (shown once; also in {path}, mode 0600):\n  {key}")
    else:
        typer.echo(f"demo admin API key: in {path}")


@app.command()
@service_command
def serve(opts: ServiceOptions, host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the API, the collector and the scheduler in one process (the embedded default)."""
    run_service(frozenset({"api", "worker", "scheduler"}), opts, host=host, port=port)


@app.command()
@service_command
def api(opts: ServiceOptions, host: HostOpt = None, port: PortOpt = None) -> None:
    """HTTP only: reads the store, hands backfills to the workers through Redis."""
    run_service(frozenset({"api"}), opts, host=host, port=port)


@app.command()
@service_command
def worker(
    opts: ServiceOptions,
    metrics_port: MetricsPortOpt = 9101,
    name: Annotated[
        str | None, typer.Option(help="Stable consumer name (a restarted worker takes back its jobs)")
    ] = None,
) -> None:
    """Consume live and backfill jobs from Redis; store what they fetch."""
    run_service(frozenset({"worker"}), opts, host=None, port=metrics_port, service_only=True, consumer=name)


@app.command()
@service_command
def scheduler(opts: ServiceOptions, metrics_port: MetricsPortOpt = 9102) -> None:
    """Sweeper, gap scans and SLO monitor; one active at a time (a Redis lock), others wait."""
    run_service(frozenset({"scheduler"}), opts, host=None, port=metrics_port, service_only=True)
