"""What a reload changes, rebuilds and leaves for a restart; and its version tags."""

from __future__ import annotations

import pytest

from mds.config import Settings, load_settings
from mds.errors import ConfigError
from mds.ops.reload import RESTART_ONLY, next_version, plan_reload
from mds.providers.registry import VENDORS, adapters_to_rebuild, policy_names

BASE = {
    "POLICY_BARS_1M": "polygon,sim",
    "POLICY_EOD": "fmp,sim",
    "POLICY_PROFILE": "fmp,sim",  # the default lists finnhub, which one test adds by a policy
    "POLYGON_API_KEY": "key-one",
    "FMP_API_KEY": "fmp-key",
}
#: What start-up built for BASE: every name its policies (and the defaults) list.
BUILT = set(policy_names(load_settings(BASE)))


def _plan(**changes: str) -> list[str]:
    _, report = plan_reload(load_settings(BASE), {**BASE, **changes}, BUILT)
    return report.rebuilt


@pytest.mark.parametrize(
    "setting,value",
    [
        ("POLYGON_API_KEY", "key-two"),
        ("POLYGON_BASE_URL", "http://127.0.0.1:9/"),
        ("POLYGON_RATE_PER_MIN", "12"),
    ],
)
def test_a_vendors_key_url_or_rate_rebuilds_that_vendor_only(setting: str, value: str) -> None:
    assert _plan(**{setting: value}) == ["polygon"]


def test_settings_no_adapter_reads_rebuild_nothing() -> None:
    assert _plan(CADENCE_T1__bars_1m="120", BREAKER_OPEN_SECONDS="10") == []


def test_the_client_timeout_rebuilds_every_vendor_but_no_sim() -> None:
    assert _plan(PROVIDER_TIMEOUT_SEC="3") == sorted(BUILT & set(VENDORS))
    assert "sim" in BUILT


def test_a_vendor_a_policy_names_now_is_built() -> None:
    assert "finnhub" not in BUILT
    assert _plan(POLICY_QUOTES_L1="finnhub,sim") == ["finnhub"]


def test_a_removed_key_rebuilds_the_adapter_as_unconfigured() -> None:
    old = load_settings(BASE)
    new = load_settings({k: v for k, v in BASE.items() if k != "POLYGON_API_KEY"})
    assert adapters_to_rebuild(old, new, BUILT) == ["polygon"]


def test_settings_read_at_start_are_reported_not_applied() -> None:
    _, report = plan_reload(
        load_settings(BASE),
        {**BASE, "QUEUE_BACKEND": "redis", "TASK_WORKERS": "9", "CADENCE_T1__bars_1m": "120"},
        BUILT,
    )
    assert report.restart_required == ["QUEUE_BACKEND", "TASK_WORKERS"]
    assert "CADENCE_T1" in report.changed


def test_tracing_settings_wait_for_a_restart_and_viztracer_ones_do_not() -> None:
    _, report = plan_reload(
        load_settings(BASE),
        {
            **BASE,
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
            "OTEL_SERVICE_NAME": "mds-test",
            "TRACING_ENABLED": "false",
            "TRACING_READ_SAMPLE_RATIO": "0.5",
            "VIZTRACER_ENABLED": "true",
            "VIZTRACER_MIN_MS": "50",
        },
        BUILT,
    )
    assert report.restart_required == [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "TRACING_ENABLED",
        "TRACING_READ_SAMPLE_RATIO",
    ]
    assert {"VIZTRACER_ENABLED", "VIZTRACER_MIN_MS"} <= set(report.changed)
    assert report.rebuilt == []


def test_a_sim_named_for_the_first_time_waits_for_a_restart() -> None:
    _, report = plan_reload(load_settings(BASE), {**BASE, "POLICY_EOD": "fmp,sim,sim_backup"}, BUILT)
    assert report.restart_required == ["providers sim_backup (named by a policy, not built at start)"]


def test_an_invalid_configuration_names_its_setting() -> None:
    with pytest.raises(ConfigError) as err:
        plan_reload(load_settings(BASE), {**BASE, "POLYGON_RATE_PER_MIN": "-1"}, BUILT)
    assert err.value.setting == "POLYGON_RATE_PER_MIN"


def test_restart_only_names_real_settings() -> None:
    assert set(RESTART_ONLY) <= set(Settings.model_fields)


def test_version_tags_move_forward_within_one_second() -> None:
    assert next_version("initial", 1_760_000_000.4) == "1760000000"
    assert next_version("1760000000", 1_760_000_000.9) == "1760000001"
    assert next_version("1760000001", 1_760_000_100.0) == "1760000100"
