"""The KeyStore contract, on every backend: only hashes stored, names unique among active keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mds.access.admin import issue_key
from mds.access.keys import ApiKey, Role, hash_key
from mds.errors import Conflict, InvalidRequest
from mds.storage.base import Store

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


async def test_a_key_is_found_by_its_hash_and_never_stored_in_clear(
    store: Store, fetch: Callable[[str], Awaitable[list[tuple[Any, ...]]]]
) -> None:
    key, record = await issue_key(store, "ops-laptop", Role.OPS, now=T0)
    assert key.startswith("mds_") and len(key) > 40
    found = await store.api_key_by_hash(hash_key(key))
    assert found == ApiKey("ops-laptop", Role.OPS, key[4:12], T0) == record
    assert await store.api_key_by_hash(hash_key(key + "x")) is None
    rows = await fetch("SELECT * FROM api_keys")
    assert rows and not any(key in str(value) or key[4:] in str(value) for row in rows for value in row)


async def test_names_are_unique_among_active_keys_and_revocation_keeps_the_row(store: Store) -> None:
    old, _ = await issue_key(store, "ci", Role.READ, now=T0)
    with pytest.raises(Conflict) as caught:
        await issue_key(store, "ci", Role.ADMIN, now=T0)
    assert caught.value.key == "ci"
    revoked = await store.revoke_api_key("ci", now=T0 + timedelta(hours=1))
    assert revoked is not None and revoked.revoked_at == T0 + timedelta(hours=1) and not revoked.active
    assert await store.revoke_api_key("ci", now=T0 + timedelta(hours=2)) is None  # nothing active left
    new, _ = await issue_key(store, "ci", Role.ADMIN, now=T0 + timedelta(hours=3))  # rotated
    assert (await store.api_key_by_hash(hash_key(old))).revoked_at is not None  # type: ignore[union-attr]
    assert (await store.api_key_by_hash(hash_key(new))).role is Role.ADMIN  # type: ignore[union-attr]
    assert [(k.name, k.role, k.active) for k in await store.api_keys()] == [("ci", Role.ADMIN, True)]
    everything = await store.api_keys(include_revoked=True)
    assert [(k.name, k.active) for k in everything] == [("ci", False), ("ci", True)]


async def test_a_bad_name_is_refused_before_anything_is_stored(store: Store) -> None:
    for name in ("", "has space", "-leading", "x" * 65, "semi;colon"):
        with pytest.raises(InvalidRequest) as caught:
            await issue_key(store, name, Role.READ, now=T0)
        assert caught.value.field == "name"
    assert await store.api_keys(include_revoked=True) == []
