"""The /admin console's server response time with 8,000 tracked symbols, and (with
Chromium installed) the first contentful paint of each page in headless Chromium.

A fresh SQLite runtime on a ManualClock gets ``symbols`` tracked symbols with daily bars
and planted staleness (as :mod:`mds.benchmarks.coverage` fills them), ``symbols`` failed
backfill jobs in the DLQ, the catalog's schedules and ``runs`` job runs. Filling is not
timed. A logged-in client then asks each page ``requests`` times in-process (ASGI, no
socket): ``pages.<path>.p50_ms`` / ``p99_ms``; target: every p99 under 300 ms. The
dashboard's coverage KPIs are their own request (htmx loads them after the page), from
the cached snapshot, as the hourly monitor leaves it.

``paint``: the app served by uvicorn on loopback, each page loaded in headless Chromium
``paint_loads`` times, ``first-contentful-paint`` from the Paint Timing API (median ms);
target: under 1,500 ms. Left out (``paint: null``) when Chromium is not installed.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from mds.access.admin import issue_key
from mds.access.keys import Role
from mds.api.app import create_app
from mds.benchmarks.coverage import NOW, _fill, _symbol
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Capability, Interval, Tier
from mds.domain.records import BackfillStatus
from mds.providers.sim.profile import sim_profile
from mds.runtime import Runtime, open_runtime
from mds.storage.base import NewBackfill

PAGES = (
    "/admin",
    "/admin/dashboard/coverage",
    "/admin/jobs",
    "/admin/schedules",
    "/admin/schedules/new",
    "/admin/dlq",
    "/admin/dlq?page=80",
    "/admin/coverage",
    "/admin/tracked",
    "/admin/tracked?page=80",
    "/admin/tracked?cols=price&cols=atr&cols=stage&cols=market_cap&cols=sector",
    "/admin/jobs/1",
    "/admin/symbol?symbol=S00001",
)
#: What pages fetch after they have painted (timed on the server, not painted).
DATA = ("/admin/symbol/bars.json?symbol=S00001&interval=1d", "/admin/schedules/export")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TARGET_MS, PAINT_TARGET_MS = 300.0, 1500.0


async def _seed(rt: Runtime, symbols: int, runs: int) -> None:
    await _fill(rt.store, rt.calendar, symbols, 5)
    names = [_symbol(i) for i in range(symbols)]
    await rt.store.ensure_symbols(names, tier=Tier.T2, now=NOW)  # the Symbol page's chart asks the universe
    # A year of weekly market caps per symbol: the Tracked page's column reads the newest.
    for week in range(52, 0, -1):
        profiles = [sim_profile(s, 100.0 + i % 50 + week / 10) for i, s in enumerate(names)]
        await rt.store.write_profiles(profiles, as_of=NOW - timedelta(weeks=week))
    specs = [
        NewBackfill(s, Interval.D1, NOW - timedelta(days=9), NOW - timedelta(days=2), Tier.T2) for s in names
    ]
    for rec in await rt.store.create_backfills(specs, now=NOW):
        await rt.store.update_backfill(rec.id, status=BackfillStatus.FAILED, now=NOW, last_error="bench")
    await rt.schedules.seed(by="bench")
    for _ in range(runs):
        await rt.schedules.run_task("ping", {}, by="bench")
    await rt.coverage.refresh()  # what the hourly monitor leaves for the dashboard


@asynccontextmanager
async def _runtime(workdir: Path) -> AsyncIterator[Runtime]:
    env = {
        **{f"POLICY_{c.value.upper()}": "sim,sim_backup" for c in Capability},
        "INDEX_SOURCES": "",
        "DATABASE_URL": f"sqlite:///{workdir}/admin.db",
    }
    async with open_runtime(
        load_settings(env), clock=ManualClock(NOW), demo=True, collect=False, environ=env
    ) as rt:
        yield rt


async def _login(client: httpx.AsyncClient, key: str) -> None:
    form = await client.get("/admin/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    r = await client.post("/admin/login", data={"api_key": key, "csrf": token.group(1)})
    assert r.status_code == 303, r.text


def _app(rt: Runtime) -> Any:
    @asynccontextmanager
    async def same() -> AsyncIterator[Runtime]:
        yield rt

    app = create_app(same)
    app.state.runtime = rt
    return app


async def _server_times(rt: Runtime, key: str, requests: int) -> dict[str, dict[str, float]]:
    transport = httpx.ASGITransport(app=_app(rt))
    out: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://mds") as client:
        await _login(client, key)
        for path in PAGES + DATA:
            times = []
            for _ in range(requests + 2):
                t = time.perf_counter()
                r = await client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    raise AssertionError(f"{path}: {r.status_code} {r.text[:300]}")
            times = sorted(times[2:])  # the first two warm caches and templates
            out[path] = {
                "p50_ms": round(statistics.median(times), 2),
                "p99_ms": round(times[max(0, int(len(times) * 0.99) - 1)], 2),
                "bytes": len(r.content),
            }
    return out


def _paint(url: str, key: str, loads: int) -> dict[str, float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    script = "return (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null"
    try:
        driver.get(url + "/admin/login")
        driver.find_element(By.ID, "api_key").send_keys(key)
        driver.find_element(By.ID, "login").click()
        out: dict[str, float] = {}
        for path in PAGES:
            paints = []
            for _ in range(loads):
                driver.get(url + path)
                for _ in range(50):
                    fcp = driver.execute_script(script)
                    if fcp is not None:
                        break
                    time.sleep(0.02)
                paints.append(float(fcp or "nan"))
            out[path] = round(statistics.median(paints), 1)
        return out
    finally:
        driver.quit()


async def _paint_times(rt: Runtime, key: str, loads: int) -> dict[str, float]:
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(_app(rt), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    for _ in range(500):  # uvicorn offers no event to wait on
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        return await asyncio.to_thread(_paint, f"http://127.0.0.1:{listener.getsockname()[1]}", key, loads)
    finally:
        server.should_exit = True
        await task
        listener.close()


async def _run(symbols: int, requests: int, runs: int, paint_loads: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-admin-"))
    try:
        async with _runtime(workdir) as rt:
            t = time.perf_counter()
            await _seed(rt, symbols, runs)
            fill_s = time.perf_counter() - t
            key, _ = await issue_key(rt.store, "bench-admin", Role.ADMIN, now=rt.clock.now())
            pages = await _server_times(rt, key, requests)
            paint = await _paint_times(rt, key, paint_loads) if paint_loads > 0 else None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    worst = max(p["p99_ms"] for p in pages.values())
    return {
        "benchmark": "admin",
        "backend": "sqlite",
        "symbols": symbols,
        "dlq_jobs": symbols,
        "job_runs": runs,
        "fill_seconds": round(fill_s, 1),
        "requests": requests,
        "pages": pages,
        "worst_p99_ms": worst,
        "paint": paint,
        "worst_paint_ms": max(paint.values()) if paint else None,
        "targets": {"p99_ms": TARGET_MS, "first_contentful_paint_ms": PAINT_TARGET_MS},
    }


def run(symbols: int = 8000, requests: int = 50, runs: int = 500, paint_loads: int = 3) -> dict[str, object]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        paint_loads = 0
    return asyncio.run(_run(symbols, requests, runs, paint_loads))
