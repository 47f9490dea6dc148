"""The task catalog: seed 004's tasks under its names, each with safe default schedules.

A task is a plain async function ``(ctx, counters, **params)``: it does its work through the
services (index refresher, tracked set, backfiller, analysis, coverage, retention) and
writes what it did into ``counters`` as it goes, so a run that fails or times out half way
still records how far it got. ``params`` are validated by the task's own model, so a
schedule with a bad ``kwargs`` is refused when it is written, not when it fires.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Capability, Interval
from mds.domain.reference import INDEXES, IndexName
from mds.domain.schedules import Hooks, RetryPolicy, Safety, ScheduleMetadata, ScheduleSpec
from mds.ingest.backfill import Backfiller
from mds.reconcile.empty import recheck_empty as recheck
from mds.reconcile.service import Reconciler, reconcile_settings
from mds.routing.router import Router
from mds.services.coverage import CoverageService
from mds.services.history5m import backfill_5m
from mds.services.indexes import IndexRefresher
from mds.services.retention import enforce_retention
from mds.services.tracked import TrackedService, queue_daily_backfill
from mds.storage.base import Store

if TYPE_CHECKING:
    from mds.analysis.service import AnalysisService
    from mds.observability.metrics import Metrics
    from mds.services.bar_cache import SeriesGenerations
    from mds.services.corporate_actions import CorporateActionsService, RefreshReport
    from mds.services.macro import MacroService
    from mds.services.options import OptionsService
    from mds.services.profiles import ProfileService

Counters = dict[str, Any]

#: Clock seconds the restore chain waits for the backfills it queued before it recomputes.
SETTLE_MAX_SEC = 600.0
NIGHTLY = "XNYS"
NEW_YORK = "America/New_York"


@dataclass
class TaskContext:
    """What tasks work with: the runtime's services, handed over whole."""

    store: Store
    calendar: MarketCalendar
    clock: Clock
    settings: Settings
    router: Router
    backfiller: Backfiller
    indexes: IndexRefresher
    tracked: TrackedService
    coverage: CoverageService
    analysis: AnalysisService
    metrics: Metrics | None = None
    generations: SeriesGenerations | None = None
    macro: MacroService | None = None
    options: OptionsService | None = None
    corporate_actions: CorporateActionsService | None = None
    profiles: ProfileService | None = None


TaskFn = Callable[..., Awaitable[None]]


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IndexParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: IndexName | None = Field(default=None, description="One index; all when absent")


class SessionsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sessions: int | None = Field(default=None, ge=1, le=5000, description="Default BACKFILL_TRACKED_SESSIONS")


class SymbolsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[str] | None = Field(default=None, max_length=10_000, description="Default: the universe")


class Backfill5mParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_days: int | None = Field(default=None, ge=1, le=60, description="Default BACKFILL_LOOKBACK_DAYS_5M")
    batch_size: int = Field(default=50, ge=1, le=1000)


class RetentionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_days_5m: int | None = Field(default=None, ge=0, description="Default RETENTION_DAYS_5M")
    max_days_1m: int | None = Field(default=None, ge=0, description="Default RETENTION_DAYS_1M")


class JobRunRetentionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_days: int | None = Field(default=None, ge=0, description="Default RETENTION_DAYS_JOB_RUNS")


