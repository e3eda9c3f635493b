"""/docs and /redoc in a real headless browser (Debian's chromium, driven by playwright), with every
request that leaves 127.0.0.1 refused: the pages render from the control plane's own assets, and
"Authorize" + "Try it out" on GET /api/sessions answers 200."""

from __future__ import annotations

import os
import shutil
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.parametrize("db_url", ["sqlite"], indirect=True), pytest.mark.timeout(240)]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (scripts/ensure-system-packages.sh installs it)")
        pytest.skip("chromium is not installed")
    return path


@pytest.fixture
async def browser_page():
    from playwright.async_api import async_playwright

    executable = _chromium()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            outside: list[str] = []

            async def only_loopback(route):
                if urlsplit(route.request.url).hostname == "127.0.0.1":
                    await route.continue_()
                else:
                    outside.append(route.request.url)
                    await route.abort()

            await page.route("**/*", only_loopback)
            yield page, outside
        finally:
            await browser.close()


async def test_swagger_ui_renders_offline_and_try_it_out_answers_200(cp, browser_page):
    page, outside = browser_page
    alice = await cp.owner("alice")
    token = alice.headers["Authorization"].removeprefix("Bearer ")
    ws = await cp.workspace("/srv/repo", "alice", None)
    await alice.post(
        "/api/sessions", json={"agent_id": "CLAUDE_CODE", "task_id": "docs-task", "workspace_id": ws["id"]}
    )

    await page.goto(f"{cp.url}/docs")
    operation = page.locator("#operations-sessions-list_sessions_api_sessions_get")
    await operation.wait_for(timeout=30_000)
    assert await page.locator(".opblock").count() >= 30

    await page.locator("button.authorize").first.click()
    await page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first.fill(token)
    await page.locator(".modal-ux .auth-btn-wrapper button.authorize").click()
    await page.locator(".modal-ux button.btn-done").click()

    await operation.locator(".opblock-summary").click()
    await operation.locator("button.try-out__btn").click()
    await operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    await status.wait_for(timeout=30_000)
    assert (await status.inner_text()).strip() == "200"
    assert "docs-task" in await operation.locator(".live-responses-table").first.inner_text()
    assert outside == []


async def test_redoc_renders_offline(cp, browser_page):
    page, outside = browser_page

    await page.goto(f"{cp.url}/redoc")
    await page.locator("h2", has_text="Import Claude Session").wait_for(timeout=30_000)

    assert await page.locator("h1").first.inner_text() == "Berth control plane (0.1.0)"
    assert await page.locator("h2", has_text="Launch Workspace Session").count() == 1
    # The one request ReDoc makes outside is its footer's "by Redocly" logo; the page does not need it.
    assert [u for u in outside if not u.startswith("https://cdn.redoc.ly/redoc/logo")] == []
