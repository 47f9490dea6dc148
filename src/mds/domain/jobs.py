"""Job schemas (seed: app/schemas/jobs.py). Jobs are JSON validated by these models,
never pickles, so an external Rate-Limit Coordinator can push them to a Redis list.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from mds.domain.models import Interval, Tier, ensure_utc

SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9.\-^=]{0,19}$"
Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN, description="Ticker, upper case")]


def new_job_id() -> str:
    return uuid.uuid4().hex


class TimeWindow(BaseModel):
    """``start <= ts < end``, both timezone-aware."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: datetime = Field(description="Inclusive start, UTC")
    end: datetime = Field(description="Exclusive end, UTC")

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return ensure_utc(v)

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.start >= self.end:
            raise ValueError("time_window.start must be before time_window.end")
        return self


class BaseJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(default_factory=new_job_id, min_length=1, max_length=128)
    priority: Tier = Tier.T1
    provider_hint: str | None = Field(
        default=None, description="Preferred provider; honoured when ALLOW_SOURCE_OVERRIDE"
    )
    attempts: int = Field(default=0, ge=0, description="Times this job has been tried")
    # Not pattern-checked: a malformed trace header from an outside producer must not send
    # its job to the DLQ; the propagator ignores what it cannot parse.
    traceparent: str | None = Field(
        default=None, max_length=128, description="W3C traceparent of the span that queued the job"
    )
    tracestate: str | None = Field(default=None, max_length=512, description="W3C tracestate beside it")


class BarsFetchJob(BaseJob):
    type: Literal["bars_fetch"] = "bars_fetch"
    symbols: list[Symbol] = Field(min_length=1, max_length=1000)
    interval: Interval = Interval.M1
    time_window: TimeWindow


class QuotesFetchJob(BaseJob):
    type: Literal["quotes_fetch"] = "quotes_fetch"
    symbols: list[Symbol] = Field(min_length=1, max_length=1000)


class BackfillJob(BaseJob):
    type: Literal["backfill"] = "backfill"
    symbol: Symbol
    interval: Interval = Interval.M1
    time_window: TimeWindow
    backfill_id: int | None = Field(default=None, description="Row id in backfill_jobs")


class TaskJob(BaseJob):
    """Run one catalog task: the ``job_run`` row ``run_id`` holds its task, params and metadata."""

    type: Literal["task"] = "task"
    run_id: int = Field(ge=1, description="Row id in job_runs")
    task: str = Field(min_length=1, max_length=64)
    queue: str = Field(default="default", pattern=r"^[a-z][a-z0-9_]{0,31}$")


def priority_band(priority: int) -> Tier:
    """Schedule metadata priority (0 most urgent … 9) as a queue band: 0–2, 3–6, 7–9."""
    return Tier.T0 if priority <= 2 else Tier.T1 if priority <= 6 else Tier.T2


Job = Annotated[BarsFetchJob | QuotesFetchJob | BackfillJob | TaskJob, Field(discriminator="type")]
_job_adapter: TypeAdapter[Job] = TypeAdapter(Job)


def parse_job(raw: str | bytes | dict[str, Any]) -> BarsFetchJob | QuotesFetchJob | BackfillJob | TaskJob:
    """Validate a job from JSON text or a dict; raises pydantic.ValidationError."""
    if isinstance(raw, (str, bytes)):
        return _job_adapter.validate_json(raw)
    return _job_adapter.validate_python(raw)
