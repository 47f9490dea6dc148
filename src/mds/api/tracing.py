"""A span around each HTTP request, named by its route template (``GET /stocks/{symbol}``).

Hand-written rather than opentelemetry-instrumentation-asgi: that package is not among
the dependencies, and this needs a tenth of it (no metrics, no header capture). It reads
the runtime's tracing per request, so with tracing off a request pays one attribute look-up.
A request carrying a W3C ``traceparent`` header continues the caller's trace.

GET requests are sampled here, before any span exists (``TRACING_READ_SAMPLE_RATIO``): an
unsampled read runs with no span at all, which costs nothing, where an SDK span the
sampler drops still costs about half a recorded one. A GET whose ``traceparent`` says
sampled is always traced, one that says not sampled never; other methods always are.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from mds.runtime import Runtime

#: Probes and scrapes: frequent, uninteresting, and they would drown the traces.
SKIPPED = frozenset({"/metrics", "/health"})
#: The scope key a middleware answering before routing sets to the route it answered for.
ROUTE_KEY = "mds.route"
_W3C = TraceContextTextMapPropagator()
_TRACE_HEADERS = (b"traceparent", b"tracestate")
_READS = frozenset({"GET", "HEAD"})


def _traced(method: str, parent: Context | None, read_sample_ratio: float) -> bool:
    """Whether this request gets a span (see the module docstring)."""
    if method not in _READS:
        return True
    caller = trace.get_current_span(parent).get_span_context() if parent is not None else None
    if caller is not None and caller.is_valid:
        return caller.trace_flags.sampled
    return random.random() < read_sample_ratio


def route_template(scope: Scope) -> str | None:
    """The template of the route that answered, once routing has run."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) if route is not None else scope.get(ROUTE_KEY)
    return template if isinstance(template, str) else None


class RequestSpans:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime | None = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        if (
            scope["type"] != "http"
            or runtime is None
            or not runtime.tracing.enabled
            or scope["path"] in SKIPPED
        ):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        carrier = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _TRACE_HEADERS
        }
        parent = _W3C.extract(carrier) if carrier else None
        if not _traced(method, parent, runtime.tracing.read_sample_ratio):
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with runtime.tracing.tracer.start_as_current_span(
            method,  # renamed once routing has found the template
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                template = route_template(scope)
                if template is not None:
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(StatusCode.ERROR)
