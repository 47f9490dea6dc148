"""A Parquet dataset of bars partitioned by symbol and year, resumable by content hash.

Layout (hive-style, what ``pyarrow.dataset.dataset(out, partitioning="hive")`` reads)::

    OUT/symbol=AAPL/year=2025/part.parquet

Each file carries the SHA-256 of its content (the rows plus the export metadata) in
its schema metadata under ``mds_sha256``. A later run computes the hash of what it would
write and leaves a partition alone when the file already says that hash, so an interrupted
export resumes where it stopped and a re-run rewrites only the partitions whose bars changed
(a revision, a widened range, another adjustment). Files are written to a temporary name and
renamed into place, so a partition is either the old file or the new one, never half.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mds.domain.models import Bar, Interval
from mds.export.formats import bars_table

#: Reads one symbol's bars for ``start <= ts < end`` (the store's read_bars, or an adjusted read).
BarReader = Callable[[str, Interval, datetime, datetime], Awaitable[list[Bar]]]
#: Called after each symbol with (symbol, partitions written, partitions skipped).
Progress = Callable[[str, int, int], None]
HASH_KEY = b"mds_sha256"
PART_FILE = "part.parquet"


@dataclass
class ExportReport:
    symbols: int = 0
    written: int = 0
    skipped: int = 0
    rows: int = 0
    rows_written: int = 0
    empty_symbols: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "symbols": self.symbols,
            "written": self.written,
            "skipped": self.skipped,
            "rows": self.rows,
            "rows_written": self.rows_written,
            "empty_symbols": self.empty_symbols,
        }


def partition_path(out: Path, symbol: str, year: int) -> Path:
    return out / f"symbol={symbol}" / f"year={year}" / PART_FILE


def content_hash(table: pa.Table) -> str:
    """SHA-256 of the table as an Arrow IPC stream: its rows, schema and metadata. (A pyarrow
    that wrote the stream differently would change every hash: a one-off full rewrite.)"""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def written_hash(path: Path) -> str | None:
    """The hash a partition file was written with; None when there is none (or no readable file)."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, ValueError):  # absent, or not a Parquet file (a crash before the rename is not)
        return None
    raw = meta.get(HASH_KEY)
    return raw.decode() if raw else None


def write_partition(path: Path, table: pa.Table, digest: str) -> None:
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), HASH_KEY: digest.encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def by_year(bars: Sequence[Bar]) -> list[tuple[int, list[Bar]]]:
    """``bars`` (in time order) grouped by the UTC year of their open time."""
    return [(year, list(group)) for year, group in groupby(bars, key=lambda b: b.ts.astimezone(UTC).year)]


async def export_dataset(
    read: BarReader,
    symbols: Sequence[str],
    interval: Interval,
    start: datetime,
    end: datetime,
    out: Path,
    *,
    adjust: str = "raw",
    progress: Progress | None = None,
) -> ExportReport:
    """Write ``symbols``' bars in ``start <= ts < end`` under ``out``, one file per symbol-year;
    unchanged partitions are skipped (see the module docstring)."""
    report = ExportReport()
    for symbol in symbols:
        bars = await read(symbol, interval, start, end)
        report.symbols += 1
        if not bars:
            report.empty_symbols += 1
        written = skipped = 0
        for year, rows in by_year(bars):
            metadata = {"symbol": symbol, "interval": interval.value, "year": year, "adjust": adjust}
            table = bars_table(rows, metadata)
            digest = content_hash(table)
            path = partition_path(out, symbol, year)
            if written_hash(path) == digest:
                skipped += 1
            else:
                write_partition(path, table, digest)
                written += 1
                report.rows_written += len(rows)
            report.rows += len(rows)
        report.written += written
        report.skipped += skipped
        if progress is not None:
            progress(symbol, written, skipped)
    return report
