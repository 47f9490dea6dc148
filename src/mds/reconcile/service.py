"""Cross-vendor reconciliation: sample symbols, compare stored bars with a second vendor's,
score every provider's data quality and feed it to the router.

For each sampled symbol the range compared is whole past sessions (the last
``lookback_sessions`` that closed at least ``revision_window`` ago, so no vendor may still
revise them). The stored side is what the store holds, labelled by each bar's
``provider``; the other side is the first provider of the capability's routing order
(configured, offering it, breaker not open, not paused) that did not store the bars and
answers. See :mod:`mds.reconcile.compare` for when two bars agree.

Who is wrong when two vendors disagree? A majority decides. When the first comparison
finds any difference, the next routable provider that is neither side is asked the same
range and acts as referee: at each differing bar time the side it agrees with is right and
the other side is *blamed* (:func:`mds.reconcile.compare.judge`). Without a third provider,
or when the referee agrees with both or neither, the difference is recorded as unresolved
and counted against nobody: two vendors alone cannot say which one is wrong, and demoting
both on that evidence would take a capability dark. Unresolved rows are still listed for
an operator.

Score of a provider in one check: ``(compared - faults) / compared``, where ``compared``
counts the bar times it was a compared side of (for the stored side, the stored bars it
provided; for the other side, every bar time either side held) and ``faults`` those blamed
on it. A run's score per provider pools every symbol it was compared on; it is published as
``data_quality_score{provider}`` and handed to :meth:`Router.record_quality`, where it
multiplies the health score H, so a vendor that serves wrong prices fast is demoted like
one that fails (:mod:`mds.routing.health` says why it multiplies).

Nothing here changes a stored bar because another vendor disagrees ("never auto-fixed"):
disagreements are stored for an operator (``GET /stats/quality``), at most
``max_disagreements_per_symbol`` bar times per check.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Bar, Interval, Tier, capability_for_interval
from mds.errors import NoData, NoProviderAvailable
from mds.observability.metrics import Metrics
from mds.providers.base import Provider
from mds.reconcile.compare import OTHER, STORED, Comparison, Series, Tolerance, compare, judge
from mds.reconcile.records import DiffKind, Disagreement, QualityScore
from mds.routing.router import Router
from mds.storage.base import BarStore, ContinuityStore, QualityStore, UniverseStore

log = logging.getLogger(__name__)

#: Symbols checked at once: router calls and store reads overlap; the comparison is CPU.
CONCURRENCY = 8


@dataclass(frozen=True)
class ReconcileSettings:
    """The RECONCILE_* settings (see :func:`reconcile_settings`)."""

    sample_per_tier: int = 5
    lookback_sessions: int = 1
    revision_window: timedelta = timedelta(hours=24)
    tolerance: Tolerance = field(default_factory=Tolerance)
    #: A provider × symbol scored below this is flagged for an operator.
    disagreement_threshold: float = 0.99
    max_disagreements_per_symbol: int = 50
    #: Confirmed-empty minutes of this many sessions before the revision window are re-checked.
    empty_recheck_sessions: int = 5
    #: Scores and disagreements older than this are pruned by the task.
    keep_days: int = 90


def reconcile_settings(settings: Settings) -> ReconcileSettings:
    """The reconciliation settings out of ``settings`` (the RECONCILE_* fields)."""
    return ReconcileSettings(
        sample_per_tier=settings.RECONCILE_SAMPLE_PER_TIER,
        lookback_sessions=settings.RECONCILE_LOOKBACK_SESSIONS,
        revision_window=timedelta(hours=settings.RECONCILE_REVISION_WINDOW_HOURS),
        tolerance=Tolerance(
            price_ticks=settings.RECONCILE_PRICE_TOLERANCE_TICKS,
            volume_pct=settings.RECONCILE_VOLUME_TOLERANCE_PCT,
        ),
        disagreement_threshold=settings.RECONCILE_DISAGREEMENT_THRESHOLD,
        max_disagreements_per_symbol=settings.RECONCILE_MAX_DISAGREEMENTS_PER_SYMBOL,
        empty_recheck_sessions=settings.RECONCILE_EMPTY_RECHECK_SESSIONS,
        keep_days=settings.RECONCILE_KEEP_DAYS,
    )


class ReconcileStore(BarStore, UniverseStore, ContinuityStore, QualityStore, Protocol):
    """What reconciliation reads and writes: bars, the universe, "no trades" evidence, scores."""


@dataclass
class SymbolCheck:
    """One symbol's reconciliation."""

    symbol: str
    other: str | None = None
    referee: str | None = None
    stored_bars: int = 0
    compared_bars: int = 0
    differing_bars: int = 0
    scores: list[QualityScore] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    #: Why nothing was compared (nothing stored, no second provider answered).
    skipped: str | None = None


