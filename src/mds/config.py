"""Settings: the seeds' names and defaults, their constraints, and loading.

Settings are read once into a ``Settings`` object and passed in; no module reads
the environment on its own. Each setting's constraint is its type (``PositiveInt``,
``Field(ge=0, lt=1)``, a ``Literal``); the few rules that join two settings are one
model validator. ``load_settings`` turns any refusal into a ``ConfigError`` naming the
setting, so a running service can keep its last good config.

A setting is either read by the code or, when a seed names it for a capability not
built yet, says "not yet active" in its description (a unit test holds this).

One module although long: most of its lines are the settings table itself, one field and
its description each, and a reader looking for a setting's name, type, default and
meaning should find all four in one place.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from mds.constants import LIVE_JOBS_KEY, backfill_jobs_key
from mds.domain.models import Capability, Tier
from mds.errors import ConfigError
from mds.redact import redact

#: Every provider MDS can route to. ``yfinance`` is the seeds' name for Yahoo.
ProviderName = Literal[
    "sim",
    "sim_backup",
    "yahoo",
    "stooq",
    "finnhub",
    "alphavantage",
    "polygon",
    "fmp",
    "twelvedata",
    "alpaca",
    "tiingo",
    "fred",
]
KNOWN_PROVIDERS: tuple[str, ...] = get_args(ProviderName)
PROVIDER_ALIASES = {"yfinance": "yahoo", "twelve_data": "twelvedata", "alpha_vantage": "alphavantage"}

#: Every vendor that publishes splits and dividends, in the order they are asked by default
#: (unconfigured ones are skipped by the router).
CORPORATE_ACTION_VENDORS: tuple[str, ...] = ("polygon", "fmp", "tiingo", "alphavantage", "yahoo")

#: Default policy orders per MARKET_PROVIDER_POLICY (seed 004: paid FMP -> Twelve Data ->
#: yfinance; free Finnhub -> Twelve Data -> yfinance). Explicit POLICY_* settings win.
DEFAULT_POLICIES: dict[str, dict[Capability, list[str]]] = {
    "paid": {
        Capability.BARS_1M: ["fmp", "twelvedata", "yahoo"],
        Capability.EOD: ["fmp", "twelvedata", "yahoo", "stooq"],
        Capability.QUOTES_L1: ["fmp", "twelvedata", "yahoo"],
        Capability.OPTIONS_CHAIN: ["polygon", "alpaca", "yahoo"],
        Capability.BARS_5M: ["fmp", "twelvedata", "yahoo"],
        Capability.MACRO: ["fred"],
        Capability.CORPORATE_ACTIONS: list(CORPORATE_ACTION_VENDORS),
        Capability.PROFILE: ["fmp", "polygon", "finnhub"],
    },
    "free": {
        Capability.BARS_1M: ["finnhub", "twelvedata", "yahoo"],
        Capability.EOD: ["finnhub", "twelvedata", "yahoo", "stooq"],
        Capability.QUOTES_L1: ["finnhub", "twelvedata", "yahoo"],
        Capability.OPTIONS_CHAIN: ["yahoo", "alpaca"],
        Capability.BARS_5M: ["fmp", "twelvedata", "yahoo"],
        Capability.MACRO: ["fred"],
        Capability.CORPORATE_ACTIONS: list(CORPORATE_ACTION_VENDORS),
        Capability.PROFILE: ["finnhub", "fmp", "polygon"],
    },
}

_VENDORS = (
    "YAHOO",
    "STOOQ",
    "FINNHUB",
    "ALPHAVANTAGE",
    "POLYGON",
    "FMP",
    "TWELVEDATA",
    "ALPACA",
    "TIINGO",
    "FRED",
)

#: Setting families: an environment variable that starts with one of these but names no
#: setting is refused, so a typo is an error instead of a silently ignored value.
_FAMILIES = (
    "POLICY_",
    "CADENCE_",
    "RETENTION_",
    "COVERAGE_",
    "INDEX_",
    "SCHEDULER_",
    "TASK_",
    "DISCORD_WEBHOOK_",
    "HOOK_",
    "BACKFILL_",
    "BREAKER_",
    "TIER_MAXS",
    "RLC_",
    "WS_",
    "BARS_RESPONSE_CACHE_",
    "LIVE_",
    "MDS_",
    "AUTH_",
    "CORS_",
    "OPTIONS_",
    "MACRO_",
    "CORPORATE_ACTIONS_",
    "ANALYSIS_",
    "RECONCILE_",
    "VIZTRACER_",
    "TRACING_",
    "ADMIN_",
    *(f"{v}_" for v in (*_VENDORS, "ALPHA_VANTAGE", "TWELVE_DATA")),
)
#: Variables under those prefixes that belong to the test harness, not the service.
_NOT_SETTINGS = {"MDS_REQUIRE_SERVICES", "MDS_TEST_DATABASE_URL", "MDS_TEST_REDIS_URL", "MDS_ENV_FILE"}

#: The error type of a rule joining two settings; its context names the setting to blame.
_CONFLICT = "setting_conflict"


def _conflict(setting: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(_CONFLICT, message, {"setting": setting})


# -- field types ---------------------------------------------------------------------


def _split_providers(v: Any) -> Any:
    # Accept the seeds' comma form (a,b,c) and their JSON-list form (["a","b"]).
    if isinstance(v, str):
        text = v.strip()
        if text.startswith("["):
            v = json.loads(text)
        else:
            v = [p for p in (x.strip() for x in text.split(",")) if p]
    if isinstance(v, list):
        return [PROVIDER_ALIASES.get(str(p).strip().lower(), str(p).strip().lower()) for p in v]
    return v


def _distinct(providers: list[str]) -> list[str]:
    twice = sorted({p for p in providers if providers.count(p) > 1})
    if twice:
        raise ValueError(f"{', '.join(twice)} listed twice")
    return providers


def _blank_is_unset(v: Any) -> Any:
    return None if isinstance(v, str) and not v.strip() else v


#: A provider order: known providers (aliases resolved), at least one, none twice.
ProviderOrder = Annotated[list[ProviderName], Field(min_length=1), AfterValidator(_distinct)]
#: POLICY_* settings; unset means MARKET_PROVIDER_POLICY's default order.
ProviderList = Annotated[ProviderOrder | None, NoDecode, BeforeValidator(_split_providers)]


def _split_names(v: Any) -> Any:
    if isinstance(v, str):
        return [p for p in (x.strip().lower() for x in v.split(",")) if p]
    return v


#: Index constituent sources, in order; empty means none.
IndexSourceName = Literal["fmp", "wikipedia", "sim"]
IndexSources = Annotated[
    list[IndexSourceName], NoDecode, BeforeValidator(_split_names), AfterValidator(_distinct)
]
DEFAULT_INDEX_SOURCES: tuple[IndexSourceName, ...] = ("fmp", "wikipedia")


def _split_upper(v: Any) -> Any:
    if isinstance(v, str):
        return [p for p in (x.strip().upper() for x in v.split(",")) if p]
    return v


#: Macro factor keys (FRED series ids, upper case); at least one.
MacroFactorList = Annotated[
    list[Annotated[str, Field(pattern=r"^[A-Z0-9_]{1,40}$")]],
    NoDecode,
    BeforeValidator(_split_upper),
    AfterValidator(_distinct),
    Field(min_length=1),
]
#: Ticker symbols as a comma list; may be empty.
SymbolList = Annotated[
    list[Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9.\-]{0,14}$")]],
    NoDecode,
    BeforeValidator(_split_upper),
    AfterValidator(_distinct),
]
#: Seed issue 16's default factors: volatility, rates, curve, policy rate, dollar, credit,
#: inflation expectations, oil. ``term_spread_10y2y`` is derived from DGS10 and DGS2.
DEFAULT_MACRO_FACTORS: tuple[str, ...] = (
    "VIXCLS",
    "DGS10",
    "DGS2",
    "DGS3MO",
    "T10Y2Y",
    "DFF",
    "DTWEXBGS",
    "BAMLH0A0HYM2",
    "T10YIE",
    "DCOILWTICO",
)
#: Task queue names (schedule metadata ``queue``); at least one.
TaskQueues = Annotated[
    list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]],
    NoDecode,
    BeforeValidator(_split_names),
    AfterValidator(_distinct),
    Field(min_length=1),
]
#: A vendor endpoint override; empty means unset (the vendor's documented URL).
VendorUrl = Annotated[Annotated[str, Field(pattern=r"^https?://")] | None, BeforeValidator(_blank_is_unset)]
DatabaseUrl = Annotated[str, Field(pattern=r"^(sqlite:///|postgresql://|postgres://)")]


def _rate_limit_text(v: str) -> str:
    from limits import parse_many

    try:
        parse_many(v)
    except ValueError:
        raise ValueError(f"{v!r} is not a rate such as 20/minute or 5/second") from None
    return v


def _split_origins(v: Any) -> Any:
    if isinstance(v, str):
        return [o.strip().rstrip("/") for o in v.split(",") if o.strip()]
    return v


#: A `limits` rate string such as ``20/minute`` (``;`` joins several).
RateLimitText = Annotated[str, AfterValidator(_rate_limit_text)]
#: Comma-separated origins such as ``https://tools.example.com``; ``*`` allows any.
OriginList = Annotated[
    list[Annotated[str, Field(pattern=r"^(\*|https?://[^/\s]+)$")]], NoDecode, BeforeValidator(_split_origins)
]
#: A share of a whole: 0 <= s <= 1.
Share = Annotated[float, Field(ge=0, le=1)]


# -- nested settings (NAME__part) ----------------------------------------------------


class _Nested(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TierMaxs(_Nested):
    T0: PositiveInt = Field(default=1200, description="Most symbols in T0")
    T1: PositiveInt = Field(default=3000, description="Most symbols in T1; the rest are T2")


# Cadences: bars_1m and quotes_l1 in seconds between sweeps; eod in trading sessions
# between end-of-day fetches (1 = after every close); unset means "not swept". The seeds
# disagree on units (000 says "minutes for bars" and then "every 60s"); seconds is what
# their examples mean.
_BARS = "Seconds between 1m-bar sweeps (unset: none)"
_QUOTES = "Seconds between level-1 quote sweeps (unset: none)"
_EOD = "Trading sessions between end-of-day fetches (unset: none)"


class CadenceT0(_Nested):
    bars_1m: PositiveInt | None = Field(default=60, description=_BARS)
    quotes_l1: PositiveInt | None = Field(default=5, description=_QUOTES)
    eod: PositiveInt | None = Field(default=1, description=_EOD)


class CadenceT1(_Nested):
    bars_1m: PositiveInt | None = Field(default=300, description=_BARS)
    quotes_l1: PositiveInt | None = Field(default=15, description=_QUOTES)
    eod: PositiveInt | None = Field(default=1, description=_EOD)


class CadenceT2(_Nested):
    bars_1m: PositiveInt | None = Field(default=None, description=_BARS)
    quotes_l1: PositiveInt | None = Field(default=None, description=_QUOTES)
    eod: PositiveInt | None = Field(default=1, description=_EOD)


Cadence = CadenceT0 | CadenceT1 | CadenceT2


class BackfillKeys(_Nested):
    T0: str = Field(default=backfill_jobs_key("T0"), description="Redis list of T0 backfill jobs")
    T1: str = Field(default=backfill_jobs_key("T1"), description="Redis list of T1 backfill jobs")
    T2: str = Field(default=backfill_jobs_key("T2"), description="Redis list of T2 backfill jobs")


#: The environment ``load_settings`` was handed; None means the process environment.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("mds_environ", default=None)


def _key(vendor: str) -> Any:
    return Field(default=None, description=f"{vendor} API key (unset: the adapter is unconfigured)")


def _url(vendor: str) -> Any:
    return Field(default=None, description=f"{vendor} base URL (unset: the vendor's documented one)")


def _rate(vendor: str) -> Any:
    return Field(
        default=None, description=f"{vendor} calls per minute (unset: the vendor's documented limit)"
    )


class Settings(BaseSettings):
    """All settings, by the seeds' names. Environment variables override the defaults."""

    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        case_sensitive=True,
        extra="ignore",
        validate_default=True,
    )

    # Storage
    DATABASE_URL: DatabaseUrl = Field(
        default="sqlite:///./var/mds.db", description="sqlite:///path or postgresql://…"
    )
    DB_POOL_MIN_SIZE: PositiveInt = Field(default=1, description="PostgreSQL pool: connections kept open")
    DB_POOL_MAX_SIZE: PositiveInt = Field(default=10, description="PostgreSQL pool: most connections")
    DB_STATEMENT_TIMEOUT_MS: PositiveInt = Field(default=30_000, description="PostgreSQL statement_timeout")
    DB_RETRY_MAX_SECONDS: PositiveFloat = Field(
        default=60.0, description="How long a write keeps retrying through a database outage"
    )

    # Routing
    MARKET_PROVIDER_POLICY: Literal["paid", "free"] = Field(
        default="paid", description="Which default provider orders POLICY_* fall back to"
    )
    POLICY_BARS_1M: ProviderList = Field(default=None, description="Provider order for 1m bars")
    POLICY_EOD: ProviderList = Field(default=None, description="Provider order for daily bars")
    POLICY_QUOTES_L1: ProviderList = Field(default=None, description="Provider order for level-1 quotes")
    POLICY_OPTIONS_CHAIN: ProviderList = Field(default=None, description="Provider order for option chains")
    POLICY_MACRO: ProviderList = Field(default=None, description="Provider order for macro series (FRED)")
    POLICY_CORPORATE_ACTIONS: ProviderList = Field(
        default=None,
        description="Provider order for splits and dividends (default: every vendor that publishes them)",
    )
    POLICY_PROFILE: ProviderList = Field(
        default=None, description="Provider order for company profiles (market cap, shares outstanding)"
    )
    POLICY_BARS_5M: ProviderList = Field(
        default=None, description="Provider order for native 5m bars (tracked symbols without a 1m series)"
    )
    ALLOW_SOURCE_OVERRIDE: bool = Field(default=True, description="Honour a job's provider hint")
    BREAKER_DEMOTE_THRESHOLD: Share = Field(
        default=0.55, description="Health below which a provider is demoted"
    )
    BREAKER_PROMOTE_THRESHOLD: Share = Field(
        default=0.70, description="Health at which a demoted provider is promoted (> the demote threshold)"
    )
    BREAKER_FAILURE_THRESHOLD: PositiveInt = Field(
        default=3, description="Consecutive failures that open a closed breaker"
    )
    BREAKER_OPEN_SECONDS: PositiveFloat = Field(
        default=30.0, description="How long an open breaker waits before a half-open probe"
    )
    RECENT_LATENCY_CAP_MS: PositiveFloat = Field(
        default=500.0, description="Latency at which the health score's latency term reaches 0"
    )
    PROVIDER_TIMEOUT_SEC: PositiveFloat = Field(default=10.0, description="Timeout of one provider call")

    # Universe and cadence
    TIER_MAXS: TierMaxs = Field(default_factory=TierMaxs, description="Symbols per tier")
    CADENCE_T0: CadenceT0 = Field(default_factory=CadenceT0, description="T0 sweep cadences")
    CADENCE_T1: CadenceT1 = Field(default_factory=CadenceT1, description="T1 sweep cadences")
    CADENCE_T2: CadenceT2 = Field(default_factory=CadenceT2, description="T2 sweep cadences")
    UNIVERSE_FILE: str | None = Field(default=None, description="CSV of symbols (and tiers) to collect")
    MARKET_CALENDAR: str = Field(default="XNYS", description="exchange_calendars name of the market")

    # Ingestion modes
    QUEUE_BACKEND: Literal["memory", "redis"] = Field(
        default="memory",
        description="memory: in-process queues, bus and cache (one `mds serve`); redis: shared through RLC_REDIS_URL",
    )
    USE_RLC: bool = Field(
        default=False, description="Take live jobs from the external coordinator (needs QUEUE_BACKEND=redis)"
    )
    LOCAL_SWEEP_ENABLED: bool = Field(default=True, description="Generate live jobs from the tier cadences")
    LIVE_BATCH_SIZE: PositiveInt = Field(
        default=500,
        description="Most bars per store write (one transaction) of a live fetch; larger answers are written in several",
    )
    LIVE_MAX_WINDOW_MINUTES: PositiveInt = Field(
        default=120, description="A live fetch reaches back at most this far; older holes backfill"
    )
    # Capacity reserved for live work, which backfills cannot take (see docs/decisions.md).
    LIVE_WORKERS: PositiveInt = Field(
        default=4, description="Live worker tasks per worker process; backfills never run on them"
    )
    LIVE_MAX_CONCURRENCY: PositiveInt = Field(default=16, description="Symbols one live job fetches at once")
    LIVE_RESERVED_RATE_SHARE: float = Field(
        default=0.25,
        ge=0,
        lt=1,
        description="Share of every provider's rate limit that backfill calls may not use (0 <= s < 1)",
    )
    LIVE_RESERVED_DB_CONNECTIONS: NonNegativeInt = Field(
        default=2,
        description="PostgreSQL pool connections backfill work may not hold (< DB_POOL_MAX_SIZE; "
        "the default is cut to fit a smaller pool)",
    )

    # Backfill
    BACKFILL_CHUNK_MINUTES: PositiveInt = Field(
        default=1440, description="Minutes of 1m bars per backfill job"
    )
    BACKFILL_MAX_CONCURRENCY_T0: PositiveInt = Field(
        default=4, description="T0 backfill jobs running at once"
    )
    BACKFILL_MAX_CONCURRENCY_T1: PositiveInt = Field(
        default=2, description="T1 backfill jobs running at once"
    )
    BACKFILL_MAX_CONCURRENCY_T2: PositiveInt = Field(
        default=1, description="T2 backfill jobs running at once"
    )
    BACKFILL_DISPATCH_RATE_PER_SEC: PositiveFloat = Field(
        default=2.0, description="Backfill jobs started per second, all tiers"
    )
    BACKFILL_MAX_QUEUE_T0: PositiveInt = Field(default=20000, description="Most queued T0 backfill jobs")
    BACKFILL_MAX_QUEUE_T1: PositiveInt = Field(default=20000, description="Most queued T1 backfill jobs")
    BACKFILL_MAX_QUEUE_T2: PositiveInt = Field(default=40000, description="Most queued T2 backfill jobs")
    BACKFILL_MAX_ATTEMPTS: PositiveInt = Field(
        default=5, description="Attempts before a backfill job goes to the DLQ"
    )
    BACKFILL_RETRY_BASE_SECONDS: PositiveFloat = Field(
        default=2.0, description="First retry delay (clock seconds); doubles per attempt, jittered"
    )
    BACKFILL_RETRY_MAX_SECONDS: PositiveFloat = Field(default=300.0, description="Longest retry delay")
    GAP_CONFIRM_EMPTY_ANSWERS: PositiveInt = Field(
        default=4,
        description="Successful answers lacking a minute before it counts as 'no trades' (from 2 providers when 2 are routable)",
    )
    GAP_SCAN_INTERVAL_SEC: PositiveFloat = Field(
        default=300.0, description="Clock seconds between periodic full gap scans of the lookback windows"
    )
    SLO_SAMPLE_INTERVAL_SEC: PositiveFloat = Field(
        default=30.0, description="Clock seconds between SLO samples"
    )
    BACKFILL_MAX_RANGE_DAYS: PositiveInt = Field(
        default=400, description="Longest range one backfill request takes"
    )
    BACKFILL_BATCH_SIZE: PositiveInt = Field(
        default=5000,
        description="Most bars per store write (one transaction) of a backfill job; larger answers are written in several",
    )
    BACKFILL_LOOKBACK_DAYS_1M: NonNegativeInt = Field(
        default=3, description="Calendar days of 1m bars made complete on start"
    )
    BACKFILL_LOOKBACK_DAYS_1D: NonNegativeInt = Field(
        default=450, description="Calendar days of daily bars made complete on start"
    )
    BACKFILL_LOOKBACK_DAYS_5M: NonNegativeInt = Field(
        default=30, description="Calendar days of native 5m bars fetched for tracked symbols"
    )
    BACKFILL_TRACKED_SESSIONS: PositiveInt = Field(
        default=200, description="Daily sessions every tracked symbol is backfilled to"
    )

    # What is tracked, how fresh it is, and how long it is kept (issue 14)
    RETENTION_DAYS_5M: NonNegativeInt = Field(
        default=90, description="Days of 5m bars kept; older ones are deleted (0 keeps all)"
    )
    RETENTION_DAYS_1M: NonNegativeInt = Field(
        default=0,
        description="Days of 1m bars kept on SQLite and plain PostgreSQL (0 keeps all;"
        " TimescaleDB keeps its own policies)",
    )
    RETENTION_DAYS_JOB_RUNS: NonNegativeInt = Field(
        default=90,
        description="Days a finished job run (its params, counters and log lines) is kept after it"
        " ended; queued and running runs are never deleted (0 keeps all)",
    )
    COVERAGE_REFRESH_SEC: PositiveFloat = Field(
        default=3600.0,
        description="Clock seconds the monitor_coverage_health schedule is expected to take between"
        " snapshots; the cached snapshot lives twice as long",
    )
    COVERAGE_DAILY_MIN_SHARE: Share = Field(
        default=0.9, description="SLA: share of tracked symbols that must hold the last closed session"
    )
    INDEX_MIN_KEEP_SHARE: Share = Field(
        default=0.9,
        description="A refresh returning fewer members than this share of the last count changes nothing",
    )
    INDEX_INACTIVE_TRACKED_DAYS: NonNegativeInt = Field(
        default=365, description="Days an index leaver stays in the tracked set"
    )
    INDEX_SOURCES: IndexSources = Field(
        default_factory=lambda: list(DEFAULT_INDEX_SOURCES),
        description="Where index constituent lists come from, tried in order (fmp, wikipedia, sim; fmp"
        " only with FMP_API_KEY). Empty turns index refreshes and the scheduler's tracking pass off"
        " (the demo always uses the sim's lists)",
    )
    INDEX_WIKIPEDIA_URL: VendorUrl = Field(
        default=None, description="Base URL of the Wikipedia list pages (default https://en.wikipedia.org)"
    )
    UNIVERSE_NASDAQ_TRADER_URL: VendorUrl = Field(
        default=None,
        description="Base URL of the NASDAQ Trader symbol directory (default https://www.nasdaqtrader.com)",
    )

    # Scheduler, task runs and their hooks (seed 004)
    SCHEDULER_CATALOG_SEED: bool = Field(
        default=True,
        description="On first start, write every catalog task's default schedule (`mds schedules seed` does it any time)",
    )
    SCHEDULER_RELOAD_SEC: PositiveFloat = Field(
        default=2.0, description="Wall seconds between the leader's re-reads of the stored schedules"
    )
    TASK_QUEUES: TaskQueues = Field(
        default_factory=lambda: ["default", "market_data"],
        description="Task queues this deployment has (schedule metadata `queue` must name one); workers serve all",
    )
    TASK_WORKERS: PositiveInt = Field(
        default=2, description="Task runs at once per queue in each worker process"
    )
    HOOK_TIMEOUT_SEC: PositiveFloat = Field(
        default=5.0, description="Seconds a Discord or Pushgateway hook may take before it counts as failed"
    )
    DISCORD_WEBHOOK_SYSTEM_STATUS: SecretStr | None = Field(
        default=None,
        description="Discord webhook for alias system_status; failures go here without a per-job hook",
    )
    DISCORD_WEBHOOK_SIGNALS: SecretStr | None = Field(
        default=None, description="Discord webhook for alias signals"
    )
    DISCORD_WEBHOOK_PORTFOLIO: SecretStr | None = Field(
        default=None, description="Discord webhook for alias portfolio"
    )
    DISCORD_WEBHOOK_MORNING_BREW: SecretStr | None = Field(
        default=None, description="Discord webhook for alias morning_brew"
    )
    DISCORD_WEBHOOK_PLAYGROUND: SecretStr | None = Field(
        default=None, description="Discord webhook for alias playground"
    )

    # Redis / Rate-Limit Coordinator
    RLC_URL: str | None = Field(
        default=None,
        description="HTTP endpoint of the external Rate-Limit Coordinator (seed 003); used by an HTTP "
        "client for it, not yet active (its jobs arrive on RLC_REDIS_JOBS_KEY today)",
    )
    RLC_REDIS_URL: str = Field(
        default="redis://localhost:6379/0", description="Redis for queues, bus and cache"
    )
    RLC_REDIS_JOBS_KEY: str = LIVE_JOBS_KEY
    RLC_REDIS_BACKFILL_KEYS: BackfillKeys = Field(
        default_factory=BackfillKeys, description="Redis lists of backfill jobs per tier"
    )

    # Cache of provider responses (seconds)
    CACHE_TTL_QUOTES_L1_SEC: PositiveFloat = 2.0
    CACHE_TTL_OPTIONS_CHAIN_SEC: PositiveFloat = Field(
        default=60.0,
        description="Seconds a fetched option chain (priced) is served before it is fetched again",
    )

    # Options analytics (issue 16)
    RISK_FREE_RATE: float = Field(
        default=0.04,
        ge=-0.05,
        le=0.5,
        description="Continuously compounded risk-free rate for implied volatility when the macro"
        " series DGS3MO is not stored (a fraction: 0.04 is 4%)",
    )
    OPTIONS_SYMBOLS: SymbolList = Field(
        default_factory=list,
        description="Underlyings whose chains and metrics the refresh_options_metrics task refreshes"
        " (comma list; WebSocket subscribers' symbols are refreshed too)",
    )
    OPTIONS_MAX_DAYS: int = Field(
        default=90,
        ge=35,
        le=1100,
        description="Expirations MDS fetches and serves, in calendar days out (at least 35: iv30 needs an"
        " expiration past 30 days); chain reads over all expirations and strategies default to it",
    )

    # Macro factors (FRED)
    MACRO_FACTORS: MacroFactorList = Field(
        default_factory=lambda: list(DEFAULT_MACRO_FACTORS),
        description="FRED series refreshed by refresh_macro_factors and shown by /factors/macro",
    )
    MACRO_HISTORY_DAYS: PositiveInt = Field(
        default=730,
        description="Days of history (with every vintage) a refresh asks for when a factor is new",
    )

    # Serialised responses of closed bar ranges, per API process (see services/bar_cache.py)
    BARS_RESPONSE_CACHE_MB: NonNegativeInt = Field(default=64, description="0 turns the cache off")
    BARS_RESPONSE_CACHE_SEC: PositiveFloat = Field(
        default=300.0,
        description="Wall seconds an entry lives; bounds how long a write made outside MDS goes unseen",
    )

    # Analysis snapshots
    ANALYSIS_CACHE_TTL_SEC: PositiveFloat = Field(
        default=86_400.0, description="Expiry of a cached analysis snapshot"
    )
    ANALYSIS_ADJUST: Literal["split", "all"] = Field(
        default="split",
        description="The adjustment indicators and snapshots are computed on: split, or all (dividends too)",
    )

    # Corporate actions
    CORPORATE_ACTIONS_HISTORY_DAYS: PositiveInt = Field(
        default=3650, description="Days of splits and dividends a refresh asks each provider for"
    )
    CORPORATE_ACTIONS_AHEAD_DAYS: NonNegativeInt = Field(
        default=90,
        description="Days past today a refresh asks for (actions announced ahead of their ex-date)",
    )
    CORPORATE_ACTIONS_JUMP_THRESHOLD: PositiveFloat = Field(
        default=0.4,
        description="Overnight move (fraction, either way) of a daily bar that no known action explains"
        " above which it is flagged as a suspected unannounced action",
    )

    # Company profiles (market capitalisation)
    PROFILE_MAX_AGE_DAYS: NonNegativeFloat = Field(
        default=7.0,
        description="A profile refresh skips symbols whose stored profile is younger than this (0: refresh all)",
    )

    # Cross-vendor reconciliation (mds/reconcile)
    RECONCILE_SAMPLE_PER_TIER: NonNegativeInt = Field(
        default=5, description="Symbols of each tier reconciled per run"
    )
    RECONCILE_LOOKBACK_SESSIONS: PositiveInt = Field(
        default=1, description="Whole past sessions compared per sampled symbol"
    )
    RECONCILE_REVISION_WINDOW_HOURS: float = Field(
        default=24.0,
        ge=0,
        description="Hours after which vendors no longer revise a bar: only sessions closed this long ago"
        " are compared, and only older 'no trades' minutes re-checked",
    )
    RECONCILE_PRICE_TOLERANCE_TICKS: float = Field(
        default=1.0, ge=0, description="Prices within this many ticks (0.01) agree"
    )
    RECONCILE_VOLUME_TOLERANCE_PCT: float = Field(
        default=10.0, ge=0, le=100, description="Volumes within this percent of the larger agree"
    )
    RECONCILE_DISAGREEMENT_THRESHOLD: Share = Field(
        default=0.99, description="A provider x symbol scored below this is flagged in /stats/quality"
    )
    RECONCILE_MAX_DISAGREEMENTS_PER_SYMBOL: PositiveInt = Field(
        default=50, description="Most differing bars stored per symbol check (the score counts all)"
    )
    RECONCILE_EMPTY_RECHECK_SESSIONS: NonNegativeInt = Field(
        default=5,
        description="Sessions before the revision window whose 'no trades' minutes are re-checked",
    )
    RECONCILE_KEEP_DAYS: PositiveInt = Field(
        default=90, description="Days reconciliation scores and disagreements are kept"
    )

    # WebSocket streaming
    WS_REPLAY_MAX_BARS: PositiveInt = Field(
        default=120,
        description="Closed 1m bars in a stream snapshot, and how far back (in bars) a written bar is still streamed",
    )
    WS_REPLAY_MAX_MESSAGES: PositiveInt = Field(
        default=5000,
        description="Stream messages kept per symbol for resuming clients (the replay buffer)",
    )
    WS_REPLAY_TTL_SEC: PositiveInt = Field(
        default=4 * 3600,
        description="Idle seconds before a symbol's replay buffer expires (Redis; a new epoch follows)",
    )
    WS_CLIENT_QUEUE_MAX: PositiveInt = Field(
        default=1000,
        description="Messages waiting for one WebSocket client; when full the oldest is dropped and announced",
    )
    WS_SLOW_CLIENT_SEC: PositiveFloat = Field(
        default=30.0,
        description="Seconds a client may keep losing messages before it is closed with code 1013",
    )
    WS_PING_INTERVAL_SEC: PositiveFloat = Field(
        default=20.0, description="Seconds between the server's WebSocket pings (restart to change)"
    )
    WS_PING_TIMEOUT_SEC: PositiveFloat = Field(
        default=20.0,
        description="Seconds a peer has to answer a ping before it is dropped (restart to change)",
    )
    WS_SUBSCRIBE_LIMIT: RateLimitText = Field(
        default="20/second",
        description="subscribe/unsubscribe messages allowed per connection (a `limits` rate)",
    )
    WS_MAX_SYMBOLS: PositiveInt = Field(
        default=1000, description="Symbols one WebSocket connection may subscribe to at once"
    )

    # Vendor keys (used by the adapters; unset means "unconfigured", never an error)
    FINNHUB_API_KEY: SecretStr | None = _key("Finnhub")
    ALPHA_VANTAGE_API_KEY: SecretStr | None = _key("Alpha Vantage")
    FMP_API_KEY: SecretStr | None = _key("FMP")
    TWELVE_DATA_API_KEY: SecretStr | None = _key("Twelve Data")
    POLYGON_API_KEY: SecretStr | None = _key("Polygon")
    ALPACA_API_KEY_ID: SecretStr | None = _key("Alpaca (key id)")
    ALPACA_API_SECRET_KEY: SecretStr | None = _key("Alpaca (secret)")
    TIINGO_API_KEY: SecretStr | None = _key("Tiingo")
    FRED_API_KEY: SecretStr | None = _key("FRED")

    # Per-vendor endpoints and client-side limits, read by providers/http.py as <VENDOR>_*
    YAHOO_BASE_URL: VendorUrl = _url("Yahoo")
    YAHOO_RATE_PER_MIN: PositiveFloat | None = _rate("Yahoo")
    STOOQ_BASE_URL: VendorUrl = _url("Stooq")
    STOOQ_RATE_PER_MIN: PositiveFloat | None = _rate("Stooq")
    FINNHUB_BASE_URL: VendorUrl = _url("Finnhub")
    FINNHUB_RATE_PER_MIN: PositiveFloat | None = _rate("Finnhub")
    ALPHAVANTAGE_BASE_URL: VendorUrl = _url("Alpha Vantage")
    ALPHAVANTAGE_RATE_PER_MIN: PositiveFloat | None = _rate("Alpha Vantage")
    POLYGON_BASE_URL: VendorUrl = _url("Polygon")
    POLYGON_RATE_PER_MIN: PositiveFloat | None = _rate("Polygon")
    FMP_BASE_URL: VendorUrl = _url("FMP")
    FMP_RATE_PER_MIN: PositiveFloat | None = _rate("FMP")
    TWELVEDATA_BASE_URL: VendorUrl = _url("Twelve Data")
    TWELVEDATA_RATE_PER_MIN: PositiveFloat | None = _rate("Twelve Data")
    ALPACA_BASE_URL: VendorUrl = _url("Alpaca")
    ALPACA_RATE_PER_MIN: PositiveFloat | None = _rate("Alpaca")
    TIINGO_BASE_URL: VendorUrl = _url("Tiingo")
    TIINGO_RATE_PER_MIN: PositiveFloat | None = _rate("Tiingo")
    FRED_BASE_URL: VendorUrl = _url("FRED")
    FRED_RATE_PER_MIN: PositiveFloat | None = _rate("FRED")
    RATE_LIMIT_STORAGE_URI: str = Field(
        default="memory://",
        description="`limits` storage for provider budgets; redis://… shares them across workers",
    )

    # Observability
    VIZTRACER_ENABLED: bool = Field(
        default=False,
        description="Capture a VizTracer trace of each API request slower than VIZTRACER_MIN_MS",
    )
    VIZ_OUT_DIR: str = Field(default="./var/traces", description="Where VizTracer traces go")
    VIZTRACER_MIN_MS: PositiveFloat = Field(
        default=500.0, description="A request slower than this (ms) keeps its VizTracer trace"
    )
    VIZTRACER_MAX_FILES: PositiveInt = Field(
        default=20, description="VizTracer traces kept in VIZ_OUT_DIR; the oldest go first"
    )
    VIZTRACER_MAX_FILE_MB: PositiveFloat = Field(
        default=20.0, description="A VizTracer trace larger than this (MB) is not kept"
    )
    TRACING_ENABLED: bool = Field(
        default=True,
        description="OpenTelemetry spans (exported to OTEL_EXPORTER_OTLP_ENDPOINT); false: off even with an endpoint",
    )
    TRACING_READ_SAMPLE_RATIO: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="Share of GET requests traced (one with a sampled traceparent always is); "
        "other requests, jobs and provider calls are always traced",
    )
    OTEL_EXPORTER_OTLP_ENDPOINT: str | None = Field(
        default=None,
        description="OTLP/HTTP collector for spans (e.g. http://127.0.0.1:4318); unset: no spans are recorded",
    )
    OTEL_SERVICE_NAME: str = Field(default="mds", description="service.name of exported spans")
    ADMIN_SESSION_MINUTES: PositiveInt = Field(
        default=480, description="How long an /admin login lasts before the key is asked again"
    )
    LOG_LEVEL: str = Field(default="INFO", description="Log level of the service and uvicorn")

    # Serving
    MDS_HOST: str = Field(default="127.0.0.1", description="Bind address of the API")
    MDS_PORT: PositiveInt = Field(default=8001, description="Port of the API")

    # Access (README "Access"): /ops/* and admin routes always need a key of their role.
    AUTH_READ_REQUIRED: bool = Field(
        default=False, description="Market data, analysis and stats reads need a `read` key"
    )
    AUTH_METRICS_REQUIRED: bool = Field(default=False, description="/metrics needs a `read` key")
    AUTH_CACHE_SEC: Annotated[float, Field(ge=0, le=300)] = Field(
        default=5.0, description="Seconds a checked key is trusted before the store is asked again"
    )
    AUTH_FAILURE_LIMIT: RateLimitText = Field(
        default="20/minute",
        description="Failed authentications allowed per client address (a `limits` rate, e.g. 20/minute)",
    )
    CORS_ALLOW_ORIGINS: OriginList = Field(
        default_factory=list,
        description="Origins allowed cross-origin requests, comma-separated (empty: CORS off)",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Read from the mapping load_settings was given, so tests and hot reload never
        # touch os.environ. Only init kwargs and that environment count; no .env magic.
        environ = _ENVIRON.get()
        if environ is not None and isinstance(env_settings, EnvSettingsSource):
            env_settings.env_vars = parse_env_vars(environ, True, False, None)
        return (init_settings, env_settings)

    @model_validator(mode="after")
    def _settings_agree(self) -> Self:
        """The rules that join two settings; each blames the one named in its context."""
        if self.BREAKER_DEMOTE_THRESHOLD >= self.BREAKER_PROMOTE_THRESHOLD:
            raise _conflict(
                "BREAKER_PROMOTE_THRESHOLD",
                "must be above BREAKER_DEMOTE_THRESHOLD "
                f"(got {self.BREAKER_PROMOTE_THRESHOLD} <= {self.BREAKER_DEMOTE_THRESHOLD})",
            )
        if self.DB_POOL_MIN_SIZE > self.DB_POOL_MAX_SIZE:
            raise _conflict("DB_POOL_MIN_SIZE", f"must not exceed DB_POOL_MAX_SIZE ({self.DB_POOL_MAX_SIZE})")
        # The default reserve is cut to fit a small pool (the store keeps one for backfills);
        # a reserve set explicitly that leaves backfills no connection is a contradiction.
        reserve = self.LIVE_RESERVED_DB_CONNECTIONS
        if "LIVE_RESERVED_DB_CONNECTIONS" in self.model_fields_set and reserve >= self.DB_POOL_MAX_SIZE:
            raise _conflict(
                "LIVE_RESERVED_DB_CONNECTIONS",
                f"must be below DB_POOL_MAX_SIZE ({self.DB_POOL_MAX_SIZE}), "
                f"so backfills keep a connection (got {reserve})",
            )
        if self.USE_RLC and self.QUEUE_BACKEND != "redis":
            # The external coordinator's jobs arrive in Redis (RLC_REDIS_JOBS_KEY); without the
            # Redis backend nothing would consume them, and silence is worse than a refusal.
            raise _conflict(
                "USE_RLC", "USE_RLC=true needs QUEUE_BACKEND=redis (jobs arrive on RLC_REDIS_JOBS_KEY)"
            )
        return self

    def policy(self, capability: Capability) -> list[str]:
        """The provider order for ``capability``: the explicit POLICY_* or the mode's default."""
        explicit: list[str] | None = getattr(self, f"POLICY_{capability.value.upper()}")
        if explicit is not None:
            return list(explicit)
        return list(DEFAULT_POLICIES[self.MARKET_PROVIDER_POLICY][capability])

    def cadence(self, tier: Tier) -> Cadence:
        by_tier: dict[Tier, Cadence] = {
            Tier.T0: self.CADENCE_T0,
            Tier.T1: self.CADENCE_T1,
            Tier.T2: self.CADENCE_T2,
        }
        return by_tier[tier]

    def backfill_concurrency(self, tier: Tier) -> int:
        return {
            Tier.T0: self.BACKFILL_MAX_CONCURRENCY_T0,
            Tier.T1: self.BACKFILL_MAX_CONCURRENCY_T1,
            Tier.T2: self.BACKFILL_MAX_CONCURRENCY_T2,
        }[tier]

    def backfill_max_queue(self, tier: Tier) -> int:
        return {
            Tier.T0: self.BACKFILL_MAX_QUEUE_T0,
            Tier.T1: self.BACKFILL_MAX_QUEUE_T1,
            Tier.T2: self.BACKFILL_MAX_QUEUE_T2,
        }[tier]

    @property
    def sqlite_path(self) -> Path | None:
        """The file behind a ``sqlite:///path`` URL (``sqlite:///:memory:`` gives None)."""
        if not self.DATABASE_URL.startswith("sqlite:///"):
            return None
        rest = self.DATABASE_URL[len("sqlite:///") :]
        return None if rest == ":memory:" else Path(rest)

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict, secrets shown as set/unset only (for /ops/config and logs).

        URL settings keep their shape with the password hidden (``redis://:***@host``):
        DATABASE_URL, RLC_REDIS_URL and RATE_LIMIT_STORAGE_URI carry it in their userinfo.
        """
        out = {k: redact(v) if isinstance(v, str) else v for k, v in self.model_dump(mode="json").items()}
        for name in _SECRETS:
            out[name] = "set" if getattr(self, name) is not None else None
        return out


_SECRETS = frozenset(
    name
    for name, f in Settings.model_fields.items()
    if f.annotation is not None and "SecretStr" in str(f.annotation)
)


def _nested(name: str) -> type[BaseModel] | None:
    field = Settings.model_fields.get(name)
    ann = field.annotation if field is not None else None
    return ann if isinstance(ann, type) and issubclass(ann, _Nested) else None


def _setting_names() -> set[str]:
    names: set[str] = set()
    for name in Settings.model_fields:
        names.add(name)
        sub = _nested(name)
        if sub is not None:
            names.update(f"{name}__{part}" for part in sub.model_fields)
    return names


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """Environment variables in a settings family that name no setting (likely typos)."""
    known = _setting_names()
    return sorted(k for k in environ if k.startswith(_FAMILIES) and k not in known and k not in _NOT_SETTINGS)


def _setting_at(loc: tuple[int | str, ...]) -> str:
    """The setting an error location points into, spelled as in the environment
    (``("CADENCE_T1", "bars_1m")`` -> ``CADENCE_T1__bars_1m``; list indexes dropped)."""
    if not loc:
        return "settings"
    name = str(loc[0])
    sub = _nested(name)
    if sub is not None and len(loc) > 1 and loc[1] in sub.model_fields:
        return f"{name}__{loc[1]}"
    return name


def _refusal(exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    if err["type"] == _CONFLICT:
        return ConfigError(str((err.get("ctx") or {})["setting"]), err["msg"])
    setting = _setting_at(err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if setting not in _SECRETS and isinstance(value, str | int | float):
        # A mistyped URL setting still carries its password: quote it hidden.
        shown = redact(value) if isinstance(value, str) else value
        message += f" (got {shown!r})"
    return ConfigError(setting, message)


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = None,
    **overrides: Any,
) -> Settings:
    """Read, validate and return settings, or raise ConfigError naming the first bad one.

    ``environ`` defaults to the process environment; ``overrides`` win over both.
    """
    env = dict(os.environ if environ is None else environ)
    if env_file is not None:
        env = {**read_env_file(Path(env_file)), **env}
    unknown = unknown_settings(env)
    if unknown:
        raise ConfigError(unknown[0], "is not a setting MDS knows (a typo?)")
    token = _ENVIRON.set(env)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _refusal(exc) from None
    except SettingsError as exc:
        # A whole nested setting (TIER_MAXS=…) that is not a JSON object.
        found = re.search(r'field "([^"]+)"', str(exc))
        raise ConfigError(
            found.group(1) if found else "settings", "is not valid JSON; or set its parts as NAME__part"
        ) from None
    finally:
        _ENVIRON.reset(token)


def read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        raise ConfigError("MDS_ENV_FILE", f"{path} does not exist")
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.split(" #", 1)[0].strip().strip('"').strip("'")
        out[key.strip()] = value
    return out
