"""API keys on WebSocket connections: the hook streaming routes call before they serve.

Browsers cannot set headers on a WebSocket, so besides ``Authorization`` / ``X-API-Key`` a
client may send the key as the ``api_key`` query parameter or, to keep it out of URLs and
access logs, as its first message: ``{"action": "auth", "key": "<key>"}``.
"""

from __future__ import annotations

import asyncio
import json

from starlette.websockets import WebSocket, WebSocketDisconnect

from mds.access.authenticator import AccessDenied, Principal
from mds.access.keys import Role
from mds.api.auth import presented_key

#: Close code for a refused key: 1008 is the standard "policy violation".
POLICY_VIOLATION = 1008
FIRST_MESSAGE_TIMEOUT_S = 10.0


class WebSocketRefused(Exception):
    """The connection was refused and closed; the route just returns."""


async def accept_websocket(
    ws: WebSocket, role: Role, *, required: bool, timeout: float = FIRST_MESSAGE_TIMEOUT_S
) -> Principal | None:
    """Accept ``ws`` for a client allowed ``role``; None when no key is ``required`` and none came.

    Raises:
        WebSocketRefused: The key was missing, wrong, or of too low a role; the client got an
            ``error`` message naming the status (401, 403 or 429) and the socket is closed.
    """
    auth = ws.app.state.runtime.auth
    client = ws.client.host if ws.client else "unknown"
    key = presented_key(ws.headers) or ws.query_params.get("api_key")
    await ws.accept()
    try:
        if key is None:
            if not required:
                return None
            try:
                key = await _first_message_key(ws, timeout)
            except WebSocketDisconnect:
                # A client gone before it said who it is (a handshake probe does just this):
                # nothing to answer, and not an application error worth a traceback.
                raise WebSocketRefused("left before authenticating") from None
        principal: Principal = await auth.authorize(key, role, client=client)
        return principal
    except AccessDenied as exc:
        await ws.send_json({"type": "error", "status": exc.status, "title": exc.title, "detail": str(exc)})
        await ws.close(code=POLICY_VIOLATION, reason=exc.title)
        raise WebSocketRefused(exc.reason) from None


async def _first_message_key(ws: WebSocket, timeout: float) -> str | None:
    """The key of a first ``auth`` message, or None (then authorize() refuses it as missing)."""
    try:
        message = json.loads(await asyncio.wait_for(ws.receive_text(), timeout))
    except (TimeoutError, ValueError, KeyError):
        return None
    if isinstance(message, dict) and message.get("action") == "auth" and isinstance(message.get("key"), str):
        return str(message["key"])
    return None
