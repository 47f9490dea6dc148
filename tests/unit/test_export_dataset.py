"""`mds export`'s dataset: one Parquet file per symbol and year, resumable by content hash."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from mds.cli import app
from mds.domain.models import Bar, Interval
from mds.export.dataset import export_dataset, partition_path
from mds.providers.sim.market import ground_truth
from mds.storage.sqlite import SqliteStore
from tests.helpers import utc

START, END = utc(2024, 12, 1), utc(2025, 2, 1)
LEARNED = utc(2025, 2, 2)
SERIES = {s: ground_truth(s, Interval.D1, START, END) for s in ("AAPL", "MSFT")}


def reader(series: dict[str, list[Bar]]):  # type: ignore[no-untyped-def]
    async def read(symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Bar]:
        return [b._replace(as_of=LEARNED) for b in series.get(symbol, []) if start <= b.ts < end]

    return read


def run(series: dict[str, list[Bar]], out: Path, symbols: tuple[str, ...] = ("AAPL", "MSFT", "NONE")):  # type: ignore[no-untyped-def]
    return asyncio.run(export_dataset(reader(series), list(symbols), Interval.D1, START, END, out))


def test_partitions_by_symbol_and_year_hold_exactly_the_bars(tmp_path: Path) -> None:
    report = run(SERIES, tmp_path)
    assert (report.written, report.skipped, report.empty_symbols) == (4, 0, 1)
    assert report.rows == sum(len(v) for v in SERIES.values())
    assert partition_path(tmp_path, "AAPL", 2024) == tmp_path / "symbol=AAPL" / "year=2024" / "part.parquet"
    table = ds.dataset(tmp_path, format="parquet", partitioning="hive").to_table()
    for symbol, bars in SERIES.items():
        rows = sorted((r for r in table.to_pylist() if r["symbol"] == symbol), key=lambda r: r["ts"])
        assert [(r["ts"], r["close"], r["volume"], r["year"]) for r in rows] == [
            (b.ts, b.close, b.volume, b.ts.year) for b in bars
        ]
        assert {r["as_of"] for r in rows} == {LEARNED}


def test_a_rerun_skips_unchanged_partitions_and_rewrites_a_changed_one(tmp_path: Path) -> None:
    run(SERIES, tmp_path)
    untouched = partition_path(tmp_path, "MSFT", 2025).stat().st_mtime_ns
    again = run(SERIES, tmp_path)
    assert (again.written, again.skipped, again.rows_written) == (0, 4, 0)

    # One January bar of AAPL revised: only AAPL/2025 is written again.
    revised = list(SERIES["AAPL"])
    i = next(i for i, b in enumerate(revised) if b.ts.year == 2025)
    revised[i] = revised[i]._replace(close=revised[i].close + 0.01, high=revised[i].high + 0.01)
    third = run({**SERIES, "AAPL": revised}, tmp_path)
    assert (third.written, third.skipped) == (1, 3)
    assert partition_path(tmp_path, "MSFT", 2025).stat().st_mtime_ns == untouched
    got = ds.dataset(partition_path(tmp_path, "AAPL", 2025), format="parquet").to_table()
    assert got.column("close").to_pylist()[0] == revised[i].close


def test_a_partition_left_unreadable_by_a_crash_is_written_again(tmp_path: Path) -> None:
    run(SERIES, tmp_path)
    partition_path(tmp_path, "AAPL", 2024).write_bytes(b"not parquet")
    report = run(SERIES, tmp_path)
    assert (report.written, report.skipped) == (1, 3)


def _store_with_bars(db: Path) -> None:
    async def fill() -> None:
        store = SqliteStore(str(db))
        await store.open()
        try:
            for bars in SERIES.values():
                await store.write_bars(bars, as_of=LEARNED)
        finally:
            await store.close()

    asyncio.run(fill())


def test_the_command_exports_the_stored_bars_then_resumes(tmp_path: Path) -> None:
    db, out, names = tmp_path / "mds.db", tmp_path / "out", tmp_path / "symbols.txt"
    _store_with_bars(db)
    names.write_text("# the two we hold\naapl\nMSFT\n\nmsft\n")
    env = {"DATABASE_URL": f"sqlite:///{db}", "INDEX_SOURCES": ""}
    args = ["export", "--symbols", str(names), "--start", "2024-12-01", "--end", "2025-02-01T00:00:00Z"]
    first = CliRunner().invoke(app, [*args, "--out", str(out)], env=env)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert (summary["symbols"], summary["written"], summary["skipped"]) == (2, 4, 0)
    assert summary["rows"] == sum(len(v) for v in SERIES.values())
    second = json.loads(CliRunner().invoke(app, [*args, "--out", str(out)], env=env).stdout.splitlines()[-1])
    assert (second["written"], second["skipped"], second["rows_written"]) == (0, 4, 0)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--start", "2025-01-01", "--end", "2025-02-01"], "--symbols or --tier"),
        (["--tier", "T9", "--start", "2025-01-01", "--end", "2025-02-01"], "--tier"),
        (["--tier", "T0", "--start", "yesterday", "--end", "2025-02-01"], "--start"),
        (["--tier", "T0", "--start", "2025-03-01", "--end", "2025-02-01"], "--start"),
        (["--tier", "T0", "--start", "2025-01-01", "--end", "2025-02-01", "--interval", "2d"], "--interval"),
        (["--tier", "T0", "--start", "2025-01-01", "--end", "2025-02-01", "--adjust", "half"], "--adjust"),
        (["--symbols", "/nonexistent/list.txt", "--start", "2025-01-01", "--end", "2025-02-01"], "--symbols"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(tmp_path: Path, args: list[str], named: str) -> None:
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert named in result.stderr


def test_the_command_exports_split_adjusted_bars(tmp_path: Path) -> None:
    from datetime import date

    from mds.corporate.adjust import cutoff
    from mds.domain.actions import ActionType, CorporateAction

    db, out = tmp_path / "mds.db", tmp_path / "out"
    _store_with_bars(db)
    split = CorporateAction("AAPL", ActionType.SPLIT, date(2025, 1, 6), ratio=2.0, source="sim")

    async def learn() -> None:
        async with SqliteStore(str(db)) as store:
            await store.write_corporate_actions([split], as_of=LEARNED)

    asyncio.run(learn())
    env = {"DATABASE_URL": f"sqlite:///{db}", "INDEX_SOURCES": ""}
    names = tmp_path / "symbols.txt"
    names.write_text("AAPL\n")
    args = [
        "export",
        "--symbols",
        str(names),
        "--start",
        "2024-12-01",
        "--end",
        "2025-02-01",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, [*args, "--adjust", "split"], env=env)
    assert result.exit_code == 0, result.output
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table().sort_by("ts")
    expected = [b.close / 2 if b.ts < cutoff(split.ex_date) else b.close for b in SERIES["AAPL"]]
    assert table.column("close").to_pylist() == pytest.approx(expected, rel=1e-12)
