"""Hot reload: validate a new configuration, apply what can change live, keep the rest.

An invalid configuration is refused with the setting named and the running service
keeps its last good one. Settings that shape the process itself (the database, the
port, the calendar, RLC mode, which providers exist) need a restart; a reload that
changes them applies the rest and says which ones wait for a restart.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mds.config import Settings, load_settings, read_env_file
from mds.providers.registry import policy_names

RESTART_ONLY = (
    "DATABASE_URL",
    "MDS_HOST",
    "MDS_PORT",
    "MARKET_CALENDAR",
    "USE_RLC",
    "RLC_REDIS_URL",
    "UNIVERSE_FILE",
)


@dataclass
class ReloadResult:
    ok: bool
    policy_version: str
    changed: list[str] = field(default_factory=list)
    restart_required: list[str] = field(default_factory=list)
    setting: str | None = None
    error: str | None = None


def effective_environ(
    base: Mapping[str, str], env_file: Path | None, defaults: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What settings are read from: the process environment over the env file (re-read now)
    over mode defaults (the demo's sim policies)."""
    file_env = read_env_file(env_file) if env_file is not None else {}
    return {**(defaults or {}), **file_env, **base}


def diff(old: Settings, new: Settings) -> list[str]:
    a, b = old.model_dump(), new.model_dump()
    return sorted(k for k in a if a[k] != b[k])


def plan_reload(
    current: Settings, environ: Mapping[str, str], providers: set[str]
) -> tuple[Settings, ReloadResult]:
    """Validate ``environ``; raise ConfigError if invalid. Returns the settings to apply and a report."""
    new = load_settings(environ)
    changed = diff(current, new)
    restart = [k for k in changed if k in RESTART_ONLY]
    missing = [p for p in policy_names(new) if p not in providers and p.startswith("sim")]
    if missing:
        restart.append(f"providers {', '.join(missing)} (named by a policy, not built at start)")
    return new, ReloadResult(
        ok=True, policy_version=str(int(time.time())), changed=changed, restart_required=restart
    )
