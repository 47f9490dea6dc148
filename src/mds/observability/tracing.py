"""OpenTelemetry tracing: the tracer a process hands to its parts, and its shutdown.

Spans are recorded only when they are exported: ``OTEL_EXPORTER_OTLP_ENDPOINT`` set (OTLP
over HTTP, batched) and ``TRACING_ENABLED`` not turned off. Otherwise every part gets
OpenTelemetry's no-op tracer and nothing is wrapped: a span that nobody receives is pure
cost, and the read path is fast enough (about 0.1 ms a request served from kept bytes)
that a few SDK spans (about 0.02 ms each) would show in its latency.

What is traced when exporting: every request but a share of GET requests
(``TRACING_READ_SAMPLE_RATIO``; a GET carrying a sampled ``traceparent`` always is),
every job and every provider call. Store and market-service calls get spans only inside
one of those (:func:`traced`), so an unsampled read pays one context look-up per call.

The provider is not installed as OpenTelemetry's process-global one: that can be set
only once per process, so tests (and a process opening two runtimes) could not replace
it. The :class:`Tracing` of a runtime is passed to what makes spans instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, Tracer

from mds.config import Settings

P = ParamSpec("P")
R = TypeVar("R")

#: Instrumentation scope of every MDS span.
SCOPE = "mds"


@dataclass(frozen=True)
class Tracing:
    """A process's tracer; ``provider`` is None when tracing is off (no-op tracer)."""

    tracer: Tracer
    provider: TracerProvider | None = None
    #: Share of GET requests given a span (see the module docstring).
    read_sample_ratio: float = 1.0

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    @classmethod
    def disabled(cls) -> Tracing:
        return cls(trace.NoOpTracer())

    @classmethod
    def with_processors(
        cls, service_name: str, processors: Iterable[SpanProcessor], *, read_sample_ratio: float = 1.0
    ) -> Tracing:
        """Recording tracing whose spans go to ``processors``."""
        provider = TracerProvider(
            # Explicit, so OTEL_TRACES_SAMPLER in the environment cannot change what the
            # settings say; sampling of reads is decided per request (mds.api.tracing).
            sampler=ParentBased(ALWAYS_ON),
            resource=Resource.create({SERVICE_NAME: service_name}),
            shutdown_on_exit=False,  # the runtime shuts it down; no atexit hook per runtime
        )
        for p in processors:
            provider.add_span_processor(p)
        return cls(provider.get_tracer(SCOPE), provider, read_sample_ratio)

    def shutdown(self) -> None:
        """Export what is still buffered and stop the exporter (blocks up to its timeout)."""
        if self.provider is not None:
            self.provider.shutdown()


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector base URL (``http://host:4318``)."""
    return endpoint.rstrip("/") + "/v1/traces"


def setup_tracing(settings: Settings) -> Tracing:
    """The tracing ``settings`` ask for (see the module docstring)."""
    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT
    if not settings.TRACING_ENABLED or not endpoint:
        return Tracing.disabled()
    # Imported only when exporting: it pulls in requests and protobuf.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=otlp_traces_url(endpoint))
    return Tracing.with_processors(
        settings.OTEL_SERVICE_NAME,
        [BatchSpanProcessor(exporter)],
        read_sample_ratio=settings.TRACING_READ_SAMPLE_RATIO,
    )


def traced(
    tracer: Tracer, name: str, fn: Callable[P, Awaitable[R]], attributes: dict[str, Any]
) -> Callable[P, Awaitable[R]]:
    """``fn`` run inside a child span ``name`` when it is called inside a recording span
    (plainly otherwise); an exception it raises is recorded on the span."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        if not trace.get_current_span().is_recording():
            return await fn(*args, **kwargs)
        with tracer.start_as_current_span(name, kind=SpanKind.INTERNAL, attributes=attributes):
            return await fn(*args, **kwargs)

    return call


def instrument(
    obj: object, tracing: Tracing, prefix: str, names: Iterable[str], attributes: dict[str, Any] | None = None
) -> None:
    """Wrap the coroutine methods ``names`` of this one object in child spans ``<prefix>.<name>``.

    The wrappers are set on the instance, so its type stays what it was (the stores are
    told apart with isinstance), and nothing is wrapped at all when tracing is off: the
    disabled path costs nothing, not even the call through a wrapper.
    """
    if not tracing.enabled:
        return
    for name in names:
        method = getattr(obj, name, None)
        if method is not None and inspect.iscoroutinefunction(method):
            setattr(obj, name, traced(tracing.tracer, f"{prefix}.{name}", method, dict(attributes or {})))


def coroutine_methods(cls: type, *, exclude: Iterable[str] = ()) -> frozenset[str]:
    """Public coroutine functions ``cls`` (a class or Protocol) declares, less ``exclude``."""
    skip = set(exclude)
    return frozenset(
        name
        for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in skip
    )
