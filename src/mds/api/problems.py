"""The problem+json (RFC 9457) answer and how routes declare it in OpenAPI."""

from __future__ import annotations

from typing import Any

PROBLEM = "application/problem+json"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries declaring problem+json answers for ``statuses``."""
    return {status: {"description": "Problem"} for status in statuses}
