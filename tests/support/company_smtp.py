"""The company's own mail server in the integration tests: the settings mutation, the
operator's allowance for the loopback test servers (the `local_servers` fixture) and the
knobs a test turns (tests/integration/test_company_smtp*.py, test_subsidiaries*.py)."""

from __future__ import annotations

from typing import Any

import pytest

from core.models.enums import MessageStatus
from core.settings import reset_settings

S = MessageStatus

SETTINGS = """mutation($input: CompanyEmailSettingsInput!) {
  updateCompanyEmailSettings(input: $input) {
    company { emailSettings { smtpHost smtpPort smtpSecurity smtpProvider smtpMaxPerMinute
                              smtpMaxPerDay smtpMaxConnections lastError lastErrorAt } }
    errors { code field message } } }"""


@pytest.fixture
def local_servers(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator allows the loopback network and any high port (the test servers)."""
    monkeypatch.setenv("RECRUITMAIL_COMPANY_SMTP_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("RECRUITMAIL_COMPANY_SMTP_ALLOWED_PORTS", "1024-65535")
    reset_settings()


def _knobs(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for k, v in values.items():
        monkeypatch.setenv(f"RECRUITMAIL_{k.upper()}", v)
    reset_settings()
