"""Schedules, their metadata, and job runs: seed 004's RedBeat entries and ``job_run`` rows.

The shapes are validated here (ranges, patterns, one timing per schedule); what needs the
outside world (a cron expression croniter accepts, a time zone, a calendar, a task the
catalog knows, a queue a worker serves) is checked by ``mds.services.schedules``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEDULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"
#: Names the schedules API uses as paths beside ``/{name}``.
RESERVED_NAMES = frozenset({"export", "import", "preview"})
QUEUE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
#: ``after_close+30m``, ``before_open-60m``, ``after_open``, ``before_close-5m``.
WHEN_PATTERN = r"^(after|before)_(open|close)([+-]\d{1,4}m)?$"
HHMM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"
#: Discord webhook aliases, each mapped by a ``DISCORD_WEBHOOK_<ALIAS>`` setting.
DISCORD_ALIASES = ("system_status", "signals", "portfolio", "morning_brew", "playground")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HookEvent = Literal["failure", "slow", "success"]
_ALL_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FAILURE_ONLY: tuple[HookEvent, ...] = ("failure",)
#: ``store``: the store answers; ``redis``: Redis answers (when configured);
#: ``session_day``: the logical date is a trading session; ``provider:<capability>``: some
#: provider is routable for the capability (``provider:eod``, ``provider:bars_5m``).
PREFLIGHT_PATTERN = r"^(store|redis|session_day|provider:[a-z0-9_]+)$"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.SKIPPED})


class Trigger(StrEnum):
    SCHEDULE = "schedule"  # fired by the scheduler
    RUN_NOW = "run_now"  # POST /admin/schedules/{name}/run-now
    TASK = "task"  # POST /admin/tasks/run or `mds schedules run --task`
    API = "api"  # an admin POST that runs its work inline (coverage refresh, retention, ...)


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


class MaintenanceWindow(BaseModel):
    """No run starts inside ``start``–``end`` (local time in ``timezone``) on ``days``; a
    window whose end is before its start runs past midnight (``22:00``–``02:00``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(pattern=HHMM_PATTERN, description="Local start, HH:MM")
    end: str = Field(pattern=HHMM_PATTERN, description="Local end, HH:MM (exclusive)")
    timezone: str = Field(default="UTC", description="IANA time zone of start and end")
    days: list[Weekday] = Field(
        default_factory=lambda: list(_ALL_DAYS), description="Days the window opens on"
    )

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _zone(v)))

    @model_validator(mode="after")
    def _not_empty(self) -> MaintenanceWindow:
        if self.start == self.end:
            raise ValueError("a maintenance window needs end different from start")
        return self

    def end_if_inside(self, when: datetime) -> datetime | None:
        """The moment the window containing ``when`` closes, or None when ``when`` is outside."""
        from datetime import timedelta

        local = when.astimezone(ZoneInfo(self.timezone))
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        # The window may have opened today or, running past midnight, yesterday.
        for opened in (local.date(), local.date() - timedelta(days=1)):
            if WEEKDAYS[opened.weekday()] not in self.days:
                continue
            begin = datetime.combine(opened, start, local.tzinfo)
            close_day = opened if end > start else opened + timedelta(days=1)
            close = datetime.combine(close_day, end, local.tzinfo)
            if begin <= local < close:
                return close
        return None


class RetryPolicy(BaseModel):
    """A failed or timed-out run is tried again up to ``attempts`` more times, waiting
    ``backoff_s * backoff_factor ** (n - 1)`` seconds before the n-th retry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=0, ge=0, le=10, description="Retries after the first try")
    backoff_s: float = Field(default=60.0, ge=0, le=86_400, description="Wait before the first retry")
    backoff_factor: float = Field(default=2.0, ge=1, le=10, description="Growth of the wait per retry")

    def delay(self, retry: int) -> float:
        return float(self.backoff_s * self.backoff_factor ** max(0, retry - 1))


class Safety(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    single_flight: bool = Field(
        default=False, description="A fire while a run of this schedule runs is skipped (across processes)"
    )
    max_concurrency: int | None = Field(
        default=None, ge=1, le=64, description="Runs of this task at once, across schedules; more wait"
    )
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=172_800,
        description="The run is cancelled, recorded timed_out and `slow` fires",
    )
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retries of a failed or timed-out run"
    )


class Hooks(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    discord_webhook: str | None = Field(
        default=None,
        description="Comma-separated Discord webhook URLs or aliases (" + ", ".join(DISCORD_ALIASES) + ")",
    )
    prometheus_endpoint: str | None = Field(
        default=None,
        description="Pushgateway URL; each run pushes mds_task_duration_seconds{task,event,queue}",
    )
    alert_on: list[HookEvent] = Field(
        default_factory=lambda: list(_FAILURE_ONLY),
        description="Events sent to Discord: failure, slow, success",
    )

    @field_validator("discord_webhook")
    @classmethod
    def _targets(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        for target in discord_targets(v):
            if target not in DISCORD_ALIASES and not re.match(r"^https?://[^\s/]+", target):
                raise ValueError(
                    f"{target!r} is neither an http(s) URL nor an alias ({', '.join(DISCORD_ALIASES)})"
                )
        return v

    @field_validator("prometheus_endpoint")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not re.match(r"^https?://[^\s/]+", v.strip()):
            raise ValueError("must be an http(s) URL of a Pushgateway")
        return v.strip()


def discord_targets(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


class ScheduleMetadata(BaseModel):
    """Seed 004's ``ScheduleMetadata``: routing, guards, hooks and audit fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue: str = Field(default="default", pattern=QUEUE_PATTERN, description="Task queue (TASK_QUEUES)")
    priority: int = Field(
        default=5, ge=0, le=9, description="0 most urgent … 9 least (0–2 ahead of 3–6 ahead of 7–9)"
    )
    dependencies: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Schedules whose latest run for the same logical date must have succeeded first",
    )
    dependency_wait_s: float = Field(
        default=3600.0,
        ge=0,
        le=86_400,
        description="How long a run waits for its dependencies before it is skipped",
    )
    maintenance_windows: list[MaintenanceWindow] = Field(
        default_factory=list, max_length=20, description="Times no run may start in (it waits for the end)"
    )
    preflight_checks: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="store, redis, session_day, provider:<capability>; a failure skips the run",
    )
    safety: Safety = Field(default_factory=Safety, description="Single-flight, concurrency, timeout, retry")
    hooks: Hooks = Field(default_factory=Hooks, description="Discord and Pushgateway alerts")
    created_by: str | None = Field(default=None, description="API key (or cli, catalog) that created it")
    created_at: datetime | None = Field(default=None, description="When it was created (UTC)")
    updated_by: str | None = Field(default=None, description="API key (or cli, catalog) that last wrote it")
    updated_at: datetime | None = Field(default=None, description="When it was last written (UTC)")

    @field_validator("dependencies")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not re.match(SCHEDULE_NAME_PATTERN, name):
                raise ValueError(f"{name!r} is not a schedule name")
        return v

    @field_validator("preflight_checks")
    @classmethod
    def _checks(cls, v: list[str]) -> list[str]:
        for check in v:
            if not re.match(PREFLIGHT_PATTERN, check):
                raise ValueError(
                    f"unknown preflight check {check!r} (store, redis, session_day, provider:<capability>)"
                )
        return v

    def without_audit(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"created_by", "created_at", "updated_by", "updated_at"})


