"""The admin console's job drill-in shows a run's log lines (or says there are none), and an
admin session ends once the key it was started with is revoked."""

from __future__ import annotations

import secrets
import time

from mds.access.admin import issue_key
from mds.access.keys import ApiKey, Role
from mds.domain.schedules import JobRun, RunStatus, Trigger
from mds.runtime import Runtime
from tests.integration.conftest import asgi_client, ok
from tests.integration.test_admin_core import NOW, browser, csrf_of, logged_in, login, new_key


async def admin_key(rt: Runtime) -> tuple[str, ApiKey]:
    return await issue_key(rt.store, f"revocable-{secrets.token_hex(3)}", Role.ADMIN, now=rt.clock.now())


async def stored_run(rt: Runtime, logs: list[str]) -> int:
    run = await rt.store.create_run(
        JobRun(
            task="refresh_coverage",
            trigger=Trigger.TASK,
            logical_date=NOW.date(),
            queued_at=NOW,
            status=RunStatus.FAILED,
            error="ValueError: boom",
            logs=logs,
        )
    )
    assert run.id is not None
    return run.id


async def test_the_drill_in_shows_the_runs_log_lines(rt: Runtime) -> None:
    lines = [
        "2025-10-08T15:00:00.125+00:00 INFO mds.services.coverage: 8000 symbols checked",
        "2025-10-08T15:00:01.000+00:00 ERROR mds.ops.runs: failed: <script>alert(1)</script>",
    ]
    with_logs = await stored_run(rt, lines)
    without = await stored_run(rt, [])
    async with logged_in(rt) as (client, _):
        for headers in ({}, {"HX-Request": "true"}):  # the page and the htmx fragment
            page = await client.get(f"/admin/jobs/{with_logs}", headers=headers)
            assert page.status_code == 200
            assert "<h3>Logs</h3>" in page.text
            assert lines[0] in page.text
            assert "failed: &lt;script&gt;alert(1)&lt;/script&gt;" in page.text  # escaped
            assert "<script>alert(1)" not in page.text
            assert "no log lines" not in page.text

        empty = await client.get(f"/admin/jobs/{without}")
        assert empty.status_code == 200
        assert "<h3>Logs</h3>" in empty.text and "no log lines" in empty.text


async def test_revoking_the_key_ends_its_session(rt: Runtime) -> None:
    real = time.monotonic
    shift = 0.0
    rt.auth.monotonic = lambda: real() + shift  # the authenticator's cache clock, moved by hand
    key, stored = await admin_key(rt)
    async with browser(rt) as client:
        assert (await login(client, key)).status_code == 303
        page = await client.get("/admin/jobs")
        assert page.status_code == 200
        csrf = csrf_of(page.text)

        # What `mds keys revoke` does.
        assert await rt.store.revoke_api_key(stored.name, now=rt.clock.now()) is not None
        shift = rt.settings.AUTH_CACHE_SEC + 1  # the key's cached check has lapsed

        r = await client.get("/admin/jobs")
        assert r.status_code == 303 and r.headers["location"].startswith("/admin/login")
        r = await client.post("/admin/logout", data={"csrf": csrf})
        assert r.status_code == 403  # no session any more, so no state change either
        form = await client.get("/admin/login")
        assert form.status_code == 200 and 'name="api_key"' in form.text

        # Logging in again with the revoked key is refused; a new key works.
        assert (await login(client, key)).status_code == 401
        assert (await login(client, await new_key(rt, Role.ADMIN))).status_code == 303
        assert (await client.get("/admin/jobs")).status_code == 200


async def test_a_session_of_another_key_outlives_a_revocation(rt: Runtime) -> None:
    async with logged_in(rt) as (client, _):
        _, other = await admin_key(rt)
        assert await rt.store.revoke_api_key(other.name, now=rt.clock.now()) is not None
        rt.auth.monotonic = lambda: time.monotonic() + rt.settings.AUTH_CACHE_SEC + 1
        assert (await client.get("/admin/jobs")).status_code == 200


async def test_the_json_api_gives_one_runs_log_lines_not_the_lists(rt: Runtime) -> None:
    lines = ["2025-10-08T15:00:00.125+00:00 INFO mds.services.coverage: 8000 symbols checked"]
    run_id = await stored_run(rt, lines)
    async with asgi_client(rt, role=Role.ADMIN) as client:
        one = ok(await client.get(f"/api/v1/market-data/admin/jobs/{run_id}"))
        assert one["logs"] == lines and one["error"] == "ValueError: boom"
        listed = ok(await client.get("/api/v1/market-data/admin/jobs"))
        assert listed["jobs"] and all("logs" not in j for j in listed["jobs"])
