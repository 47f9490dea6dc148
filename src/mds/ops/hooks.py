"""Task-run hooks: seed 004's scheduler alerts (Discord) and Prometheus Pushgateway pushes.

A finished run emits events (:func:`events_for`): ``success``, ``failure``, and ``slow`` for a
run that overran ``metadata.safety.timeout_s`` (recorded ``timed_out``, so it emits
``failure`` too). :class:`RunHooks` sends them where the run's ``metadata.hooks`` says:

- Discord: one execute-webhook POST per target (a URL, or an alias read from
  ``DISCORD_WEBHOOK_<ALIAS>``) holding one embed per event listed in ``alert_on``. A run
  whose schedule names no webhook still reports failures (whatever its ``alert_on``) to
  ``DISCORD_WEBHOOK_SYSTEM_STATUS`` when that is set.
- Pushgateway: the gauge ``mds_task_duration_seconds{task,event,queue}``, the run's seconds
  (0 when it never started), one sample per event, pushed with POST (``pushadd``) to job
  ``mds_tasks`` grouped by ``task``. It is seed 004's ``quantmatrix_task_duration_seconds``
  in MDS's namespace; the gateway keeps each task's latest run.

A hook never fails the run: any error is logged (naming the alias or "webhook #n", never a
URL, since Discord URLs carry their token) and counted in ``hook_failures_total{kind}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

from mds.domain.schedules import DISCORD_ALIASES, Hooks, JobRun, RunStatus, discord_targets
from mds.redact import hide, redact

if TYPE_CHECKING:
    from mds.config import Settings
    from mds.observability.metrics import Metrics

__all__ = ["RunHooks", "events_for"]

log = logging.getLogger(__name__)

PUSH_JOB = "mds_tasks"
#: Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
#: Discord also refuses a message whose embeds hold more than 6000 characters together: the
#: long texts (counters, error) are fields capped at 1024, and the description is one line,
#: so even a timed-out run's two embeds (slow, failure) fit in one message.
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_MAX = 1024
COLOURS = {"failure": 0xE74C3C, "slow": 0xE67E22, "success": 0x2ECC71}


def events_for(run: JobRun) -> list[str]:
    """The events a finished run emits, in the order they are reported."""
    if run.status is RunStatus.SUCCEEDED:
        return ["success"]
    if run.status is RunStatus.FAILED:
        return ["failure"]
    if run.status is RunStatus.TIMED_OUT:
        return ["slow", "failure"]
    return []


class RunHooks:
    """Sends a finished run's events to Discord and a Pushgateway; see the module docstring.

    Args:
        settings: Supplies ``HOOK_TIMEOUT_SEC`` and the ``DISCORD_WEBHOOK_*`` aliases.
        metrics: Counts undelivered hooks in ``hook_failures_total``.
        client: Used for Discord when given (the caller closes it); otherwise each
            :meth:`notify` opens and closes its own, as runs finish rarely.
    """

    def __init__(self, settings: Settings, metrics: Metrics, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._client = client

    async def notify(self, run: JobRun, hooks: Hooks) -> None:
        """Deliver ``run``'s hooks; never raises (a failed hook is logged and counted)."""
        events = events_for(run)
        # Each hook handles its own errors; return_exceptions keeps a bug in one from
        # failing the run or leaving the other running unawaited.
        outcomes = await asyncio.gather(
            self._discord(run, hooks, events), self._push(run, hooks, events), return_exceptions=True
        )
        for kind, outcome in zip(("discord", "pushgateway"), outcomes, strict=True):
            if isinstance(outcome, Exception):
                self._failed(kind, "notify", outcome, ())

    # -- Discord ------------------------------------------------------------------------

    async def _discord(self, run: JobRun, hooks: Hooks, events: list[str]) -> None:
        if hooks.discord_webhook is None:
            # Failures reach the operators' channel even when the job names none.
            targets = self._resolve(["system_status"], quiet=True) if "failure" in events else []
            wanted = ["failure"]
        else:
            targets = self._resolve(discord_targets(hooks.discord_webhook))
            wanted = list(hooks.alert_on)
        sent = [e for e in events if e in wanted]
        if not sent or not targets:
            return
        body = {"username": "MDS", "embeds": [_embed(run, event) for event in sent]}
        if self._client is not None:
            await asyncio.gather(*(self._post(self._client, name, url, body) for name, url in targets))
            return
        async with httpx.AsyncClient(timeout=self.settings.HOOK_TIMEOUT_SEC) as client:
            await asyncio.gather(*(self._post(client, name, url, body) for name, url in targets))

    def _resolve(self, targets: list[str], *, quiet: bool = False) -> list[tuple[str, str]]:
        """``(name to log, URL)`` per distinct target; an alias without a setting is a failure
        (unless ``quiet``: the system-status fallback is optional)."""
        out: dict[str, str] = {}  # URL -> name, so two spellings of one webhook post once
        for n, target in enumerate(targets, start=1):
            if target not in DISCORD_ALIASES:
                out.setdefault(target, f"webhook #{n}")
                continue
            secret = getattr(self.settings, f"DISCORD_WEBHOOK_{target.upper()}", None)
            if secret is None:
                if not quiet:
                    self._failed("discord", target, None, ())
                continue
            out.setdefault(secret.get_secret_value(), target)
        return [(name, url) for url, name in out.items()]

    async def _post(self, client: httpx.AsyncClient, name: str, url: str, body: dict[str, Any]) -> None:
        try:
            response = await client.post(url, json=body, timeout=self.settings.HOOK_TIMEOUT_SEC)
            response.raise_for_status()
        except Exception as exc:
            self._failed("discord", name, exc, (url,))

    # -- Pushgateway --------------------------------------------------------------------

    async def _push(self, run: JobRun, hooks: Hooks, events: list[str]) -> None:
        gateway = hooks.prometheus_endpoint
        if gateway is None or not events:
            return
        registry = CollectorRegistry()
        gauge = Gauge(
            "mds_task_duration_seconds",
            "Seconds the task's latest run took, per event it emitted (success, failure, slow)",
            ["task", "event", "queue"],
            registry=registry,
        )
        for event in events:
            gauge.labels(task=run.task, event=event, queue=run.queue).set(run.duration_s or 0.0)
        try:
            # The push API blocks (urllib); its own timeout bounds the thread.
            await asyncio.to_thread(
                pushadd_to_gateway,
                gateway,
                job=PUSH_JOB,
                registry=registry,
                grouping_key={"task": run.task},
                timeout=self.settings.HOOK_TIMEOUT_SEC,
            )
        except Exception as exc:
            self._failed("pushgateway", "prometheus_endpoint", exc, (gateway,))

    # -- failures -----------------------------------------------------------------------

    def _failed(self, kind: str, name: str, exc: Exception | None, urls: Iterable[str]) -> None:
        self.metrics.hook_failures_total.labels(kind=kind).inc()
        if exc is None:
            log.warning("%s hook %s: its DISCORD_WEBHOOK_%s setting is unset", kind, name, name.upper())
            return
        # Exception texts can quote the URL they failed on (httpx's status errors do).
        reason = hide(redact(str(exc)), urls) or "no detail"
        log.warning("%s hook %s failed: %s: %s", kind, name, type(exc).__name__, reason)


