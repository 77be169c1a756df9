"""docker-compose.yml and Dockerfile: valid for docker-compose, and consistent with the code.

Validation uses Debian's docker-compose (v1), which checks a file offline; when it is missing
and we are root it is installed with apt, else the test is skipped with the reason. The
checks on content run on the file as docker-compose resolves it (anchors merged, variables
substituted).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
APP_SERVICES = ("api", "worker", "inbound")


def _docker_compose() -> str | None:
    found = shutil.which("docker-compose")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-q", "docker-compose"],
                ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "docker-compose"]):
        try:
            subprocess.run(cmd, env=env, capture_output=True, timeout=300, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        if shutil.which("docker-compose"):
            break
    return shutil.which("docker-compose")


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    binary = _docker_compose()
    if binary is None:
        pytest.skip("docker-compose (Debian package, v1) is not installed and apt could not install it")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECRUITMAIL_")}
    proc = subprocess.run([binary, "-f", str(COMPOSE), "config"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    config: dict[str, Any] = yaml.safe_load(proc.stdout)
    return config


def _command(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def test_services_present(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(services) >= {*APP_SERVICES, "migrate", "postgres", "redis", "mailpit"}


def test_commands_are_real_cli_commands(resolved: dict[str, Any]) -> None:
    from recruitmail.cli import main

    expected = {"api": ["recruitmail", "api", "--host", "0.0.0.0"],
                "worker": ["recruitmail", "worker"],
                "inbound": ["recruitmail", "inbound", "--host", "0.0.0.0"],
                "migrate": ["recruitmail", "migrate"]}
    for name, argv in expected.items():
        cmd = _command(resolved["services"][name])
        assert cmd == argv, (name, cmd)
        program, sub, *args = cmd
        assert program == "recruitmail"
        assert sub in main.commands, f"{name}: `recruitmail {sub}` is not a CLI command"
        # Options parse without running the command.
        ctx = main.commands[sub].make_context(sub, list(args))
        if "--host" in args:
            assert ctx.params["host"] == "0.0.0.0"


def test_console_script_is_declared() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["recruitmail"] == "recruitmail.cli:main"


def test_migrate_runs_first_and_backing_services_are_healthy(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    for name in APP_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"].get("restart", "no") == "no"

    pg = services["postgres"]
    assert pg["image"] == "postgres:16"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    redis = services["redis"]
    assert redis["image"] == "redis:7"
    assert "ping" in " ".join(redis["healthcheck"]["test"])
    assert services["mailpit"]["image"].startswith("axllent/mailpit")
    assert any(str(p.get("target")) == "8025" or "8025" in str(p)
               for p in services["mailpit"]["ports"])


def test_api_healthcheck_uses_healthz(resolved: dict[str, Any]) -> None:
    api = resolved["services"]["api"]
    test = " ".join(api["healthcheck"]["test"])
    assert "/healthz" in test and "8000" in test


def test_environment_names_are_real_settings(resolved: dict[str, Any]) -> None:
    from core.settings import Settings

    fields = set(Settings.model_fields)
    for name in (*APP_SERVICES, "migrate"):
        env = resolved["services"][name]["environment"]
        for key in env:
            assert key.startswith("RECRUITMAIL_"), (name, key)
            assert key[len("RECRUITMAIL_"):].lower() in fields, f"{name}: {key} is not a setting"
        assert env["RECRUITMAIL_SMTP_URL"] == "smtp://mailpit:1025"
        assert env["RECRUITMAIL_DATABASE_URL"].startswith("postgres://")
        assert "@postgres:5432/" in env["RECRUITMAIL_DATABASE_URL"]
        assert env["RECRUITMAIL_REDIS_URL"].startswith("redis://redis:6379/")
        # api, worker and inbound sign and check the same reply addresses.
        assert env["RECRUITMAIL_SECRET_KEY"]
    envs = [resolved["services"][n]["environment"] for n in (*APP_SERVICES, "migrate")]
    assert all(e == envs[0] for e in envs), "the processes must share one configuration"


def test_environment_values_pass_settings_validation(resolved: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import load_settings

    for key in [k for k in os.environ if k.startswith("RECRUITMAIL_")]:
        monkeypatch.delenv(key)
    for key, value in resolved["services"]["api"]["environment"].items():
        monkeypatch.setenv(key, str(value))
    s = load_settings()
    assert s.api_port == 8000 and s.inbound_port == 2525


def test_published_ports(resolved: dict[str, Any]) -> None:
    def targets(name: str) -> set[str]:
        return {str(p["target"]) if isinstance(p, dict) else str(p).split(":")[-1]
                for p in resolved["services"][name].get("ports", [])}

    assert "8000" in targets("api")
    assert "2525" in targets("inbound")


def test_dockerfile_installs_the_package() -> None:
    text = DOCKERFILE.read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(ln.startswith("RUN pip install .") for ln in lines)
    copied: set[str] = set()
    for ln in lines:
        if ln.startswith("COPY "):
            *sources, _dest = ln.split()[1:]
            for src in sources:
                assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"
                copied.add(src.rstrip("/"))
    # Every package setuptools installs, and the GraphiQL assets inside api/.
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]["include"]
    for pattern in include:
        assert pattern.rstrip("*") in copied, f"Dockerfile does not copy {pattern}"
    assert (ROOT / "api" / "static" / "graphiql" / "graphiql.min.js").exists()
