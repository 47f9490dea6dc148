"""What several commands share: settings loading, failing with a message, parsing times.

Commands import their heavy dependencies inside the function, so `mds --help` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from mds.config import Settings, load_settings
from mds.domain.models import Capability, Interval
from mds.errors import ConfigError

if TYPE_CHECKING:
    from mds.storage.base import Store

T = TypeVar("T")

EnvFile = Annotated[
    Path | None, typer.Option("--env-file", help="Read settings from this file too (environment wins)")
]
StartOpt = Annotated[str, typer.Option(help="Inclusive start, ISO-8601 with zone")]
EndOpt = Annotated[str, typer.Option(help="Exclusive end, ISO-8601 with zone")]

DEMO_POLICY = "sim,sim_backup"
DEMO_DATABASE_URL = "sqlite:///./var/demo.db"


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code`` (2: bad usage or config)."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def fail_config(exc: ConfigError) -> NoReturn:
    fail(f"invalid config: {exc.setting}: {exc.message}")


def env_file_path(env_file: Path | None) -> Path | None:
    """``--env-file``, else ``MDS_ENV_FILE``."""
    if env_file is None and os.environ.get("MDS_ENV_FILE"):
        return Path(os.environ["MDS_ENV_FILE"])
    return env_file


def demo_defaults(demo: bool, *, today: date | None = None) -> dict[str, str]:
    """The demo runs on sim data only, in its own database, so sim bars never mix with
    real ones; anything set explicitly (environment or env file) still wins. ``today`` is the
    demo clock's date (the system's when None), which its sim corporate actions are dated from."""
    if not demo:
        return {}
    return {
        **{f"POLICY_{cap.value.upper()}": DEMO_POLICY for cap in Capability},
        "DATABASE_URL": DEMO_DATABASE_URL,
        "INDEX_SOURCES": "sim",
        # The sim has no vendor budget to protect; the seed's 2 jobs/s would make the demo's
        # start-up backfill (a year of daily bars for 50 symbols) take over a minute.
        "BACKFILL_DISPATCH_RATE_PER_SEC": "50",
        # The sim lists option chains for every symbol; these have their metrics recorded.
        "OPTIONS_SYMBOLS": "SPY,QQQ,AAPL",
        **demo_actions(today or date.today()),
    }


def demo_actions(today: date) -> dict[str, str]:
    """A 3:1 split of TSLA about four months back and an XOM dividend about six weeks back, so
    the demo's year of history shows what ``adjust=split|all`` does; dated from today, as the
    demo's history is. (An ex-date on a holiday is fine: it takes effect at that midnight.)"""

    def wednesday_before(day: date) -> date:
        return day - timedelta(days=(day.weekday() - 2) % 7)

    split, dividend = (
        wednesday_before(today - timedelta(days=120)),
        wednesday_before(today - timedelta(days=45)),
    )
    return {"SIM_SPLITS": f"TSLA={split.isoformat()}:3", "SIM_DIVIDENDS": f"XOM={dividend.isoformat()}:0.99"}


def environ(env_file: Path | None, *, demo: bool = False) -> dict[str, str]:
    """The environment settings are read from: process, env file, demo defaults."""
    from mds.ops.reload import effective_environ

    try:
        return effective_environ(os.environ, env_file_path(env_file), demo_defaults(demo))
    except ConfigError as exc:
        fail_config(exc)


def settings(
    env_file: Path | None, *, demo: bool = False, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Validated settings, or exit 2 naming the first bad one."""
    try:
        return load_settings(environ(env_file, demo=demo), **(overrides or {}))
    except ConfigError as exc:
        fail_config(exc)


def parse_time(name: str, value: str) -> datetime:
    """An ISO-8601 time with a zone (``Z`` or an offset), or exit 2 naming the option."""
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{name}: {value!r} is not an ISO-8601 time")
    if ts.tzinfo is None:
        fail(f"{name}: {value!r} has no time zone; add Z or an offset")
    return ts


def parse_window(start: str, end: str) -> tuple[datetime, datetime]:
    """``--start`` and ``--end`` as times, start before end."""
    a, b = parse_time("--start", start), parse_time("--end", end)
    if a >= b:
        fail("--start must be before --end")
    return a, b


def parse_interval(value: str) -> Interval:
    try:
        return Interval(value)
    except ValueError:
        fail(f"--interval: unknown interval {value!r}; use 1m, 5m, 15m, 1h or 1d")


def with_store(s: Settings, fn: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``fn`` against the store DATABASE_URL names (migrated), then close it."""
    import asyncio

    from mds.storage.factory import open_store

    if s.sqlite_path is not None:
        s.sqlite_path.parent.mkdir(parents=True, exist_ok=True)

    async def run() -> T:
        store = open_store(s.DATABASE_URL)
        await store.open()
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(run())
