"""Settings: the seeds' names and defaults, constraints declared as types, refusals naming
the setting, and every setting either read by the code or marked "not yet active"."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

import mds
from mds.config import KNOWN_PROVIDERS, Settings, load_settings
from mds.domain.models import Capability, Tier
from mds.errors import ConfigError

SRC = Path(mds.__file__).parent
README = Path(__file__).resolve().parents[2] / "README.md"


def test_seed_defaults() -> None:
    s = load_settings({})
    assert s.DATABASE_URL == "sqlite:///./var/mds.db"
    assert (s.BREAKER_DEMOTE_THRESHOLD, s.BREAKER_PROMOTE_THRESHOLD) == (0.55, 0.70)
    assert s.RECENT_LATENCY_CAP_MS == 500
    assert (s.TIER_MAXS.T0, s.TIER_MAXS.T1) == (1200, 3000)
    assert (s.CADENCE_T0.bars_1m, s.CADENCE_T0.quotes_l1) == (60, 5)
    assert (s.CADENCE_T1.bars_1m, s.CADENCE_T1.quotes_l1) == (300, 15)
    assert s.CADENCE_T2.eod == 1 and s.CADENCE_T2.bars_1m is None
    assert s.BACKFILL_CHUNK_MINUTES == 1440
    assert [s.backfill_concurrency(t) for t in Tier] == [4, 2, 1]
    assert s.BACKFILL_DISPATCH_RATE_PER_SEC == 2.0
    assert [s.backfill_max_queue(t) for t in Tier] == [20000, 20000, 40000]
    assert s.RLC_REDIS_JOBS_KEY == "market:jobs"
    assert s.RLC_REDIS_BACKFILL_KEYS.T1 == "market:backfills:T1"
    assert (s.LIVE_BATCH_SIZE, s.BACKFILL_BATCH_SIZE) == (500, 5000)
    assert (s.WS_REPLAY_MAX_BARS, s.WS_REPLAY_TTL_SEC) == (120, 14400)
    assert (s.USE_RLC, s.LOCAL_SWEEP_ENABLED, s.ALLOW_SOURCE_OVERRIDE) == (False, True, True)


def test_market_provider_policy_picks_seed_orders_and_explicit_policy_wins() -> None:
    assert load_settings({}).policy(Capability.BARS_1M) == ["fmp", "twelvedata", "yahoo"]
    free = load_settings({"MARKET_PROVIDER_POLICY": "free"})
    assert free.policy(Capability.BARS_1M) == ["finnhub", "twelvedata", "yahoo"]
    explicit = load_settings({"MARKET_PROVIDER_POLICY": "free", "POLICY_BARS_1M": "polygon, yfinance"})
    assert explicit.policy(Capability.BARS_1M) == ["polygon", "yahoo"]  # yfinance is Yahoo
    assert explicit.policy(Capability.EOD) == free.policy(Capability.EOD)


def test_policies_accept_the_seeds_json_list_form() -> None:
    s = load_settings({"POLICY_QUOTES_L1": '["finnhub","yfinance"]'})
    assert s.policy(Capability.QUOTES_L1) == ["finnhub", "yahoo"]


def test_nested_seed_names_override_one_field_and_keep_the_rest() -> None:
    s = load_settings(
        {"CADENCE_T0__bars_1m": "30", "TIER_MAXS__T1": "10", "RLC_REDIS_BACKFILL_KEYS__T2": "x:T2"}
    )
    assert (s.CADENCE_T0.bars_1m, s.CADENCE_T0.quotes_l1) == (30, 5)
    assert (s.TIER_MAXS.T0, s.TIER_MAXS.T1) == (1200, 10)
    assert s.RLC_REDIS_BACKFILL_KEYS.T2 == "x:T2" and s.RLC_REDIS_BACKFILL_KEYS.T0 == "market:backfills:T0"


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"BREAKER_DEMOTE_THRESHOLD": "0.8"}, "BREAKER_PROMOTE_THRESHOLD"),
        ({"BREAKER_DEMOTE_THRESHOLD": "-0.1"}, "BREAKER_DEMOTE_THRESHOLD"),
        ({"BREAKER_PROMOTE_THRESHOLD": "1.5"}, "BREAKER_PROMOTE_THRESHOLD"),
        (
            {"BREAKER_DEMOTE_THRESHOLD": "0.7", "BREAKER_PROMOTE_THRESHOLD": "0.7"},
            "BREAKER_PROMOTE_THRESHOLD",
        ),
        ({"POLICY_EOD": "yahoo,nosuchvendor"}, "POLICY_EOD"),
        ({"POLICY_BARS_1M": " , "}, "POLICY_BARS_1M"),
        ({"POLICY_QUOTES_L1": "yahoo,yfinance"}, "POLICY_QUOTES_L1"),
        ({"POLICY_EOD": '["yahoo"'}, "POLICY_EOD"),
        ({"CADENCE_T1__quotes_l1": "0"}, "CADENCE_T1__quotes_l1"),
        ({"CADENCE_T0__bars_1m": "-5"}, "CADENCE_T0__bars_1m"),
        ({"TIER_MAXS__T0": "0"}, "TIER_MAXS__T0"),
        ({"TIER_MAXS": "lots"}, "TIER_MAXS"),  # a whole nested setting that is not JSON
        ({"BACKFILL_MAX_CONCURRENCY_T2": "0"}, "BACKFILL_MAX_CONCURRENCY_T2"),
        ({"BACKFILL_DISPATCH_RATE_PER_SEC": "0"}, "BACKFILL_DISPATCH_RATE_PER_SEC"),
        ({"LIVE_BATCH_SIZE": "lots"}, "LIVE_BATCH_SIZE"),
        ({"RECENT_LATENCY_CAP_MS": "0"}, "RECENT_LATENCY_CAP_MS"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"MARKET_PROVIDER_POLICY": "cheap"}, "MARKET_PROVIDER_POLICY"),
        ({"BACKFILL_MAX_CONCURENCY_T0": "3"}, "BACKFILL_MAX_CONCURENCY_T0"),  # a typo is refused
        ({"CADENCE_T0__bars_5m": "3"}, "CADENCE_T0__bars_5m"),
        ({"MDS_PORTT": "1"}, "MDS_PORTT"),
        ({"BARS_RESPONSE_CACHE_MB": "-1"}, "BARS_RESPONSE_CACHE_MB"),
        ({"BARS_RESPONSE_CACHE_SEC": "0"}, "BARS_RESPONSE_CACHE_SEC"),
        ({"BARS_RESPONSE_CACHE_SECS": "60"}, "BARS_RESPONSE_CACHE_SECS"),
        ({"USE_RLC": "true"}, "USE_RLC"),
        ({"QUEUE_BACKEND": "kafka"}, "QUEUE_BACKEND"),
        ({"DB_POOL_MIN_SIZE": "11"}, "DB_POOL_MIN_SIZE"),
        ({"LIVE_RESERVED_DB_CONNECTIONS": "10"}, "LIVE_RESERVED_DB_CONNECTIONS"),
    ],
)
def test_invalid_settings_are_refused_naming_the_setting(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert info.value.setting == setting
    assert setting in str(info.value)


# One bad value per constrained setting. Each must be refused by the setting's own type
# (no other setting involved), which is what "declared" means here.
DECLARED = [
    ("DATABASE_URL", "mysql://x"),
    ("DB_POOL_MIN_SIZE", "0"),
    ("DB_POOL_MAX_SIZE", "0"),
    ("DB_STATEMENT_TIMEOUT_MS", "0"),
    ("DB_RETRY_MAX_SECONDS", "0"),
    ("MARKET_PROVIDER_POLICY", "cheap"),
    ("POLICY_BARS_1M", "nosuchvendor"),
    ("POLICY_EOD", ""),
    ("POLICY_QUOTES_L1", "yahoo,yfinance"),
    ("POLICY_OPTIONS_CHAIN", "iex"),
    ("BREAKER_DEMOTE_THRESHOLD", "-0.1"),
    ("BREAKER_PROMOTE_THRESHOLD", "1.01"),
    ("BREAKER_FAILURE_THRESHOLD", "0"),
    ("BREAKER_OPEN_SECONDS", "0"),
    ("RECENT_LATENCY_CAP_MS", "0"),
    ("PROVIDER_TIMEOUT_SEC", "-1"),
    ("TIER_MAXS__T0", "0"),
    ("TIER_MAXS__T1", "-1"),
    ("CADENCE_T0__quotes_l1", "0"),
    ("CADENCE_T1__bars_1m", "-5"),
    ("CADENCE_T2__eod", "0"),
    ("QUEUE_BACKEND", "kafka"),
    ("LIVE_BATCH_SIZE", "0"),
    ("LIVE_MAX_WINDOW_MINUTES", "0"),
    ("LIVE_WORKERS", "0"),
    ("LIVE_MAX_CONCURRENCY", "0"),
    ("LIVE_RESERVED_RATE_SHARE", "1"),
    ("LIVE_RESERVED_RATE_SHARE", "-0.1"),
    ("LIVE_RESERVED_DB_CONNECTIONS", "-1"),
    ("BACKFILL_CHUNK_MINUTES", "0"),
    ("BACKFILL_MAX_CONCURRENCY_T0", "0"),
    ("BACKFILL_MAX_CONCURRENCY_T1", "0"),
    ("BACKFILL_MAX_CONCURRENCY_T2", "0"),
    ("BACKFILL_DISPATCH_RATE_PER_SEC", "0"),
    ("BACKFILL_MAX_QUEUE_T0", "0"),
    ("BACKFILL_MAX_QUEUE_T1", "0"),
    ("BACKFILL_MAX_QUEUE_T2", "0"),
    ("BACKFILL_MAX_ATTEMPTS", "0"),
    ("BACKFILL_RETRY_BASE_SECONDS", "0"),
    ("BACKFILL_RETRY_MAX_SECONDS", "0"),
    ("GAP_CONFIRM_EMPTY_ANSWERS", "0"),
    ("GAP_SCAN_INTERVAL_SEC", "0"),
    ("SLO_SAMPLE_INTERVAL_SEC", "0"),
    ("BACKFILL_MAX_RANGE_DAYS", "0"),
    ("BACKFILL_BATCH_SIZE", "0"),
    ("BACKFILL_LOOKBACK_DAYS_1M", "-1"),
    ("BACKFILL_LOOKBACK_DAYS_1D", "-1"),
    ("CACHE_TTL_QUOTES_L1_SEC", "0"),
    ("BARS_RESPONSE_CACHE_MB", "-1"),
    ("BARS_RESPONSE_CACHE_SEC", "0"),
    ("ANALYSIS_CACHE_TTL_SEC", "0"),
    ("WS_REPLAY_MAX_BARS", "0"),
    ("WS_REPLAY_TTL_SEC", "0"),
    ("YAHOO_BASE_URL", "ftp://example.com"),
    ("TIINGO_BASE_URL", "example.com"),
    ("FINNHUB_RATE_PER_MIN", "0"),
    ("ALPACA_RATE_PER_MIN", "-3"),
    ("MDS_PORT", "0"),
]


def _field_type(setting: str) -> TypeAdapter[Any]:
    """The declared type of one setting (``NAME__part`` for a part of a nested one)."""
    name, _, part = setting.partition("__")
    field = Settings.model_fields[name]
    if part:
        assert isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        field = field.annotation.model_fields[part]
    declared = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(declared)


@pytest.mark.parametrize(("setting", "bad"), DECLARED, ids=[f"{s}={v}" for s, v in DECLARED])
def test_constraints_are_declared_on_the_setting_s_type(setting: str, bad: str) -> None:
    with pytest.raises(ValidationError):
        _field_type(setting).validate_python(bad)
    with pytest.raises(ConfigError) as info:
        load_settings({setting: bad})
    assert info.value.setting == setting
    assert str(info.value).startswith(f"{setting}: ")


@pytest.mark.parametrize(
    ("setting", "good"),
    [("POLICY_BARS_1M", "fmp,yfinance"), ("YAHOO_BASE_URL", "http://127.0.0.1:9"), ("CADENCE_T2__eod", None)],
)
def test_declared_types_accept_good_values(setting: str, good: str | None) -> None:
    _field_type(setting).validate_python(good)


def test_constructing_settings_directly_refuses_a_conflict_naming_the_setting() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(BREAKER_DEMOTE_THRESHOLD=0.9, BREAKER_PROMOTE_THRESHOLD=0.7)
    err = info.value.errors()[0]
    assert err["ctx"]["setting"] == "BREAKER_PROMOTE_THRESHOLD"


def test_the_default_live_reserve_shrinks_to_fit_a_small_pool_but_an_explicit_one_must_fit() -> None:
    assert load_settings({"DB_POOL_MAX_SIZE": "2"}).LIVE_RESERVED_DB_CONNECTIONS == 2
    with pytest.raises(ConfigError, match="LIVE_RESERVED_DB_CONNECTIONS"):
        load_settings({"DB_POOL_MAX_SIZE": "2", "LIVE_RESERVED_DB_CONNECTIONS": "2"})


def test_a_blank_vendor_url_means_the_vendor_default() -> None:
    assert load_settings({"YAHOO_BASE_URL": ""}).YAHOO_BASE_URL is None


def test_policies_name_only_known_providers() -> None:
    s = load_settings({"POLICY_EOD": ",".join(KNOWN_PROVIDERS)})
    assert s.policy(Capability.EOD) == list(KNOWN_PROVIDERS)


# -- every setting is read, or says which capability will read it -------------------

#: Settings the code reads through an accessor or a computed name, not by their own name.
#: Each key must still appear in src/ outside config.py, so this table cannot go stale.
READ_THROUGH: dict[str, tuple[str, ...]] = {
    ".policy(": (
        "MARKET_PROVIDER_POLICY",
        "POLICY_BARS_1M",
        "POLICY_EOD",
        "POLICY_QUOTES_L1",
        "POLICY_OPTIONS_CHAIN",
        "POLICY_MACRO",
        "POLICY_CORPORATE_ACTIONS",
        "POLICY_PROFILE",
    ),
    ".cadence(": ("CADENCE_T0", "CADENCE_T1", "CADENCE_T2"),
    ".backfill_concurrency(": tuple(f"BACKFILL_MAX_CONCURRENCY_{t.value}" for t in Tier),
    ".backfill_max_queue(": tuple(f"BACKFILL_MAX_QUEUE_{t.value}" for t in Tier),
    # ops/hooks.py reads getattr(settings, f"DISCORD_WEBHOOK_{alias.upper()}"), one per alias.
    'f"DISCORD_WEBHOOK_{': tuple(n for n in Settings.model_fields if n.startswith("DISCORD_WEBHOOK_")),
    # providers/http.py reads getattr(settings, f"{name.upper()}_BASE_URL"), one per vendor.
    '_BASE_URL"': tuple(n for n in Settings.model_fields if n.endswith("_BASE_URL")),
    '_RATE_PER_MIN"': tuple(n for n in Settings.model_fields if n.endswith("_RATE_PER_MIN")),
}


def _source_outside_config() -> str:
    return "\n".join(
        p.read_text() for p in sorted(SRC.rglob("*.py")) if p.resolve() != (SRC / "config.py").resolve()
    )


def test_every_setting_is_read_or_marked_not_yet_active() -> None:
    source = _source_outside_config()
    for accessor in READ_THROUGH:
        assert accessor in source, f"{accessor} is no longer used; update READ_THROUGH"
    for name in READ_THROUGH['_BASE_URL"'] + READ_THROUGH['_RATE_PER_MIN"']:
        vendor = name.removesuffix("_BASE_URL").removesuffix("_RATE_PER_MIN").lower()
        assert vendor in KNOWN_PROVIDERS and (SRC / "providers" / f"{vendor}.py").exists(), name
    through = {name for names in READ_THROUGH.values() for name in names}

    unread, stale_marks = [], []
    for name, field in Settings.model_fields.items():
        read = name in through or re.search(rf"\b{name}\b", source) is not None
        marked = "not yet active" in (field.description or "")
        if not read and not marked:
            unread.append(name)
        if read and marked:
            stale_marks.append(name)
    assert not unread, f"settings nothing reads; remove them or mark them 'not yet active': {unread}"
    assert not stale_marks, f"settings read by the code but marked 'not yet active': {stale_marks}"


def test_readme_lists_the_not_yet_active_settings() -> None:
    marked = {n for n, f in Settings.model_fields.items() if "not yet active" in (f.description or "")}
    text = README.read_text()
    paragraph = text[text.index("Not yet active") :].split("\n\n", 1)[0]
    assert set(re.findall(r"`([A-Z][A-Z0-9_]+)`", paragraph)) == marked


# -- loading -------------------------------------------------------------------------


def test_test_harness_variables_are_not_mistaken_for_typos() -> None:
    s = load_settings({"MDS_REQUIRE_SERVICES": "1", "MDS_TEST_DATABASE_URL": "postgresql://x"})
    assert s.MDS_PORT == 8001


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    f = tmp_path / "mds.env"
    f.write_text('# comment\nMDS_PORT=9001\nBREAKER_DEMOTE_THRESHOLD=0.5  # inline\nTIER_MAXS__T0="7"\n')
    s = load_settings({"MDS_PORT": "9002"}, env_file=f)
    assert (s.MDS_PORT, s.BREAKER_DEMOTE_THRESHOLD, s.TIER_MAXS.T0) == (9002, 0.5, 7)


def test_secrets_are_redacted() -> None:
    s = load_settings({"FINNHUB_API_KEY": "sekrit"})
    out = s.redacted()
    assert out["FINNHUB_API_KEY"] == "set" and out["POLYGON_API_KEY"] is None
    assert "sekrit" not in repr(s)


def test_sqlite_path() -> None:
    assert str(load_settings({"DATABASE_URL": "sqlite:///./var/x.db"}).sqlite_path) == "var/x.db"
    assert load_settings({"DATABASE_URL": "sqlite:///:memory:"}).sqlite_path is None


def test_use_rlc_with_the_redis_backend_is_accepted() -> None:
    s = load_settings({"USE_RLC": "true", "QUEUE_BACKEND": "redis"})
    assert s.USE_RLC and s.QUEUE_BACKEND == "redis"


def test_no_provider_available_tells_an_outage_from_a_bad_answer() -> None:
    from mds.errors import NoProviderAvailable

    assert NoProviderAvailable("bars_1m", {"sim": "unavailable: down", "b": "skipped: open"}).outage
    assert not NoProviderAvailable("bars_1m", {"sim": "unavailable: down", "b": "bad_payload: nan"}).outage
    assert not NoProviderAvailable("bars_1m", {}).outage
