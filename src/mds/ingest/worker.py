"""Workers: take a job from a queue, do it, and ack it only once its result is stored.

Backfill jobs run marked as backfill work (``mds.domain.work``), so the capacity reserved
for live work (rate-limit share, database connections, the SQLite writer's first place)
stays free for the sweeps however deep the backlog is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Mapping

from opentelemetry.trace import NoOpTracer, Tracer

from mds.aio import honour_cancel
from mds.cache import Cache
from mds.config import Settings
from mds.constants import quote_cache_key
from mds.domain import work
from mds.domain.clock import Clock
from mds.domain.jobs import BackfillJob, BarsFetchJob, QuotesFetchJob
from mds.domain.models import Capability, Quote, Tier, capability_for_interval
from mds.domain.records import BackfillStatus
from mds.errors import MdsError, NoProviderAvailable, QueueError
from mds.ingest.backfill import Backfiller
from mds.ingest.gaps import Gap
from mds.ingest.handoff import GapHandoff
from mds.ingest.ingestor import AUTO_SOURCE, BarIngestor
from mds.observability.metrics import Metrics
from mds.observability.propagation import job_span
from mds.providers.base import Provider
from mds.queue.base import Delivery, JobQueue
from mds.routing.router import Router
from mds.serialize import iso, quote_json
from mds.storage.base import Store
from mds.stream.messages import quote_message
from mds.stream.publisher import StreamPublisher

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        *,
        name: str,
        queue: JobQueue,
        ingestor: BarIngestor,
        backfiller: Backfiller,
        store: Store,
        router: Router,
        settings: Settings,
        clock: Clock,
        metrics: Metrics,
        tiers: Mapping[str, Tier],
        cache: Cache | None = None,
        publisher: StreamPublisher | None = None,
        handoff: GapHandoff | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.name = name
        self.tracer = tracer or NoOpTracer()
        #: Where live jobs leave the holes they find (None: enqueue them inline).
        self.handoff = handoff
        self.queue = queue
        self.ingestor = ingestor
        self.backfiller = backfiller
        self.store = store
        self.router = router
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.tiers = tiers
        self.cache = cache
        self.publisher = publisher
        self._rng = random.Random()

    async def run(self) -> None:
        while True:
            delivery = await self.queue.get(timeout=1.0)
            if delivery is None:
                honour_cancel()
                continue
            await self.process(delivery)

    async def process(self, delivery: Delivery) -> None:
        with job_span(self.tracer, delivery.job):
            await self._process(delivery)

    async def _process(self, delivery: Delivery) -> None:
        job = delivery.job
        if isinstance(job, BackfillJob):
            try:
                with work.as_backfill():
                    await self.handle_backfill(delivery, job)
            except MdsError as exc:
                # Storage trouble and the like: keep the job and try again shortly.
                self.metrics.jobs_failed_total.labels(type=job.type, reason=type(exc).__name__).inc()
                log.warning("%s: backfill %s deferred: %s", self.name, job.backfill_id, exc)
                self.backfiller.retrying(job)
                await self.backfiller.queues[job.priority].nack(delivery, delay=5.0 / self.clock.speed)
            return
        try:
            if isinstance(job, BarsFetchJob):
                await self.handle_bars(job)
            elif isinstance(job, QuotesFetchJob):
                await self.handle_quotes(job)
            else:  # a task job pushed to the live queue: task runs travel on the task queues
                self.metrics.jobs_failed_total.labels(type=job.type, reason="wrong_queue").inc()
                log.warning(
                    "%s: job %s is a %s job, not a live one; dropped", self.name, job.job_id, job.type
                )
        except MdsError as exc:
            # Live jobs are not retried: the next sweep starts from the cursor, which did
            # not move, so nothing is lost by dropping this one.
            self.metrics.jobs_failed_total.labels(type=job.type, reason=type(exc).__name__).inc()
            log.warning("%s: job %s failed: %s", self.name, job.job_id, exc)
        try:
            await self.queue.ack(delivery)
        except QueueError as exc:
            # A Redis blip while acking: the job comes back and is redone, which is safe
            # because writes are idempotent; the worker loop must not die of it.
            log.warning("%s: ack of %s failed: %s", self.name, job.job_id, exc)

    # Live bars ---------------------------------------------------------------------
    async def handle_bars(self, job: BarsFetchJob) -> None:
        sem = asyncio.Semaphore(self.settings.LIVE_MAX_CONCURRENCY)
        errors: list[MdsError] = []

        async def one(symbol: str) -> None:
            async with sem:
                try:
                    await self._bars_for(symbol, job)
                except NoProviderAvailable as exc:
                    errors.append(exc)

        await asyncio.gather(*(one(s) for s in job.symbols))
        if errors and len(errors) == len(job.symbols):
            raise errors[0]
        self.metrics.jobs_processed_total.labels(type=job.type, provider="mixed" if errors else "ok").inc()

    async def _bars_for(self, symbol: str, job: BarsFetchJob) -> None:
        interval = job.interval
        start, end = job.time_window.start, job.time_window.end
        cursor = await self.store.get_cursor(symbol, interval, AUTO_SOURCE)
        if cursor is not None:
            resume = cursor.last_ts + interval.delta
            if resume >= start:
                start = resume
            else:
                # The cursor jumped: everything between it and this window is a hole for
                # the backfill queue, so live fetches stay small and on time.
                gaps = await self.ingestor.find_gaps(symbol, interval, resume, start)
                if gaps:
                    self.metrics.gaps_found_total.labels(interval=interval.value).inc(len(gaps))
                    await self._hand_off(gaps, symbol)
        if start >= end:
            return
        outcome = await self.ingestor.ingest(
            symbol, interval, start, end, hint=job.provider_hint, batch_size=self.settings.LIVE_BATCH_SIZE
        )
        if outcome.gaps:
            await self._hand_off(outcome.gaps, symbol)

    async def _hand_off(self, gaps: list[Gap], symbol: str) -> None:
        if self.handoff is not None:
            self.handoff.submit(gaps, self._tier(symbol))
        else:
            await self.backfiller.enqueue_gaps(gaps, self._tier(symbol))

    # Quotes ------------------------------------------------------------------------
    async def handle_quotes(self, job: QuotesFetchJob) -> None:
        symbols = list(job.symbols)

        async def fetch(provider: Provider) -> list[Quote]:
            return await provider.fetch_quotes(symbols)

        routed = await self.router.call(Capability.QUOTES_L1, fetch, hint=job.provider_hint)
        now = self.clock.now()
        quotes = [q for q in routed.value if q.symbol in set(symbols) and q.last > 0]
        quotes = [dataclasses.replace(q, as_of=now) for q in quotes]
        await self.store.write_quotes(quotes)
        for q in quotes:
            event = quote_json(q)
            if self.cache is not None:
                await self.cache.set(
                    quote_cache_key(q.symbol), event, ttl=self.settings.CACHE_TTL_QUOTES_L1_SEC
                )
            if self.publisher is not None:
                await self.publisher.publish(quote_message(q))
        self.metrics.jobs_processed_total.labels(type=job.type, provider=routed.provider).inc()

    # Backfill ----------------------------------------------------------------------
    async def handle_backfill(self, delivery: Delivery, job: BackfillJob) -> None:
        queue = self.backfiller.queues[job.priority]
        fresh = await self.backfiller.refresh(job)
        if fresh is None:  # done or dead-lettered meanwhile (e.g. by another process)
            await queue.ack(delivery)
            return
        job = fresh
        self.backfiller.started(job)
        now = self.clock.now()
        if job.backfill_id is not None:
            await self.store.update_backfill(job.backfill_id, status=BackfillStatus.RUNNING, now=now)
        error: str | None = None
        note: str | None = None
        retry_after: float | None = None
        try:
            outcome = await self.ingestor.ingest(
                job.symbol,
                job.interval,
                job.time_window.start,
                job.time_window.end,
                hint=job.provider_hint,
                batch_size=self.settings.BACKFILL_BATCH_SIZE,
            )
            if outcome.gaps:
                missing = sum(g.missing_bars for g in outcome.gaps)
                error = f"{missing} bars still missing after {outcome.provider or 'no provider'} answered"
            else:
                # Sessions before the symbol's first trade are not owed: the job is done, and
                # its last_error says what it skipped (a listing, not a failure).
                note = outcome.listing_note
                self.metrics.jobs_processed_total.labels(
                    type=job.type, provider=outcome.provider or "none"
                ).inc()
        except NoProviderAvailable as exc:
            error = str(exc)
            retry_after = exc.retry_after
            if exc.outage and retry_after is None:
                # No provider answered (down, or breakers open): wait for the half-open probe
                # instead of spending the job's attempts on an outage it did not cause, which
                # would dead-letter a whole backlog during a ten-minute outage.
                if job.backfill_id is not None:
                    await self.store.update_backfill(
                        job.backfill_id, status=BackfillStatus.QUEUED, now=self.clock.now(), last_error=error
                    )
                self.backfiller.retrying(job)
                await queue.nack(delivery, delay=self.settings.BREAKER_OPEN_SECONDS / self.clock.speed)
                return

        if error is None:
            await self._finish(queue, delivery, job, BackfillStatus.DONE, note)
            return
        attempts = job.attempts + 1
        if attempts >= self.settings.BACKFILL_MAX_ATTEMPTS:
            window = job.time_window
            log.warning(
                "backfill %s %s..%s failed for good: %s",
                job.symbol,
                iso(window.start),
                iso(window.end),
                error,
            )
            await self._finish(queue, delivery, job, BackfillStatus.FAILED, error, attempts)
            return
        delay = (
            retry_after
            if retry_after is not None
            else self.backfiller.retry_delay(attempts, self._rng.random())
        )
        if job.backfill_id is not None:
            await self.store.update_backfill(
                job.backfill_id,
                status=BackfillStatus.QUEUED,
                now=self.clock.now(),
                attempts=attempts,
                last_error=error,
            )
        self.backfiller.retrying(job)
        retry = job.model_copy(
            update={"attempts": attempts, "provider_hint": self._next_provider(job, attempts)}
        )
        await queue.nack(delivery, delay=delay / self.clock.speed, job=retry)

    def _next_provider(self, job: BackfillJob, attempts: int) -> str | None:
        """Rotate retries over the routable providers, so a second provider is asked for
        what the first one keeps lacking (it may have the bar, or confirm "no trades")."""
        order = self.router.order(capability_for_interval(job.interval))
        return order[attempts % len(order)] if len(order) > 1 else job.provider_hint

    async def _finish(
        self,
        queue: JobQueue,
        delivery: Delivery,
        job: BackfillJob,
        status: BackfillStatus,
        error: str | None,
        attempts: int | None = None,
    ) -> None:
        if job.backfill_id is not None:
            await self.store.update_backfill(
                job.backfill_id,
                status=status,
                now=self.clock.now(),
                attempts=attempts if attempts is not None else job.attempts + 1,
                last_error=error,
            )
        self.backfiller.finished(job)
        self.metrics.backfill_jobs_completed_total.labels(tier=job.priority.value, status=status.value).inc()
        await queue.ack(delivery)

    def _tier(self, symbol: str) -> Tier:
        return self.tiers.get(symbol, Tier.T2)
