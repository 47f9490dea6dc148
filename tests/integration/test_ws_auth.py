"""The WebSocket key hook, over a real socket: header, query parameter or first message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import suppress

import pytest
import websockets
from starlette.websockets import WebSocket

from mds.access.admin import issue_key
from mds.access.keys import Role
from mds.api.app import create_app
from mds.api.ws_auth import WebSocketRefused, accept_websocket
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.runtime import open_runtime
from tests.integration.conftest import API_ENV, API_NOW, served_on_loopback


@pytest.fixture
async def ws_server(tmp_path) -> AsyncIterator[tuple[str, dict[Role, str]]]:
    """An app with a test stream at /ws-test (ops role, always required) and /ws-open (read,
    required only with AUTH_READ_REQUIRED), served by uvicorn on loopback."""
    env = {**API_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/ws.db"}
    async with open_runtime(load_settings(env), clock=ManualClock(API_NOW), collect=False, environ=env) as rt:
        keys = {r: (await issue_key(rt.store, f"ws-{r.value}", r, now=API_NOW))[0] for r in Role}
        app = create_app(lambda: None)  # type: ignore[arg-type, return-value]
        app.state.runtime = rt

        async def stream(ws: WebSocket, role: Role, required: bool) -> None:
            with suppress(WebSocketRefused):
                principal = await accept_websocket(ws, role, required=required, timeout=1.0)
                await ws.send_json({"type": "hello", "as": principal.name if principal else None})
                await ws.close()

        async def guarded(websocket: WebSocket) -> None:
            await stream(websocket, Role.OPS, True)

        async def open_read(websocket: WebSocket) -> None:
            await stream(websocket, Role.READ, rt.settings.AUTH_READ_REQUIRED)

        app.add_api_websocket_route("/ws-test", guarded)
        app.add_api_websocket_route("/ws-open", open_read)
        async with served_on_loopback(app) as port:
            yield f"ws://127.0.0.1:{port}", keys


async def _first(
    url: str, *, send: dict | None = None, headers: dict | None = None
) -> tuple[dict, int | None]:
    async with websockets.connect(url, additional_headers=headers or {}) as ws:
        if send is not None:
            await ws.send(json.dumps(send))
        message = json.loads(await ws.recv())
        with suppress(websockets.ConnectionClosed):
            await ws.recv()
        return message, ws.close_code


async def test_a_key_may_come_as_header_query_or_first_message(ws_server) -> None:
    base, keys = ws_server
    ops = keys[Role.OPS]
    for kwargs, url in (
        ({"headers": {"Authorization": f"Bearer {ops}"}}, "/ws-test"),
        ({"headers": {"X-API-Key": ops}}, "/ws-test"),
        ({}, f"/ws-test?api_key={ops}"),
        ({"send": {"action": "auth", "key": ops}}, "/ws-test"),
    ):
        message, _ = await _first(base + url, **kwargs)
        assert message == {"type": "hello", "as": "ws-ops"}, (url, kwargs)


async def test_a_refused_key_gets_an_error_message_and_a_policy_close(ws_server) -> None:
    base, keys = ws_server
    for kwargs, status in (
        ({}, 401),  # nothing within the timeout
        ({"send": {"action": "subscribe", "symbols": ["AAPL"]}}, 401),  # not an auth message
        ({"send": {"action": "auth", "key": "mds_wrong"}}, 401),
        ({"headers": {"X-API-Key": keys[Role.READ]}}, 403),
    ):
        message, code = await _first(base + "/ws-test", **kwargs)
        assert message["type"] == "error" and message["status"] == status, kwargs
        assert code == 1008


async def test_reads_stream_without_a_key_unless_required(ws_server) -> None:
    base, keys = ws_server
    message, _ = await _first(base + "/ws-open")
    assert message == {"type": "hello", "as": None}
    message, _ = await _first(base + "/ws-open", headers={"X-API-Key": keys[Role.READ]})
    assert message == {"type": "hello", "as": "ws-read"}


async def test_a_client_leaving_before_its_auth_message_is_refused_quietly(tmp_path) -> None:
    # A blackbox handshake probe connects and hangs up: the route sees a refusal, not an
    # exception escaping to the server (which would log a traceback every scrape).
    env = {**API_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/ws.db"}
    seen: list[str] = []
    async with open_runtime(load_settings(env), clock=ManualClock(API_NOW), collect=False, environ=env) as rt:
        app = create_app(lambda: None)  # type: ignore[arg-type, return-value]
        app.state.runtime = rt

        async def guarded(websocket: WebSocket) -> None:
            try:
                await accept_websocket(websocket, Role.READ, required=True, timeout=5.0)
                seen.append("accepted")
            except WebSocketRefused as exc:
                seen.append(f"refused: {exc}")
            except Exception as exc:  # noqa: BLE001 - what escaped is what the test reports
                seen.append(f"escaped: {type(exc).__name__}")

        app.add_api_websocket_route("/ws-test", guarded)
        async with served_on_loopback(app) as port:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws-test"):
                pass  # closes without a word
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
    assert seen == ["refused: left before authenticating"]
