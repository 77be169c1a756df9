"""Headless Chromium driven by npm playwright-core, for the browser tests.

Nothing is committed to the repository: playwright-core is installed on first use into a
cache directory outside it (``$RECRUITMAIL_E2E_CACHE`` or ``~/.cache/recruitmail-e2e``),
and Chromium is Debian's ``/usr/bin/chromium`` (``apt-get install -y chromium``; tried once
when missing and we are root). ``browser_unavailable()`` says why a browser test cannot run,
or returns None.

The test writes a small Node script and runs it with ``run_node_script``; the script gets
``require("playwright-core")`` and the Chromium path through the environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

PLAYWRIGHT_VERSION = "1.65.1"
# playwright adds --headless itself (headless: true in the script).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
    "--disable-dev-shm-usage",
]
INSTALL_TIMEOUT = 240


def cache_dir() -> Path:
    return Path(os.environ.get("RECRUITMAIL_E2E_CACHE", Path.home() / ".cache" / "recruitmail-e2e"))


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _try_apt_chromium() -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], env=env,
                       capture_output=True, timeout=INSTALL_TIMEOUT, check=False)
        if not chromium_path():
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True,
                           timeout=INSTALL_TIMEOUT, check=False)
            subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], env=env,
                           capture_output=True, timeout=INSTALL_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        pass


def playwright_dir() -> Path:
    return cache_dir() / f"playwright-core-{PLAYWRIGHT_VERSION}"


def _ensure_playwright() -> str | None:
    """Install playwright-core into the cache; returns an error text or None."""
    target = playwright_dir()
    if (target / "node_modules" / "playwright-core" / "package.json").exists():
        return None
    npm = shutil.which("npm")
    if not npm:
        return "npm not found (apt-get install nodejs npm)"
    target.mkdir(parents=True, exist_ok=True)
    (target / "package.json").write_text(json.dumps({"name": "recruitmail-e2e", "private": True}))
    env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
    try:
        proc = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
             f"playwright-core@{PLAYWRIGHT_VERSION}"],
            cwd=target, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"npm install playwright-core timed out after {INSTALL_TIMEOUT}s"
    if proc.returncode != 0:
        return f"npm install playwright-core failed: {proc.stderr.strip()[-400:]}"
    return None


def browser_unavailable() -> str | None:
    """Why headless Chromium + playwright-core cannot be used here, or None when they can."""
    if not shutil.which("node"):
        return "node not found (apt-get install nodejs npm)"
    if not chromium_path():
        _try_apt_chromium()
        if not chromium_path():
            return "chromium not installed and `apt-get install chromium` did not work"
    return _ensure_playwright()


def run_node_script(script: str, env: dict[str, str], timeout: float = 120) -> dict[str, object]:
    """Run ``script`` (JavaScript) with playwright-core available; it prints one JSON line last."""
    path = playwright_dir() / "run-test.cjs"
    path.write_text(script)
    full_env = {
        **os.environ,
        **env,
        "NODE_PATH": str(playwright_dir() / "node_modules"),
        "CHROMIUM_PATH": chromium_path() or "",
        "CHROMIUM_FLAGS": json.dumps(CHROMIUM_FLAGS),
    }
    proc = subprocess.run(["node", str(path)], env=full_env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(
            f"browser script failed (exit {proc.returncode})\nstdout:\n{proc.stdout[-3000:]}\n"
            f"stderr:\n{proc.stderr[-3000:]}"
        )
    result: dict[str, object] = json.loads(lines[-1])
    return result
