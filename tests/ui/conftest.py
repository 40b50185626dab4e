"""A real browser on the dashboard: Playwright driving Debian's Chromium.

The browser is the system's (``/usr/bin/chromium``, Debian's package ``chromium``),
never one downloaded at run time; when it is missing and the tests run as root, it is
installed with apt-get. Without it the tests skip, except under CI (``CI=true``), where
they fail. Playwright itself is a dev dependency of the project (``uv.lock``).

Each test gets a fresh page (``sessionStorage`` is per tab, so each starts signed out)
in one browser with its own, new user-data directory. Screenshots go to
``test-artifacts/ui/`` (``TASKGATE_TEST_ARTIFACTS`` moves it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

from acceptance.server import REPO, Server

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APP = "tests.ui.app:app"


def _cannot(message: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _apt_get(*argv: str) -> None:
    subprocess.run(
        ["apt-get", *argv],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        timeout=900,
    )


def chromium() -> str:
    """Debian's Chromium, installed if missing and allowed."""
    if not Path(CHROMIUM).exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_get("install", "-y", "-q", "chromium")
        if not Path(CHROMIUM).exists():  # a new machine's package lists may be missing
            _apt_get("update", "-q")
            _apt_get("install", "-y", "-q", "chromium")
    if not Path(CHROMIUM).exists():
        _cannot(f"the dashboard tests need Debian's Chromium at {CHROMIUM} (package chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def artefacts() -> Path:
    """Where screenshots are written, for people to look at."""
    folder = Path(os.environ.get("TASKGATE_TEST_ARTIFACTS", REPO / "test-artifacts")) / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """The driver, for one module at a time: while it runs, its event loop is the
    thread's, so no asyncio test may run beside it."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(
    playwright: Playwright, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    """One Chromium for the module, on a user-data directory of its own."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")),
        executable_path=chromium(),
        headless=True,
        args=FLAGS,
        viewport={"width": 1280, "height": 860},
        accept_downloads=True,
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    """A new tab: signed out, since the key lives in the tab's sessionStorage."""
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    tab.close()
    assert not errors, f"the page raised: {errors}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("dashboard")
    served = Server(folder / "tasks.db", folder, app=APP).start()
    yield served
    assert served.stop() == 0, served.log_text()
