"""`mds export`: stored bars → a Parquet dataset partitioned by symbol and year, resumable."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mds.cli.apps import app
from mds.cli.common import EnvFile, fail, parse_interval, parse_time, settings, with_store
from mds.providers.timeconv import local_date

if TYPE_CHECKING:
    from mds.domain.models import Bar, Interval
    from mds.export.dataset import BarReader
    from mds.storage.base import Store

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ADJUSTMENTS = ("raw", "split", "all")


def parse_day_or_time(name: str, value: str) -> datetime:
    """A date (its 00:00 UTC) or an ISO-8601 time with a zone, or exit 2 naming the option."""
    if _DATE.match(value):
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError:
            fail(f"{name}: {value!r} is not a date")
    return parse_time(name, value)


def read_symbols_file(path: Path) -> list[str]:
    """One symbol per line; blank lines and ``#`` comments are skipped; upper-cased, deduplicated."""
    try:
        text = path.read_text()
    except OSError as exc:
        fail(f"--symbols: cannot read {str(path)!r}: {exc.strerror or exc}")
    out: list[str] = []
    for line in text.splitlines():
        symbol = line.split("#", 1)[0].strip().upper()
        if symbol and symbol not in out:
            out.append(symbol)
    if not out:
        fail(f"--symbols: {str(path)!r} names no symbol")
    return out


def bar_reader(store: Store, adjust: str, *, basis: date) -> BarReader:
    """How bars are read for ``adjust``: the store's current revisions, adjusted by the actions
    known now with an ex-date on or before ``basis`` (one basis for the whole export, so every
    partition of a symbol is in the same share basis)."""
    from mds.calendar import get_calendar
    from mds.corporate.adjust import Adjust
    from mds.services.adjustments import Adjustments

    mode = Adjust(adjust)
    adjustments = Adjustments(store, get_calendar("XNYS"))

    async def read(symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Bar]:
        bars = await store.read_bars(symbol, interval, start, end)
        if mode is Adjust.RAW or not bars:
            return bars
        adjustment = await adjustments.plan(symbol, mode, as_of=None, through=basis, daily=bars)
        return adjustment.apply(bars)

    return read


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Dataset directory (created if missing)")],
    start: Annotated[str, typer.Option(help="Inclusive start: YYYY-MM-DD (00:00 UTC) or ISO-8601 with zone")],
    end: Annotated[str, typer.Option(help="Exclusive end: YYYY-MM-DD (00:00 UTC) or ISO-8601 with zone")],
    symbols: Annotated[
        Path | None, typer.Option("--symbols", help="File with one symbol per line (# comments)")
    ] = None,
    tier: Annotated[
        str | None, typer.Option(help="Every active universe symbol of this tier: T0, T1, T2")
    ] = None,
    interval: Annotated[str, typer.Option(help="1d, 1m, 5m, 15m or 1h (as stored)")] = "1d",
    adjust: Annotated[str, typer.Option(help="raw (as stored), split or all")] = "raw",
    demo: Annotated[bool, typer.Option(help="Read the demo database")] = False,
    env_file: EnvFile = None,
) -> None:
    """Write stored bars as Parquet, OUT/symbol=S/year=Y/part.parquet; partitions already
    written with the same content are skipped, so a re-run resumes. Prints a JSON summary."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mds.domain.models import Tier
    from mds.export.dataset import ExportReport, export_dataset

    if (symbols is None) == (tier is None):
        fail("--symbols or --tier: give exactly one")
    if adjust not in ADJUSTMENTS:
        fail(f"--adjust: {adjust!r} is not one of {', '.join(ADJUSTMENTS)}")
    tier_value: Tier | None = None
    if tier is not None:
        try:
            tier_value = Tier(tier.upper())
        except ValueError:
            fail(f"--tier: {tier!r} is not one of T0, T1, T2")
    iv = parse_interval(interval)
    a, b = parse_day_or_time("--start", start), parse_day_or_time("--end", end)
    if a >= b:
        fail("--start must be before --end")
    names = read_symbols_file(symbols) if symbols is not None else None
    if out.exists() and not out.is_dir():
        fail(f"--out: {str(out)!r} is not a directory")
    s = settings(env_file, demo=demo)

    async def run(store: Store) -> ExportReport:
        chosen = names
        if chosen is None:
            chosen = [e.symbol for e in await store.universe(tier=tier_value)]
        # The export's last day, or today: actions after it are not applied.
        last = min(b, datetime.now(UTC)) - timedelta(microseconds=1)
        read = bar_reader(store, adjust, basis=local_date(last))
        columns = (TextColumn("export"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("symbols", total=len(chosen))
            report = await export_dataset(
                read,
                chosen,
                iv,
                a,
                b,
                out,
                adjust=adjust,
                progress=lambda _symbol, _w, _s: progress.advance(task),
            )
        return report

    t0 = time.perf_counter()
    report = with_store(s, run)
    summary = {**report.as_dict(), "out": str(out), "seconds": round(time.perf_counter() - t0, 3)}
    typer.echo(json.dumps(summary))
