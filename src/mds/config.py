"""Settings: the seeds' names and defaults, validation, and loading.

Settings are read once into a ``Settings`` object and passed in; no module reads
the environment on its own. ``load_settings`` refuses an invalid config with a
``ConfigError`` naming the setting, so a running service can keep its last good one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from mds.constants import LIVE_JOBS_KEY, backfill_jobs_key
from mds.domain.models import Capability, Tier
from mds.errors import ConfigError

#: Every provider MDS can route to. ``yfinance`` is the seeds' name for Yahoo.
KNOWN_PROVIDERS = (
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
)
PROVIDER_ALIASES = {"yfinance": "yahoo", "twelve_data": "twelvedata", "alpha_vantage": "alphavantage"}

#: Default policy orders per MARKET_PROVIDER_POLICY (seed 004: paid FMP -> Twelve Data ->
#: yfinance; free Finnhub -> Twelve Data -> yfinance). Explicit POLICY_* settings win.
DEFAULT_POLICIES: dict[str, dict[Capability, list[str]]] = {
    "paid": {
        Capability.BARS_1M: ["fmp", "twelvedata", "yahoo"],
        Capability.EOD: ["fmp", "twelvedata", "yahoo", "stooq"],
        Capability.QUOTES_L1: ["fmp", "twelvedata", "yahoo"],
        Capability.OPTIONS_CHAIN: ["polygon", "yahoo"],
    },
    "free": {
        Capability.BARS_1M: ["finnhub", "twelvedata", "yahoo"],
        Capability.EOD: ["finnhub", "twelvedata", "yahoo", "stooq"],
        Capability.QUOTES_L1: ["finnhub", "twelvedata", "yahoo"],
        Capability.OPTIONS_CHAIN: ["yahoo"],
    },
}

#: Setting families: an environment variable that starts with one of these but names no
#: setting is refused, so a typo is an error instead of a silently ignored value.
_FAMILIES = (
    "POLICY_",
    "CADENCE_",
    "BACKFILL_",
    "BREAKER_",
    "TIER_MAXS",
    "RLC_",
    "WS_REPLAY_",
    "BARS_RESPONSE_CACHE_",
    "LIVE_",
    "MDS_",
    *(
        f"{v}_"
        for v in (
            "YAHOO",
            "STOOQ",
            "FINNHUB",
            "ALPHAVANTAGE",
            "ALPHA_VANTAGE",
            "POLYGON",
            "FMP",
            "TWELVEDATA",
            "TWELVE_DATA",
            "ALPACA",
            "TIINGO",
        )
    ),
)
#: Variables under those prefixes that belong to the test harness, not the service.
_NOT_SETTINGS = {"MDS_REQUIRE_SERVICES", "MDS_TEST_DATABASE_URL", "MDS_TEST_REDIS_URL", "MDS_ENV_FILE"}


class _Nested(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TierMaxs(_Nested):
    T0: int = Field(default=1200, description="Most symbols in T0")
    T1: int = Field(default=3000, description="Most symbols in T1; the rest are T2")


# Cadences: bars_1m and quotes_l1 in seconds between sweeps; eod in trading sessions
# between end-of-day fetches (1 = after every close). The seeds disagree on units
# (000 says "minutes for bars" and then "every 60s"); seconds is what their examples mean.
class CadenceT0(_Nested):
    bars_1m: int | None = 60
    quotes_l1: int | None = 5
    eod: int | None = 1


class CadenceT1(_Nested):
    bars_1m: int | None = 300
    quotes_l1: int | None = 15
    eod: int | None = 1


class CadenceT2(_Nested):
    bars_1m: int | None = None
    quotes_l1: int | None = None
    eod: int | None = 1


class BackfillKeys(_Nested):
    T0: str = backfill_jobs_key("T0")
    T1: str = backfill_jobs_key("T1")
    T2: str = backfill_jobs_key("T2")


#: The environment ``load_settings`` was handed; None means the process environment.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("mds_environ", default=None)

ProviderList = Annotated[list[str] | None, NoDecode]


class Settings(BaseSettings):
    """All settings, by the seeds' names. Environment variables override the defaults."""

    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        case_sensitive=True,
        extra="ignore",
        validate_default=True,
    )

    # Storage
    DATABASE_URL: str = "sqlite:///./var/mds.db"
    DB_POOL_MIN_SIZE: int = Field(default=1, description="PostgreSQL pool: connections kept open")
    DB_POOL_MAX_SIZE: int = Field(default=10, description="PostgreSQL pool: most connections")
    DB_STATEMENT_TIMEOUT_MS: int = Field(default=30_000, description="PostgreSQL statement_timeout")
    DB_RETRY_MAX_SECONDS: float = Field(
        default=60.0, description="How long a write keeps retrying through a database outage"
    )

    # Routing
    MARKET_PROVIDER_POLICY: Literal["paid", "free"] = "paid"
    POLICY_BARS_1M: ProviderList = None
    POLICY_EOD: ProviderList = None
    POLICY_QUOTES_L1: ProviderList = None
    POLICY_OPTIONS_CHAIN: ProviderList = None
    ALLOW_SOURCE_OVERRIDE: bool = True
    BREAKER_DEMOTE_THRESHOLD: float = 0.55
    BREAKER_PROMOTE_THRESHOLD: float = 0.70
    BREAKER_FAILURE_THRESHOLD: int = Field(
        default=3, description="Consecutive failures that open a closed breaker"
    )
    BREAKER_OPEN_SECONDS: float = Field(
        default=30.0, description="How long an open breaker waits before a half-open probe"
    )
    RECENT_LATENCY_CAP_MS: float = 500.0
    PROVIDER_TIMEOUT_SEC: float = 10.0

    # Universe and cadence
    TIER_MAXS: TierMaxs = TierMaxs()
    CADENCE_T0: CadenceT0 = CadenceT0()
    CADENCE_T1: CadenceT1 = CadenceT1()
    CADENCE_T2: CadenceT2 = CadenceT2()
    UNIVERSE_FILE: str | None = None
    MARKET_CALENDAR: str = "XNYS"

    # Ingestion modes
    QUEUE_BACKEND: Literal["memory", "redis"] = Field(
        default="memory",
        description="memory: in-process queues, bus and cache (one `mds serve`); redis: shared through RLC_REDIS_URL",
    )
    USE_RLC: bool = False
    LOCAL_SWEEP_ENABLED: bool = True
    LIVE_BATCH_SIZE: int = 500
    LIVE_MAX_WINDOW_MINUTES: int = Field(
        default=120, description="A live fetch reaches back at most this far; older holes backfill"
    )
    # Capacity reserved for live work, which backfills cannot take (see docs/decisions.md).
    LIVE_WORKERS: int = Field(
        default=4, description="Live worker tasks per worker process; backfills never run on them"
    )
    LIVE_MAX_CONCURRENCY: int = Field(default=16, description="Symbols one live job fetches at once")
    LIVE_RESERVED_RATE_SHARE: float = Field(
        default=0.25,
        description="Share of every provider's rate limit that backfill calls may not use (0 <= s < 1)",
    )
    LIVE_RESERVED_DB_CONNECTIONS: int = Field(
        default=2,
        description="PostgreSQL pool connections backfill work may not hold (< DB_POOL_MAX_SIZE; "
        "the default is cut to fit a smaller pool)",
    )

    # Backfill
    BACKFILL_CHUNK_MINUTES: int = 1440
    BACKFILL_MAX_CONCURRENCY_T0: int = 4
    BACKFILL_MAX_CONCURRENCY_T1: int = 2
    BACKFILL_MAX_CONCURRENCY_T2: int = 1
    BACKFILL_DISPATCH_RATE_PER_SEC: float = 2.0
    BACKFILL_MAX_QUEUE_T0: int = 20000
    BACKFILL_MAX_QUEUE_T1: int = 20000
    BACKFILL_MAX_QUEUE_T2: int = 40000
    BACKFILL_MAX_ATTEMPTS: int = 5
    BACKFILL_RETRY_BASE_SECONDS: float = Field(
        default=2.0, description="First retry delay (clock seconds); doubles per attempt, jittered"
    )
    BACKFILL_RETRY_MAX_SECONDS: float = 300.0
    GAP_CONFIRM_EMPTY_ANSWERS: int = Field(
        default=4,
        description="Successful answers lacking a minute before it counts as 'no trades' (from 2 providers when 2 are routable)",
    )
    GAP_SCAN_INTERVAL_SEC: float = Field(
        default=300.0, description="Clock seconds between periodic full gap scans of the lookback windows"
    )
    SLO_SAMPLE_INTERVAL_SEC: float = Field(default=30.0, description="Clock seconds between SLO samples")
    BACKFILL_MAX_RANGE_DAYS: int = 400
    BACKFILL_BATCH_SIZE: int = 5000
    BACKFILL_LOOKBACK_DAYS_1M: int = Field(
        default=3, description="Calendar days of 1m bars made complete on start"
    )
    BACKFILL_LOOKBACK_DAYS_1D: int = Field(
        default=450, description="Calendar days of daily bars made complete on start"
    )

    # Redis / Rate-Limit Coordinator
    RLC_URL: str | None = None
    RLC_REDIS_URL: str = "redis://localhost:6379/0"
    RLC_REDIS_JOBS_KEY: str = LIVE_JOBS_KEY
    RLC_REDIS_BACKFILL_KEYS: BackfillKeys = BackfillKeys()

    # Cache of provider responses, per capability (seconds)
    CACHE_TTL_BARS_1M_SEC: float = 30.0
    CACHE_TTL_EOD_SEC: float = 3600.0
    CACHE_TTL_QUOTES_L1_SEC: float = 2.0
    CACHE_TTL_OPTIONS_CHAIN_SEC: float = 60.0

    # Serialised responses of closed bar ranges, per API process (see services/bar_cache.py)
    BARS_RESPONSE_CACHE_MB: int = Field(default=64, ge=0, description="0 turns the cache off")
    BARS_RESPONSE_CACHE_SEC: float = Field(
        default=300.0,
        gt=0,
        description="Wall seconds an entry lives; bounds how long a write made outside MDS goes unseen",
    )

    # Analysis snapshots
    ANALYSIS_CACHE_TTL_SEC: float = Field(
        default=86_400.0, description="Expiry of a cached analysis snapshot"
    )

    # WebSocket replay buffer
    WS_REPLAY_MAX_BARS: int = 120
    WS_REPLAY_TTL_SEC: int = 4 * 3600

    # Vendor keys (used by the adapters; unset means "unconfigured", never an error)
    FINNHUB_API_KEY: SecretStr | None = None
    ALPHA_VANTAGE_API_KEY: SecretStr | None = None
    FMP_API_KEY: SecretStr | None = None
    TWELVE_DATA_API_KEY: SecretStr | None = None
    POLYGON_API_KEY: SecretStr | None = None
    ALPACA_API_KEY_ID: SecretStr | None = None
    ALPACA_API_SECRET_KEY: SecretStr | None = None
    TIINGO_API_KEY: SecretStr | None = None
    FRED_API_KEY: SecretStr | None = None

    # Per-vendor endpoints and client-side limits (None: the vendor's documented default)
    YAHOO_BASE_URL: str | None = None
    YAHOO_RATE_PER_MIN: float | None = None
    STOOQ_BASE_URL: str | None = None
    STOOQ_RATE_PER_MIN: float | None = None
    FINNHUB_BASE_URL: str | None = None
    FINNHUB_RATE_PER_MIN: float | None = None
    ALPHAVANTAGE_BASE_URL: str | None = None
    ALPHAVANTAGE_RATE_PER_MIN: float | None = None
    POLYGON_BASE_URL: str | None = None
    POLYGON_RATE_PER_MIN: float | None = None
    FMP_BASE_URL: str | None = None
    FMP_RATE_PER_MIN: float | None = None
    TWELVEDATA_BASE_URL: str | None = None
    TWELVEDATA_RATE_PER_MIN: float | None = None
    ALPACA_BASE_URL: str | None = None
    ALPACA_RATE_PER_MIN: float | None = None
    TIINGO_BASE_URL: str | None = None
    TIINGO_RATE_PER_MIN: float | None = None
    RATE_LIMIT_STORAGE_URI: str = Field(
        default="memory://",
        description="`limits` storage for provider budgets; redis://… shares them across workers",
    )

    # Observability
    VIZTRACER_ENABLED: bool = False
    VIZ_OUT_DIR: str = "./var/traces"
    LOG_LEVEL: str = "INFO"

    # Serving
    MDS_HOST: str = "127.0.0.1"
    MDS_PORT: int = 8001

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

    @field_validator(
        "POLICY_BARS_1M", "POLICY_EOD", "POLICY_QUOTES_L1", "POLICY_OPTIONS_CHAIN", mode="before"
    )
    @classmethod
    def _split_policy(cls, v: Any) -> Any:
        # Accept the seeds' comma form (a,b,c) and their JSON-list form (["a","b"]).
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                import json

                v = json.loads(text)
            else:
                v = [p for p in (x.strip() for x in text.split(",")) if p]
        if isinstance(v, list):
            return [PROVIDER_ALIASES.get(str(p).strip().lower(), str(p).strip().lower()) for p in v]
        return v

    def policy(self, capability: Capability) -> list[str]:
        """The provider order for ``capability``: the explicit POLICY_* or the mode's default."""
        explicit = getattr(self, _POLICY_FIELDS[capability])
        if explicit is not None:
            return list(explicit)
        return list(DEFAULT_POLICIES[self.MARKET_PROVIDER_POLICY][capability])

    def cadence(self, tier: Tier) -> CadenceT0 | CadenceT1 | CadenceT2:
        return {Tier.T0: self.CADENCE_T0, Tier.T1: self.CADENCE_T1, Tier.T2: self.CADENCE_T2}[tier]

    def backfill_concurrency(self, tier: Tier) -> int:
        return getattr(self, f"BACKFILL_MAX_CONCURRENCY_{tier.value}")

    def backfill_max_queue(self, tier: Tier) -> int:
        return getattr(self, f"BACKFILL_MAX_QUEUE_{tier.value}")

    @property
    def sqlite_path(self) -> Path | None:
        """The file behind a ``sqlite:///path`` URL (``sqlite:///:memory:`` gives None)."""
        if not self.DATABASE_URL.startswith("sqlite:///"):
            return None
        rest = self.DATABASE_URL[len("sqlite:///") :]
        return None if rest == ":memory:" else Path(rest)

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict, secrets shown as set/unset only (for /ops/config and logs)."""
        out = self.model_dump(mode="json")
        for name, field in type(self).model_fields.items():
            if field.annotation is not None and "SecretStr" in str(field.annotation):
                out[name] = "set" if getattr(self, name) is not None else None
        return out


_POLICY_FIELDS = {
    Capability.BARS_1M: "POLICY_BARS_1M",
    Capability.EOD: "POLICY_EOD",
    Capability.QUOTES_L1: "POLICY_QUOTES_L1",
    Capability.OPTIONS_CHAIN: "POLICY_OPTIONS_CHAIN",
}


def _setting_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names.update(f"{name}__{sub}" for sub in ann.model_fields)
    return names


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """Environment variables in a settings family that name no setting (likely typos)."""
    known = _setting_names()
    return sorted(k for k in environ if k.startswith(_FAMILIES) and k not in known and k not in _NOT_SETTINGS)


def validate_settings(s: Settings) -> None:
    """Raise ConfigError naming the first bad setting; return None when the config is usable."""
    if not (0.0 <= s.BREAKER_DEMOTE_THRESHOLD < s.BREAKER_PROMOTE_THRESHOLD <= 1.0):
        setting = (
            "BREAKER_DEMOTE_THRESHOLD"
            if not 0.0 <= s.BREAKER_DEMOTE_THRESHOLD <= 1.0
            else "BREAKER_PROMOTE_THRESHOLD"
        )
        raise ConfigError(
            setting,
            "breaker thresholds must satisfy 0 <= BREAKER_DEMOTE_THRESHOLD < "
            f"BREAKER_PROMOTE_THRESHOLD <= 1 (got {s.BREAKER_DEMOTE_THRESHOLD}, "
            f"{s.BREAKER_PROMOTE_THRESHOLD})",
        )
    for cap, field_name in _POLICY_FIELDS.items():
        policy = s.policy(cap)
        if not policy:
            raise ConfigError(field_name, "policy is empty; list at least one provider")
        for p in policy:
            if p not in KNOWN_PROVIDERS:
                raise ConfigError(field_name, f"unknown provider {p!r}; known: {', '.join(KNOWN_PROVIDERS)}")
        if len(set(policy)) != len(policy):
            raise ConfigError(field_name, "a provider is listed twice")
    if not s.DATABASE_URL.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError("DATABASE_URL", "must start with sqlite:/// or postgresql://")
    if s.TIER_MAXS.T0 <= 0 or s.TIER_MAXS.T1 <= 0:
        raise ConfigError("TIER_MAXS__T0" if s.TIER_MAXS.T0 <= 0 else "TIER_MAXS__T1", "must be > 0")
    for tier in Tier:
        cadence = s.cadence(tier)
        for name, value in cadence.model_dump().items():
            if value is not None and value <= 0:
                raise ConfigError(f"CADENCE_{tier.value}__{name}", f"must be positive (got {value})")
    positive = [
        "RECENT_LATENCY_CAP_MS",
        "PROVIDER_TIMEOUT_SEC",
        "BREAKER_FAILURE_THRESHOLD",
        "BREAKER_OPEN_SECONDS",
        "LIVE_BATCH_SIZE",
        "LIVE_MAX_WINDOW_MINUTES",
        "LIVE_WORKERS",
        "LIVE_MAX_CONCURRENCY",
        "BACKFILL_CHUNK_MINUTES",
        "BACKFILL_MAX_CONCURRENCY_T0",
        "BACKFILL_MAX_CONCURRENCY_T1",
        "BACKFILL_MAX_CONCURRENCY_T2",
        "BACKFILL_DISPATCH_RATE_PER_SEC",
        "BACKFILL_MAX_QUEUE_T0",
        "BACKFILL_MAX_QUEUE_T1",
        "BACKFILL_MAX_QUEUE_T2",
        "BACKFILL_MAX_ATTEMPTS",
        "BACKFILL_RETRY_BASE_SECONDS",
        "BACKFILL_RETRY_MAX_SECONDS",
        "GAP_SCAN_INTERVAL_SEC",
        "GAP_CONFIRM_EMPTY_ANSWERS",
        "SLO_SAMPLE_INTERVAL_SEC",
        "BACKFILL_MAX_RANGE_DAYS",
        "BACKFILL_BATCH_SIZE",
        "WS_REPLAY_MAX_BARS",
        "WS_REPLAY_TTL_SEC",
        "MDS_PORT",
        "DB_POOL_MIN_SIZE",
        "DB_POOL_MAX_SIZE",
        "DB_STATEMENT_TIMEOUT_MS",
        "DB_RETRY_MAX_SECONDS",
        "CACHE_TTL_BARS_1M_SEC",
        "CACHE_TTL_EOD_SEC",
        "CACHE_TTL_QUOTES_L1_SEC",
        "CACHE_TTL_OPTIONS_CHAIN_SEC",
        "ANALYSIS_CACHE_TTL_SEC",
    ]
    for name in positive:
        if getattr(s, name) <= 0:
            raise ConfigError(name, f"must be positive (got {getattr(s, name)})")
    for name in ("BACKFILL_LOOKBACK_DAYS_1M", "BACKFILL_LOOKBACK_DAYS_1D"):
        if getattr(s, name) < 0:
            raise ConfigError(name, "must be >= 0")
    for name in type(s).model_fields:
        if name.endswith("_RATE_PER_MIN") and getattr(s, name) is not None and getattr(s, name) <= 0:
            raise ConfigError(name, f"must be positive (got {getattr(s, name)})")
        if (
            name.endswith("_BASE_URL")
            and getattr(s, name)
            and not str(getattr(s, name)).startswith(("http://", "https://"))
        ):
            raise ConfigError(name, "must be an http:// or https:// URL")
    if s.DB_POOL_MIN_SIZE > s.DB_POOL_MAX_SIZE:
        raise ConfigError("DB_POOL_MIN_SIZE", "must not exceed DB_POOL_MAX_SIZE")
    if not 0.0 <= s.LIVE_RESERVED_RATE_SHARE < 1.0:
        raise ConfigError(
            "LIVE_RESERVED_RATE_SHARE", f"must be at least 0 and below 1 (got {s.LIVE_RESERVED_RATE_SHARE})"
        )
    # The default reserve is cut to fit a small pool (the store keeps one for backfills);
    # a reserve set explicitly that leaves backfills no connection is a contradiction.
    reserve_set = "LIVE_RESERVED_DB_CONNECTIONS" in s.model_fields_set
    if s.LIVE_RESERVED_DB_CONNECTIONS < 0 or (
        reserve_set and s.LIVE_RESERVED_DB_CONNECTIONS >= s.DB_POOL_MAX_SIZE
    ):
        raise ConfigError(
            "LIVE_RESERVED_DB_CONNECTIONS",
            f"must be at least 0 and below DB_POOL_MAX_SIZE ({s.DB_POOL_MAX_SIZE}), "
            f"so backfills keep a connection (got {s.LIVE_RESERVED_DB_CONNECTIONS})",
        )
    if s.USE_RLC and s.QUEUE_BACKEND != "redis":
        # The external coordinator's jobs arrive in Redis (RLC_REDIS_JOBS_KEY); without the
        # Redis backend nothing would consume them, and silence is worse than a refusal.
        raise ConfigError(
            "USE_RLC", "USE_RLC=true needs QUEUE_BACKEND=redis (jobs arrive on RLC_REDIS_JOBS_KEY)"
        )


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
        env = {**_read_env_file(Path(env_file)), **env}
    unknown = unknown_settings(env)
    if unknown:
        raise ConfigError(unknown[0], "is not a setting MDS knows (a typo?)")
    try:
        s = _settings_from(env, overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = "__".join(str(p) for p in err["loc"]) or "settings"
        raise ConfigError(loc, err["msg"]) from None
    validate_settings(s)
    return s


def _settings_from(env: Mapping[str, str], overrides: Mapping[str, Any]) -> Settings:
    token = _ENVIRON.set(env)
    try:
        return Settings(**overrides)
    finally:
        _ENVIRON.reset(token)


def _read_env_file(path: Path) -> dict[str, str]:
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
