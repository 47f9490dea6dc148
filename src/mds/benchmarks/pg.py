"""PostgreSQL benchmarks: store ingest vs a raw COPY, and API reads under 50 clients.

Both use a fresh database ``mds_bench_<uuid>`` on ``MDS_BENCH_DATABASE_URL`` (default:
postgresql://postgres@127.0.0.1:5432/postgres) and drop it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvloop

from mds.domain.models import Bar, Interval
from mds.storage.postgres import PostgresStore
from mds.storage.postgres import sql as q

ADMIN_URL = os.environ.get("MDS_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = datetime(2025, 1, 2, 14, 30, tzinfo=UTC)


async def create_db() -> str:
    name = f"mds_bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')  # a generated name, not input
    finally:
        await conn.close()
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def drop_db(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _bars(n: int, symbols: int = 100) -> list[Bar]:
    per = n // symbols
    out = []
    for s in range(symbols):
        for i in range(per):
            p = 100.0 + s + (i % 390) * 0.01
            out.append(
                Bar(
                    f"S{s:03d}",
                    Interval.M1,
                    T0 + timedelta(minutes=i),
                    p,
                    p + 0.05,
                    p - 0.05,
                    p,
                    1000.0,
                    "bench",
                )
            )
    return out


async def _ingest(n: int, batch: int) -> dict[str, object]:
    url = await create_db()
    try:
        store = PostgresStore(url, pool_max=4)
        await store.open()
        bars = _bars(n)
        t = time.perf_counter()
        for i in range(0, len(bars), batch):
            await store.write_bars(bars[i : i + batch], as_of=T0 + timedelta(days=400))
        store_s = time.perf_counter() - t
        # The same bars again: every key exists, so this is the staged merge finding
        # nothing changed (what an overlapping re-fetch costs).
        t = time.perf_counter()
        for i in range(0, len(bars), batch):
            await store.write_bars(bars[i : i + batch], as_of=T0 + timedelta(days=401))
        rewrite_s = time.perf_counter() - t
        await store.close()

        # The database's own fastest path for the same schema: COPY into a table with the
        # same columns, primary key and indexes as candles.
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE raw_candles (LIKE candles INCLUDING ALL)")
            stamp = T0 + timedelta(days=400)
            records = [
                (
                    b.symbol,
                    b.interval.value,
                    b.ts,
                    b.open,
                    b.high,
                    b.low,
                    b.close,
                    b.volume,
                    b.provider,
                    stamp,
                    "final",
                    False,
                    0,
                )
                for b in bars
            ]
            t = time.perf_counter()
            for i in range(0, len(records), batch):
                await conn.copy_records_to_table(
                    "raw_candles", records=records[i : i + batch], columns=q.BAR_COLUMNS
                )
            raw_s = time.perf_counter() - t
        finally:
            await conn.close()
    finally:
        await drop_db(url)
    return {
        "benchmark": "ingest",
        "backend": "postgres",
        "bars": len(bars),
        "seconds": round(store_s, 2),
        "bars_per_s": round(len(bars) / store_s),
        "raw_copy_bars_per_s": round(len(bars) / raw_s),
        "identical_rewrite_bars_per_s": round(len(bars) / rewrite_s),
        "ratio": round(raw_s / store_s, 3),
    }


def ingest(bars: int = 1_000_000, batch: int = 50_000) -> dict[str, object]:
    return asyncio.run(_ingest(bars, batch))


async def _wait_until_served(base: str, path: str, bars: int, headers: dict[str, str]) -> bytes:
    """Poll until the symbol-day is stored and the service's own backfill has drained."""
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=headers) as c:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):  # not up yet: poll again
                r = await c.get(path)
                health = (await c.get("/health")).json()
                metrics = (await c.get("/metrics")).text
                depths = [ln for ln in metrics.splitlines() if ln.startswith("backfill_queue_depth{")]
                drained = (
                    health.get("startup_backfill_queued")
                    and bool(depths)
                    and all(ln.endswith(" 0.0") for ln in depths)
                )
                if drained and r.status_code == 200 and len(r.json()["bars"]) == bars:
                    return r.content
            await asyncio.sleep(0.2)
    raise RuntimeError("the symbol-day never became complete")


async def _client(
    host: str, port: int, request: bytes, expected: bytes, stop: float, out: list[float]
) -> None:
    """One keep-alive HTTP/1.1 client reading responses by Content-Length.

    Hand-written: every Python HTTP client library costs more CPU per request than the
    server's answer does, on the same two cores, and would measure itself.
    """
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop:
            t = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            body = await reader.readexactly(length)
            out.append((time.perf_counter() - t) * 1000)
            if status != b"200" or body != expected:
                raise RuntimeError(f"unexpected answer {status!r} ({length} bytes)")
    finally:
        writer.close()


async def _measure(base: str, clients: int, seconds: float, headers: dict[str, str]) -> dict[str, object]:
    path = "/stocks/AAPL/intraday?start=2025-10-08T13:30:00Z&end=2025-10-08T20:00:00Z"
    expected = await _wait_until_served(base, path, 390, headers)
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
    latencies: list[float] = []
    # A short warm-up, not counted.
    await asyncio.gather(
        *(_client(host, port, request, expected, time.perf_counter() + 1, []) for _ in range(clients))
    )
    stop = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(host, port, request, expected, stop, latencies) for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "benchmark": "read",
        "backend": "postgres",
        "auth": bool(headers),
        "clients": clients,
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "rps": round(len(latencies) / elapsed, 1),
    }


def _demo_key(path: Path) -> str:
    """The admin key `mds serve --demo` writes before it starts serving."""
    for _ in range(600):
        if path.exists():
            return path.read_text().strip()
        time.sleep(0.1)
    raise RuntimeError(f"{path} never appeared")


def read(clients: int = 50, seconds: float = 10.0, *, auth: bool = False) -> dict[str, object]:
    """`mds serve --demo` on a fresh PostgreSQL database, then 50 clients read one symbol-day.

    ``auth``: with AUTH_READ_REQUIRED=true, every request sending the demo's admin key.
    """
    url = asyncio.run(create_db())
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-read-"))
    port = 18000 + os.getpid() % 1000
    mds = str(Path(sys.executable).with_name("mds"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BACKFILL_LOOKBACK_DAYS_1D": "0",
        "BACKFILL_LOOKBACK_DAYS_1M": "1",
        "AUTH_READ_REQUIRED": "true" if auth else "false",
    }
    proc = subprocess.Popen(
        [mds, "serve", "--demo", "--clock", "2025-10-08T20:30:00Z", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # uvloop, as the server runs: the default loop costs the client more CPU per request.
        headers = {"X-API-Key": _demo_key(workdir / "var" / "demo-admin.key")} if auth else {}
        return uvloop.run(_measure(f"http://127.0.0.1:{port}", clients, seconds, headers))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        asyncio.run(drop_db(url))
