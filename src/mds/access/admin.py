"""Issuing and revoking keys (``mds keys``), and the demo's own admin key."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from mds.access.keys import ApiKey, Role, hash_key, key_prefix, new_key
from mds.errors import InvalidRequest
from mds.storage.base import KeyStore

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
DEMO_KEY_NAME = "demo-admin"
DEMO_KEY_FILE = "demo-admin.key"


async def issue_key(keys: KeyStore, name: str, role: Role, *, now: datetime) -> tuple[str, ApiKey]:
    """Create a key; the clear key is returned here and nowhere else, ever.

    Raises:
        InvalidRequest: ``name`` is not 1-64 letters, digits, ``.``, ``_`` or ``-``.
        Conflict: An active key already has this name.
    """
    if not _NAME.match(name):
        raise InvalidRequest(
            "name", "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    key = new_key()
    record = ApiKey(name=name, role=role, prefix=key_prefix(key), created_at=now)
    await keys.create_api_key(record, key_hash=hash_key(key))
    return key, record


async def ensure_demo_key(keys: KeyStore, directory: Path, *, now: datetime) -> tuple[str | None, Path]:
    """The demo's admin key: kept in ``directory/demo-admin.key`` (mode 0600).

    Returns ``(key, path)`` with the new key when one was made (first start, or the file
    and the database no longer agree), ``(None, path)`` when the file holds a working key.
    """
    # Runs once, before the service starts: the file I/O below may block.
    path = directory / DEMO_KEY_FILE
    kept = _read_key(path)
    if kept:
        existing = await keys.api_key_by_hash(hash_key(kept))
        if existing is not None and existing.active and existing.role is Role.ADMIN:
            return None, path
    # The file is missing or stale: its clear key cannot be recovered, so replace the key.
    await keys.revoke_api_key(DEMO_KEY_NAME, now=now)
    key, _ = await issue_key(keys, DEMO_KEY_NAME, Role.ADMIN, now=now)
    _write_key(path, key)
    return key, path


def _read_key(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def _write_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed
