"""The /admin console's skeleton and its dashboard, jobs, schedules and DLQ pages, in-process:
login and its refusals, the session cookie's flags, CSRF, each page with data and with an
empty store, paging over 8,000 symbols, and the actions the pages take."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mds.access.admin import issue_key
from mds.access.keys import Role
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillStatus
from mds.domain.schedules import RunStatus
from mds.runtime import Runtime
from mds.storage.base import NewBackfill
from tests.integration.conftest import asgi_client, manual

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
CORE_PAGES = (
    "/admin",
    "/admin/dashboard/coverage",
    "/admin/jobs",
    "/admin/schedules",
    "/admin/schedules/new",
    "/admin/dlq",
    "/admin/dlq/purge",
)
_TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def browser(rt: Runtime, base_url: str = "http://mds") -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """A cookie-keeping client, like a browser: no API key header."""
    return asgi_client(rt, role=None, base_url=base_url)


async def new_key(rt: Runtime, role: Role) -> str:
    key, _ = await issue_key(
        rt.store, f"admin-ui-{role.value}-{secrets.token_hex(3)}", role, now=rt.clock.now()
    )
    return key


def csrf_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, html[:500]
    return found.group(1)


async def login(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/admin/login")
    return await client.post(
        "/admin/login", data={"api_key": key, "csrf": csrf_of(form.text), "next": "/admin"}
    )


@asynccontextmanager
async def logged_in(rt: Runtime) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A logged-in browser and its session's CSRF token."""
    async with browser(rt) as client:
        r = await login(client, await new_key(rt, Role.ADMIN))
        assert r.status_code == 303, r.text
        page = await client.get("/admin/jobs")
        yield client, csrf_of(page.text)


# -- login, session, CSRF -------------------------------------------------------------


async def test_pages_need_a_login(rt: Runtime) -> None:
    async with browser(rt) as client:
        for path in CORE_PAGES:
            r = await client.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/admin/login?next=")
        # htmx requests are told to load the login page instead of swapping it in
        r = await client.get("/admin/jobs", headers={"HX-Request": "true"})
        assert r.headers["HX-Redirect"].startswith("/admin/login")


async def test_login_starts_a_session_and_logout_ends_it(rt: Runtime) -> None:
    async with browser(rt) as client:
        r = await login(client, await new_key(rt, Role.ADMIN))
        assert (r.status_code, r.headers["location"]) == (303, "/admin")
        page = await client.get("/admin")
        assert page.status_code == 200 and "Provider health" in page.text
        r = await client.post("/admin/logout", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 303
        assert (await client.get("/admin")).status_code == 303  # the session is gone, not just the cookie


async def test_login_goes_back_to_the_page_asked_for_but_never_off_site(rt: Runtime) -> None:
    key = await new_key(rt, Role.ADMIN)
    for asked, lands in (("/admin/dlq", "/admin/dlq"), ("https://evil.example/", "/admin")):
        async with browser(rt) as client:
            form = await client.get("/admin/login", params={"next": asked})
            r = await client.post(
                "/admin/login", data={"api_key": key, "csrf": csrf_of(form.text), "next": asked}
            )
            assert r.headers["location"] == lands


async def test_wrong_key_and_read_key_are_refused(rt: Runtime) -> None:
    async with browser(rt) as client:
        r = await login(client, "mds_not-a-key")
        assert r.status_code == 401 and "valid API key" in r.text
        assert "mds_admin=" not in r.headers.get("set-cookie", "")
        r = await login(client, await new_key(rt, Role.READ))
        assert r.status_code == 403 and "admin" in r.text
        r = await login(client, await new_key(rt, Role.OPS))
        assert r.status_code == 403
        assert (await client.get("/admin")).status_code == 303


async def test_login_form_needs_its_own_token(rt: Runtime) -> None:
    async with browser(rt) as client:
        r = await client.post(
            "/admin/login", data={"api_key": await new_key(rt, Role.ADMIN), "csrf": "forged"}
        )
        assert r.status_code == 403
        assert (await client.get("/admin")).status_code == 303


@pytest.mark.parametrize(("base_url", "secure"), [("http://mds", False), ("https://mds", True)])
async def test_session_cookie_flags(rt: Runtime, base_url: str, secure: bool) -> None:
    async with browser(rt, base_url) as client:
        r = await login(client, await new_key(rt, Role.ADMIN))
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("mds_admin="))
        flags = {f.strip().lower() for f in cookie.split(";")[1:]}
        assert "httponly" in flags
        assert "samesite=strict" in flags
        assert ("secure" in flags) is secure
        assert f"max-age={rt.settings.ADMIN_SESSION_MINUTES * 60}" in flags


