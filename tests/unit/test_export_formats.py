"""CSV and Parquet files of bars: their contents are the bars, exactly."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from mds.domain.models import BarStatus, Interval
from mds.export.formats import (
    COLUMNS,
    MEDIA_TYPES,
    content_disposition,
    csv_chunks,
    filename,
    parquet_bytes,
    table_metadata,
)
from mds.providers.sim.market import ground_truth
from tests.helpers import utc

LEARNED = utc(2025, 10, 8, 15)
BARS = [
    b._replace(as_of=LEARNED) for b in ground_truth("AAPL", Interval.M1, utc(2025, 10, 8, 13, 30), LEARNED)
]
# One provisional bar MDS has no learned time for (as an adapter hands it over).
BARS[-1] = BARS[-1]._replace(status=BarStatus.PROVISIONAL, as_of=None)


def test_csv_rows_are_the_bars_with_exact_prices_in_chunks() -> None:
    chunks = list(csv_chunks(BARS, rows_per_chunk=40))
    assert len(chunks) == 1 + 3  # the header, then 90 rows in chunks of 40
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 1 + len(BARS)
    for row, bar in zip(rows[1:], BARS, strict=True):
        assert datetime.fromisoformat(row[0]) == bar.ts and row[0].endswith("Z")
        assert [float(x) for x in row[1:6]] == [bar.open, bar.high, bar.low, bar.close, bar.volume]
        assert row[6:8] == [bar.provider, bar.status.value]
        assert row[8] == ("" if bar.as_of is None else "2025-10-08T15:00:00Z")


def test_parquet_holds_the_bars_with_utc_times_and_the_metadata() -> None:
    meta = {"symbol": "AAPL", "interval": "1m", "adjustment": {"mode": "raw"}}
    table = pq.read_table(pa.BufferReader(parquet_bytes(BARS, meta)))
    assert tuple(table.column_names) == COLUMNS
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.column("ts").to_pylist() == [b.ts for b in BARS]
    assert table.column("close").to_pylist() == [b.close for b in BARS]
    assert table.column("volume").to_pylist() == [b.volume for b in BARS]
    assert table.column("status").to_pylist()[-2:] == ["final", "provisional"]
    assert table.column("as_of").to_pylist()[-2:] == [LEARNED, None]
    assert table_metadata(table) == meta


def test_an_empty_range_is_a_header_only_csv_and_an_empty_parquet() -> None:
    assert b"".join(csv_chunks([])) == (",".join(COLUMNS) + "\r\n").encode()
    assert pq.read_table(pa.BufferReader(parquet_bytes([]))).num_rows == 0


def test_media_types_and_file_names() -> None:
    assert MEDIA_TYPES == {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
    name = filename("^GSPC", "1d", utc(2025, 1, 1), utc(2026, 1, 1), "parquet")
    assert name == "_GSPC_1d_20250101T000000Z_20260101T000000Z.parquet"
    assert content_disposition(name) == f'attachment; filename="{name}"'
