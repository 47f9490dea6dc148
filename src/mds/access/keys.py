"""API keys and roles: what a key is, how it is made and how it is stored (hashed).

A key is ``mds_`` followed by 43 URL-safe characters (32 random bytes). Only its SHA-256
is stored: with 256 bits of entropy there is nothing to brute-force offline, so a slow
password hash would only slow every request down. ``prefix`` (the first 8 characters
after ``mds_``) lets an operator recognise a key in ``mds keys list`` without storing it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

KEY_PREFIX = "mds_"
_PREFIX_CHARS = 8


class Role(str, Enum):
    """``admin`` includes ``ops``, which includes ``read``."""

    READ = "read"
    OPS = "ops"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, required: Role) -> bool:
        return self.rank >= required.rank


_RANK = {Role.READ: 0, Role.OPS: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class ApiKey:
    """A stored key: never the key itself, only what identifies and authorises it."""

    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_prefix(key: str) -> str:
    return key.removeprefix(KEY_PREFIX)[:_PREFIX_CHARS]
