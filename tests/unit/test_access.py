"""Roles, keys and the authenticator's rules (cache, failures, metrics) on a real SQLite store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mds.access.admin import ensure_demo_key, issue_key
from mds.access.authenticator import Authenticator, Forbidden, TooManyFailures, Unauthenticated
from mds.access.keys import Role, hash_key, new_key
from mds.errors import StorageError
from mds.observability.metrics import Metrics
from mds.storage.sqlite import SqliteStore

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_admin_includes_ops_includes_read() -> None:
    allowed = {(have, need) for have in Role for need in Role if have.allows(need)}
    assert allowed == {
        (Role.READ, Role.READ),
        (Role.OPS, Role.READ),
        (Role.OPS, Role.OPS),
        (Role.ADMIN, Role.READ),
        (Role.ADMIN, Role.OPS),
        (Role.ADMIN, Role.ADMIN),
    }


def test_keys_are_random_and_hashes_are_stable() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100 and all(k.startswith("mds_") and len(k) == 47 for k in keys)
    k = next(iter(keys))
    assert hash_key(k) == hash_key(k) != hash_key(k + " ") and k not in hash_key(k)


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with SqliteStore(tmp_path / "keys.db") as s:
        yield s


def _failures(metrics: Metrics) -> dict[str, float]:
    return {
        s.labels["reason"]: s.value
        for m in metrics.registry.collect()
        for s in m.samples
        if s.name == "auth_failures_total"
    }


async def test_each_refusal_has_its_reason(store: SqliteStore) -> None:
    metrics = Metrics()
    auth = Authenticator(store, metrics, cache_seconds=5, failure_limit="100/minute")
    read, _ = await issue_key(store, "reader", Role.READ, now=T0)
    gone, _ = await issue_key(store, "gone", Role.ADMIN, now=T0)
    await store.revoke_api_key("gone", now=T0)
    for key, need, error in (
        (None, Role.READ, Unauthenticated),
        ("", Role.READ, Unauthenticated),
        ("mds_unknown", Role.READ, Unauthenticated),
        (gone, Role.READ, Unauthenticated),
        (read, Role.OPS, Forbidden),
    ):
        with pytest.raises(error):
            await auth.authorize(key, need, client="c")
    principal = await auth.authorize(read, Role.READ, client="c")
    assert (principal.name, principal.role) == ("reader", Role.READ)
    assert _failures(metrics) == {"missing": 2, "invalid": 1, "revoked": 1, "forbidden": 1}


async def test_admits_only_recently_checked_keys_of_enough_role(store: SqliteStore) -> None:
    auth = Authenticator(store, Metrics(), cache_seconds=5, failure_limit="100/minute")
    ops, _ = await issue_key(store, "ops", Role.OPS, now=T0)
    raw = ops.encode()
    assert not auth.admits(raw, Role.READ)  # not checked yet
    await auth.authorize(ops, Role.OPS, client="c")
    assert auth.admits(raw, Role.READ) and auth.admits(raw, Role.OPS) and not auth.admits(raw, Role.ADMIN)
    assert not auth.admits(b"mds_other", Role.READ) and not auth.admits(None, Role.READ)


async def test_zero_cache_seconds_sees_revocation_at_once(store: SqliteStore) -> None:
    auth = Authenticator(store, Metrics(), cache_seconds=0, failure_limit="100/minute")
    key, _ = await issue_key(store, "k", Role.OPS, now=T0)
    await auth.authorize(key, Role.OPS, client="c")
    await store.revoke_api_key("k", now=T0)
    with pytest.raises(Unauthenticated):
        await auth.authorize(key, Role.OPS, client="c")


async def test_failures_are_limited_per_client_and_reload_changes_the_limit(store: SqliteStore) -> None:
    auth = Authenticator(store, Metrics(), cache_seconds=5, failure_limit="2/minute")
    good, _ = await issue_key(store, "good", Role.READ, now=T0)
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await auth.authorize("mds_guess", Role.READ, client="attacker")
    with pytest.raises(TooManyFailures) as caught:
        await auth.authorize(good, Role.READ, client="attacker")
    assert 1 <= caught.value.retry_after <= 60
    assert (await auth.authorize(good, Role.READ, client="someone-else")).name == "good"
    # Missing keys and wrong roles are not guesses: they do not spend the budget.
    for _ in range(5):
        with pytest.raises(Forbidden):
            await auth.authorize(good, Role.ADMIN, client="browser")
        with pytest.raises(Unauthenticated):
            await auth.authorize(None, Role.READ, client="browser")
    assert (await auth.authorize(good, Role.READ, client="browser")).name == "good"
    auth.configure(cache_seconds=5, failure_limit="100/minute")
    assert (await auth.authorize(good, Role.READ, client="attacker")).name == "good"


async def test_demo_key_is_made_once_and_replaced_when_the_file_is_stale(
    store: SqliteStore, tmp_path: Path
) -> None:
    key, path = await ensure_demo_key(store, tmp_path / "var", now=T0)
    assert key is not None and path.read_text() == key + "\n" and (path.stat().st_mode & 0o777) == 0o600
    again, _ = await ensure_demo_key(store, tmp_path / "var", now=T0)
    assert again is None  # the file's key still works: kept
    path.write_text("mds_lost\n")
    path.chmod(0o644)
    fresh, _ = await ensure_demo_key(store, tmp_path / "var", now=T0)
    assert fresh is not None and fresh != key and (path.stat().st_mode & 0o777) == 0o600
    active = await store.api_keys()
    assert [(k.name, k.role) for k in active] == [("demo-admin", Role.ADMIN)]
    assert (await store.api_key_by_hash(hash_key(key))).revoked_at is not None  # type: ignore[union-attr]


class CountingKeys:
    """The store's key lookups, counted (the authenticator must not ask more than it needs)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.reads = 0

    async def api_key_by_hash(self, key_hash: str):  # type: ignore[no-untyped-def]
        self.reads += 1
        await asyncio.sleep(0.01)  # a round trip, so concurrent requests overlap
        return await self.store.api_key_by_hash(key_hash)


