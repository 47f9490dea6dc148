"""CORS from the running settings: off unless ``CORS_ALLOW_ORIGINS`` lists origins.

Starlette's CORSMiddleware takes its origins once, at start; this wrapper rebuilds it
when a reload changes the allow-list, so CORS follows ``/ops/reload`` like other settings.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

_METHODS = ["GET", "POST", "PUT", "DELETE"]
_HEADERS = ["Authorization", "X-API-Key", "Content-Type"]


class ConfiguredCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._origins: tuple[str, ...] = ()
        self._cors: CORSMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = getattr(scope["app"].state, "runtime", None) if scope["type"] == "http" else None
        origins = tuple(runtime.settings.CORS_ALLOW_ORIGINS) if runtime is not None else ()
        if not origins:
            await self.app(scope, receive, send)
            return
        if origins != self._origins or self._cors is None:
            self._cors = CORSMiddleware(
                self.app,
                allow_origins=list(origins),
                allow_methods=_METHODS,
                allow_headers=_HEADERS,
                max_age=600,
            )
            self._origins = origins
        await self._cors(scope, receive, send)
