"""The Store protocols: everything MDS persists, behind small async interfaces.

``Store`` is the union of six narrower protocols, one per kind of consumer, so each part
of MDS is typed against what it actually calls:

- :class:`BarStore`: bars (writes, point-in-time reads, revisions) and quotes; the API's
  market service and the ingestor. :class:`RollupReader` is its optional extension.
- :class:`UniverseStore`: the symbol universe and the ingestion cursors; lag and SLO
  trackers, symbol lookups.
- :class:`BackfillLedger`: the backfill jobs table; the backfiller and the DLQ routes.
- :class:`ContinuityStore`: the full gap scan and "no trades" evidence; gap scans,
  continuity reports and the ingestor.
- :class:`KeyStore`: API keys (hashed) and their roles; the authenticator and ``mds keys``.
- :class:`StoreLifecycle`: open, migrate, health; whoever builds the store.

Point-in-time rules every implementation keeps (DESIGN.md):
- a stored bar is never overwritten in place;
- writing a bar identical to the stored one (same OHLCV, same or weaker status) is a no-op;
- writing a bar whose values differ, or a ``final`` over a ``provisional`` one, keeps the
  old one as history and makes the new one the current revision, stamped ``as_of``;
- ``read_bars(..., as_of=T)`` returns exactly the revisions that were current at T, and
  reads without ``as_of`` touch only current revisions (history costs them nothing).

"No trades" is not "missing": a bar time that enough complete provider answers lacked is
*confirmed empty* and gap scans count it as present; writing a bar for it clears that.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from mds.access.keys import ApiKey
from mds.domain.actions import CorporateAction, SuspectedAction
from mds.domain.macro import MacroRow
from mds.domain.models import Bar, Interval, Quote, Tier
from mds.domain.options import OptionsMetricRow
from mds.domain.profile import CompanyProfile
from mds.domain.records import (
    BackfillRecord,
    BackfillStatus,
    Cursor,
    TierChange,
    UniverseChange,
    UniverseEntry,
    UniverseVersion,
    WriteResult,
)
from mds.domain.reference import (
    Constituent,
    ConstituentChange,
    Holding,
    IndexMember,
    IndexName,
    IndexRefresh,
)
from mds.domain.schedules import JobRun, RunStatus, Schedule
from mds.reconcile.records import Disagreement, EmptyMinute, QualityScore


class NewBackfill(NamedTuple):
    """One row for :meth:`BackfillLedger.create_backfills`: a range to backfill, queued at ``priority``.

    A tuple, not a record, so thousands of them cost little while a gap scan plans them.
    """

    symbol: str
    interval: Interval
    start: datetime
    end: datetime
    priority: Tier


class StoreLifecycle(Protocol):
    async def open(self) -> None:
        """Connect and apply pending migrations; a second call does nothing."""
        ...

    async def close(self) -> None:
        """Release connections and threads; safe to call twice."""
        ...

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the versions applied (empty when up to date)."""
        ...

    async def ping(self) -> None:
        """Raise StorageError when the store cannot answer."""
        ...

    async def backend_info(self) -> dict[str, Any]:
        """Which backend and mode serve this store, for ``/health``.

        Always has ``"backend"`` (``"sqlite"`` or ``"postgresql"``), ``"mode"`` and
        ``"timescaledb"`` (bool); raises StorageError when the store cannot answer.
        """
        ...


