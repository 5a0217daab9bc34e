"""The admin in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Logs in, opens the job list with jobs in every state and a finished job, checks that the
badges, progress bars, timeline and both preview players are visible, and saves
screenshots (light and dark mode) in a directory it prints (``TPX_SCREENSHOTS`` to choose
it). Requests to the fake storage host are answered by Playwright, so nothing leaves the
machine. Skipped when Playwright or ``/usr/bin/chromium`` is missing (``.ci/run`` installs
both).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections

from tests.admin_jobs import make_jobs_in_every_state

CHROMIUM = "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
    pytest.mark.django_db(transaction=True),
]


def gradient_png(width: int = 160, height: int = 90) -> bytes:
    """A small landscape-like PNG for the thumbnails, made without any imaging library."""
    rows = b"".join(
        b"\x00"
        + b"".join(
            bytes((40 + x, 90 + y, 160 - y // 2) if y > height // 2 else (120, 170, 230 - x // 2))
            for x in range(width)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("TPX_SCREENSHOTS")
    directory = Path(chosen) if chosen else tmp_path_factory.mktemp("admin-screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    print(f"\nadmin screenshots: {directory}")
    return directory


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # meanwhile are ordinary synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--headless",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield chromium
        # While Playwright's event loop runs in this thread, Django keeps the ORM's
        # connections apart from the test's (asgiref's thread-critical storage): close the
        # one the test opened so, or it outlives the session and the test database cannot
        # be dropped.
        connections.close_all()
        chromium.close()


def open_admin(browser: Any, live_server: Any, *, color_scheme: str = "light") -> Any:
    page = browser.new_page(viewport={"width": 1600, "height": 900}, color_scheme=color_scheme)
    # The nav sidebar closed, as the admin remembers it, so the list has the width.
    page.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    thumbnail = gradient_png()
    page.route(
        "https://storage.example/**",
        lambda route: (
            route.fulfill(status=200, content_type="image/png", body=thumbnail)
            if "/thumbs/" in route.request.url
            else route.fulfill(status=404, body=b"")
        ),
    )
    page.goto(f"{live_server.url}/admin/login/?next=/admin/django_tensorpix/job/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-password")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    return page


def test_operator_sees_every_job_state_and_a_finished_job(browser, live_server, screenshots):
    user = User.objects.create_superuser("operator", "op@example.com", "a-long-password")
    jobs = make_jobs_in_every_state(user)
    page = open_admin(browser, live_server)

    badges = page.locator("#result_list .tpx-badge")
    assert badges.count() == len(jobs)
    for index in range(badges.count()):
        assert badges.nth(index).is_visible()
    labels = set(badges.all_inner_texts())
    assert {"Finished", "Processing", "In Queue", "Failed", "Canceled", "Stalled"} <= labels
    bars = page.locator("#result_list .tpx-progress")
    assert bars.count() >= 3
    fill = page.locator("#result_list tr", has_text="Job 32").locator(".tpx-progress-fill")
    assert fill.bounding_box()["width"] > 0
    assert (
        page.locator("#result_list img.tpx-thumb").first.evaluate("img => img.naturalWidth") == 160
    )
    page.screenshot(path=str(screenshots / "admin-jobs.png"), full_page=True)

    page.click("#result_list a:text-is('Job 31')")
    page.wait_for_selector(".tpx-timeline")
    assert page.locator(".tpx-timeline").is_visible()
    assert page.locator(".tpx-timeline-entry").count() == 7
    players = page.locator(".tpx-previews video")
    assert players.count() == 2
    assert players.nth(0).is_visible()
    assert players.nth(1).is_visible()
    before, after = (players.nth(i).bounding_box() for i in range(2))
    assert before["y"] == after["y"]  # side by side
    assert after["x"] > before["x"]
    assert page.locator(".tpx-badge-finished").is_visible()
    assert page.locator("input[name=_save]").count() == 0
    page.screenshot(path=str(screenshots / "admin-job-finished.png"), full_page=True)
    page.close()


def test_dark_mode_keeps_badges_and_bars_readable(browser, live_server, screenshots):
    user = User.objects.create_superuser("operator", "op@example.com", "a-long-password")
    make_jobs_in_every_state(user)
    page = open_admin(browser, live_server, color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(part) for part in background[4:-1].split(",")[:3])
    assert red + green + blue < 200, background  # the admin's dark theme is on
    badge = page.locator(".tpx-badge-finished").first
    assert badge.evaluate("el => getComputedStyle(el).color") == "rgb(255, 255, 255)"
    track = page.locator(".tpx-progress").first
    assert track.evaluate("el => getComputedStyle(el).backgroundColor") != background
    page.screenshot(path=str(screenshots / "admin-jobs-dark.png"), full_page=True)
    page.close()
