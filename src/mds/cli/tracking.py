"""`mds universe import|retier|versions|refresh-indexes` and `mds holdings add|remove|import|list`."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from mds.cli.apps import holdings_app, universe_app
from mds.cli.common import EnvFile, fail, settings, with_store
from mds.errors import ConfigError, InvalidRequest, MdsError

if TYPE_CHECKING:
    from mds.config import Settings
    from mds.domain.models import Tier
    from mds.domain.reference import SymbolDirectory
    from mds.storage.base import Store

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line")]


def _echo(row: dict[str, object], as_json: bool) -> None:
    typer.echo(json.dumps(row, default=str) if as_json else "  ".join(f"{k}={v}" for k, v in row.items()))


def _csv_directory(path: Path, s: Settings) -> tuple[SymbolDirectory, dict[str, Tier]]:
    """A CSV universe file (``symbol``, optional ``tier``/``name``) as a directory plus its fixed tiers."""
    from mds.domain.reference import ListedSymbol, SymbolDirectory
    from mds.ingest.universe import load_universe_file

    entries = load_universe_file(path, s)
    with path.open(newline="") as fh:
        has_tier = "tier" in (csv.DictReader(fh).fieldnames or [])
    listed = [ListedSymbol(symbol=e.symbol, name=e.name, exchange=e.exchange) for e in entries]
    return SymbolDirectory(listed, None, "csv"), ({e.symbol: e.tier for e in entries} if has_tier else {})


async def _tracked_symbols(store: Store) -> set[str]:
    from mds.services.tracked import ALWAYS_TRACKED

    held = {h.symbol for h in await store.holdings()}
    return held | {m.symbol for m in await store.index_members()} | ALWAYS_TRACKED


@universe_app.command("import")
def import_universe(
    source: Annotated[
        Literal["nasdaq-trader", "csv"],
        typer.Option(
            "--from", help="nasdaq-trader (its symbol directory) or csv (a file with a symbol column)"
        ),
    ],
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Local files: nasdaqlisted.txt/otherlisted.txt, or one CSV; none = download"),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Base URL of the directory (default UNIVERSE_NASDAQ_TRADER_URL)")
    ] = None,
    as_json: JsonOpt = False,
    env_file: EnvFile = None,
) -> None:
    """Make a symbol directory the universe: new symbols added, vanished ones made inactive
    (never deleted; tracked ones stay active), all re-ranked into tiers; records a version."""
    import asyncio

    from mds.domain.clock import SystemClock
    from mds.services.universe import import_directory

    s = settings(env_file)
    fixed: dict[str, Tier] = {}
    try:
        if source == "csv":
            if not files or len(files) != 1:
                fail("csv: give exactly one FILE")
            directory, fixed = _csv_directory(files[0], s)
        else:
            directory = asyncio.run(_nasdaq_directory(s, files or [], url))
    except (ConfigError, InvalidRequest, MdsError) as exc:
        fail(f"{source}: {exc}")
    except OSError as exc:
        fail(f"{source}: {exc}")

    async def run(store: Store) -> dict[str, object]:
        report = await import_directory(
            store,
            directory,
            settings=s,
            clock=SystemClock(),
            keep_active=await _tracked_symbols(store),
            fixed_tiers=fixed,
        )
        c = report.change
        return {
            "source": report.source,
            "file_time": report.file_time,
            "symbols": report.symbols,
            "etfs": report.etfs,
            "added": c.added,
            "removed": c.removed,
            "unchanged": c.unchanged,
            "tier_changes": c.tier_changes,
            "ranked_by_measure": report.ranked_by_measure,
            "version": c.version_tag,
        }

    _echo(with_store(s, run), as_json)


async def _nasdaq_directory(s: Settings, files: Sequence[Path], url: str | None) -> SymbolDirectory:
    from mds.reference import nasdaqtrader
    from mds.reference.sources import fetch_symbol_directory

    if files:
        return nasdaqtrader.read_directory_files(files)
    if url is not None:
        s = s.model_copy(update={"UNIVERSE_NASDAQ_TRADER_URL": url})
    return await fetch_symbol_directory(s)


@universe_app.command("retier")
def retier(as_json: JsonOpt = False, env_file: EnvFile = None) -> None:
    """Re-rank the active universe into tiers by the measure; tier changes are recorded."""
    from mds.domain.clock import SystemClock
    from mds.services.universe import MEASURE
    from mds.services.universe import retier as run_retier

    s = settings(env_file)
    ranked, moved = with_store(s, lambda store: run_retier(store, settings=s, clock=SystemClock()))
    _echo({"symbols": ranked, "tier_changes": moved, "measure": MEASURE}, as_json)


@universe_app.command("versions")
def versions(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first")] = 20,
    as_json: JsonOpt = False,
    env_file: EnvFile = None,
) -> None:
    """Universe loads, newest first: source, file time, added/removed/unchanged."""
    s = settings(env_file)
    for v in with_store(s, lambda store: store.universe_versions(limit=limit)):
        _echo(
            {
                "version": v.version_tag,
                "source": v.source,
                "file_time": v.file_time.isoformat() if v.file_time else None,
                "added": v.added,
                "removed": v.removed,
                "unchanged": v.unchanged,
                "created_at": v.created_at.isoformat(),
            },
            as_json,
        )


@universe_app.command("refresh-indexes")
def refresh_indexes(
    index: Annotated[list[str] | None, typer.Option(help="SP500, NASDAQ100 or DOW30 (default: all)")] = None,
    as_json: JsonOpt = False,
    env_file: EnvFile = None,
) -> None:
    """Refresh index constituents now (FMP first, Wikipedia as fallback); prints each refresh's counters."""
    import asyncio

    from mds.domain.clock import SystemClock
    from mds.domain.reference import INDEXES
    from mds.observability.metrics import Metrics
    from mds.reference.sources import constituent_sources
    from mds.services.indexes import IndexRefresher

    s = settings(env_file)
    wanted = [i.upper() for i in index or INDEXES]
    for i in wanted:
        if i not in INDEXES:
            fail(f"--index: unknown index {i!r}; use {', '.join(INDEXES)}")

    async def run(store: Store) -> list[dict[str, object]]:
        sources = constituent_sources(s, demo=False)
        try:
            refresher = IndexRefresher(
                store=store, sources=sources, clock=SystemClock(), settings=s, metrics=Metrics()
            )
            out = []
            for i in wanted:
                r = await refresher.refresh(i)  # type: ignore[arg-type]
                out.append(
                    {
                        k: getattr(r, k)
                        for k in (
                            "index",
                            "applied",
                            "fetched",
                            "inserted",
                            "reactivated",
                            "inactivated",
                            "provider_used",
                            "fallback_used",
                            "reason",
                        )
                    }
                )
            return out
        finally:
            await asyncio.gather(*(src.aclose() for src in sources))

    rows = with_store(s, run)
    for row in rows:
        _echo(row, as_json)
    if any(not r["applied"] for r in rows):
        raise typer.Exit(1)


