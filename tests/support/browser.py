"""Headless Chromium driven by npm playwright-core, for the browser tests.

playwright-core is declared in tests/tools/package.json (with its lockfile) and installed
by ``make test`` (tests/tools/install, npm ci into tests/tools/node_modules), and Chromium
is Debian's ``/usr/bin/chromium`` (``apt-get install -y chromium``; tried once when missing
and we are root). ``browser_unavailable()`` says why a browser test cannot run,
or returns None.

The test writes a small Node script and runs it with ``run_node_script``; the script gets
``require("playwright-core")`` and the Chromium path through the environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.paths import NODE_MODULES, ensure_tools

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


def _ensure_playwright() -> str | None:
    """playwright-core from tests/tools (npm ci by tests/tools/install); an error text or None."""
    if (NODE_MODULES / "playwright-core" / "package.json").exists():
        return None
    if not shutil.which("npm"):
        return "npm not found (apt-get install nodejs npm)"
    try:
        ensure_tools()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"tests/tools/install failed: {exc}"
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
    folder = Path(tempfile.mkdtemp(prefix="recruitmail-e2e-"))
    path = folder / "run-test.cjs"
    path.write_text(script)
    full_env = {
        **os.environ,
        **env,
        "NODE_PATH": str(NODE_MODULES),
        "CHROMIUM_PATH": chromium_path() or "",
        "CHROMIUM_FLAGS": json.dumps(CHROMIUM_FLAGS),
    }
    try:
        proc = subprocess.run(["node", str(path)], env=full_env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(
            f"browser script failed (exit {proc.returncode})\nstdout:\n{proc.stdout[-3000:]}\n"
            f"stderr:\n{proc.stderr[-3000:]}"
        )
    result: dict[str, object] = json.loads(lines[-1])
    return result