async def test_state_changes_need_the_csrf_token(rt: Runtime) -> None:
    await rt.schedules.seed(by="test")
    async with logged_in(rt) as (client, token):
        before = len(await rt.schedules.jobs())
        for data, headers in (({}, {}), ({"csrf": "wrong"}, {}), ({}, {"X-CSRF-Token": "wrong"})):
            r = await client.post("/admin/actions/update-tracked", data=data, headers=headers)
            assert r.status_code == 403, r.text
            assert "CSRF" in r.text and "Traceback" not in r.text
        r = await client.post("/admin/schedules/ping/run-now", data={})
        assert r.status_code == 403
        assert len(await rt.schedules.jobs()) == before  # nothing ran
        # The token as the header htmx sends works as well as the form field.
        r = await client.post(
            "/admin/actions/update-tracked", headers={"X-CSRF-Token": token, "HX-Request": "true"}
        )
        assert r.status_code == 200 and "queued job run" in r.text


async def test_a_post_without_a_session_is_refused(rt: Runtime) -> None:
    async with browser(rt) as client:
        r = await client.post("/admin/actions/update-tracked", data={"csrf": "x"})
        assert r.status_code == 403 and "log in" in r.text.lower()


# -- pages with an empty store --------------------------------------------------------


async def test_every_page_has_an_empty_state(rt: Runtime) -> None:
    async with logged_in(rt) as (client, _):
        texts = {}
        for path in CORE_PAGES:
            r = await client.get(path)
            assert r.status_code == 200, (path, r.text[:300])
            assert "Traceback" not in r.text
            texts[path] = r.text
        assert "No task has run yet" in texts["/admin"]
        assert "No job runs yet" in texts["/admin/jobs"]
        assert "No schedules yet" in texts["/admin/schedules"]
        assert "the DLQ is empty" in texts["/admin/dlq"]
        assert "Tracked symbols" in texts["/admin/dashboard/coverage"]


async def test_errors_are_pages_not_traces(rt: Runtime) -> None:
    async with logged_in(rt) as (client, _):
        r = await client.get("/admin/jobs/999999")
        assert r.status_code == 404 and "job run" in r.text and "<html" in r.text
        r = await client.get("/admin/jobs", params={"status": "bogus"})
        assert r.status_code == 422 and "status" in r.text
        r = await client.get("/admin/schedules/nope")
        assert r.status_code == 404
        r = await client.get("/admin/jobs/999999", headers={"HX-Request": "true"})
        assert r.status_code == 404 and "<html" not in r.text  # a fragment for htmx to swap in


# -- dashboard and jobs ---------------------------------------------------------------


async def test_dashboard_shows_providers_and_quick_action_queues_a_job_run(rt: Runtime) -> None:
    async with logged_in(rt) as (client, token):
        page = await client.get("/admin")
        for p in rt.router.snapshot():
            assert p["provider"] in page.text
        assert 'id="action-restore-daily"' in page.text
        r = await client.post("/admin/actions/restore-daily", data={"csrf": token})
        assert r.status_code == 303
        runs = await rt.schedules.jobs(task="bootstrap_daily_coverage_tracked")
        assert len(runs) == 1 and runs[0].status is RunStatus.QUEUED
        assert r.headers["location"] == f"/admin/jobs/{runs[0].id}"
        assert runs[0].created_by and runs[0].created_by.startswith("admin-ui-admin")
        jobs = await client.get("/admin/jobs")
        assert f'id="run-{runs[0].id}"' in jobs.text
        drill = await client.get(f"/admin/jobs/{runs[0].id}", headers={"HX-Request": "true"})
        assert drill.status_code == 200 and "Params" in drill.text and "Counters" in drill.text
        assert "<html" not in drill.text
        # The stale-only backfill runs here and is recorded as a job run too.
        r = await client.post(
            "/admin/actions/backfill-stale", headers={"X-CSRF-Token": token, "HX-Request": "true"}
        )
        stale = await rt.schedules.jobs(task="backfill_stale_daily")
        assert len(stale) == 1 and stale[0].status is RunStatus.SUCCEEDED
        assert f"job run #{stale[0].id}" in r.text and "stale symbols" in r.text


async def test_jobs_filters_and_pages(rt: Runtime) -> None:
    for _ in range(7):
        await rt.schedules.run_task("ping", {}, by="t")
    await rt.schedules.run_task("monitor_coverage_health", {}, by="t")
    async with logged_in(rt) as (client, _):
        r = await client.get("/admin/jobs", params={"task": "ping", "per_page": 5})
        assert r.text.count('id="run-') == 5 and "page 1 of 2" in r.text
        r2 = await client.get("/admin/jobs", params={"task": "ping", "per_page": 5, "page": 2})
        assert r2.text.count('id="run-') == 2
        assert "monitor_coverage_health" not in r2.text.split('id="jobs"')[1]
        r = await client.get("/admin/jobs", params={"status": "failed"})
        assert "No job runs match" in r.text


# -- schedules --------------------------------------------------------------------------


def _schedule_form(token: str, **over: object) -> dict[str, object]:
    form: dict[str, object] = {
        "csrf": token,
        "name": "nightly-ping",
        "task": "ping",
        "timing": "cron",
        "cron": "30 21 * * 1-5",
        "timezone": "America/New_York",
        "kwargs": '{"seconds": 0}',
        "meta_queue": "default",
        "meta_priority": "3",
        "retry_attempts": "1",
        "safety_timeout_s": "60",
        "hook_discord_webhook": "system_status, signals",
        "hook_alert_on": ["failure", "slow", "success"],
    }
    form.update(over)
    return form


async def test_schedule_create_edit_pause_resume_run_delete(rt: Runtime) -> None:
    async with logged_in(rt) as (client, token):
        r = await client.post("/admin/schedules", data=_schedule_form(token))
        assert r.status_code == 303, r.text
        s = await rt.schedules.get("nightly-ping")
        assert s.cron == "30 21 * * 1-5" and s.timezone == "America/New_York"
        assert s.metadata.priority == 3 and s.metadata.safety.timeout_s == 60
        assert s.metadata.hooks.discord_webhook == "system_status, signals"
        assert s.metadata.hooks.alert_on == ["failure", "slow", "success"]
        assert s.metadata.created_by and s.metadata.created_by.startswith("admin-ui-admin")
        listing = await client.get("/admin/schedules")
        assert 'id="schedule-nightly-ping"' in listing.text
        form = await client.get("/admin/schedules/nightly-ping")
        assert 'value="system_status, signals"' in form.text and 'id="alert-success" checked' in form.text

        r = await client.post(
            "/admin/schedules/nightly-ping",
            data=_schedule_form(token, hook_alert_on=["failure"], cron="0 22 * * *"),
        )
        assert r.status_code == 303
        s = await rt.schedules.get("nightly-ping")
        assert s.cron == "0 22 * * *" and s.metadata.hooks.alert_on == ["failure"]

        await client.post("/admin/schedules/nightly-ping/pause", data={"csrf": token})
        assert not (await rt.schedules.get("nightly-ping")).enabled
        assert "paused" in (await client.get("/admin/schedules", params={"state": "paused"})).text
        await client.post("/admin/schedules/nightly-ping/resume", data={"csrf": token})
        assert (await rt.schedules.get("nightly-ping")).enabled

        r = await client.post("/admin/schedules/nightly-ping/run-now", data={"csrf": token})
        runs = await rt.schedules.jobs(schedule="nightly-ping")
        assert len(runs) == 1 and f"run={runs[0].id}" in r.headers["location"]

        r = await client.post(
            "/admin/schedules/nightly-ping/delete", data={"csrf": token, "confirm": "wrong"}
        )
        assert r.status_code == 422
        r = await client.post(
            "/admin/schedules/nightly-ping/delete", data={"csrf": token, "confirm": "nightly-ping"}
        )
        assert r.status_code == 303
        assert await rt.schedules.all() == []