class ScheduleSpec(BaseModel):
    """What a user writes (API body, export file entry): one timing, cron or market-relative."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=SCHEDULE_NAME_PATTERN, description="Unique name (not export, import or preview)"
    )
    task: str = Field(min_length=1, max_length=64, description="A task of the catalog (GET /admin/tasks)")
    cron: str | None = Field(default=None, max_length=120, description="Five-field cron, in `timezone`")
    timezone: str = Field(default="UTC", description="IANA time zone the cron fields are read in")
    calendar: str | None = Field(default=None, description="Exchange calendar for `when` (XNYS)")
    when: str | None = Field(
        default=None, pattern=WHEN_PATTERN, description="after_close+30m, before_open-60m, …"
    )
    args: list[Any] = Field(
        default_factory=list, max_length=50, description="Positional arguments (catalog tasks take none)"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="The task's parameters")
    metadata: ScheduleMetadata = Field(
        default_factory=ScheduleMetadata, description="Routing, guards, hooks and audit fields"
    )

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _zone(v)))

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED_NAMES:
            raise ValueError(f"{v!r} is reserved (a path of the schedules API)")
        return v

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleSpec:
        if self.cron is None and (self.calendar is None or self.when is None):
            raise ValueError("give `cron`, or `calendar` and `when`")
        if self.cron is not None and (self.calendar is not None or self.when is not None):
            raise ValueError("give `cron` or `calendar` + `when`, not both")
        if self.name in self.metadata.dependencies:
            raise ValueError("a schedule cannot depend on itself")
        return self

    @property
    def market_relative(self) -> bool:
        return self.cron is None

    def export(self) -> dict[str, Any]:
        """The export file's entry: name, task, timing, tz, args, kwargs, metadata."""
        return self.model_dump(mode="json", exclude_none=False)


class ScheduleEntry(ScheduleSpec):
    """One entry of an export file: the spec and whether it is active (false: paused)."""

    enabled: bool = Field(default=True, description="False: imported paused")


class Schedule(ScheduleSpec):
    """A stored schedule: the spec plus its state."""

    enabled: bool = True
    #: What pause saved (args, kwargs, metadata); resume restores it.
    paused_snapshot: dict[str, Any] | None = None
    #: Due time of the newest fire (the scheduler's compare-and-set mark).
    last_due_at: datetime | None = None
    #: When this version was written: a schedule never fires for a due time before it.
    since: datetime | None = None

    def spec(self) -> ScheduleSpec:
        return ScheduleSpec.model_validate(self.model_dump(include=set(ScheduleSpec.model_fields)))


@dataclass(slots=True)
class JobRun:
    """One task execution: a ``job_run`` row."""

    task: str
    trigger: Trigger
    logical_date: date
    queued_at: datetime
    status: RunStatus = RunStatus.QUEUED
    schedule: str | None = None
    queue: str = "default"
    priority: int = 5
    due_at: datetime | None = None
    params: dict[str, Any] = field(default_factory=dict)
    #: The schedule's (or catalog's) metadata as it was when the run was queued.
    metadata: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: Why a run was skipped, deferred or is waiting (not an error).
    note: str | None = None
    #: The newest log lines its executions emitted (``mds.ops.run_logs``), oldest first.
    logs: list[str] = field(default_factory=list)
    attempt: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    #: A running run's claim expires here unless its worker renews it.
    lease_until: datetime | None = None
    created_by: str | None = None
    id: int | None = None

    @property
    def args(self) -> list[Any]:
        return list(self.params.get("args", []))

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params.get("kwargs", {}))
