"""Secrets hidden in text: URL passwords, key-like parameters, known values; and the
places that use it (settings shown, settings refused, httpx's request log)."""

from __future__ import annotations

import logging

import httpx
import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.models import Interval
from mds.errors import ConfigError, Unavailable
from mds.providers.fmp import FmpProvider
from mds.providers.ratelimit import RateLimiter
from mds.redact import hide, redact
from tests.helpers import utc


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://mds:s3cret@db:5432/mds", "postgresql://mds:***@db:5432/mds"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://default:s3cret@cache.internal/1", "rediss://default:***@cache.internal/1"),
        # An unencoded @ in the password: the netloc ends at the last one, as urllib reads it.
        ("postgres://u:p@ss@db/x", "postgres://u:***@db/x"),
        (
            "postgresql://mds@db/mds?password=s3cret&sslmode=require",
            "postgresql://mds@db/mds?password=***&sslmode=require",
        ),
        (
            "GET http://v.test/q?symbol=AAPL&apikey=s3cret&x=1 then access_token=s3cret",
            "GET http://v.test/q?symbol=AAPL&apikey=***&x=1 then access_token=***",
        ),
        (
            "failed: redis://:a@h1:1/0 and postgresql://u:b@h2/db",
            "failed: redis://:***@h1:1/0 and postgresql://u:***@h2/db",
        ),
    ],
)
def test_redact_hides_url_passwords_and_key_parameters(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://postgres@127.0.0.1:5432/mds",  # a user name is no secret
        "http://127.0.0.1:8001/stocks/AAPL/price",  # host:port is not user:password
        "sqlite:///./var/mds.db",
        "memory://",
        "https://example.test/a@b",  # an @ in the path is not userinfo
        "String should match pattern '^(sqlite:///|postgresql://|postgres://)'",
    ],
)
def test_redact_leaves_text_without_secrets_alone(text: str) -> None:
    assert redact(text) == text


def test_hide_replaces_every_known_secret_wherever_it_stands() -> None:
    text = "bad key abcd1234efgh (you sent abcd1234efgh with secret zz99yy88)"
    assert hide(text, ["abcd1234efgh", "zz99yy88"]) == "bad key *** (you sent *** with secret ***)"


def test_hide_also_hides_a_secret_cut_off_at_the_end() -> None:
    # A message quoting a body up to N characters can end halfway through the key.
    secret = "abcd1234efgh5678"
    assert hide(f"HTTP 401: invalid key {secret[:9]}", [secret]) == "HTTP 401: invalid key ***"
    assert hide(f"HTTP 401: {secret[:4]}", [secret]) == "HTTP 401: ***"
    # Three characters are too few to tell from ordinary text.
    assert hide("HTTP 401: abc", [secret]) == "HTTP 401: abc"


def test_hide_ignores_empty_and_short_secrets() -> None:
    assert hide("a key of abc", ["", "abc"]) == "a key of abc"


def test_shown_settings_hide_url_passwords_and_keep_the_rest() -> None:
    s = load_settings(
        {
            "DATABASE_URL": "postgresql://mds:pgpass1@db:5432/mds",
            "RLC_REDIS_URL": "redis://:redispass1@cache:6379/0",
            "RATE_LIMIT_STORAGE_URI": "redis://:redispass1@cache:6379/1",
            "RLC_URL": "http://rlc:rlcpass1@rlc.internal/",
            "FMP_API_KEY": "fmpkey1",
        }
    )
    shown = s.redacted()
    assert shown["DATABASE_URL"] == "postgresql://mds:***@db:5432/mds"
    assert shown["RLC_REDIS_URL"] == "redis://:***@cache:6379/0"
    assert shown["RATE_LIMIT_STORAGE_URI"] == "redis://:***@cache:6379/1"
    assert shown["RLC_URL"] == "http://rlc:***@rlc.internal/"
    assert shown["FMP_API_KEY"] == "set"
    assert not any(p in str(shown) for p in ("pgpass1", "redispass1", "rlcpass1", "fmpkey1"))
    # What runs is untouched: only the shown copy is redacted.
    assert s.DATABASE_URL == "postgresql://mds:pgpass1@db:5432/mds"


def test_a_refused_url_setting_is_quoted_without_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"DATABASE_URL": "postgresq://mds:pgpass1@db/mds"})
    assert info.value.setting == "DATABASE_URL"
    assert "postgresq://mds:***@db/mds" in str(info.value)
    assert "pgpass1" not in str(info.value) and "pgpass1" not in info.value.message


async def test_httpx_request_log_hides_query_keys(caplog: pytest.LogCaptureFixture) -> None:
    # httpx logs every response at INFO with the full URL; FMP's key is a query parameter.
    key = "fmpkey-0123456789abcdef"
    transport = httpx.MockTransport(lambda request: httpx.Response(503, text="down"))
    settings = load_settings({"FMP_API_KEY": key, "FMP_BASE_URL": "http://fmp.test"})
    async with httpx.AsyncClient(transport=transport) as client:
        fmp = FmpProvider(settings=settings, calendar=MarketCalendar(), limiter=RateLimiter(), client=client)
        with caplog.at_level(logging.DEBUG), pytest.raises(Unavailable):
            await fmp.fetch_bars("AAPL", Interval.D1, utc(2025, 3, 3), utc(2025, 3, 5))
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all("apikey=***" in line for line in lines), lines
    assert not any(key in r.getMessage() for r in caplog.records)
