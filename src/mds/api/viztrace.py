"""With ``VIZTRACER_ENABLED``: a VizTracer capture of a request, kept when it was slow.

VizTracer hooks the interpreter's profiler for the whole thread, so there is one capture
at a time: a request arriving while another is captured is served untraced. The capture
also shows whatever else the event loop ran meanwhile (other requests, background
tasks), which is often what made the request slow. Settings are read per request, so a
reload turns capturing on or off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from mds.api.tracing import SKIPPED, route_template
from mds.observability.viztrace import TraceFolder, new_tracer

if TYPE_CHECKING:
    from viztracer import VizTracer  # type: ignore[import-untyped]

    from mds.runtime import Runtime

log = logging.getLogger(__name__)


class SlowRequestCapture:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._busy = False  # a capture (or its save) is under way
        self._tracer: VizTracer | None = None
        self._entries_mb = 0.0  # VIZTRACER_MAX_FILE_MB the tracer's buffer was sized for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime | None = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        if (
            scope["type"] != "http"
            or self._busy
            or runtime is None
            or not runtime.settings.VIZTRACER_ENABLED
            or scope["path"] in SKIPPED
        ):
            await self.app(scope, receive, send)
            return
        settings = runtime.settings
        self._busy = True
        try:
            if self._tracer is None or self._entries_mb != settings.VIZTRACER_MAX_FILE_MB:
                self._tracer = new_tracer(settings)
                self._entries_mb = settings.VIZTRACER_MAX_FILE_MB
            tracer = self._tracer
            started = time.perf_counter()
            tracer.start()
            try:
                await self.app(scope, receive, send)
            finally:
                tracer.stop()
                elapsed_ms = (time.perf_counter() - started) * 1000.0
                if elapsed_ms >= settings.VIZTRACER_MIN_MS:
                    label = f"{scope['method']} {route_template(scope) or scope['path']}"
                    # Off the loop: saving a full buffer takes a while. Still one at a time.
                    await asyncio.to_thread(
                        self._save, tracer, TraceFolder.from_settings(settings), label, elapsed_ms
                    )
                tracer.clear()
        finally:
            self._busy = False

    @staticmethod
    def _save(tracer: VizTracer, folder: TraceFolder, label: str, elapsed_ms: float) -> None:
        try:
            kept = folder.save(tracer, label, elapsed_ms)
        except OSError as exc:  # a full disk must not fail the request that was traced
            log.warning("viztracer: could not save a trace to %s: %s", folder.path, exc)
            return
        if kept is None:
            log.info(
                "viztracer: trace of %s (%.0f ms) dropped: over VIZTRACER_MAX_FILE_MB", label, elapsed_ms
            )
