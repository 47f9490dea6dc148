"""Settings: the seeds' names and defaults, and validate_settings naming the bad setting."""

from __future__ import annotations

import pytest

from mds.config import Settings, load_settings, validate_settings
from mds.domain.models import Capability, Tier
from mds.errors import ConfigError


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
        ({"CADENCE_T1__quotes_l1": "0"}, "CADENCE_T1__quotes_l1"),
        ({"CADENCE_T0__bars_1m": "-5"}, "CADENCE_T0__bars_1m"),
        ({"TIER_MAXS__T0": "0"}, "TIER_MAXS__T0"),
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
    ],
)
def test_invalid_settings_are_refused_naming_the_setting(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert info.value.setting == setting
    assert setting in str(info.value)


def test_validate_settings_on_a_constructed_object() -> None:
    s = Settings(BREAKER_DEMOTE_THRESHOLD=0.9, BREAKER_PROMOTE_THRESHOLD=0.7)
    with pytest.raises(ConfigError, match="BREAKER"):
        validate_settings(s)


def test_test_harness_variables_are_not_mistaken_for_typos() -> None:
    s = load_settings({"MDS_REQUIRE_SERVICES": "1", "MDS_TEST_DATABASE_URL": "postgresql://x"})
    assert s.MDS_PORT == 8001


def test_env_file_is_read_and_environment_wins(tmp_path) -> None:
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