# -- holdings -----------------------------------------------------------------------------

SymbolsArg = Annotated[list[str], typer.Argument(help="Tickers (BRK.B, BRK-B and brk.b are the same)")]


def _holdings_change(symbols: Sequence[str], add: bool, note: str, env_file: object) -> None:
    from mds.calendar import MarketCalendar
    from mds.domain.clock import SystemClock
    from mds.services.tracked import TrackedService

    s = settings(env_file)  # type: ignore[arg-type]

    async def run(store: Store) -> tuple[list[str], list[str]]:
        service = TrackedService(
            store=store, calendar=MarketCalendar(s.MARKET_CALENDAR), clock=SystemClock(), settings=s
        )
        changed = await (service.hold(symbols, note=note) if add else service.release(symbols))
        return changed, [h.symbol for h in await store.holdings()]

    try:
        changed, held = with_store(s, run)
    except InvalidRequest as exc:
        fail(f"{exc.field}: {exc.message}")
    typer.echo(
        f"{'added' if add else 'removed'} {len(changed)}: {' '.join(changed) or '-'}; {len(held)} held"
    )


@holdings_app.command("add")
def holdings_add(
    symbols: SymbolsArg,
    note: Annotated[str, typer.Option(help="Kept with each new holding")] = "",
    env_file: EnvFile = None,
) -> None:
    """Hold symbols: always tracked, added to the universe (T2) when new."""
    _holdings_change(symbols, True, note, env_file)


@holdings_app.command("remove")
def holdings_remove(symbols: SymbolsArg, env_file: EnvFile = None) -> None:
    """Stop holding symbols (they stay tracked while an index lists them)."""
    _holdings_change(symbols, False, "", env_file)


@holdings_app.command("import")
def holdings_import(
    file: Annotated[Path, typer.Argument(help="A CSV with a symbol column, or one ticker per line")],
    note: Annotated[str, typer.Option(help="Kept with each new holding")] = "",
    env_file: EnvFile = None,
) -> None:
    """Hold every symbol a file lists (existing holdings stay)."""
    try:
        text = file.read_text()
    except OSError as exc:
        fail(f"FILE: {exc}")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines and "symbol" in lines[0].lower().split(","):
        symbols = [row["symbol"] for row in csv.DictReader(lines, skipinitialspace=True) if row.get("symbol")]
    else:
        symbols = [ln.split(",")[0] for ln in lines]
    _holdings_change(symbols, True, note, env_file)


@holdings_app.command("list")
def holdings_list(as_json: JsonOpt = False, env_file: EnvFile = None) -> None:
    """Held symbols, with when they were added."""
    s = settings(env_file)
    for h in with_store(s, lambda store: store.holdings()):
        _echo({"symbol": h.symbol, "added_at": h.added_at.isoformat(), "note": h.note}, as_json)
