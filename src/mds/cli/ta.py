"""`mds ta`: one symbol's analysis snapshot, read from the store."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Annotated, Any

import typer

from mds.cli.apps import app
from mds.cli.common import EnvFile, environ, fail, settings


@app.command()
def ta(
    symbol: str,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="YYYY-MM-DD: what MDS knew at the end of that day")
    ] = None,
    on: Annotated[
        str | None, typer.Option("--date", help="YYYY-MM-DD: only sessions on or before it (event time)")
    ] = None,
    demo: Annotated[bool, typer.Option(help="Read the demo database")] = False,
    env_file: EnvFile = None,
) -> None:
    """Print the symbol's analysis snapshot (indicators from stored, split-adjusted daily bars) as JSON."""
    from mds.errors import NotFound
    from mds.runtime import analysis_service, open_runtime

    day, event = _day("--as-of", as_of), _day("--date", on)
    s = settings(env_file, demo=demo)

    async def run() -> dict[str, Any]:
        async with open_runtime(s, demo=demo, collect=False, environ=environ(env_file, demo=demo)) as rt:
            return await analysis_service(rt).snapshot(symbol.upper(), as_of=day, on=event)

    try:
        typer.echo(json.dumps(asyncio.run(run()), indent=2))
    except NotFound as exc:
        fail(str(exc), 1)


def _day(option: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not a YYYY-MM-DD date")
