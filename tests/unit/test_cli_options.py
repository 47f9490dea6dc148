"""The service commands' shared options reach ``run_service`` as one ServiceOptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mds.cli import app
from mds.cli import serve as serve_module
from mds.cli.serve import ServiceOptions


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []

    def fake_run_service(roles: frozenset[str], opts: ServiceOptions, **kwargs: Any) -> None:
        seen.append((roles, opts, kwargs))

    monkeypatch.setattr(serve_module, "run_service", fake_run_service)
    return seen


def test_serve_packs_the_shared_options(calls: list[tuple[Any, ...]]) -> None:
    args = ["serve", "--demo", "--clock", "2025-10-08T14:00:00Z", "--speed", "60", "--port", "9"]
    result = CliRunner().invoke(app, [*args, "--clock-anchor", "1.5", "--env-file", "x.env"])
    assert result.exit_code == 0, result.output
    [(roles, opts, kwargs)] = calls
    assert roles == {"api", "worker", "scheduler"}
    assert opts == ServiceOptions(True, "2025-10-08T14:00:00Z", 60.0, 1.5, Path("x.env"))
    assert kwargs == {"host": None, "port": 9}


@pytest.mark.parametrize(
    ("args", "roles", "kwargs"),
    [
        (["api", "--host", "0.0.0.0"], {"api"}, {"host": "0.0.0.0", "port": None}),
        (
            ["worker", "--name", "w1"],
            {"worker"},
            {"host": None, "port": 9101, "service_only": True, "consumer": "w1"},
        ),
        (["scheduler"], {"scheduler"}, {"host": None, "port": 9102, "service_only": True}),
    ],
)
def test_each_role_gets_the_defaults_and_its_own_options(
    calls: list[tuple[Any, ...]], args: list[str], roles: set[str], kwargs: dict[str, Any]
) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert calls == [(roles, ServiceOptions(), kwargs)]
