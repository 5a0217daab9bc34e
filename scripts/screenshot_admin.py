"""Take the README's admin screenshot from a running demo (a maintainer's tool).

    scripts/demo.sh --speed 20 &         # note the admin password it prints
    .venv/bin/pip install playwright     # not a dependency: only this script needs it
    .venv/bin/python scripts/screenshot_admin.py --password PASSWORD

Logs into the admin with headless Chromium (the system's, ``--chromium``) and saves the
job list to ``docs/admin-jobs.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--page", default="/admin/django_tensorpix/job/")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "admin-jobs.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    options = parser.parse_args()
    options.output.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=options.chromium,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{options.url}/admin/login/?next={options.page}")
        page.fill("#id_username", options.user)
        page.fill("#id_password", options.password)
        page.click("input[type=submit]")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(options.output))
        browser.close()
    print(f"Saved {options.output}")


if __name__ == "__main__":
    main()