@dataclass(frozen=True)
class TaskDef:
    name: str
    fn: TaskFn
    description: str
    params: type[BaseModel]
    #: The schedule ``mds schedules seed`` writes (named after the task).
    default: ScheduleSpec
    #: Seeded paused: there to resume or run now, not fired on its own.
    paused: bool = False

    def validate_params(self, args: list[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """``kwargs`` checked by the task's model; raises pydantic.ValidationError. Tasks
        take keyword parameters only, so ``args`` must be empty."""
        if args:
            raise ValueError(f"{self.name} takes keyword parameters only (kwargs), not args")
        return self.params.model_validate(dict(kwargs)).model_dump(exclude_none=True)


# -- the tasks ---------------------------------------------------------------------------


async def refresh_index_constituents(ctx: TaskContext, counters: Counters, index: str | None = None) -> None:
    """Fetch and apply the index lists; a source failure for every source fails the run."""
    names: list[IndexName] = [index] if index else list(INDEXES)  # type: ignore[list-item]
    failed = []
    for name in names:
        r = await ctx.indexes.refresh(name)
        counters[name] = r.counters()
        for key in ("fetched", "inserted", "reactivated", "inactivated"):
            counters[key] = counters.get(key, 0) + getattr(r, key)
        if not r.applied:
            counters[name]["reason"] = r.reason
            failed.append(f"{name}: {r.reason}")
    if failed:
        raise RuntimeError("index refresh not applied: " + "; ".join(failed))


async def update_tracked_symbol_cache(ctx: TaskContext, counters: Counters) -> None:
    """Build the tracked set and publish ``tracked:all`` / ``tracked:new``."""
    tracked = await ctx.tracked.refresh()
    counters.update(symbols=len(tracked.all), new=len(tracked.new))
    counters["indices"] = dict(tracked.index_counts)


async def backfill_new_tracked(ctx: TaskContext, counters: Counters, sessions: int | None = None) -> None:
    """Queue the daily history the symbols of ``tracked:new`` lack."""
    tracked = await ctx.tracked.tracked_set(with_new=True)
    await _queue_daily(ctx, counters, sorted(tracked.new), sessions)


async def backfill_last_200_bars(ctx: TaskContext, counters: Counters, sessions: int | None = None) -> None:
    """The nightly delta safety: queue whatever is missing of every tracked symbol's last
    BACKFILL_TRACKED_SESSIONS (200) daily bars."""
    tracked = await ctx.tracked.tracked_set(with_new=False)
    await _queue_daily(ctx, counters, sorted(tracked.all), sessions)


async def _queue_daily(
    ctx: TaskContext, counters: Counters, symbols: list[str], sessions: int | None
) -> None:
    result = await queue_daily_backfill(
        symbols,
        store=ctx.store,
        calendar=ctx.calendar,
        clock=ctx.clock,
        backfiller=ctx.backfiller,
        sessions=sessions or ctx.settings.BACKFILL_TRACKED_SESSIONS,
    )
    counters.update(
        symbols=len(symbols),
        jobs_created=len(result.created),
        merged=len(result.merged_into),
        refused=len(result.refused),
    )


async def recompute_indicators_universe(
    ctx: TaskContext, counters: Counters, symbols: list[str] | None = None
) -> None:
    """Recompute and cache every active symbol's technical snapshot from stored prices."""
    report = await ctx.analysis.refresh(symbols)
    counters.update(symbols=report["symbols"], without_bars=len(report["without_bars"]))


async def record_daily_history(
    ctx: TaskContext, counters: Counters, symbols: list[str] | None = None
) -> None:
    """Write the day's snapshots into the immutable history (existing keys are refused)."""
    report = await ctx.analysis.record_history(symbols)
    counters.update(
        recorded=report["recorded"],
        refused=len(report["refused"]),
        skipped_without_bars=len(report["skipped_without_bars"]),
    )


async def backfill_5m_last_n_days(
    ctx: TaskContext, counters: Counters, n_days: int | None = None, batch_size: int = 50
) -> None:
    """Queue native 5m history of the tracked symbols without a 1m series."""
    if not ctx.router.order(Capability.BARS_5M):
        raise RuntimeError("no provider is routable for bars_5m (POLICY_BARS_5M)")
    tracked = await ctx.tracked.tracked_set(with_new=False)
    report = await backfill_5m(
        symbols=sorted(tracked.all),
        n_days=n_days or ctx.settings.BACKFILL_LOOKBACK_DAYS_5M,
        batch_size=batch_size,
        backfiller=ctx.backfiller,
        store=ctx.store,
        clock=ctx.clock,
        calendar=ctx.calendar,
    )
    counters.update(
        symbols=report["symbols"],
        skipped_with_1m=report["skipped_with_1m"],
        queued_symbols=report["queued_symbols"],
        jobs_created=report["jobs_created"],
    )


async def enforce_price_data_retention(
    ctx: TaskContext, counters: Counters, max_days_5m: int | None = None, max_days_1m: int | None = None
) -> None:
    """Delete 5m (and, off TimescaleDB, 1m) bars older than retention allows."""
    info = await ctx.store.backend_info()
    report = await enforce_retention(
        ctx.store,
        ctx.clock,
        max_days_5m=ctx.settings.RETENTION_DAYS_5M if max_days_5m is None else max_days_5m,
        max_days_1m=ctx.settings.RETENTION_DAYS_1M if max_days_1m is None else max_days_1m,
        timescale=bool(info.get("timescaledb")),
        metrics=ctx.metrics,
        generations=ctx.generations,
    )
    for interval, part in report["intervals"].items():
        counters[f"deleted_bars_{interval}"] = part.get("deleted_bars", 0)
        counters[f"deleted_history_{interval}"] = part.get("deleted_history", 0)


async def purge_job_runs(ctx: TaskContext, counters: Counters, max_days: int | None = None) -> None:
    """Delete job runs that ended more than ``max_days`` ago (0 keeps all); the Jobs page and
    ``…/admin/jobs`` then list the rest. Queued and running runs stay."""
    days = ctx.settings.RETENTION_DAYS_JOB_RUNS if max_days is None else max_days
    counters["max_days"] = days
    counters["deleted_runs"] = (
        0 if days == 0 else await ctx.store.purge_runs(finished_before=ctx.clock.now() - timedelta(days=days))
    )


async def monitor_coverage_health(ctx: TaskContext, counters: Counters) -> None:
    """Compute the coverage snapshot and cache it as ``coverage:health:last``."""
    snap = await ctx.coverage.refresh()
    counters.update(
        status=snap["status"],
        tracked=snap["tracked_count"],
        daily_fresh=snap["daily"]["freshness"]["<=24h"],
        daily_stale=snap["daily"]["freshness"][">48h"] + snap["daily"]["freshness"]["none"],
        m5_fresh=snap["m5"]["freshness"]["<=24h"],
    )


async def bootstrap_daily_coverage_tracked(
    ctx: TaskContext, counters: Counters, with_5m: bool = False
) -> None:
    """Restore daily coverage: refresh constituents → update tracked → backfill last-200
    daily → recompute indicators → record history → refresh coverage, one step after the
    other, each with its own counters. A failed index refresh does not stop the chain (the
    stored lists still stand); any other failed step does. ``with_5m`` also queues the 5m
    history after the daily backfill (a new deployment's first run does)."""
    steps: list[tuple[str, Callable[[TaskContext, Counters], Awaitable[None]]]] = [
        ("refresh_index_constituents", refresh_index_constituents),
        ("update_tracked_symbol_cache", update_tracked_symbol_cache),
        ("backfill_last_200_bars", backfill_last_200_bars),
    ]
    if with_5m:
        steps.append(("backfill_5m_last_n_days", _backfill_5m_if_served))
    steps += [
        ("settle", _settle),
        ("recompute_indicators_universe", recompute_indicators_universe),
        ("record_daily_history", record_daily_history),
        ("monitor_coverage_health", monitor_coverage_health),
    ]
    counters["steps_done"] = 0
    for name, step in steps:
        part: Counters = {}
        counters[name] = part
        try:
            await step(ctx, part)
        except Exception as exc:
            part["error"] = f"{type(exc).__name__}: {exc}"[:300]
            if name != "refresh_index_constituents":
                raise
        counters["steps_done"] += 1


async def _backfill_5m_if_served(ctx: TaskContext, counters: Counters) -> None:
    if not ctx.router.order(Capability.BARS_5M):
        counters["skipped"] = "no provider is routable for bars_5m (POLICY_BARS_5M)"
        return
    await backfill_5m_last_n_days(ctx, counters)


async def _settle(ctx: TaskContext, counters: Counters) -> None:
    """Let the queued backfills land before the indicators are recomputed from them; bounded,
    since scaled out other processes run the jobs and this one never sees them idle."""
    started = ctx.clock.now()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ctx.backfiller.wait_idle(), timeout=SETTLE_MAX_SEC / ctx.clock.speed)
    counters["waited_s"] = round((ctx.clock.now() - started).total_seconds(), 1)


class BootstrapParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    with_5m: bool = Field(default=False, description="Also queue the tracked symbols' 5m history")


class MacroParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factors: list[str] | None = Field(default=None, max_length=100, description="Default MACRO_FACTORS")


class OptionsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[str] | None = Field(default=None, max_length=1000, description="Default OPTIONS_SYMBOLS")


async def refresh_macro_factors(
    ctx: TaskContext, counters: Counters, factors: list[str] | None = None
) -> None:
    """Fetch every vintage of the macro factors' recent observations (FRED/ALFRED) and store
    the new ones; fails when every factor failed."""
    if ctx.macro is None:
        raise RuntimeError("this process has no macro service")
    report = await ctx.macro.refresh(factors)
    counters.update(report.counters())
    if report.failed:
        counters["errors"] = {k: report.factors[k]["error"] for k in report.failed[:20]}
        if len(report.failed) == len(report.factors):
            raise RuntimeError(f"every factor failed: {counters['errors']}")


async def refresh_options_metrics(
    ctx: TaskContext, counters: Counters, symbols: list[str] | None = None
) -> None:
    """Refresh the option chains and metrics of OPTIONS_SYMBOLS: store the metrics point in
    time and announce them to WebSocket clients."""
    if ctx.options is None:
        raise RuntimeError("this process has no options service")
    names = symbols if symbols is not None else list(ctx.settings.OPTIONS_SYMBOLS)
    counters.update(symbols=len(names), refreshed=0, failed=0)
    if not names:
        counters["skipped"] = "OPTIONS_SYMBOLS is empty"
        return
    errors: dict[str, str] = {}
    for symbol in names:
        try:
            await ctx.options.refresh(symbol.upper())
            counters["refreshed"] += 1
        except Exception as exc:  # noqa: BLE001 - one symbol's failure must not stop the rest
            errors[symbol] = f"{type(exc).__name__}: {exc}"[:200]
    counters["failed"] = len(errors)
    if errors:
        counters["errors"] = dict(list(errors.items())[:20])
        if len(errors) == len(names):
            raise RuntimeError(f"every symbol failed: {counters['errors']}")


class CorporateActionsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[str] | None = Field(default=None, max_length=10_000, description="Default: the universe")


async def refresh_corporate_actions(
    ctx: TaskContext, counters: Counters, symbols: list[str] | None = None
) -> None:
    """Fetch and store each symbol's splits and dividends, flag daily jumps no known action
    explains, and recompute the cached snapshots of the symbols whose actions changed; fails
    when every symbol failed."""
    if ctx.corporate_actions is None:
        raise RuntimeError("this process has no corporate actions service")
    report = await ctx.corporate_actions.refresh(symbols)
    await after_corporate_actions(ctx, counters, report)
    if report.failed and len(report.failed) == len(report.symbols):
        raise RuntimeError(f"every symbol failed: {counters['errors']}")


async def after_corporate_actions(ctx: TaskContext, counters: Counters, report: RefreshReport) -> None:
    """Write ``report``'s counters, then recompute the cached analysis snapshots of the active
    symbols whose actions changed: they were computed on the adjustment before."""
    counters.update(report.counters())
    changed = set(report.changed)
    active = sorted(changed & {e.symbol for e in await ctx.store.universe()}) if changed else []
    counters["snapshots_recomputed"] = (await ctx.analysis.refresh(active))["symbols"] if active else 0


class ProfileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[str] | None = Field(default=None, max_length=10_000, description="Default: the tracked set")
    max_age_days: float | None = Field(
        default=None,
        ge=0,
        le=3650,
        strict=True,
        description="Default PROFILE_MAX_AGE_DAYS; 0 refreshes every symbol",
    )


async def refresh_company_profiles(
    ctx: TaskContext, counters: Counters, symbols: list[str] | None = None, max_age_days: float | None = None
) -> None:
    """Fetch and store the company profile (market cap, shares outstanding) of each tracked
    symbol whose stored one is older than PROFILE_MAX_AGE_DAYS, oldest first; fails when
    every symbol asked failed."""
    if ctx.profiles is None:
        raise RuntimeError("this process has no company profile service")
    if symbols is None:
        symbols = sorted((await ctx.tracked.tracked_set(with_new=False)).all)
    report = await ctx.profiles.refresh(symbols, max_age_days=max_age_days)
    counters.update(report.counters())
    if report.failed and len(report.failed) == len(report.symbols):
        raise RuntimeError(f"every symbol failed: {counters['errors']}")


class ReconcileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[str] | None = Field(
        default=None, max_length=1000, description="Default: RECONCILE_SAMPLE_PER_TIER symbols of each tier"
    )
    interval: Literal["1m", "1d"] = Field(default="1m", description="Bars compared")
    recheck_empty: bool = Field(
        default=True, description="Also re-check minutes recorded as having no trades (1m only)"
    )


async def reconcile_providers(
    ctx: TaskContext,
    counters: Counters,
    symbols: list[str] | None = None,
    interval: str = "1m",
    recheck_empty: bool = True,
) -> None:
    """Compare a sample of stored bars with a second provider's, score each provider's data
    quality (fed to routing health), list disagreements, and re-check "no trades" minutes."""
    settings = reconcile_settings(ctx.settings)
    iv = Interval(interval)
    reconciler = Reconciler(
        store=ctx.store,
        router=ctx.router,
        calendar=ctx.calendar,
        clock=ctx.clock,
        settings=settings,
        metrics=ctx.metrics,
    )
    report = await reconciler.run(symbols=[s.upper() for s in symbols] if symbols else None, interval=iv)
    counters.update(report.counters())
    if recheck_empty and iv is Interval.M1:
        found = await recheck(
            store=ctx.store,
            router=ctx.router,
            calendar=ctx.calendar,
            clock=ctx.clock,
            settings=settings,
            metrics=ctx.metrics,
            generations=ctx.generations,
        )
        counters["empty_recheck"] = found.counters()
    counters["pruned"] = await ctx.store.delete_quality_before(
        ctx.clock.now() - timedelta(days=settings.keep_days)
    )


class PingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=0.0, ge=0, le=86_400, description="Clock seconds to sleep")
    fail: bool = Field(default=False, description="Fail after sleeping (to see a failure hook fire)")


