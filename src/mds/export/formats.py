"""Bars as files: CSV (streamed in chunks) and Parquet, with their media types and names.

One column set for both, in this order: ``ts`` (UTC open time), ``open``, ``high``, ``low``,
``close``, ``volume``, ``provider``, ``status``, ``as_of`` (when MDS learned the bar, UTC).
CSV writes times as ISO-8601 with ``Z`` and prices as Python's shortest exact repr; Parquet
stores times as ``timestamp[us, tz=UTC]`` and keeps the answer's metadata (symbol, interval,
range, adjustment) as JSON under the schema metadata key ``mds``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from mds.domain.models import Bar
from mds.serialize import iso

ExportFormat = Literal["csv", "parquet"]
COLUMNS = ("ts", "open", "high", "low", "close", "volume", "provider", "status", "as_of")
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    # Registered with IANA in 2024 for Apache Parquet files.
    "parquet": "application/vnd.apache.parquet",
}
#: Schema metadata key holding the export's metadata as JSON.
METADATA_KEY = b"mds"
SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.float64(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("as_of", pa.timestamp("us", tz="UTC")),
    ]
)
CSV_CHUNK_ROWS = 5_000


def filename(symbol: str, interval: str, start: datetime, end: datetime, fmt: ExportFormat) -> str:
    """``AAPL_1d_20250101T000000Z_20260101T000000Z.csv``: what and which range, safe in any file system."""
    a, b = (t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") for t in (start, end))
    return f"{_safe(symbol)}_{interval}_{a}_{b}.{fmt}"


def content_disposition(name: str) -> str:
    return f'attachment; filename="{name}"'


def _safe(symbol: str) -> str:
    # ^GSPC, BRK/B: keep letters, digits, dot and dash; anything else becomes "_".
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in symbol)


def csv_chunks(bars: Sequence[Bar], *, rows_per_chunk: int = CSV_CHUNK_ROWS) -> Iterator[bytes]:
    """The CSV file as UTF-8 chunks: the header, then ``rows_per_chunk`` rows at a time
    (a StreamingResponse sends each as it comes, so a long range is never one big string)."""
    yield (",".join(COLUMNS) + "\r\n").encode()
    for i in range(0, len(bars), rows_per_chunk):
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerows(
            (
                iso(b.ts),
                repr(float(b.open)),
                repr(float(b.high)),
                repr(float(b.low)),
                repr(float(b.close)),
                repr(float(b.volume)),
                b.provider,
                b.status.value,
                iso(b.as_of) if b.as_of is not None else "",
            )
            for b in bars[i : i + rows_per_chunk]
        )
        yield buf.getvalue().encode()


def bars_table(bars: Sequence[Bar], metadata: Mapping[str, Any] | None = None) -> pa.Table:
    """``bars`` as an Arrow table of :data:`SCHEMA`, ``metadata`` (JSON-able) in its schema."""
    columns = [
        pa.array([b.ts for b in bars], SCHEMA.field("ts").type),
        pa.array([b.open for b in bars], pa.float64()),
        pa.array([b.high for b in bars], pa.float64()),
        pa.array([b.low for b in bars], pa.float64()),
        pa.array([b.close for b in bars], pa.float64()),
        pa.array([b.volume for b in bars], pa.float64()),
        pa.array([b.provider for b in bars], pa.string()),
        pa.array([b.status.value for b in bars], pa.string()),
        pa.array([b.as_of for b in bars], SCHEMA.field("as_of").type),
    ]
    schema = SCHEMA
    if metadata is not None:
        schema = SCHEMA.with_metadata({METADATA_KEY: orjson.dumps(dict(metadata), default=_json_default)})
    return pa.Table.from_arrays(columns, schema=schema)


def parquet_bytes(bars: Sequence[Bar], metadata: Mapping[str, Any] | None = None) -> bytes:
    """One Parquet file (zstd) of ``bars``, ``metadata`` in its schema metadata."""
    sink = pa.BufferOutputStream()
    pq.write_table(bars_table(bars, metadata), sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def table_metadata(table: pa.Table) -> dict[str, Any]:
    """The ``metadata`` a table (or a read Parquet file) was written with; {} when none."""
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    return dict(orjson.loads(raw)) if raw else {}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"not JSON-able in export metadata: {type(value).__name__}")