@dataclass
class ReconcileReport:
    """What one run did; ``counters()`` is what a task run records."""

    checked_at: datetime
    interval: Interval
    start: datetime | None
    end: datetime | None
    checks: list[SymbolCheck] = field(default_factory=list)
    #: Provider -> pooled score of this run (providers compared on at least one bar).
    providers: dict[str, float] = field(default_factory=dict)

    @property
    def compared_bars(self) -> int:
        return sum(c.compared_bars for c in self.checks)

    @property
    def differing_bars(self) -> int:
        return sum(c.differing_bars for c in self.checks)

    def counters(self) -> dict[str, Any]:
        skipped = Counter(c.skipped for c in self.checks if c.skipped)
        return {
            "symbols": len(self.checks),
            "compared_symbols": sum(1 for c in self.checks if not c.skipped),
            "compared_bars": self.compared_bars,
            "differing_bars": self.differing_bars,
            "scores": {p: round(s, 4) for p, s in sorted(self.providers.items())},
            "skipped": dict(skipped),
            "range": [None if t is None else t.isoformat() for t in (self.start, self.end)],
        }


class Reconciler:
    """Runs reconciliations; see the module docstring.

    Args:
        store: where bars are read and scores written.
        router: the order providers are asked in, the calls, and where scores go.
        calendar: which sessions are closed.
        clock: what time it is.
        settings: thresholds and sizes.
        metrics: ``data_quality_score`` and ``reconcile_disagreements_total`` go here.
    """

    def __init__(
        self,
        *,
        store: ReconcileStore,
        router: Router,
        calendar: MarketCalendar,
        clock: Clock,
        settings: ReconcileSettings,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.router = router
        self.calendar = calendar
        self.clock = clock
        self.settings = settings
        self.metrics = metrics

    def closed_range(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The whole sessions compared: the last ``lookback_sessions`` closed before the
        revision window began; None before the calendar has any."""
        sessions = self.calendar.closed_sessions(
            now - self.settings.revision_window, self.settings.lookback_sessions
        )
        return (sessions[0].open, sessions[-1].close) if sessions else None

    async def sample(self, now: datetime) -> list[str]:
        """``sample_per_tier`` active symbols of each tier, drawn afresh each day (seeded by
        the date, so a re-run the same day checks the same symbols)."""
        rnd = random.Random(now.date().toordinal())
        out: list[str] = []
        for tier in Tier:
            names = sorted(e.symbol for e in await self.store.universe(tier=tier))
            out += sorted(rnd.sample(names, min(self.settings.sample_per_tier, len(names))))
        return out

    async def run(
        self,
        *,
        symbols: Sequence[str] | None = None,
        interval: Interval = Interval.M1,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> ReconcileReport:
        """Reconcile ``symbols`` (default: a sample per tier) over ``[start, end)`` (default:
        :meth:`closed_range`), store the outcome, and feed the scores to the router."""
        now = self.clock.now()
        interval = Interval(interval)
        if start is None or end is None:
            span = self.closed_range(now)
            if span is None:
                return ReconcileReport(now, interval, None, None)
            start, end = span
        names = list(symbols) if symbols is not None else await self.sample(now)
        report = ReconcileReport(now, interval, start, end)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(symbol: str) -> SymbolCheck:
            async with gate:
                return await self.check(symbol, interval, start, end, now)

        report.checks = list(await asyncio.gather(*(one(s) for s in names)))
        scores = [s for c in report.checks for s in c.scores]
        await self.store.write_quality(scores, [d for c in report.checks for d in c.disagreements])
        report.providers = pooled(scores)
        self._publish(report)
        return report

    def _publish(self, report: ReconcileReport) -> None:
        for provider, score in report.providers.items():
            if self.metrics is not None:
                self.metrics.data_quality_score.labels(provider=provider).set(score)
            try:
                self.router.record_quality(provider, score)
            except KeyError:  # bars stored from a provider this deployment no longer routes
                continue
            log.info("data quality of %s: %.4f (H now %.3f)", provider, score, self.router.health(provider))

    async def check(
        self, symbol: str, interval: Interval, start: datetime, end: datetime, now: datetime
    ) -> SymbolCheck:
        """Compare one symbol's stored bars in ``[start, end)`` with a second vendor's."""
        out = SymbolCheck(symbol)
        everything = Series.from_rows(await self.store.bar_rows(symbol, interval, start, end))
        out.stored_bars = len(everything)
        if not everything:
            out.skipped = "nothing stored"
            return out
        by_provider = Counter(everything.providers)
        main = by_provider.most_common(1)[0][0]
        order = self.router.order(capability_for_interval(interval))
        # Prefer a vendor that stored none of these bars; failing that, any but the main one
        # (its own bars are then left out: a vendor compared with itself proves nothing).
        fresh = [n for n in order if n not in by_provider] or [n for n in order if n != main]
        answered = await self.fetch_first(fresh, symbol, interval, start, end)
        if answered is None:
            out.skipped = "no second provider answered"
            return out
        other_name, other_bars = answered
        out.other = other_name
        stored = everything.without(other_name)
        other = Series.of(other_bars).drop_times(np.setdiff1d(everything.ts, stored.ts))
        result = compare(stored, other, self.settings.tolerance)
        referee: Series | None = None
        if result.diffs:
            taken = {other_name, *by_provider}
            answered = await self.fetch_first(
                [n for n in order if n not in taken], symbol, interval, start, end
            )
            if answered is not None:
                out.referee, referee_bars = answered
                referee = Series.of(referee_bars)
        self._attribute(out, symbol, interval, start, end, now, main, stored, other, referee, result)
        return out

    def _attribute(
        self,
        out: SymbolCheck,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        now: datetime,
        main: str,
        stored: Series,
        other: Series,
        referee: Series | None,
        result: Comparison,
    ) -> None:
        other_name = out.other
        assert other_name is not None
        tol = self.settings.tolerance
        compared: Counter[str] = Counter(stored.providers)
        compared[other_name] += int(np.union1d(stored.ts, other.ts).size)
        faults: Counter[str] = Counter()
        unresolved = 0
        rows: list[Disagreement] = []
        differing: Counter[str] = Counter()
        for n, diff in enumerate(result.diffs):
            side = judge(diff, stored, other, referee, tol)
            stored_name = diff.stored_provider or main
            blamed = None if side is None else (stored_name if side == STORED else other_name)
            if blamed is None:
                unresolved += 1
            else:
                faults[blamed] += 1
            differing[stored_name] += 1
            if n >= self.settings.max_disagreements_per_symbol:
                continue
            note = _note(diff.kind, side, out.referee)
            ts = datetime.fromtimestamp(diff.ts, UTC)
            rows += [
                Disagreement(
                    now,
                    stored_name,
                    other_name,
                    symbol,
                    interval,
                    ts,
                    diff.kind,
                    f.field,
                    f.stored,
                    f.other,
                    f.diff,
                    blamed,
                    note,
                )  # fmt: skip
                for f in diff.fields
            ]
        if self.metrics is not None:
            for name, n in differing.items():
                self.metrics.reconcile_disagreements_total.labels(provider=name).inc(n)
        against = {name: other_name for name in compared}
        against[other_name] = ",".join(sorted(set(stored.providers)))
        out.compared_bars = compared[other_name]
        out.differing_bars = len(result.diffs)
        out.disagreements = rows
        out.scores = [
            QualityScore(name, symbol, interval, now, start, end, n, faults[name], unresolved, against[name])
            for name, n in sorted(compared.items())
        ]

    async def fetch_first(
        self, names: Sequence[str], symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> tuple[str, list[Bar]] | None:
        """The first of ``names`` (in order) that answers the range, and its bars; None if
        none does. A provider with no data for the symbol is passed over, like one that
        failed: an empty answer would blame every stored bar on nothing."""
        capability = capability_for_interval(interval)

        async def fetch(provider: Provider) -> list[Bar]:
            # Every adapter validates its own answer (``validate_bars``) before returning it.
            return await provider.fetch_bars(symbol, interval, start, end)

        for name in names:
            try:
                routed = await self.router.call(capability, fetch, only=name)
            except (NoData, NoProviderAvailable) as exc:
                log.debug("reconcile %s: %s did not answer (%s)", symbol, name, exc)
                continue
            if routed.value:
                return name, routed.value
        return None


def pooled(scores: Sequence[QualityScore]) -> dict[str, float]:
    """Per provider, ``(Σ compared − Σ faults) / Σ compared`` over ``scores``; providers
    compared on nothing are left out."""
    compared: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    for s in scores:
        compared[s.provider] += s.compared
        faults[s.provider] += s.faults
    return {p: (n - faults[p]) / n for p, n in sorted(compared.items()) if n > 0}


def _note(kind: DiffKind, side: str | None, referee: str | None) -> str:
    if referee is None:
        return "no third provider to settle it"
    if side is None:
        if kind is DiffKind.MISSING:
            return f"the store lacks a bar {referee} also has (a gap, not a vendor's answer)"
        return f"{referee} agrees with both or neither"
    return f"{referee} sided with the {'stored bar' if side == OTHER else 'other provider'}"
