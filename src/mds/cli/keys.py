"""`mds keys create|list|revoke`: API keys in the store named by DATABASE_URL."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from mds.cli.apps import keys_app
from mds.cli.common import EnvFile, fail, settings, with_store

if TYPE_CHECKING:
    from mds.storage.base import Store

T = TypeVar("T")


def _with_store(env_file: object, fn: Callable[[Store], Awaitable[T]]) -> T:
    return with_store(settings(env_file), fn)  # type: ignore[arg-type]


RoleOpt = Annotated[str, typer.Option(help="read, ops or admin (admin includes ops, which includes read)")]
NameOpt = Annotated[str, typer.Option(help="Who or what holds the key, e.g. ops-laptop")]


@keys_app.command("create")
def create(role: RoleOpt, name: NameOpt, env_file: EnvFile = None) -> None:
    """Create a key and print it once (stdout: the key alone); only its hash is stored."""
    from mds.access.admin import issue_key
    from mds.access.keys import Role
    from mds.domain.clock import SystemClock
    from mds.errors import Conflict, InvalidRequest

    try:
        wanted = Role(role.lower())
    except ValueError:
        fail(f"--role: unknown role {role!r}; use read, ops or admin")
    try:
        key, record = _with_store(
            env_file, lambda store: issue_key(store, name, wanted, now=SystemClock().now())
        )
    except InvalidRequest as exc:
        fail(f"--name: {exc.message}")
    except Conflict:
        fail(f"--name: an active key is already called {name!r}; revoke it first or pick another name")
    typer.echo(key)
    typer.echo(f"created {record.role.value} key {record.name!r}; it is shown only this once", err=True)


@keys_app.command("list")
def list_keys(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    env_file: EnvFile = None,
) -> None:
    """Name, role, key prefix, created and revoked times (never the keys)."""
    keys = _with_store(env_file, lambda store: store.api_keys(include_revoked=all_keys))
    for k in keys:
        row = {
            "name": k.name,
            "role": k.role.value,
            "prefix": k.prefix,
            "created_at": k.created_at.isoformat(),
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        }
        if as_json:
            typer.echo(json.dumps(row))
        else:
            revoked = f"  revoked {row['revoked_at']}" if k.revoked_at else ""
            typer.echo(f"{k.name:24} {k.role.value:6} mds_{k.prefix}…  created {row['created_at']}{revoked}")
    if not keys and not as_json:
        typer.echo("no keys", err=True)


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The key's name")], env_file: EnvFile = None) -> None:
    """Revoke the active key called NAME; every API process refuses it within AUTH_CACHE_SEC."""
    from mds.domain.clock import SystemClock

    revoked = _with_store(env_file, lambda store: store.revoke_api_key(name, now=SystemClock().now()))
    if revoked is None:
        fail(f"no active key is called {name!r}", code=1)
    typer.echo(f"revoked {revoked.role.value} key {revoked.name!r}")