async def test_schedule_form_errors_name_the_field_and_keep_the_input(rt: Runtime) -> None:
    async with logged_in(rt) as (client, token):
        r = await client.post("/admin/schedules", data=_schedule_form(token, cron="61 * * * *"))
        assert r.status_code == 422 and "cron" in r.text and 'value="61 * * * *"' in r.text
        r = await client.post("/admin/schedules", data=_schedule_form(token, kwargs="{nope"))
        assert r.status_code == 422 and "kwargs" in r.text
        r = await client.post(
            "/admin/schedules", data=_schedule_form(token, hook_prometheus_endpoint="ftp://x")
        )
        assert r.status_code == 422 and "prometheus_endpoint" in r.text
        assert await rt.schedules.all() == []


async def test_cron_preview(rt: Runtime) -> None:
    async with logged_in(rt) as (client, token):
        r = await client.post(
            "/admin/schedules/preview",
            data={"timing": "cron", "cron": "0 9 * * 1-5", "timezone": "UTC"},
            headers={"X-CSRF-Token": token, "HX-Request": "true"},
        )
        times = re.findall(r"<li>([^<]+)</li>", r.text)
        assert times[:2] == ["2025-10-09T09:00:00+00:00", "2025-10-10T09:00:00+00:00"] and len(times) == 5
        r = await client.post(
            "/admin/schedules/preview",
            data={"timing": "cron", "cron": "nonsense", "timezone": "UTC"},
            headers={"X-CSRF-Token": token, "HX-Request": "true"},
        )
        assert r.status_code == 200 and "cron" in r.text and "<li>" not in r.text


async def test_schedule_export_and_import(rt: Runtime) -> None:
    await rt.schedules.seed(by="test")
    async with logged_in(rt) as (client, token):
        exported = await client.get("/admin/schedules/export")
        assert exported.headers["content-disposition"].startswith("attachment")
        entries = exported.json()
        assert {e["name"] for e in entries} == {s.name for s in await rt.schedules.all()}
        for s in await rt.schedules.all():
            await rt.schedules.delete(s.name) if not any(
                s.name in o.metadata.dependencies for o in await rt.schedules.all()
            ) else None
        r = await client.post(
            "/admin/schedules/import",
            data={"csrf": token},
            files={"file": ("s.json", exported.content, "application/json")},
        )
        assert r.status_code == 303, r.text
        assert {s.name for s in await rt.schedules.all()} == {e["name"] for e in entries}
        r = await client.post(
            "/admin/schedules/import",
            data={"csrf": token},
            files={"file": ("s.json", b"{}", "application/json")},
        )
        assert r.status_code == 422 and "JSON array" in r.text


# -- DLQ, and 8,000 symbols -----------------------------------------------------------


async def _fail(rt: Runtime, symbols: list[str], tier: Tier) -> list[int]:
    specs = [NewBackfill(s, Interval.D1, NOW - timedelta(days=5), NOW, tier) for s in symbols]
    recs = await rt.store.create_backfills(specs, now=NOW)
    for rec in recs:
        await rt.store.update_backfill(
            rec.id, status=BackfillStatus.FAILED, now=NOW, last_error="vendor said no"
        )
    return [r.id for r in recs]


