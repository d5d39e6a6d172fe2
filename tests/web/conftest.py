"""Fixtures of the dashboard tests: a logged-in ASGI client, a real hub, a real Chromium.

The browser is Debian's ``chromium`` driven by Playwright (never a downloaded
browser). Without it the browser tests skip -- except under CI, where they fail.
Screenshots go to ``test-artifacts/screenshots/`` (not committed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import UNITY, Hub, free_port

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    return found


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI runs the browser tests: {reason}")
    pytest.skip(reason)


async def login(client: httpx.AsyncClient, token: str, next_path: str = "/") -> httpx.Response:
    """Log in through the form, as a browser would; returns the form's answer."""
    page = await client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    return await client.post(
        "/login", data={"token": token, "nonce": nonce.group(1), "next": next_path}
    )


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found is not None, "a logged-in page carries its CSRF token"
    return found.group(1)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One real `unity serve` (SQLite, built-in plugins, none enabled) per module."""
    tmp = tmp_path_factory.mktemp("hub")
    env = {
        **os.environ,
        "UNITY_DATA_DIR": str(tmp / "data"),
        "UNITY_DATABASE_URL": "",
        "UNITY_PORT": str(free_port()),
        "UNITY_AUTOENABLE": "[]",
        "UNITY_HOSTNAME": "web-host",
        "UNITY_SCHEDULER_JITTER": "0",
        "UNITY_CONFIG_FILE": str(tmp / "absent.toml"),
    }
    instance = Hub(env, tmp / "hub.log")
    instance.start()
    yield instance
    instance.stop()


def make_token(hub: Hub, scope: str, name: str) -> str:
    """A hub token made the way an operator makes one: `unity token create`."""
    done = subprocess.run(
        [str(UNITY), "token", "create", "--scope", scope, "--name", name],
        env=hub.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        _unavailable("Debian's chromium is not installed (apt-get install chromium)")
    assert path is not None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    return path


@pytest.fixture(scope="module")
def browser_context(
    chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Any]]:
    """Opens browser contexts, each a fresh Chromium with a fresh user-data dir."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        contexts: list[Any] = []

        def open_context(**options: Any) -> Any:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-profile")),
                executable_path=chromium,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=options.pop("viewport", {"width": 1280, "height": 900}),
                **options,
            )
            context.set_default_timeout(15_000)
            contexts.append(context)
            return context

        yield open_context
        for context in contexts:
            context.close()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