async def test_concurrent_requests_share_one_store_read(store: SqliteStore) -> None:
    keys = CountingKeys(store)
    auth = Authenticator(keys, Metrics(), cache_seconds=5, failure_limit="100/minute")  # type: ignore[arg-type]
    key, _ = await issue_key(store, "busy", Role.READ, now=T0)
    got = await asyncio.gather(*(auth.authorize(key, Role.READ, client="c") for _ in range(50)))
    assert {p.name for p in got} == {"busy"} and keys.reads == 1


async def test_a_key_in_use_is_reread_before_it_lapses_and_revocation_still_lands(store: SqliteStore) -> None:
    now = [100.0]
    keys = CountingKeys(store)
    auth = Authenticator(
        keys,  # type: ignore[arg-type]
        Metrics(),
        cache_seconds=4,
        failure_limit="100/minute",
        monotonic=lambda: now[0],
    )
    key, _ = await issue_key(store, "steady", Role.READ, now=T0)
    raw = key.encode()
    await auth.authorize(key, Role.READ, client="c")
    now[0] = 101.0
    assert auth.admits(raw, Role.READ) and keys.reads == 1  # fresh: no re-read
    now[0] = 102.5  # past half its life: admitted, and re-read in the background
    assert auth.admits(raw, Role.READ)
    await asyncio.sleep(0.05)
    assert keys.reads == 2
    now[0] = 105.0  # past the first read's lapse (104), inside the re-read's (106.5)
    assert auth.admits(raw, Role.READ)
    await store.revoke_api_key("steady", now=T0)
    now[0] = 106.6  # the re-read's trust has lapsed: the full path asks the store, which refuses
    assert not auth.admits(raw, Role.READ)
    with pytest.raises(Unauthenticated):
        await auth.authorize(key, Role.READ, client="c")


class FailingKeys:
    async def api_key_by_hash(self, key_hash: str):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.01)
        raise StorageError("store down")


async def test_a_store_failure_reaches_every_waiting_request_and_is_not_cached() -> None:
    auth = Authenticator(FailingKeys(), Metrics(), cache_seconds=5, failure_limit="100/minute")  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(auth.authorize("mds_some_key", Role.READ, client="c") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, StorageError) for r in results)
    assert not auth.admits(b"mds_some_key", Role.READ)


def test_the_key_is_x_api_key_else_a_bearer_token() -> None:
    from mds.api.auth import raw_key

    both = [(b"authorization", b"Bearer mds_b"), (b"x-api-key", b" mds_x ")]
    assert raw_key(both) == raw_key(list(reversed(both))) == b"mds_x"
    assert raw_key([(b"authorization", b"bearer  mds_b ")]) == b"mds_b"
    assert raw_key([(b"authorization", b"Basic dXNlcjpwdw==")]) is None
    assert raw_key([(b"x-api-key", b"  ")]) is None and raw_key([]) is None