async def test_dlq_requeue_one_all_by_tier_and_purge_with_confirmation(rt: Runtime) -> None:
    t0 = await _fail(rt, ["AAPL", "MSFT"], Tier.T0)
    t1 = await _fail(rt, ["JPM", "XOM", "KO"], Tier.T1)
    async with logged_in(rt) as (client, token):
        page = await client.get("/admin/dlq", params={"tier": "T1"})
        assert page.text.count('id="dlq-') == 3 and "vendor said no" in page.text
        r = await client.post(f"/admin/dlq/{t0[0]}/requeue", data={"csrf": token})
        assert r.status_code == 303
        assert (await rt.store.get_backfill(t0[0])).status is BackfillStatus.QUEUED  # type: ignore[union-attr]
        r = await client.post(f"/admin/dlq/{t0[0]}/requeue", data={"csrf": token})
        assert r.status_code == 404  # not in the DLQ any more
        r = await client.post("/admin/dlq/requeue-all", data={"csrf": token, "tier": "T1"})
        assert "n=3" in r.headers["location"]
        assert [(await rt.store.get_backfill(i)).status for i in t1] == [BackfillStatus.QUEUED] * 3  # type: ignore[union-attr]
        assert (await rt.store.get_backfill(t0[1])).status is BackfillStatus.FAILED  # type: ignore[union-attr]

        confirm = await client.get("/admin/dlq/purge", params={"days": 0})
        assert "Type" in confirm.text and "1 failed jobs" in confirm.text
        r = await client.post("/admin/dlq/purge", data={"csrf": token, "days": "0", "confirm": "nope"})
        assert r.status_code == 422
        assert (await rt.store.get_backfill(t0[1])) is not None
        manual(rt).advance(1)
        r = await client.post("/admin/dlq/purge", data={"csrf": token, "days": "0", "confirm": "purge"})
        assert r.status_code == 303 and "n=1" in r.headers["location"]
        assert (await rt.store.get_backfill(t0[1])) is None


async def test_pages_page_8000_symbols(rt: Runtime) -> None:
    symbols = [f"S{i:05d}" for i in range(8000)]
    await rt.store.add_holdings(symbols, note="bulk", now=NOW)
    await _fail(rt, symbols, Tier.T2)
    async with logged_in(rt) as (client, _):
        kpis = await client.get("/admin/dashboard/coverage")
        tracked = int(re.search(r"Tracked symbols</div><div class=\"v\">(\d+)", kpis.text).group(1))  # type: ignore[union-attr]
        assert tracked >= 8000
        first = await client.get("/admin/dlq", params={"per_page": 100})
        assert first.text.count('id="dlq-') == 100 and "8000 failed backfill jobs" in first.text
        last = await client.get("/admin/dlq", params={"per_page": 100, "page": 80})
        assert last.text.count('id="dlq-') == 100 and 'rel="next"' not in last.text
        seen = set(re.findall(r'id="dlq-(\d+)"', first.text)) | set(re.findall(r'id="dlq-(\d+)"', last.text))
        assert len(seen) == 200  # the two pages hold different jobs
        beyond = await client.get("/admin/dlq", params={"per_page": 100, "page": 81})
        assert beyond.status_code == 200 and "the DLQ is empty" in beyond.text
        dash = await client.get("/admin")
        assert dash.status_code == 200 and 'href="/admin/dlq?tier=T2">8000<' in dash.text


async def test_every_form_carries_the_session_token(rt: Runtime) -> None:
    await rt.schedules.seed(by="test")
    await _fail(rt, ["AAPL"], Tier.T0)
    async with logged_in(rt) as (client, token):
        for path in (
            "/admin",
            "/admin/schedules",
            "/admin/schedules/new",
            "/admin/schedules/ping/delete",
            "/admin/dlq",
            "/admin/dlq/purge",
        ):
            html = (await client.get(path)).text
            forms = html.count('method="post"')
            assert forms >= 1, path
            assert _TOKEN.findall(html) == [token] * forms, path  # the logout form's included
            assert f'"X-CSRF-Token": "{token}"' in html  # what htmx sends
