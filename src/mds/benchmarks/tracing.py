"""`mds bench tracing`: `mds bench read` with tracing off, on (no exporter) and exporting.

"on" is ``TRACING_ENABLED=true`` without an endpoint (no spans are recorded then: it
measures what the instrumentation in place costs); "otlp" exports to the collector with
the shipped defaults, so a share of reads (``TRACING_READ_SAMPLE_RATIO``) is traced.

Three `mds serve --demo` processes, one per mode, each on its own fresh PostgreSQL
database; the exporting one sends OTLP/HTTP to a loopback collector in a process of its
own. The clients then measure them in turns (the order rotating each round), so a
neighbour's load on the machine falls on every mode alike rather than on whichever ran
last. Limits (the issue's): p99 on/off at most 1.05, exporting/off at most 1.2.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import uvloop

from mds.benchmarks import pg
from mds.config import load_settings

MODES = ("off", "on", "otlp")
LIMITS = {"on": 1.05, "otlp": 1.2}
PATH = "/stocks/AAPL/intraday?start=2025-10-08T13:30:00Z&end=2025-10-08T20:00:00Z"


@dataclass
class Server:
    mode: str
    port: int
    db: str
    proc: subprocess.Popen[bytes] | None = None
    latencies: list[float] = field(default_factory=list)


def _env(mode: str, db: str, sink: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": db,
        "BACKFILL_LOOKBACK_DAYS_1D": "0",
        "BACKFILL_LOOKBACK_DAYS_1M": "1",
        "AUTH_READ_REQUIRED": "false",
        "TRACING_ENABLED": "false" if mode == "off" else "true",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    if mode == "otlp":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink
    return env


async def _measure(servers: list[Server], clients: int, seconds: float, rounds: int) -> None:
    served = await asyncio.gather(
        *(pg._wait_until_served(f"http://127.0.0.1:{s.port}", PATH, 390, {}) for s in servers)
    )
    for server, expected in zip(servers, served, strict=True):
        request = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        # A short warm-up of each, not counted.
        await asyncio.gather(
            *(
                pg._client("127.0.0.1", server.port, request, expected, time.perf_counter() + 1, [])
                for _ in range(clients)
            )
        )
    expect = dict(zip((s.mode for s in servers), served, strict=True))
    for r in range(rounds):
        for i in range(len(servers)):
            server = servers[(i + r) % len(servers)]
            request = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
            stop = time.perf_counter() + seconds / rounds
            await asyncio.gather(
                *(
                    pg._client("127.0.0.1", server.port, request, expect[server.mode], stop, server.latencies)
                    for _ in range(clients)
                )
            )


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[int(len(ordered) * 0.99) - 1], 2)


def run(clients: int = 50, seconds: float = 10.0, rounds: int = 5) -> dict[str, object]:
    """Each mode measured ``seconds`` in all, in ``rounds`` turns; p99s and their ratios."""
    sink_port = 19000 + os.getpid() % 1000
    sink = subprocess.Popen(
        [sys.executable, "-m", "mds.benchmarks.otlp_sink", str(sink_port)], stdout=subprocess.PIPE
    )
    assert sink.stdout is not None
    endpoint = sink.stdout.readline().decode().strip()
    mds = str(Path(sys.executable).with_name("mds"))
    servers = [
        Server(mode, 18100 + os.getpid() % 800 + i, asyncio.run(pg.create_db()))
        for i, mode in enumerate(MODES)
    ]
    exported = 0
    try:
        for s in servers:
            s.proc = subprocess.Popen(
                [mds, "serve", "--demo", "--clock", "2025-10-08T20:30:00Z", "--port", str(s.port)],
                cwd=tempfile.mkdtemp(prefix=f"mds-bench-tracing-{s.mode}-"),
                env=_env(s.mode, s.db, endpoint),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        uvloop.run(_measure(servers, clients, seconds, rounds))
    finally:
        for s in servers:
            if s.proc is not None:
                s.proc.send_signal(signal.SIGINT)
        for s in servers:
            if s.proc is not None:
                try:
                    s.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    s.proc.kill()
            asyncio.run(pg.drop_db(s.db))
        sink.send_signal(signal.SIGTERM)
        out, _ = sink.communicate(timeout=10)
        exported = int(out.decode().split()[-1] or 0) if out.strip() else 0
    p99 = {s.mode: _p99(s.latencies) for s in servers}
    ratios = {mode: round(p99[mode] / p99["off"], 3) for mode in LIMITS}
    return {
        "benchmark": "tracing",
        "backend": "postgres",
        "clients": clients,
        "requests": {s.mode: len(s.latencies) for s in servers},
        "p50_ms": {s.mode: round(statistics.median(s.latencies), 2) for s in servers},
        "p99_ms": p99,
        "ratio": ratios,
        "limit": LIMITS,
        "within_limits": all(ratios[m] <= LIMITS[m] for m in LIMITS),
        "read_sample_ratio": load_settings(dict(os.environ)).TRACING_READ_SAMPLE_RATIO,
        "spans_exported": exported,
        "collector": urlsplit(endpoint).netloc,
    }