async def ping(ctx: TaskContext, counters: Counters, seconds: float = 0.0, fail: bool = False) -> None:
    """Sleep ``seconds`` of clock time, then succeed, or fail when ``fail``: a check of the
    scheduler, the workers and the hooks that touches no data."""
    await ctx.clock.sleep(seconds)
    counters["slept_s"] = seconds
    if fail:
        raise RuntimeError("ping asked to fail")


# -- the catalog -------------------------------------------------------------------------


def _meta(
    timeout_s: float, *, retry: int = 1, deps: tuple[str, ...] = (), checks: tuple[str, ...] = ("store",)
) -> ScheduleMetadata:
    """Market-data defaults: the market_data queue, single-flight, a timeout, one retry."""
    return ScheduleMetadata(
        queue="market_data",
        priority=5,
        dependencies=list(deps),
        preflight_checks=list(checks),
        safety=Safety(
            single_flight=True,
            timeout_s=timeout_s,
            retry=RetryPolicy(attempts=retry, backoff_s=300.0),
        ),
        hooks=Hooks(),
    )


def _nightly(task: str, minutes_after_close: int, meta: ScheduleMetadata) -> ScheduleSpec:
    return ScheduleSpec(
        name=task, task=task, calendar=NIGHTLY, when=f"after_close+{minutes_after_close}m", metadata=meta
    )


