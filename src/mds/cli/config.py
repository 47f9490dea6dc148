"""`mds config validate` and `mds config show`."""

from __future__ import annotations

import json

import typer

from mds.cli.apps import config_app
from mds.cli.common import EnvFile, settings
from mds.domain.models import Capability


@config_app.command("validate")
def config_validate(env_file: EnvFile = None) -> None:
    """Check the settings; print the first problem with the setting's name and exit 2."""
    settings(env_file)
    typer.echo("config ok")


@config_app.command("show")
def config_show(env_file: EnvFile = None) -> None:
    """Print the effective settings as JSON (secrets shown only as set/unset)."""
    s = settings(env_file)
    out = s.redacted()
    out["effective_policies"] = {c.value: s.policy(c) for c in Capability}
    typer.echo(json.dumps(out, indent=2, sort_keys=True))
