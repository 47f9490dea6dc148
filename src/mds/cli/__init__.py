"""The `mds` command: one module per command group, all attached to :data:`app`.

| module | commands |
|---|---|
| ``apps`` | the Typer app and its groups (``config``, ``keys``, ``universe``, ``holdings``, ``schedules``, ``sim``, ``bench``) |
| ``common`` | settings loading, failing with a message, parsing times and intervals |
| ``serve`` | ``serve``, ``api``, ``worker``, ``scheduler`` (shared options declared once) |
| ``config`` | ``config validate``, ``config show`` |
| ``data`` | ``migrate``, ``fetch``, ``providers``, ``gaps`` |
| ``backfill`` / ``backfill_run`` | ``backfill`` and its foreground run with a progress bar |
| ``keys`` | ``keys create``, ``keys list``, ``keys revoke`` |
| ``tracking`` | ``universe import``, ``universe retier``, ``universe versions``, ``holdings ...`` |
| ``schedules`` | ``schedules list|add|pause|resume|delete|run|export|import|seed|jobs|tasks`` |
| ``ta`` | ``ta`` |
| ``sim`` | ``sim bars``, ``sim-server`` |
| ``export`` | ``export`` (a Parquet dataset of stored bars) |
| ``bench`` | ``bench ...`` |
"""

from __future__ import annotations

# Importing a command module attaches its commands to the app, in --help order.
from mds.cli import serve, data, backfill, export, ta, sim, config, keys, tracking, schedules, bench  # noqa: F401  # isort: skip
from mds.cli.apps import app

__all__ = ["app"]
