"""Hot reload: validate a new configuration, apply what can change live, keep the rest.

An invalid configuration is refused with the setting named and the running service
keeps its last good one. Settings that shape the process itself (the database and its
pool, the port, the calendar, the queues and Redis, which sims exist) need a restart; a
reload that changes them applies the rest and says which ones wait for a restart.

Vendor adapters read their key, base URL and rate limit when built, so a reload that
changes them builds the adapter again and swaps it in; the router keeps its figures.
Every process applies a reload: the one that received it announces the new version on
the bus (``mds.ops.config_sync``) and the others re-read their own configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mds.config import Settings, load_settings, read_env_file
from mds.providers.base import Provider
from mds.providers.ratelimit import RateLimiter
from mds.providers.registry import VENDORS, adapters_to_rebuild, build_vendor, policy_names

if TYPE_CHECKING:
    from mds.runtime import Runtime

log = logging.getLogger(__name__)

#: Settings read once, when the process builds its parts; a change waits for a restart.
RESTART_ONLY = (
    # the process and its store
    "DATABASE_URL",
    "DB_POOL_MIN_SIZE",
    "DB_POOL_MAX_SIZE",
    "DB_STATEMENT_TIMEOUT_MS",
    "DB_RETRY_MAX_SECONDS",
    "LIVE_RESERVED_DB_CONNECTIONS",
    "MDS_HOST",
    "MDS_PORT",
    "LOG_LEVEL",
    "MARKET_CALENDAR",
    "UNIVERSE_FILE",
    # queues, Redis and the shared rate-limit budget
    "QUEUE_BACKEND",
    "USE_RLC",
    "RLC_REDIS_URL",
    "RLC_REDIS_JOBS_KEY",
    "RLC_REDIS_BACKFILL_KEYS",
    "TASK_QUEUES",
    "TASK_WORKERS",
    "RATE_LIMIT_STORAGE_URI",
    "LIVE_RESERVED_RATE_SHARE",
    # streaming buffers and the HTTP server's WebSocket heartbeats
    "WS_REPLAY_MAX_MESSAGES",
    "WS_REPLAY_TTL_SEC",
    "WS_REPLAY_MAX_BARS",
    "WS_PING_INTERVAL_SEC",
    "WS_PING_TIMEOUT_SEC",
    "BARS_RESPONSE_CACHE_MB",
    "BARS_RESPONSE_CACHE_SEC",
    "SCHEDULER_RELOAD_SEC",
    "INDEX_SOURCES",
    # the OpenTelemetry tracer provider and its exporter, built once (VIZTRACER_* are read
    # per request and stay reloadable)
    "TRACING_ENABLED",
    "TRACING_READ_SAMPLE_RATIO",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
)


@dataclass
class ReloadResult:
    ok: bool
    policy_version: str
    changed: list[str] = field(default_factory=list)
    restart_required: list[str] = field(default_factory=list)
    #: Vendor adapters built again (key, base URL or rate limit changed) or for the first
    #: time (a policy names them now).
    rebuilt: list[str] = field(default_factory=list)
    setting: str | None = None
    error: str | None = None


def effective_environ(
    base: Mapping[str, str], env_file: Path | None, defaults: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What settings are read from: the process environment over the env file (re-read now)
    over mode defaults (the demo's sim policies)."""
    file_env = read_env_file(env_file) if env_file is not None else {}
    return {**(defaults or {}), **file_env, **base}


def diff(old: Settings, new: Settings) -> list[str]:
    a, b = old.model_dump(), new.model_dump()
    return sorted(k for k in a if a[k] != b[k])


def plan_reload(
    current: Settings, environ: Mapping[str, str], providers: set[str]
) -> tuple[Settings, ReloadResult]:
    """Validate ``environ``; raise ConfigError if invalid. Returns the settings to apply and a report."""
    new = load_settings(environ)
    changed = diff(current, new)
    restart = [k for k in changed if k in RESTART_ONLY]
    named = policy_names(new)
    missing = [p for p in named if p not in providers and p.startswith("sim")]
    if missing:
        restart.append(f"providers {', '.join(missing)} (named by a policy, not built at start)")
    added = [p for p in named if p not in providers and p in VENDORS]
    rebuilt = sorted({*adapters_to_rebuild(current, new, providers), *added})
    return new, ReloadResult(
        ok=True,
        policy_version=str(int(time.time())),
        changed=changed,
        restart_required=restart,
        rebuilt=rebuilt,
    )


def next_version(current: str, now: float) -> str:
    """A version tag after ``current``: the epoch second (the seeds' format), made to
    move forward when two reloads land within one second."""
    tag = int(now)
    if current.isdigit():
        tag = max(tag, int(current) + 1)
    return str(tag)


async def reload_here(runtime: Runtime, *, version: str | None = None) -> ReloadResult:
    """Re-read this process's configuration, validate it and apply it.

    ``version`` is the tag another process announced; without it a new tag is made (this
    process received the reload). Raises ConfigError, leaving everything as it was.
    """
    new, report = plan_reload(runtime.settings, runtime.current_environ(), set(runtime.providers))
    report.policy_version = version or next_version(runtime.policy_version, time.time())
    runtime.apply_settings(new)
    limiter = runtime.limiter or RateLimiter()
    for name in report.rebuilt:
        adapter = build_vendor(name, new, runtime.calendar, limiter)
        runtime.providers[name] = adapter
        old = runtime.router.replace_provider(name, adapter)
        if old is not None:
            runtime.retired.retire(old, grace_seconds=new.PROVIDER_TIMEOUT_SEC)
    runtime.policy_version = report.policy_version
    log.info(
        "configuration %s applied: changed %s; rebuilt %s; waiting for a restart %s",
        report.policy_version,
        ", ".join(report.changed) or "nothing",
        ", ".join(report.rebuilt) or "none",
        ", ".join(report.restart_required) or "none",
    )
    return report


class RetiredAdapters:
    """Adapters a reload replaced, closed once the calls already on them had time to end.

    A call holds the adapter it started with; closing its HTTP client at once would fail
    that call. After PROVIDER_TIMEOUT_SEC every such call has answered or timed out.
    """

    def __init__(self) -> None:
        self._pending: dict[asyncio.Task[None], Provider] = {}

    def retire(self, adapter: Provider, *, grace_seconds: float) -> None:
        task = asyncio.create_task(self._close_later(adapter, grace_seconds), name="retire-adapter")
        self._pending[task] = adapter
        task.add_done_callback(lambda t: self._pending.pop(t, None))

    async def _close_later(self, adapter: Provider, grace_seconds: float) -> None:
        await asyncio.sleep(grace_seconds)
        await adapter.aclose()

    async def aclose(self) -> None:
        """Close every adapter still waiting (the process is stopping)."""
        for task, adapter in list(self._pending.items()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await adapter.aclose()
        self._pending.clear()
