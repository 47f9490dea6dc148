"""Prometheus metrics with the seeds' names, so their dashboards and alerts work unchanged.

A ``Metrics`` object owns its registry, so each app (and each test) counts on its own.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from mds.domain.models import Tier

if TYPE_CHECKING:
    from mds.config import Settings
    from mds.domain.schedules import JobRun

_LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_WRITE_BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)
_WS_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
_LOOP_LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: circuit_state values, as the seed documents them (0=open, 0.5=half_open, 1=closed).
CIRCUIT_STATE_VALUE = {"open": 0.0, "half_open": 0.5, "closed": 1.0}


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        # Providers
        self.provider_selected_total = Counter(
            "provider_selected_total",
            "Provider chosen for a request",
            ["capability", "provider"],
            registry=r,
        )
        self.provider_errors_total = Counter(
            "provider_errors_total",
            "Provider call failures, by error code",
            ["provider", "endpoint", "code"],
            registry=r,
        )
        self.provider_latency_ms = Histogram(
            "provider_latency_ms",
            "Provider call latency in milliseconds",
            ["provider", "endpoint"],
            buckets=_LATENCY_BUCKETS_MS,
            registry=r,
        )
        self.circuit_state = Gauge(
            "circuit_state",
            "Circuit breaker state (0=open, 0.5=half_open, 1=closed)",
            ["provider"],
            registry=r,
        )
        self.provider_health_score = Gauge(
            "provider_health_score",
            "Health score H of a provider (0..1)",
            ["provider"],
            registry=r,
        )
        self.provider_bad_payloads_total = Counter(
            "provider_bad_payloads_total",
            "Vendor responses rejected as bad payloads",
            ["provider"],
            registry=r,
        )
        # Ingestion
        self.jobs_processed_total = Counter(
            "jobs_processed_total",
            "Jobs completed",
            ["type", "provider"],
            registry=r,
        )
        self.jobs_failed_total = Counter(
            "jobs_failed_total",
            "Job attempts that failed",
            ["type", "reason"],
            registry=r,
        )
        self.gaps_found_total = Counter(
            "gaps_found_total",
            "Gaps detected",
            ["interval"],
            registry=r,
        )
        self.bars_written_total = Counter(
            "bars_written_total",
            "Bars stored, by outcome (inserted, revised, unchanged)",
            ["interval", "outcome"],
            registry=r,
        )
        self.bars_response_cache_total = Counter(
            "bars_response_cache_total",
            "Bar responses by cache result: hit, miss (built and kept) or bypass (open range)",
            ["result"],
            registry=r,
        )
        self.write_batch_ms = Histogram(
            "write_batch_ms",
            "Store write latency per batch in milliseconds",
            buckets=_WRITE_BUCKETS_MS,
            registry=r,
        )
        self.ingestion_lag_seconds = Gauge(
            "ingestion_lag_seconds",
            "Worst lag over the series collected (1m: live tiers; 1d: tiers with an eod cadence): "
            "seconds since the first bar expected after the newest stored one closed, 0 when up to date",
            ["interval"],
            registry=r,
        )
        # Backfill
        self.backfill_jobs_enqueued_total = Counter(
            "backfill_jobs_enqueued_total",
            "Backfill jobs created",
            ["tier"],
            registry=r,
        )
        self.backfill_jobs_completed_total = Counter(
            "backfill_jobs_completed_total",
            "Backfill jobs finished",
            ["tier", "status"],
            registry=r,
        )
        # Per tier, read from the tier's queue and the backfill ledger at every /metrics
        # refresh (mds.ingest.backlog): with shared (Redis) queues every process reports the
        # same backlog, not what it happens to hold itself.
        self.backfill_queue_depth = Gauge(
            "backfill_queue_depth",
            "Backfill jobs the tier's queue still owes (waiting plus retries sitting out their "
            "delay, queued by any process); running jobs are not counted",
            ["tier"],
            registry=r,
        )
        self.backfill_oldest_age_seconds = Gauge(
            "backfill_oldest_age_seconds",
            "Age of the tier's oldest queued backfill job in the ledger (clock seconds; 0 when none)",
            ["tier"],
            registry=r,
        )
        self.backfill_jobs_dropped_total = Counter(
            "backfill_jobs_dropped_total",
            "Backfill ranges refused because the tier's queue was at its cap",
            ["tier"],
            registry=r,
        )
        self.backfill_queue_bytes = Gauge(
            "backfill_queue_bytes",
            "Estimated memory held by queued backfill jobs in this process",
            registry=r,
        )
        # SLO
        self.slo_gap_violation_rate = Gauge(
            "slo_gap_violation_rate",
            "Fraction of sampled symbols whose newest bar trails the clock by more than 2 intervals",
            ["tier", "interval"],
            registry=r,
        )
        # Lag (ingest/live_lag.py states the rule) and event-loop stalls
        self.live_lag_seconds = Gauge(
            "live_lag_seconds",
            "Live 1m series: seconds since the first bar expected after the newest stored one "
            "closed (0 when up to date), over the tier's symbols; stat is max or p95",
            ["tier", "stat"],
            registry=r,
        )
        self.event_loop_lag_seconds = Histogram(
            "event_loop_lag_seconds",
            "How late the asyncio event loop woke a short real-time sleep, in seconds",
            buckets=_LOOP_LAG_BUCKETS_S,
            registry=r,
        )
        self.tier_cadence_seconds = Gauge(
            "tier_cadence_seconds",
            "Configured sweep cadence per tier and capability, in seconds (capabilities counted "
            "in seconds only: bars_1m, quotes_l1)",
            ["tier", "capability"],
            registry=r,
        )
        self.circuit_opened_total = Counter(
            "circuit_opened_total",
            "Times a provider's breaker opened",
            ["provider"],
            registry=r,
        )
        # Access
        self.auth_failures_total = Counter(
            "auth_failures_total",
            "Refused requests to guarded routes by reason: missing, invalid, revoked, forbidden "
            "(a key of too low a role) or rate_limited (too many failures from one address)",
            ["reason"],
            registry=r,
        )

        # Streaming
        self.ws_clients_gauge = Gauge(
            "ws_clients_gauge", "Open WebSocket stream connections in this process", registry=r
        )
        self.ws_publish_latency_ms = Histogram(
            "ws_publish_latency_ms",
            "From the moment a bar or quote was written to the moment its frame was handed to a "
            "client's socket, in milliseconds (wall clock)",
            buckets=_WS_BUCKETS_MS,
            registry=r,
        )
        self.ws_dropped_messages_total = Counter(
            "ws_dropped_messages_total",
            "Stream messages lost by reason: client_queue_full (a slow client's oldest message), "
            "slow_client (still queued when a slow client was closed), bus_overflow (the hub fell "
            "behind the bus; refilled from the replay log when it can be), publish_failed (the "
            "replay log could not take a written bar)",
            ["reason"],
            registry=r,
        )
        self.ws_messages_sent_total = Counter(
            "ws_messages_sent_total",
            "Messages handed to WebSocket clients, by type",
            ["type"],
            registry=r,
        )

        # What is tracked and how fresh it is (issue 14)
        self.coverage_tracked_symbols = Gauge(
            "coverage_tracked_symbols", "Symbols in the tracked set at the last coverage snapshot", registry=r
        )
        self.coverage_freshness_symbols = Gauge(
            "coverage_freshness_symbols",
            "Tracked symbols per freshness bucket (<=24h, 24-48h, >48h, none; counted in sessions) "
            "and interval (daily, m5) at the last coverage snapshot",
            ["interval", "bucket"],
            registry=r,
        )
        self.coverage_daily_share = Gauge(
            "coverage_daily_share",
            "Share of tracked symbols holding the last closed daily session (SLA: >= COVERAGE_DAILY_MIN_SHARE)",
            registry=r,
        )
        self.coverage_status_ok = Gauge(
            "coverage_status_ok",
            "1 when the last coverage snapshot met every SLA, 0 when degraded",
            registry=r,
        )
        self.coverage_snapshot_timestamp_seconds = Gauge(
            "coverage_snapshot_timestamp_seconds",
            "Service-clock time of the last coverage snapshot (epoch seconds)",
            registry=r,
        )
        self.index_constituents_active = Gauge(
            "index_constituents_active", "Active members per index", ["index"], registry=r
        )
        self.index_refresh_total = Counter(
            "index_refresh_total",
            "Index constituent refreshes by index and outcome (applied, refused, failed)",
            ["index", "outcome"],
            registry=r,
        )
        self.retention_deleted_bars_total = Counter(
            "retention_deleted_bars_total",
            "Bars (current and history rows) deleted by retention, per interval",
            ["interval"],
            registry=r,
        )

        self.data_quality_score = Gauge(
            "data_quality_score",
            "Latest reconciliation score per provider: share of its compared bars no other "
            "vendor's majority found wrong (1 = all agreed)",
            ["provider"],
            registry=r,
        )
        self.reconcile_disagreements_total = Counter(
            "reconcile_disagreements_total",
            "Bars on which a provider disagreed with another vendor beyond tolerance, per stored "
            "provider (blamed or not)",
            ["provider"],
            registry=r,
        )
        self.reconcile_empty_cleared_total = Counter(
            "reconcile_empty_cleared_total",
            "Minutes recorded as having no trades that a re-check found traded (cleared and filled)",
            ["interval"],
            registry=r,
        )

        self.profile_refresh_total = Counter(
            "profile_refresh_total",
            "Company profile fetches of a refresh, per outcome (stored, unknown: no vendor knows"
            " the symbol, failed)",
            ["outcome"],
            registry=r,
        )
        self.corporate_actions_learned_total = Counter(
            "corporate_actions_learned_total",
            "Corporate actions stored new or restated by a refresh, per type (split, dividend)",
            ["type"],
            registry=r,
        )
        self.corporate_actions_suspected_total = Counter(
            "corporate_actions_suspected_total",
            "Daily jumps beyond CORPORATE_ACTIONS_JUMP_THRESHOLD that no known action explains, "
            "newly recorded as suspected unannounced actions",
            registry=r,
        )

        self.task_runs_total = Counter(
            "task_runs_total",
            "Finished task runs by task and status (succeeded, failed, timed_out, skipped)",
            ["task", "status"],
            registry=r,
        )
        self.task_duration_seconds = Histogram(
            "task_duration_seconds",
            "Clock seconds a task run took, per task (runs that started)",
            ["task"],
            buckets=(0.1, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200),
            registry=r,
        )
        self.hook_failures_total = Counter(
            "hook_failures_total",
            "Task-run hooks that could not be delivered, by kind (discord, pushgateway); the run "
            "itself is unaffected",
            ["kind"],
            registry=r,
        )

    def observe_task_run(self, run: JobRun) -> None:
        """Count a finished run (and time it when it started)."""
        self.task_runs_total.labels(task=run.task, status=run.status.value).inc()
        if run.duration_s is not None:
            self.task_duration_seconds.labels(task=run.task).observe(run.duration_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0.0 when it was never set); for tests and /stats."""
        v = self.registry.get_sample_value(name, labels)
        return 0.0 if v is None else v


#: Cadences configured in seconds (``eod`` counts trading sessions, so it is not exported).
_CADENCES_IN_SECONDS = ("bars_1m", "quotes_l1")


def publish_cadences(metrics: Metrics, settings: Settings) -> None:
    """Set ``tier_cadence_seconds{tier,capability}`` from ``settings`` (at start and on reload),
    so alert rules read the configured cadence instead of hard-coding it. A capability a tier
    no longer collects loses its series."""
    for tier in Tier:
        cadence = settings.cadence(tier)
        for capability in _CADENCES_IN_SECONDS:
            seconds = getattr(cadence, capability)
            if seconds:
                metrics.tier_cadence_seconds.labels(tier=tier.value, capability=capability).set(seconds)
            else:
                with contextlib.suppress(KeyError):
                    metrics.tier_cadence_seconds.remove(tier.value, capability)
