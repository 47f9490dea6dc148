"""VizTracer captures: slow requests are kept, fast ones dropped, the folder stays bounded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mds.api.viztrace import SlowRequestCapture
from mds.config import load_settings
from mds.observability.viztrace import PREFIX, TraceFolder


def _files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def _client(out: Path, **env: str) -> httpx.AsyncClient:
    async def slow(request: Request) -> PlainTextResponse:
        await asyncio.sleep(0.06)  # at least VIZTRACER_MIN_MS=50 below, however busy the machine
        return PlainTextResponse("slow")

    async def fast(request: Request) -> PlainTextResponse:
        return PlainTextResponse("fast")

    app = Starlette(routes=[Route("/slow/{n}", slow), Route("/fast", fast)])
    app.add_middleware(SlowRequestCapture)
    settings = load_settings({"VIZTRACER_ENABLED": "true", "VIZ_OUT_DIR": str(out), **env})
    app.state.runtime = SimpleNamespace(settings=settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_slow_request_is_kept_and_a_fast_one_is_not(tmp_path: Path) -> None:
    async with _client(tmp_path, VIZTRACER_MIN_MS="50") as client:
        assert (await client.get("/slow/1")).text == "slow"
    (kept,) = TraceFolder(tmp_path, max_files=10, max_bytes=10**9).kept()
    assert kept.name.startswith(PREFIX) and "GET_slow_n" in kept.name
    events = json.loads(kept.read_text())["traceEvents"]
    assert any("slow" in str(e.get("name", "")) for e in events)  # the endpoint's own frames

    async with _client(tmp_path / "fast", VIZTRACER_MIN_MS="10000") as client:
        assert (await client.get("/fast")).text == "fast"
    assert not (tmp_path / "fast").exists()


async def test_only_the_newest_files_are_kept(tmp_path: Path) -> None:
    async with _client(tmp_path, VIZTRACER_MIN_MS="50", VIZTRACER_MAX_FILES="2") as client:
        for n in range(4):
            await client.get(f"/slow/{n}")
    kept = TraceFolder(tmp_path, max_files=2, max_bytes=10**9).kept()
    assert len(kept) == 2
    assert _files(tmp_path) == kept  # and no partial files left behind


async def test_a_trace_over_the_size_limit_is_not_kept(tmp_path: Path) -> None:
    async with _client(tmp_path, VIZTRACER_MIN_MS="50", VIZTRACER_MAX_FILE_MB="0.0001") as client:
        assert (await client.get("/slow/1")).status_code == 200
    assert _files(tmp_path) == []


async def test_a_request_arriving_during_a_capture_is_served_untraced(tmp_path: Path) -> None:
    async with _client(tmp_path, VIZTRACER_MIN_MS="50") as client:
        answers = await asyncio.gather(*(client.get(f"/slow/{n}") for n in range(3)))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(TraceFolder(tmp_path, max_files=10, max_bytes=10**9).kept()) == 1
