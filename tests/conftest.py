"""Suite-wide fixtures."""

from __future__ import annotations

import os

import pytest


def require_services() -> bool:
    """MDS_REQUIRE_SERVICES=1 (set by .ci/run) turns a backend skip into a failure."""
    return os.environ.get("MDS_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    if require_services():
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)
