"""``GET /stocks/{symbol}/history?format=csv|parquet``: the same bars as the JSON answer, as files."""

from __future__ import annotations

import csv
import io

import httpx
import pyarrow.parquet as pq
import pytest

from mds.runtime import Runtime


@pytest.fixture
def client(api: tuple[httpx.AsyncClient, Runtime]) -> httpx.AsyncClient:
    return api[0]


PARAMS = {"start": "2025-09-01T00:00:00Z", "end": "2025-10-08T00:00:00Z"}


async def test_csv_and_parquet_hold_the_json_answers_bars(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/stocks/AAPL/history", params=PARAMS)).json()
    assert doc["start"] == "2025-09-01T00:00:00Z" and len(doc["bars"]) > 20

    got = await client.get("/stocks/AAPL/history", params={**PARAMS, "format": "csv"})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == (
        'attachment; filename="AAPL_1d_20250901T000000Z_20251008T000000Z.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert [r["ts"] for r in rows] == [b["ts"] for b in doc["bars"]]
    assert [float(r["close"]) for r in rows] == [b["close"] for b in doc["bars"]]
    assert {r["provider"] for r in rows} == {b["provider"] for b in doc["bars"]}

    got = await client.get("/stocks/AAPL/history", params={**PARAMS, "format": "parquet", "adjust": "split"})
    assert got.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(got.content))
    assert table.column("close").to_pylist() == [b["close"] for b in doc["bars"]]
    assert b'"mode":"split"' in table.schema.metadata[b"mds"].replace(b" ", b"")


async def test_a_bad_format_is_a_problem_naming_the_field(client: httpx.AsyncClient) -> None:
    got = await client.get("/stocks/AAPL/history", params={**PARAMS, "format": "xlsx"})
    assert got.status_code == 422 and got.headers["content-type"] == "application/problem+json"
    assert "format" in got.text
