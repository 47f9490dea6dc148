"""``GET /options/{symbol}/metrics`` on a cached ~2,000-contract chain, over loopback HTTP.

The limit (issue 16): p99 under 50 ms. What is timed is what a user waits for: the real
app (:func:`mds.api.app.create_app` over :func:`mds.runtime.open_runtime`, API role) served
by uvicorn on a loopback socket in a thread of its own, one ``httpx`` client with
keep-alive in the main thread, requests one after the other, each from send to the last
byte of the body. The store is a SQLite file in a temporary directory; every policy is
the sim; the clock is a ManualClock at a Wednesday mid-session, so the sim lists the same
chain on every run.

``OPTIONS_MAX_DAYS`` (the horizon MDS fetches) is the smallest that brings ``contracts``
contracts into the chain (whole expirations; at least 35 days, the setting's floor),
found from the sim's own listing; ``contracts`` in the answer is the count the first
chain answer reports. The first request fetches and prices the chain
(``first_request_ms``); the rest are served from the priced chain the process caches
(``CACHE_TTL_OPTIONS_CHAIN_SEC`` is a clock day and the clock stands still, so no request
refreshes it, which the run checks). Beside the metrics, ``chain_requests`` requests of
``/options/{symbol}/chain?max_days=...`` for the same chain give its p50/p99 and size.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from mds.api.app import create_app
from mds.benchmarks.live import percentile
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Capability
from mds.providers.sim.market import SimMarket
from mds.providers.sim.options import sim_option_chain
from mds.runtime import open_runtime

#: A Wednesday mid-session: weeklies and monthlies a year out are all listed.
NOW = datetime(2025, 10, 15, 15, 0, tzinfo=UTC)
#: A demo symbol whose whole sim listing (a year) is just over 2,000 contracts.
SYMBOL = "MSFT"
METRICS_P99_TARGET_MS = 50.0
#: OPTIONS_MAX_DAYS may not be set lower (iv30 needs an expiration past 30 days).
MIN_MAX_DAYS = 35
_START_TIMEOUT_S = 30.0


def horizon_days(symbol: str, contracts: int, *, seed: int = 42, now: datetime = NOW) -> int:
    """The smallest OPTIONS_MAX_DAYS whose sim chain of ``symbol`` at ``now`` holds at least
    ``contracts`` contracts (whole expirations), or the whole listing's when it holds fewer."""
    listed = Counter(q.expiration for q in sim_option_chain(SimMarket(seed), symbol, now))
    if not listed:
        raise ValueError(f"the sim lists no options for {symbol!r}")
    total, days = 0, MIN_MAX_DAYS
    for expiration in sorted(listed):
        total += listed[expiration]
        days = max(MIN_MAX_DAYS, (expiration - now.date()).days)
        if total >= contracts:
            break
    return days


def _env(workdir: Path, max_days: int, seed: int) -> dict[str, str]:
    return {
        **{f"POLICY_{c.value.upper()}": "sim" for c in Capability},
        "DATABASE_URL": f"sqlite:///{workdir}/bench.db",
        "INDEX_SOURCES": "",  # nothing may reach a real host
        "SIM_SEED": str(seed),
        "OPTIONS_MAX_DAYS": str(max_days),
        "CACHE_TTL_OPTIONS_CHAIN_SEC": "86400",
        "LOG_LEVEL": "WARNING",
    }


@contextmanager
def _serving(env: dict[str, str]) -> Iterator[str]:
    """The app on a loopback port, served by uvicorn in a thread; yields its base URL."""
    settings = load_settings(env)
    clock = ManualClock(NOW)
    app = create_app(lambda: open_runtime(settings, clock=clock, demo=True, collect=False, environ=env))
    # IPPROTO_TCP named: asyncio's loop sets TCP_NODELAY on accepted sockets only when their
    # proto says TCP; without it each keep-alive answer after the first waited ~40 ms for a
    # delayed ACK (Nagle), which `mds serve` (uvicorn binding its own socket) never does.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    # run(): the event loop `mds serve` gets (uvloop when installed). Off the main thread
    # uvicorn installs no signal handlers; should_exit stops it.
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="bench-uvicorn", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start (see the log above)")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=_START_TIMEOUT_S)
        sock.close()


def _timed_get(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> tuple[float, bytes]:
    """(ms from send to the body's last byte, the body); fails on anything but 200."""
    start = time.perf_counter()
    response = client.get(path, params=params)
    body = response.content
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {body[:300]!r}")
    return elapsed, body


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def run(
    requests: int = 500,
    chain_requests: int = 100,
    contracts: int = 2_000,
    symbol: str = SYMBOL,
    seed: int = 42,
) -> dict[str, Any]:
    """Time ``requests`` metrics reads and ``chain_requests`` chain reads of ``symbol``'s
    cached chain of about ``contracts`` contracts (see the module docstring)."""
    if requests < 1 or chain_requests < 1:
        raise ValueError("requests and chain_requests must be at least 1")
    max_days = horizon_days(symbol, contracts, seed=seed)
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-options-api-"))
    try:
        with (
            _serving(_env(workdir, max_days, seed)) as base,
            httpx.Client(base_url=base, timeout=30) as client,
        ):
            metrics_path = f"/options/{symbol}/metrics"
            chain_path = f"/options/{symbol}/chain"
            chain_params = {"max_days": max_days}
            first_ms, body = _timed_get(client, metrics_path)  # fetches and prices the chain
            first = json.loads(body)
            _, chain_body = _timed_get(client, chain_path, chain_params)
            chain = json.loads(chain_body)
            metrics_ms = [_timed_get(client, metrics_path)[0] for _ in range(requests)]
            chain_ms = [_timed_get(client, chain_path, chain_params)[0] for _ in range(chain_requests)]
            last = client.get(metrics_path).json()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if last["as_of"] != first["as_of"]:
        raise RuntimeError(f"the chain was refreshed during the run ({first['as_of']} -> {last['as_of']})")
    return {
        "benchmark": "options_api",
        "transport": "uvicorn on loopback, one keep-alive client, sequential",
        "symbol": symbol,
        "options_max_days": max_days,
        "contracts": chain["count"],
        "expirations": len(chain["expirations"]),
        "metrics_contracts": first["contracts"],
        "provider": chain["provider"],
        "first_request_ms": _ms(first_ms),
        "requests": requests,
        "metrics_p50_ms": _ms(percentile(metrics_ms, 0.50)),
        "metrics_p95_ms": _ms(percentile(metrics_ms, 0.95)),
        "metrics_p99_ms": _ms(percentile(metrics_ms, 0.99)),
        "metrics_max_ms": _ms(max(metrics_ms)),
        "metrics_p99_target_ms": METRICS_P99_TARGET_MS,
        "metrics_bytes": len(body),
        "chain_requests": chain_requests,
        "chain_p50_ms": _ms(percentile(chain_ms, 0.50)),
        "chain_p99_ms": _ms(percentile(chain_ms, 0.99)),
        "chain_bytes": len(chain_body),
    }
