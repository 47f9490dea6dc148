"""Every name that crosses a process boundary, declared once.

Processes that share a Redis server (``mds api``, ``mds worker``, ``mds scheduler``, the
external Rate-Limit Coordinator) agree on these names and on nothing else, so they live
here rather than next to the code that happens to use them. The families:

Job queues (Redis LISTs; :mod:`mds.queue.redis` documents the keys hung off each one)
    ``market:jobs``                       live jobs; the coordinator LPUSHes here
                                          (setting ``RLC_REDIS_JOBS_KEY``)
    ``market:backfills:T0|T1|T2``         one backfill queue per tier
                                          (settings ``RLC_REDIS_BACKFILL_KEYS__T0`` …)
    ``<live queue>:tasks:<name>:T0|T1|T2`` task runs of queue ``<name>`` (``TASK_QUEUES``),
                                          one list per priority band
    ``<queue>:processing:<consumer>``     jobs a consumer took and has not acked
    ``<queue>:lease:<consumer>``          the consumer's heartbeat (expires)
    ``<queue>:consumers``                 consumers that may hold processing lists
    ``<queue>:delayed``                   nacked jobs waiting for their delay (ZSET)
    ``<queue>:dlq``                       payloads that failed validation, with the reason

Locks
    ``<live queue>:scheduler-leader``     the one scheduler allowed to sweep and scan

Cache (Redis strings under ``mds:cache:``; in-process: the same keys in a dict)
    ``quote:<SYMBOL>``                    the newest quote (TTL ``CACHE_TTL_QUOTES_L1_SEC``)
    ``series-gen:<SYMBOL>:<interval>``    a series' generation, the response cache's key part
    ``admin-session:<sha256>``            an /admin login (TTL ``ADMIN_SESSION_MINUTES``)

Bus topics (Redis pub/sub channels under ``mds:bus:``)
    ``stream``                            every stream entry (a written bar or quote with its
                                          offset and epoch), for the API processes' hubs

Stream replay log (Redis keys under ``mds:wslog:``; :mod:`mds.stream.log_redis`)
    ``{<SYMBOL>}:epoch``                  the identity of the symbol's history (random)
    ``{<SYMBOL>}:offset``                 the last offset handed out (INCR)
    ``{<SYMBOL>}:entries``                the newest entries, oldest first (LIST)

Rate limits (moving windows of the ``limits`` library under ``mds:ratelimit``)
    ``<provider>`` and ``<provider>:backfill``   a vendor's whole budget and backfill's share
"""

from __future__ import annotations

# Job queues ------------------------------------------------------------------------------

LIVE_JOBS_KEY = "market:jobs"
BACKFILL_KEY_PREFIX = "market:backfills:"


def backfill_jobs_key(tier: str) -> str:
    return f"{BACKFILL_KEY_PREFIX}{tier}"


def task_queue_key(live_jobs_key: str, queue: str, band: str) -> str:
    """Beside the live queue, like the leader lock: one deployment's task runs."""
    return f"{live_jobs_key}:tasks:{queue}:{band}"


def processing_key(queue: str, consumer: str) -> str:
    return f"{queue}:processing:{consumer}"


def lease_key(queue: str, consumer: str) -> str:
    return f"{queue}:lease:{consumer}"


def consumers_key(queue: str) -> str:
    return f"{queue}:consumers"


def delayed_key(queue: str) -> str:
    return f"{queue}:delayed"


def dlq_key(queue: str) -> str:
    return f"{queue}:dlq"


# Locks -----------------------------------------------------------------------------------


def scheduler_leader_key(live_jobs_key: str) -> str:
    """Beside the live queue, so deployments sharing a Redis server but not a queue don't share a leader."""
    return f"{live_jobs_key}:scheduler-leader"


# Cache -----------------------------------------------------------------------------------

CACHE_PREFIX = "mds:cache:"


def quote_cache_key(symbol: str) -> str:
    return f"quote:{symbol}"


def series_generation_key(symbol: str, interval: str) -> str:
    return f"series-gen:{symbol}:{interval}"


def admin_session_key(digest: str) -> str:
    """Cache key of an /admin login session: the SHA-256 of its cookie, never the cookie."""
    return f"admin-session:{digest}"


# Bus -------------------------------------------------------------------------------------

#: What is tracked and how fresh it is (issue 14), by seed 004's names. The coverage keys
#: are Cache keys (so under CACHE_PREFIX on Redis); the tracked sets are plain Redis sets
#: for tools that read them directly.
COVERAGE_HEALTH_KEY = "coverage:health:last"
COVERAGE_TOKEN_KEY = "coverage:health:token"
TRACKED_ALL_KEY = "tracked:all"
TRACKED_NEW_KEY = "tracked:new"


def index_meta_key(index: str) -> str:
    """Cache key of an index's last refresh: {provider_used, fallback_used, count} for 24 h."""
    return f"index_constituents:{index}:meta"


#: Benchmarks' scratch keys on a shared Redis (each run adds its own suffix).
BENCH_PREFIX = "mds:bench:"

BUS_PREFIX = "mds:bus:"


#: One topic for every symbol: each hub holds one subscription (one Redis connection) and
#: fans out locally, whatever number of symbols its clients watch.
STREAM_TOPIC = "stream"


# Configuration versions (reload reaches every process, issue 18) -------------------------
# Beside the live queue, like the scheduler's lock: deployments sharing a Redis server but
# not a queue do not reload each other.


def config_topic(live_jobs_key: str) -> str:
    """Bus topic on which a reloaded configuration's version is announced."""
    return f"config:{live_jobs_key}"


def config_version_key(live_jobs_key: str) -> str:
    """Redis string: the configuration version last announced (a late process catches up)."""
    return f"{live_jobs_key}:config:version"


def config_processes_key(live_jobs_key: str) -> str:
    """Redis hash: process id -> JSON {roles, policy_version, seen_at}, refreshed by heartbeat."""
    return f"{live_jobs_key}:config:processes"


# Stream replay log ----------------------------------------------------------------------

STREAM_LOG_PREFIX = "mds:wslog:"


# The braces are a Redis Cluster hash tag: a symbol's keys share a slot, so one script
# may touch all three.
def stream_log_epoch_key(symbol: str) -> str:
    return f"{{{symbol}}}:epoch"


def stream_log_offset_key(symbol: str) -> str:
    return f"{{{symbol}}}:offset"


def stream_log_entries_key(symbol: str) -> str:
    return f"{{{symbol}}}:entries"


# Rate limits -----------------------------------------------------------------------------

RATE_LIMIT_PREFIX = "mds:ratelimit"
