"""Headless Chromium (Debian's package, installed by scripts/install.sh test) driven by Playwright: a report is
opened as a person would open it, every plot must have loaded, and a full-page screenshot is taken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# no background connections: this machine's closed network refuses them, many at a time
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def screenshot_report(html: Path, png: Path) -> list[dict[str, Any]]:
    """Open `html` in headless Chromium, save a full-page screenshot, return each plot's rendered size."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(html.resolve().as_uri())
            page.wait_for_load_state("load")
            plots = page.evaluate("""() => [...document.querySelectorAll('img.plot')].map(i => ({
                alt: i.alt, complete: i.complete, natural: i.naturalWidth, width: i.getBoundingClientRect().width,
                height: i.getBoundingClientRect().height}))""")
            page.screenshot(path=str(png), full_page=True)
        finally:
            browser.close()
    return plots