def _cron(task: str, cron: str, meta: ScheduleMetadata) -> ScheduleSpec:
    return ScheduleSpec(name=task, task=task, cron=cron, timezone=NEW_YORK, metadata=meta)


def _def(fn: TaskFn, params: type[BaseModel], default: ScheduleSpec, *, paused: bool = False) -> TaskDef:
    doc = (fn.__doc__ or "").strip().split("\n\n")[0]
    return TaskDef(fn.__name__, fn, " ".join(doc.split()), params, default, paused)


CATALOG: dict[str, TaskDef] = {
    d.name: d
    for d in (
        _def(
            refresh_index_constituents,
            IndexParams,
            _cron("refresh_index_constituents", "0 6 * * 6", _meta(1800, retry=2)),
        ),
        _def(
            update_tracked_symbol_cache,
            NoParams,
            _nightly("update_tracked_symbol_cache", 30, _meta(900)),
        ),
        _def(
            backfill_new_tracked,
            SessionsParams,
            _nightly(
                "backfill_new_tracked",
                40,
                _meta(3600, deps=("update_tracked_symbol_cache",), checks=("store", "provider:eod")),
            ),
        ),
        _def(
            backfill_last_200_bars,
            SessionsParams,
            _nightly(
                "backfill_last_200_bars",
                50,
                _meta(3600, deps=("update_tracked_symbol_cache",), checks=("store", "provider:eod")),
            ),
        ),
        _def(
            recompute_indicators_universe,
            SymbolsParams,
            _nightly("recompute_indicators_universe", 120, _meta(3600, deps=("backfill_last_200_bars",))),
        ),
        _def(
            record_daily_history,
            SymbolsParams,
            _nightly("record_daily_history", 150, _meta(1800, deps=("recompute_indicators_universe",))),
        ),
        _def(
            backfill_5m_last_n_days,
            Backfill5mParams,
            _nightly(
                "backfill_5m_last_n_days",
                90,
                _meta(3600, deps=("update_tracked_symbol_cache",), checks=("store", "provider:bars_5m")),
            ),
        ),
        _def(
            enforce_price_data_retention,
            RetentionParams,
            _cron("enforce_price_data_retention", "30 3 * * *", _meta(3600)),
        ),
        _def(
            purge_job_runs,
            JobRunRetentionParams,
            _cron("purge_job_runs", "45 3 * * *", _meta(600)),
        ),
        _def(
            monitor_coverage_health,
            NoParams,
            _cron("monitor_coverage_health", "5 * * * *", _meta(600, retry=0)),
        ),
        _def(
            bootstrap_daily_coverage_tracked,
            BootstrapParams,
            _cron("bootstrap_daily_coverage_tracked", "0 7 * * 0", _meta(7200, retry=0)),
            paused=True,
        ),
        _def(
            refresh_macro_factors,
            MacroParams,
            # FRED posts most daily series (H.15 rates, VIX, oil, the dollar) by early evening ET.
            _cron("refresh_macro_factors", "30 18 * * 1-5", _meta(1800, checks=("store", "provider:macro"))),
        ),
        _def(
            refresh_options_metrics,
            OptionsParams,
            _cron(
                "refresh_options_metrics",
                "*/15 9-16 * * 1-5",
                _meta(600, retry=0, checks=("store", "provider:options_chain")),
            ),
        ),
        _def(
            refresh_corporate_actions,
            CorporateActionsParams,
            # Before the open: vendors post the day's ex-dates overnight, so reads at the open
            # already adjust by them.
            _cron(
                "refresh_corporate_actions",
                "0 6 * * 1-5",
                _meta(3600, checks=("store", "provider:corporate_actions")),
            ),
        ),
        _def(
            refresh_company_profiles,
            ProfileParams,
            # Weekly, Saturday morning: market caps move with prices, but the Tracked page
            # ranks by size, which a week does not reorder much; vendor caps (FMP 250/day)
            # make a daily run of 8,000 symbols impossible anyway.
            _cron(
                "refresh_company_profiles",
                "0 8 * * 6",
                _meta(14_400, retry=0, checks=("store", "provider:profile")),
            ),
        ),
        _def(
            reconcile_providers,
            ReconcileParams,
            # After the nightly backfills have landed; compares sessions past the revision window.
            _nightly(
                "reconcile_providers",
                180,
                _meta(3600, retry=0, checks=("store", "provider:bars_1m")),
            ),
        ),
        _def(
            ping,
            PingParams,
            ScheduleSpec(
                name="ping", task="ping", cron="0 * * * *", metadata=ScheduleMetadata(queue="default")
            ),
            paused=True,
        ),
    )
}


@dataclass
class Catalog:
    """The tasks a deployment can run (tests add their own)."""

    tasks: dict[str, TaskDef] = field(default_factory=lambda: dict(CATALOG))

    def __contains__(self, name: object) -> bool:
        return name in self.tasks

    def __getitem__(self, name: str) -> TaskDef:
        return self.tasks[name]

    def names(self) -> list[str]:
        return sorted(self.tasks)
