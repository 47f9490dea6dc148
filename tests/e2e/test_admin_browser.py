"""The /admin console in a real headless Chromium against `mds serve --demo`: log in, walk
every page (a screenshot of each under the test's folder), run a quick action and find its
job run, create and pause a schedule, requeue a DLQ job, and no SEVERE console errors."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillStatus
from mds.storage.base import NewBackfill
from mds.storage.sqlite import SqliteStore
from tests.conftest import skip_or_fail
from tests.e2e.conftest import MdsProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: (screenshot name, path): every page of the console.
PAGES = (
    ("dashboard", "/admin"),
    ("jobs", "/admin/jobs"),
    ("schedules", "/admin/schedules"),
    ("schedule-new", "/admin/schedules/new"),
    ("coverage", "/admin/coverage"),
    ("tracked", "/admin/tracked"),
    ("symbol", "/admin/symbol?symbol=AAPL"),
    ("dlq", "/admin/dlq"),
)
WAIT_S = 20


def _driver() -> Any:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        skip_or_fail(f"headless Chromium needs {CHROMIUM} and {CHROMEDRIVER}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _failed_backfill(db: Path, symbol: str) -> int:
    """A backfill job in the DLQ as a worker leaves one whose retries ran out."""

    async def make() -> int:
        store = SqliteStore(str(db))
        await store.open()
        try:
            now = datetime.now(UTC)
            (rec,) = await store.create_backfills(
                [
                    NewBackfill(
                        symbol, Interval.D1, now - timedelta(days=10), now - timedelta(days=5), Tier.T2
                    )
                ],
                now=now,
            )
            await store.update_backfill(
                rec.id,
                status=BackfillStatus.FAILED,
                now=now,
                attempts=5,
                last_error="e2e: vendor unavailable",
            )
            return rec.id
        finally:
            await store.close()

    return asyncio.run(make())


def test_admin_console_in_headless_chromium(start_mds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver()
    try:
        mds: MdsProcess = start_mds(["serve", "--demo"])
        missing = [path for _, path in PAGES if mds.get(path.split("?")[0]).status_code == 404]
        # A form post reloads the page: an element read while that happens is stale, which
        # means "not there yet", as a missing one does.
        wait = WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))

        def visit(path: str) -> None:
            driver.get(mds.url + path)
            wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

        def css(selector: str) -> Any:
            return wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, selector)))

        # Log in (the page asked for comes back after the login form).
        visit("/admin/jobs")
        assert "/admin/login" in driver.current_url
        css("#api_key").send_keys(mds.key)
        css("#login").click()
        wait.until(ec.url_to_be(mds.url + "/admin/jobs"))

        # Every page, with a screenshot.
        for name, path in PAGES:
            if path in missing:
                continue
            visit(path)
            assert driver.find_element(By.CSS_SELECTOR, "header.top nav"), path
            body = driver.find_element(By.TAG_NAME, "body").text
            assert "Traceback" not in body and "Something went wrong" not in body, (path, body[:500])
            if name == "dashboard":
                css("#kpis")  # loaded by htmx after the page
            if name == "schedule-new":
                css("#preview-times li")  # the cron preview, by htmx
            assert driver.save_screenshot(str(tmp_path / f"admin-{name}.png"))

        # A quick action queues a job run the Jobs page lists.
        visit("/admin")
        css("#action-update-tracked").click()
        message = wait.until(ec.presence_of_element_located((By.ID, "action-message")))
        assert "queued job run #" in message.text, message.text
        run_id = message.text.split("#")[1].split()[0]
        visit("/admin/jobs")
        css(f"#run-{run_id}")
        driver.find_element(By.CSS_SELECTOR, f"#run-{run_id} a[hx-get]").click()
        css(f"#job-{run_id}")  # the drill-in, swapped in by htmx

        # Create a schedule, then pause it.
        visit("/admin/schedules/new")
        css("#name").send_keys("e2e-ping")
        driver.find_element(By.CSS_SELECTOR, "#task option[value='ping']").click()
        cron = css("#cron")
        cron.clear()
        cron.send_keys("15 * * * *")
        driver.find_element(By.ID, "alert-success").click()
        driver.find_element(By.ID, "save").click()
        row = css("#schedule-e2e-ping")
        assert "active" in row.text
        row.find_element(By.CSS_SELECTOR, "button[name='pause']").click()
        wait.until(lambda d: "Paused e2e-ping" in d.find_element(By.TAG_NAME, "body").text)
        assert "paused" in css("#schedule-e2e-ping").text
        schedule = mds.get("/api/v1/admin/schedules/e2e-ping").json()
        assert schedule["paused"] and schedule["metadata"]["hooks"]["alert_on"] == ["failure", "success"]

        # Refresh market caps from the Tracked page: a worker runs the task it queues, and the
        # market-cap column then shows the sim's cap with where and when it was learned.
        visit("/admin/tracked?q=AAPL&cols=market_cap")
        cell = "#tracked-table tbody tr td:nth-child(3)"
        assert css(cell).get_attribute("title").startswith("no company profile stored")
        css("form[action='/admin/tracked/refresh-profiles'] button").click()
        wait.until(
            lambda d: "Queued the refresh_company_profiles task" in d.find_element(By.TAG_NAME, "body").text
        )
        wait.until(lambda _: mds.get("/stocks/AAPL/profile").status_code == 200)
        profile = mds.get("/stocks/AAPL/profile").json()["profile"]
        visit("/admin/tracked?q=AAPL&cols=market_cap")
        assert css(cell).text.endswith(" USD") and profile["provider"] == "sim"
        assert css(cell).get_attribute("title").startswith("sim at ")

        # Requeue a job from the DLQ.
        job_id = _failed_backfill(tmp_path / "mds.db", "AAPL")
        visit("/admin/dlq")
        css(f"#dlq-{job_id} button[name='requeue']").click()
        wait.until(lambda d: f"Requeued job {job_id}." in d.find_element(By.TAG_NAME, "body").text)
        failed_ids = [j["id"] for j in mds.get("/ops/dlq/backfills").json()["jobs"]]
        assert job_id not in failed_ids
        assert driver.save_screenshot(str(tmp_path / "admin-dlq-requeued.png"))

        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], severe
        if missing:
            pytest.skip(f"admin pages not registered yet (the rest passed): {', '.join(missing)}")
    finally:
        driver.quit()


def test_chromium_is_where_the_browser_test_looks() -> None:
    """The browser test's skip is only for machines without Chromium."""
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        skip_or_fail("chromium is not installed")
    assert Path(CHROMEDRIVER).exists()
