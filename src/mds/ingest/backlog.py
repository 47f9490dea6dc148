"""The backfill backlog per tier, read where every process sees the same answer.

A process's own index only knows the jobs it queued or runs: with shared (Redis) queues an
API process holds none and a worker only its own, so ``backfill_queue_depth`` set from it
read about 0 while the shared lists held thousands. The depth is the tier queue's
``backlog()`` (waiting plus retries sitting out their delay, whoever queued them) and the
oldest age comes from the backfill ledger (the oldest ``queued`` row per tier), so every
process, embedded or scaled out, reports the same figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from mds.domain.models import Tier
from mds.observability.metrics import Metrics
from mds.queue.base import JobQueue
from mds.storage.base import BackfillLedger


@dataclass(frozen=True, slots=True)
class TierBacklog:
    depth: int
    oldest_age_seconds: float


async def read_backlog(
    queues: Mapping[Tier, JobQueue], ledger: BackfillLedger, now: datetime
) -> dict[Tier, TierBacklog]:
    """Per tier: the queue's backlog and the age of the ledger's oldest queued job.

    Raises QueueError or StorageError when the queue or the store cannot answer.
    """
    oldest = await ledger.oldest_queued_backfills()
    out = {}
    for tier in Tier:
        first = oldest.get(tier)
        age = max(0.0, (now - first).total_seconds()) if first is not None else 0.0
        out[tier] = TierBacklog(depth=await queues[tier].backlog(), oldest_age_seconds=age)
    return out


def publish_backlog(metrics: Metrics, backlog: Mapping[Tier, TierBacklog]) -> None:
    """Set ``backfill_queue_depth{tier}`` and ``backfill_oldest_age_seconds{tier}``."""
    for tier, b in backlog.items():
        metrics.backfill_queue_depth.labels(tier=tier.value).set(b.depth)
        metrics.backfill_oldest_age_seconds.labels(tier=tier.value).set(b.oldest_age_seconds)
