"""Job runs are kept RETENTION_DAYS_JOB_RUNS days after they end: the ``purge_job_runs`` task
over a real SQLite store (the store's own rule is in the contract tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pydantic
import pytest

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.schedules import JobRun, RunStatus, Trigger
from mds.ops.catalog import CATALOG, purge_job_runs
from mds.storage.sqlite import SqliteStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def ended(at: datetime, status: RunStatus = RunStatus.SUCCEEDED, **kw: Any) -> JobRun:
    return JobRun(
        task="ping",
        trigger=Trigger.TASK,
        logical_date=at.date(),
        queued_at=at - timedelta(minutes=5),
        status=status,
        started_at=at - timedelta(minutes=4),
        finished_at=at,
        **kw,
    )


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "runs.db"))
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def context(store: SqliteStore, env: dict[str, str] | None = None) -> Any:
    return SimpleNamespace(store=store, clock=ManualClock(NOW), settings=load_settings(env or {}))


async def test_runs_that_ended_before_the_setting_are_deleted_and_the_rest_listed(store) -> None:
    old = [
        await store.create_run(ended(NOW - 31 * DAY)),
        await store.create_run(ended(NOW - 40 * DAY, RunStatus.FAILED, error="vendor down")),
    ]
    young = await store.create_run(ended(NOW - 29 * DAY))
    # Queued 60 days ago and never run (a worker was down): not ended, so it stays.
    waiting = await store.create_run(
        JobRun(
            task="ping", trigger=Trigger.TASK, logical_date=(NOW - 60 * DAY).date(), queued_at=NOW - 60 * DAY
        )
    )

    counters: dict[str, Any] = {}
    await purge_job_runs(context(store, {"RETENTION_DAYS_JOB_RUNS": "30"}), counters)
    assert counters == {"max_days": 30, "deleted_runs": 2}
    assert {r.id for r in await store.job_runs(limit=10)} == {young.id, waiting.id}
    for gone in old:
        assert gone.id is not None and await store.get_run(gone.id) is None


async def test_a_run_can_ask_for_its_own_age_and_zero_keeps_everything(store) -> None:
    ctx = context(store)  # RETENTION_DAYS_JOB_RUNS defaults to 90
    await store.create_run(ended(NOW - 400 * DAY))
    await store.create_run(ended(NOW - 10 * DAY))

    counters: dict[str, Any] = {}
    await purge_job_runs(ctx, counters)
    assert counters == {"max_days": 90, "deleted_runs": 1}

    await purge_job_runs(ctx, counters, max_days=0)
    assert counters == {"max_days": 0, "deleted_runs": 0}
    assert len(await store.job_runs(limit=10)) == 1

    await purge_job_runs(ctx, counters, max_days=5)
    assert counters == {"max_days": 5, "deleted_runs": 1}
    assert await store.job_runs(limit=10) == []


def test_the_catalog_seeds_it_nightly_and_checks_its_params() -> None:
    task = CATALOG["purge_job_runs"]
    assert task.default.cron == "45 3 * * *" and not task.paused
    assert task.validate_params([], {"max_days": 7}) == {"max_days": 7}
    assert task.validate_params([], {}) == {}
    for bad, field in (({"max_days": -1}, "max_days"), ({"days": 7}, "days")):
        with pytest.raises(pydantic.ValidationError) as err:
            task.validate_params([], bad)
        assert err.value.errors()[0]["loc"] == (field,)