class BarStore(Protocol):
    async def write_bars(
        self, bars: Sequence[Bar], *, as_of: datetime, changed_since: datetime | None = None
    ) -> WriteResult:
        """Store a batch in one transaction; the counts are over distinct bar keys.

        With ``changed_since``, ``WriteResult.changed`` names the new and revised bars whose
        ``ts`` is at or after it (what live streaming publishes; a backfill of old history
        passes a recent time and pays for no list).

        ``as_of`` stamps every bar (the bars' own ``as_of`` is ignored). When one key
        appears twice in ``bars`` the later one wins. Changed bars move their current row
        to ``candle_history`` with ``superseded_at = as_of`` and become a new revision;
        new bars drop the "no trades" evidence of their bar times.
        """
        ...

    async def read_bars(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        *,
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> list[Bar]:
        """Bars with ``start <= ts < end`` in time order; ``limit`` keeps the newest N.

        With ``as_of=T``: current rows learned at or before T, plus history rows that were
        current at T (``as_of <= T < superseded_at``). Without it only current rows are read.
        """
        ...

    async def bar_timestamps(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[int]:
        """Epoch seconds of the current bars in range, ascending (cheap; for gap checks)."""
        ...

    async def latest_bar(self, symbol: str, interval: Interval) -> Bar | None:
        """The current revision of the newest bar of the series, or None."""
        ...

    async def bar_revisions(self, symbol: str, interval: Interval, ts: datetime) -> list[Bar]:
        """Every revision of one bar, oldest first, each with the ``as_of`` it was learned."""
        ...

    async def write_quotes(self, quotes: Sequence[Quote]) -> int:
        """Store quotes; a second quote with the same (symbol, ts, provider) is ignored.

        Returns:
            How many quotes were new.
        """
        ...

    async def latest_quote(self, symbol: str) -> Quote | None:
        """The newest quote of ``symbol`` (by ``ts``, then ``as_of``), or None."""
        ...


@runtime_checkable
class RollupReader(Protocol):
    """A store that rolls 1m bars up in the database (PostgreSQL's ``date_bin``).

    Optional: the service rolls up on read itself where a store lacks it (SQLite), and
    both give the same bars (services/rollup.py states the rule).
    """

    async def read_rollup(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        sessions: Sequence[tuple[datetime, datetime]],
        *,
        as_of: datetime | None = None,
    ) -> list[Bar]:
        """1m bars with ``start <= ts < end`` rolled up to ``interval``.

        ``sessions``: (open, close) of every session the range touches; a bucket starts
        at its session's open plus whole intervals. ``as_of`` reads as
        :meth:`BarStore.read_bars` does. A bucket's status is ``final`` when all its bars
        are; whether it has ended is the caller's to judge.
        """
        ...


class UniverseStore(Protocol):
    async def upsert_universe(
        self,
        entries: Sequence[UniverseEntry],
        *,
        version_tag: str,
        source_meta: dict[str, Any],
        now: datetime | None = None,
        source: str = "",
        file_time: datetime | None = None,
        measures: Mapping[str, float] | None = None,
        keep_active: Collection[str] = (),
    ) -> UniverseChange:
        """Replace the universe with ``entries`` and record a version with its counts.

        Symbols not in ``entries`` become inactive (never deleted), except ``keep_active``
        ones (tracked symbols); ``now`` defaults to the wall clock. Every tier change is recorded in ``tier_changes`` with its
        ``measures`` value. A repeated ``version_tag`` updates that version instead of
        failing, so re-running the same universe load is harmless.
        """
        ...

    async def set_tiers(
        self, tiers: Mapping[str, Tier], *, measures: Mapping[str, float], reason: str, now: datetime
    ) -> int:
        """Move symbols to new tiers (a re-rank), recording each change; returns how many moved."""
        ...

    async def ensure_symbols(self, symbols: Sequence[str], *, tier: Tier, now: datetime) -> list[str]:
        """Add absent symbols as active at ``tier`` and reactivate inactive ones (their
        tier kept); returns the symbols that were added or reactivated."""
        ...

    async def universe_versions(self, *, limit: int = 20) -> list[UniverseVersion]:
        """Newest first."""
        ...

    async def tier_changes(self, *, symbol: str | None = None, limit: int = 100) -> list[TierChange]:
        """Newest first."""
        ...

    async def dollar_volume_medians(self, symbols: Sequence[str], *, sessions: int) -> dict[str, float]:
        """Median of close * volume over each symbol's last ``sessions`` stored daily bars;
        symbols without a daily bar are absent."""
        ...

    async def universe(self, *, tier: Tier | None = None, active_only: bool = True) -> list[UniverseEntry]:
        """Universe entries sorted by tier, then symbol."""
        ...

    async def get_symbol(self, symbol: str) -> UniverseEntry | None:
        """One universe entry (active or not), or None."""
        ...

    async def get_cursor(self, symbol: str, interval: Interval, source: str) -> Cursor | None:
        """Where ingestion of the series from ``source`` stands, or None."""
        ...

    async def advance_cursor(
        self, symbol: str, interval: Interval, source: str, ts: datetime, *, now: datetime
    ) -> None:
        """Move the cursor to ``ts`` if that is later than where it stands; never backwards.

        A stale ``ts`` leaves the cursor (and its ``updated_at``) be.
        """
        ...


class BackfillLedger(Protocol):
    """The backfill jobs (seed table ``backfill_jobs``)."""

    async def create_backfill(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        priority: Tier,
        *,
        now: datetime,
    ) -> BackfillRecord:
        """Create one queued job and return it as stored."""
        ...

    async def create_backfills(self, specs: Sequence[NewBackfill], *, now: datetime) -> list[BackfillRecord]:
        """Create one queued job per spec, all in one transaction; records in ``specs`` order.

        The batched ``create_backfill``: a start-up gap scan plans thousands of chunks, and
        a transaction per row (with its commit and, on SQLite, its thread hop) is what
        made enqueueing slow. All rows are created or, on an error, none.
        """
        ...

    async def update_backfill(
        self,
        job_id: int,
        *,
        status: BackfillStatus,
        now: datetime,
        attempts: int | None = None,
        last_error: str | None = None,
    ) -> None:
        """Set a job's status; ``attempts``/``last_error`` change only when given.

        Raises:
            NotFound: No job has this id.
        """
        ...

    async def update_backfill_range(
        self, job_id: int, start: datetime, end: datetime, *, now: datetime
    ) -> bool:
        """Widen a still-queued job to [start, end) (merging); False if it is no longer queued."""
        ...

    async def get_backfill(self, job_id: int) -> BackfillRecord | None:
        """One job, or None when no job has this id."""
        ...

    async def list_backfills(
        self,
        *,
        status: BackfillStatus | None = None,
        tier: Tier | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[BackfillRecord]:
        """Jobs newest first (by ``updated_at``, then id); ``offset`` skips that many."""
        ...

    async def backfill_stats(self) -> dict[str, Any]:
        """Counts for the DLQ and queue views, from one snapshot.

        Returns:
            ``{"by_status": {status: n}, "by_tier": {tier: {status: n}},
            "oldest_queued_created_at": datetime | None, "failed_total": n}``, keyed by
            the enums' string values, every status and tier present (zero when none).
        """
        ...

    async def oldest_queued_backfills(self) -> dict[Tier, datetime]:
        """Per tier with a queued job (waiting or retrying, not running), the oldest one's
        ``created_at``: what ``backfill_oldest_age_seconds{tier}`` reports in every process."""
        ...

    async def purge_backfills(self, *, status: BackfillStatus, older_than: datetime) -> int:
        """Delete jobs with ``status`` whose ``updated_at`` is before ``older_than``; count them."""
        ...

    async def requeue_backfill(self, job_id: int, *, now: datetime) -> BackfillRecord | None:
        """A FAILED job goes back to queued with attempts 0 (``last_error`` kept).

        Returns None, changing nothing, when the job is unknown or not failed.
        """
        ...

    async def requeue_failed(self, *, tier: Tier | None, now: datetime) -> list[BackfillRecord]:
        """Every failed job (of ``tier``; all tiers when None) back to queued, by id."""
        ...

    async def active_backfills(
        self, symbol: str | None = None, interval: Interval | None = None
    ) -> list[BackfillRecord]:
        """Queued or running jobs, oldest first (``created_at``, then id)."""
        ...

    async def active_backfills_many(
        self, symbols: Sequence[str], interval: Interval
    ) -> dict[str, list[BackfillRecord]]:
        """Queued or running jobs of ``interval`` for each of ``symbols``, in one query.

        What enqueueing N gaps needs to cut them to what no active job covers, without N
        lookups. Each list is oldest first (``created_at``, then id), as in
        ``active_backfills``; only symbols with an active job appear.
        """
        ...


class ContinuityStore(Protocol):
    """The full gap scan and "no trades" minutes (tables ``empty_evidence``, ``confirmed_empty``)."""

    async def scan_missing(
        self, interval: Interval, expected: np.ndarray, symbols: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """For each symbol, the ``expected`` epochs neither stored nor confirmed empty.

        ``expected`` is ascending int64 epoch seconds. Only current revisions are read,
        all from one snapshot, without holding up writers.

        Returns:
            Symbol -> ascending int64 epochs still missing; only symbols with something
            missing appear.
        """
        ...

    async def record_empty_evidence(
        self,
        symbol: str,
        interval: Interval,
        epochs: Sequence[int],
        provider: str,
        *,
        now: datetime,
        needed_answers: int,
        needed_providers: int,
    ) -> list[int]:
        """One successful, complete answer from ``provider`` lacked these bar times.

        Bar times that are stored get no evidence (a bar that exists is not empty).

        Returns:
            The epochs that became confirmed empty by this call (ascending): at least
            ``needed_answers`` answers in all lacked them, from at least
            ``needed_providers`` distinct providers.

        Raises:
            ValueError: A threshold is below 1.
        """
        ...

    async def clear_empty_evidence(self, symbol: str, interval: Interval, epochs: Sequence[int]) -> None:
        """A bar arrived after all: forget the evidence and any confirmation."""
        ...

    async def confirmed_empty(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[int]:
        """Epoch seconds of confirmed-empty bar times in ``[start, end)``, ascending."""
        ...

    async def count_confirmed_empty(
        self,
        interval: Interval,
        start: datetime,
        end: datetime,
        symbols: Sequence[str] | None = None,
    ) -> int:
        """Confirmed-empty bar times in ``[start, end)``, over ``symbols`` (all when None)."""
        ...


class KeyStore(Protocol):
    """API keys: only their hashes are stored; a revoked key keeps its row."""

    async def create_api_key(self, key: ApiKey, *, key_hash: str) -> None:
        """Store a new active key.

        Raises:
            Conflict: An active key already has this name (kind ``api key``).
        """
        ...

    async def api_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """Keys by name, then creation time."""
        ...

    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not; None if no key has it."""
        ...

    async def revoke_api_key(self, name: str, *, now: datetime) -> ApiKey | None:
        """Revoke the active key called ``name``; None if there is none."""
        ...


class ReferenceStore(Protocol):
    """Index membership, holdings and refresh records (issue 14)."""

    async def apply_constituents(
        self, index: IndexName, members: Sequence[Constituent], *, source: str, now: datetime
    ) -> ConstituentChange:
        """Make ``members`` the index's active members: new ones inserted, returning ones
        reactivated (first_seen_at kept), absent ones marked inactive (kept, never deleted)."""
        ...

    async def index_members(
        self, index: IndexName | None = None, *, active_only: bool = True
    ) -> list[IndexMember]:
        """Members by index, then symbol."""
        ...

    async def record_index_refresh(self, refresh: IndexRefresh) -> None: ...

    async def index_refreshes(self, *, index: IndexName | None = None, limit: int = 20) -> list[IndexRefresh]:
        """Newest first."""
        ...

    async def add_holdings(self, symbols: Sequence[str], *, note: str, now: datetime) -> list[str]:
        """Hold ``symbols``; returns the ones that were not held yet."""
        ...

    async def remove_holdings(self, symbols: Sequence[str]) -> list[str]:
        """Stop holding ``symbols``; returns the ones that were held."""
        ...

    async def holdings(self) -> list[Holding]:
        """By symbol."""
        ...


class CoverageStore(Protocol):
    """Freshness facts for the coverage view (issue 14): one indexed probe per symbol."""

    async def last_bar_times(self, interval: Interval, symbols: Sequence[str]) -> dict[str, datetime]:
        """The newest stored bar's ts per symbol; symbols without a bar are absent."""
        ...

    async def bar_counts_since(
        self, interval: Interval, symbols: Sequence[str], start: datetime
    ) -> dict[str, int]:
        """Stored bars at or after ``start`` per symbol; symbols without one are absent."""
        ...

    async def symbols_with_bars(self, interval: Interval) -> int:
        """How many distinct symbols hold at least one stored bar of ``interval``."""
        ...


class RetentionCount(NamedTuple):
    """What one retention pass deleted from one interval."""

    bars: int  # current revisions
    history: int  # superseded revisions


class RetentionStore(Protocol):
    async def delete_bars_before(self, interval: Interval, cutoff: datetime) -> RetentionCount:
        """Delete every bar of ``interval`` with ts < ``cutoff``, its history rows too."""
        ...


class ListingStore(Protocol):
    """When a symbol began to trade: sessions before it are never expected (issue 14)."""

    async def series_extent(self, symbol: str, interval: Interval) -> tuple[datetime, datetime] | None:
        """The first and last stored bar ts of one series; None when it holds no bar."""
        ...

    async def first_trade_sessions(self, symbols: Sequence[str] | None = None) -> dict[str, datetime]:
        """Known first-trade sessions (a daily bar's ts), per symbol; unknown ones are absent."""
        ...

    async def set_first_trade_session(self, symbol: str, session: datetime | None) -> None:
        """Record (or with None forget) the first session ``symbol`` traded."""
        ...


class ScheduleStore(Protocol):
    """Schedules (seed 004's RedBeat entries) and the scheduler's fire marks."""

    async def put_schedule(self, schedule: Schedule) -> None:
        """Insert or replace the schedule named ``schedule.name`` (every field as given)."""
        ...

    async def get_schedule(self, name: str) -> Schedule | None: ...

    async def schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        ...

    async def delete_schedule(self, name: str) -> bool:
        """Remove it; False when there was none. Its job runs stay."""
        ...

    async def schedules_changed_at(self) -> tuple[int, int]:
        """(count, newest revision): cheap, so a scheduler can tell when to reload. The
        revision grows with every ``put_schedule`` (whatever its clock), not with fires."""
        ...

    async def fire_schedule(self, name: str, due_at: datetime, run: JobRun) -> JobRun | None:
        """Mark ``name`` fired for ``due_at`` and insert ``run`` (queued), atomically.

        Compare-and-set: only when the schedule is enabled and its ``last_due_at`` is
        before ``due_at`` (or unset); otherwise nothing is written and None is returned, so
        two schedulers that both think they lead fire a due time once between them.
        """
        ...


class JobRunStore(Protocol):
    """``job_run`` rows: every task execution, its status, counters, errors and log lines."""

    async def create_run(self, run: JobRun) -> JobRun:
        """Insert; returns the run with its ``id``."""
        ...

    async def get_run(self, run_id: int) -> JobRun | None: ...

    async def update_run(self, run: JobRun) -> None:
        """Write every mutable field of ``run`` (status, times, counters, error, note, attempt,
        lease, logs)."""
        ...

    async def claim_run(
        self,
        run_id: int,
        *,
        now: datetime,
        lease_until: datetime,
        single_flight: bool,
        max_concurrency: int | None,
    ) -> RunStatus | None:
        """Move a queued run to running, atomically across processes; what blocked it otherwise.

        Returns None when claimed. Returns ``RunStatus.SKIPPED`` when ``single_flight`` and
        another run of the same schedule is running (an unexpired lease), ``RunStatus.QUEUED``
        when ``max_concurrency`` runs of the same task are running, and the run's own
        status when it is not queued any more (a duplicate delivery).
        """
        ...

    async def renew_lease(self, run_id: int, lease_until: datetime) -> bool:
        """Extend a running run's lease; False if it is not running any more."""
        ...

    async def job_runs(
        self,
        *,
        task: str | None = None,
        schedule: str | None = None,
        status: RunStatus | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[JobRun]:
        """Newest first (by queued time, then id); ``since`` bounds the queued time."""
        ...

    async def latest_runs_for(self, schedules: Sequence[str], logical_date: date) -> dict[str, JobRun]:
        """Per schedule name, its newest run for ``logical_date`` (absent when none)."""
        ...

    async def expire_runs(self, *, now: datetime, note: str) -> list[JobRun]:
        """Fail running runs whose lease ended before ``now`` (their worker died); return them."""
        ...

    async def purge_runs(self, *, finished_before: datetime) -> int:
        """Delete the runs that ended (succeeded, failed, timed out, skipped) before
        ``finished_before``; queued and running ones stay, whatever their age. Returns how
        many were deleted. Ids are never handed out again."""
        ...


class OptionsMetricsStore(Protocol):
    """``options_metrics``: per symbol, metric and tenor, each computed value at its ``as_of``."""

    async def write_options_metrics(self, rows: Sequence[OptionsMetricRow]) -> int:
        """Insert ``rows``; a row with the same (symbol, metric, tenor, as_of) is kept as
        it was (idempotent). Returns how many rows were new."""
        ...

    async def options_metrics_history(
        self,
        symbol: str,
        *,
        metric: str | None = None,
        tenor: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
    ) -> list[OptionsMetricRow]:
        """Rows of ``symbol`` with ``start <= as_of < end``, oldest first, at most ``limit``
        (the newest ``limit`` when more match); ``metric``/``tenor`` filter when given."""
        ...

    async def latest_options_metrics(self, symbol: str) -> list[OptionsMetricRow]:
        """The rows of ``symbol``'s newest ``as_of`` (one computation), by metric then tenor."""
        ...


class MacroStore(Protocol):
    """``macro_factors``: every vintage of every macro value (FRED's realtime periods)."""

    async def write_macro_rows(self, rows: Sequence[MacroRow]) -> int:
        """Insert ``rows``; a row whose (factor_key, date, realtime_start) is stored already is
        kept as it was (a vintage never changes). Returns how many rows were new."""
        ...

    async def macro_history(
        self,
        factor_key: str,
        *,
        start: date | None = None,
        end: date | None = None,
        as_of: date | None = None,
    ) -> list[MacroRow]:
        """Per observation date in ``start <= date <= end``, oldest first, the vintage current
        on ``as_of``: the row with the greatest ``realtime_start <= as_of`` (the newest vintage
        when ``as_of`` is None). Dates with no vintage known by ``as_of`` are absent; a
        current vintage with value None (missing) is returned as such."""
        ...

    async def macro_factor_keys(self) -> list[str]:
        """Every factor_key with at least one row, sorted."""
        ...


class CorporateActionStore(Protocol):
    """``corporate_actions``: every version of every split and dividend, by when MDS learned it;
    ``suspected_actions``: daily jumps no known action explains."""

    async def write_corporate_actions(
        self, actions: Sequence[CorporateAction], *, as_of: datetime
    ) -> list[CorporateAction]:
        """Store ``actions`` as learned at ``as_of``; return the ones that were new or restated
        (stamped ``as_of``). An action whose current version has the same terms is kept as it
        was: its knowledge time stays the first time it was learned."""
        ...

    async def corporate_actions(
        self,
        symbol: str,
        *,
        as_of: datetime | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> list[CorporateAction]:
        """Per (type, ex_date) with ``start <= ex_date <= end``, the newest version learned at
        or before ``as_of`` (the newest when None), by ex_date then type."""
        ...

    async def corporate_action_symbols(self, *, learned_since: datetime | None = None) -> dict[str, datetime]:
        """Symbol -> when its newest action version was learned, for symbols with one learned
        at or after ``learned_since`` (all when None)."""
        ...

    async def record_suspected_actions(self, rows: Sequence[SuspectedAction]) -> int:
        """Insert ``rows``; a (symbol, session) stored already is kept. Returns how many were new."""
        ...

    async def suspected_actions(
        self, *, symbol: str | None = None, limit: int = 100
    ) -> list[SuspectedAction]:
        """The newest ``limit`` suspected actions (of ``symbol``), newest session first."""
        ...

    async def clear_suspected_actions(self, symbol: str, sessions: Sequence[date]) -> int:
        """Drop ``symbol``'s suspicions on ``sessions`` (an action now explains them)."""
        ...


class QualityStore(Protocol):
    """Cross-vendor reconciliation results (``quality_scores``, ``quality_disagreements``),
    and the confirmed-empty bar times reconciliation re-checks."""

    async def write_quality(
        self, scores: Sequence[QualityScore], disagreements: Sequence[Disagreement]
    ) -> None:
        """Store one reconciliation's scores and disagreements in one transaction; a score
        whose (provider, symbol, interval, checked_at) is stored already is replaced."""
        ...

    async def quality_scores(
        self,
        *,
        provider: str | None = None,
        symbol: str | None = None,
        interval: Interval | None = None,
    ) -> list[QualityScore]:
        """The newest score of each (provider, symbol, interval), by provider, symbol,
        interval; the filters narrow it when given."""
        ...

    async def quality_disagreements(
        self,
        *,
        provider: str | None = None,
        symbol: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[Disagreement]:
        """Disagreements checked at or after ``since``, newest check first (then by bar time,
        field), at most ``limit``; ``provider`` matches either side."""
        ...

    async def delete_quality_before(self, cutoff: datetime) -> int:
        """Drop scores and disagreements checked before ``cutoff``; returns rows deleted."""
        ...

    async def bar_rows(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[tuple[int, float, float, float, float, float, str]]:
        """``(epoch s, open, high, low, close, volume, provider)`` of the current bars with
        ``start <= ts < end``, ascending: what reconciliation compares, without the cost of
        building a Bar per row (a symbol-day of 1m bars is 390 of them)."""
        ...

    async def empty_minutes(
        self, interval: Interval, start: datetime, end: datetime, *, limit: int = 10_000
    ) -> list[EmptyMinute]:
        """Confirmed-empty bar times with ``start <= ts < end`` over every symbol, by symbol
        then time, at most ``limit``, each with the providers whose answers confirmed it."""
        ...


class ProfileStore(Protocol):
    """``company_profiles``: every company profile MDS learned (market cap, shares), by when."""

    async def write_profiles(self, profiles: Sequence[CompanyProfile], *, as_of: datetime) -> int:
        """Store ``profiles`` as learned at ``as_of`` (each keeps its own provider); returns
        how many rows were written. A second write of a (symbol, as_of) replaces the first."""
        ...

    async def profiles(
        self, symbols: Sequence[str], *, as_of: datetime | None = None
    ) -> dict[str, CompanyProfile]:
        """Per symbol of ``symbols``, the newest profile learned at or before ``as_of`` (the
        newest when None), stamped with its ``as_of``; symbols without one are absent."""
        ...

    async def profile_history(self, symbol: str, *, limit: int = 100) -> list[CompanyProfile]:
        """``symbol``'s stored profiles, newest first, at most ``limit``."""
        ...


class Store(
    BarStore,
    UniverseStore,
    BackfillLedger,
    ContinuityStore,
    KeyStore,
    ReferenceStore,
    CoverageStore,
    RetentionStore,
    ListingStore,
    ScheduleStore,
    JobRunStore,
    OptionsMetricsStore,
    MacroStore,
    CorporateActionStore,
    QualityStore,
    ProfileStore,
    StoreLifecycle,
    Protocol,
):
    """Everything MDS persists: what runtime.py builds and hands out.

    Type a consumer against the narrow protocol it uses; take ``Store`` only where one
    object really needs most of them (the collector wires every part to one store).
    """