def _embed(run: JobRun, event: str) -> dict[str, Any]:
    error = redact(run.error) if run.error else None
    if event == "slow":
        timeout = run.metadata.get("safety", {}).get("timeout_s")
        summary = f"The run exceeded its timeout of {timeout} s and was cancelled."
    elif event == "failure":
        summary = f"The run ended {run.status.value}."
    else:
        summary = "The run succeeded."
    fields = [
        ("job id", str(run.id) if run.id is not None else "—", True),
        ("task", run.task, True),
        ("schedule", run.schedule or "—", True),
        ("status", run.status.value, True),
        ("duration", f"{run.duration_s:.1f} s" if run.duration_s is not None else "—", True),
        ("queue", run.queue, True),
        ("attempt", str(run.attempt), True),
        ("logical date", run.logical_date.isoformat(), True),
        ("counters", ", ".join(f"{k}={v}" for k, v in run.counters.items()) or "—", False),
    ]
    if error is not None:
        fields.append(("error", error, False))
    when = run.finished_at or datetime.now(UTC)
    return {
        "title": _cut(
            f"{event.upper()}: {run.task}" + (f" ({run.schedule})" if run.schedule else ""), TITLE_MAX
        ),
        "description": _cut(summary, DESCRIPTION_MAX),
        "color": COLOURS[event],
        "fields": [{"name": n, "value": _cut(v, FIELD_MAX), "inline": i} for n, v, i in fields],
        "timestamp": when.isoformat(),
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
