"""`mds backfill`: fill ranges now, in the foreground, and report what happened."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from mds.cli.apps import app
from mds.cli.common import EndOpt, EnvFile, StartOpt, environ, fail, parse_interval, parse_window, settings
from mds.errors import ConfigError


@app.command()
def backfill(
    symbols: Annotated[list[str], typer.Argument(help="Symbols to fill")],
    interval: Annotated[str, typer.Option(help="1m or 1d")] = "1m",
    *,
    start: StartOpt,
    end: EndOpt,
    demo: Annotated[bool, typer.Option(help="Fill from the sim providers")] = False,
    env_file: EnvFile = None,
) -> None:
    """Fill a range now, through the same queues, limits and retries as the service; shows progress."""
    from mds.cli.backfill_run import run_backfill

    iv = parse_interval(interval)
    a, b = parse_window(start, end)
    s = settings(env_file, demo=demo)
    if (b - a).days > s.BACKFILL_MAX_RANGE_DAYS:
        fail(f"--end: range exceeds BACKFILL_MAX_RANGE_DAYS={s.BACKFILL_MAX_RANGE_DAYS}")
    env = environ(env_file, demo=demo)
    try:
        report = asyncio.run(run_backfill(s, env, [x.upper() for x in symbols], iv, a, b, demo=demo))
    except ConfigError as exc:
        fail(str(exc))
    typer.echo(json.dumps(report))
    raise typer.Exit(0 if report["failed"] == 0 else 1)
