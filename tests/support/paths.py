"""Where the test suite's own data and tools live: inside the project, nothing beside it.

- ``DATA / "imip"``: the real-client iMIP corpus, with SOURCES.md (where each file is
  from) and expected.json (what the parser must make of it).
- ``CONTRACT``: the design contract the exported schema must stay a superset of.
- ``TOOLS``: the third-party conformance tools (npm graphql-http, graphql-ws, ical.js,
  playwright-core from package.json / package-lock.json; libical through Debian's
  python3-gi), installed by ``make test`` through ``tests/tools/install``; ``RUN`` runs one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CORPUS = DATA / "imip"
CONTRACT = DATA / "contract.graphql"
TOOLS = ROOT / "tests" / "tools"
RUN = TOOLS / "run"
NODE_MODULES = TOOLS / "node_modules"


def ensure_tools() -> None:
    """Install the tools when pytest runs without `make test` (a no-op when up to date)."""
    subprocess.run([str(TOOLS / "install")], check=True, timeout=600)
