"""The schedule form: a :class:`ScheduleSpec` to form fields and back.

Flat HTML fields (``cron``, ``meta_queue``, ``hook_alert_on`` …) map onto the nested
spec; a mistake is an InvalidRequest naming the API's field (``metadata.hooks.alert_on``),
so the form and the JSON API speak of the same things.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from mds.domain.schedules import ScheduleSpec
from mds.errors import InvalidRequest

ALERT_EVENTS = ("failure", "slow", "success")


def fields_of(spec: ScheduleSpec | None) -> dict[str, Any]:
    """The form's values for ``spec`` (a new schedule's defaults when None)."""
    s = spec or ScheduleSpec(name="new-schedule", task="ping", cron="0 * * * *")
    m = s.metadata
    return {
        "name": "" if spec is None else s.name,
        "task": "" if spec is None else s.task,
        "timing": "market" if s.market_relative else "cron",
        "cron": s.cron or "",
        "timezone": s.timezone,
        "calendar": s.calendar or "XNYS",
        "when": s.when or "",
        "kwargs": json.dumps(s.kwargs, indent=2, sort_keys=True) if s.kwargs else "{}",
        "meta_queue": m.queue,
        "meta_priority": str(m.priority),
        "meta_dependencies": ", ".join(m.dependencies),
        "meta_dependency_wait_s": _num(m.dependency_wait_s),
        "meta_preflight_checks": ", ".join(m.preflight_checks),
        "meta_maintenance_windows": json.dumps(
            [w.model_dump(mode="json") for w in m.maintenance_windows], indent=2
        )
        if m.maintenance_windows
        else "[]",
        "safety_single_flight": m.safety.single_flight,
        "safety_max_concurrency": "" if m.safety.max_concurrency is None else str(m.safety.max_concurrency),
        "safety_timeout_s": "" if m.safety.timeout_s is None else _num(m.safety.timeout_s),
        "retry_attempts": str(m.safety.retry.attempts),
        "retry_backoff_s": _num(m.safety.retry.backoff_s),
        "retry_backoff_factor": _num(m.safety.retry.backoff_factor),
        "hook_discord_webhook": m.hooks.discord_webhook or "",
        "hook_prometheus_endpoint": m.hooks.prometheus_endpoint or "",
        "hook_alert_on": list(m.hooks.alert_on),
    }


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def values_of(form: FormData) -> dict[str, Any]:
    """The submitted form as :func:`fields_of` spells it (to show it again with an error)."""
    out: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    out["safety_single_flight"] = form.get("safety_single_flight") == "on"
    out["hook_alert_on"] = [v for v in form.getlist("hook_alert_on") if isinstance(v, str)]
    return out


def spec_of(values: Mapping[str, Any]) -> ScheduleSpec:
    """The spec the form describes, or InvalidRequest naming the field that is wrong."""

    def text(key: str) -> str:
        return str(values.get(key, "") or "").strip()

    def optional(key: str) -> str | None:
        return text(key) or None

    def listed(key: str) -> list[str]:
        return [p.strip() for p in text(key).split(",") if p.strip()]

    market = text("timing") == "market"
    body: dict[str, Any] = {
        "name": text("name"),
        "task": text("task"),
        "timezone": text("timezone") or "UTC",
        "cron": None if market else optional("cron"),
        "calendar": optional("calendar") if market else None,
        "when": optional("when") if market else None,
        "kwargs": _json(text("kwargs") or "{}", "kwargs", dict),
        "metadata": {
            "queue": text("meta_queue") or "default",
            "priority": text("meta_priority") or 5,
            "dependencies": listed("meta_dependencies"),
            "dependency_wait_s": text("meta_dependency_wait_s") or 3600,
            "preflight_checks": listed("meta_preflight_checks"),
            "maintenance_windows": _json(
                text("meta_maintenance_windows") or "[]", "metadata.maintenance_windows", list
            ),
            "safety": {
                "single_flight": bool(values.get("safety_single_flight")),
                "max_concurrency": optional("safety_max_concurrency"),
                "timeout_s": optional("safety_timeout_s"),
                "retry": {
                    "attempts": text("retry_attempts") or 0,
                    "backoff_s": text("retry_backoff_s") or 60,
                    "backoff_factor": text("retry_backoff_factor") or 2,
                },
            },
            "hooks": {
                "discord_webhook": optional("hook_discord_webhook"),
                "prometheus_endpoint": optional("hook_prometheus_endpoint"),
                "alert_on": [e for e in values.get("hook_alert_on", []) if e in ALERT_EVENTS],
            },
        },
    }
    try:
        return ScheduleSpec.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "schedule"
        raise InvalidRequest(where, err["msg"]) from exc


def _json(raw: str, field: str, kind: type) -> Any:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(field, f"not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(value, kind):
        raise InvalidRequest(field, f"must be a JSON {'object' if kind is dict else 'array'}")
    return value
