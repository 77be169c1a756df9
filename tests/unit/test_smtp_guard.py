"""Company SMTP servers: which addresses and ports the guard refuses, which answers are
throttling, and the operator's allow-lists (no sockets: literal addresses only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.services import smtp_guard
from core.settings import SettingsError, load_settings, reset_settings
from worker.smtp_answers import throttling


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("RECRUITMAIL_COMPANY_SMTP_ALLOWED_NETWORKS", raising=False)
    monkeypatch.delenv("RECRUITMAIL_COMPANY_SMTP_ALLOWED_PORTS", raising=False)
    reset_settings()
    yield
    reset_settings()


@pytest.mark.parametrize("address,why", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.10", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("100.64.0.1", "private or reserved"),  # carrier-grade NAT
    ("fd00::5", "private"), ("240.0.0.1", "reserved"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.1.2.3", "private"),  # IPv4-mapped
    ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
])
def test_our_network_is_refused(address: str, why: str) -> None:
    problem = smtp_guard.address_problem(address)
    assert problem is not None and why.split()[0] in problem


@pytest.mark.parametrize("address", ["93.184.216.34", "40.97.120.242", "2a00:1450:4001::6c"])
def test_public_addresses_pass(address: str) -> None:
    assert smtp_guard.address_problem(address) is None


def test_the_operator_allows_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECRUITMAIL_COMPANY_SMTP_ALLOWED_NETWORKS", "10.20.0.0/16, 127.0.0.1")
    reset_settings()
    assert smtp_guard.address_problem("10.20.3.4") is None
    assert smtp_guard.address_problem("127.0.0.1") is None
    assert smtp_guard.address_problem("10.21.0.1") is not None
    assert smtp_guard.address_problem("127.0.0.2") is not None


async def test_check_names_the_field() -> None:
    with pytest.raises(smtp_guard.Refused) as err:
        await smtp_guard.check("169.254.169.254", 587)
    assert err.value.field == "smtpHost"
    with pytest.raises(smtp_guard.Refused) as err:
        await smtp_guard.check("93.184.216.34", 5432)
    assert err.value.field == "smtpPort" and "5432" in str(err.value)
    checked = await smtp_guard.check("[2a00:1450:4001::6c]", 465)
    assert checked.addresses == ("2a00:1450:4001::6c",)


def test_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [p for p in (25, 465, 587, 2525, 26, 5432, 6379) if smtp_guard.port_allowed(p)] == [
        25, 465, 587, 2525]
    monkeypatch.setenv("RECRUITMAIL_COMPANY_SMTP_ALLOWED_PORTS", "26, 8000-8100")
    reset_settings()
    assert smtp_guard.port_allowed(26) and smtp_guard.port_allowed(8050)
    assert not smtp_guard.port_allowed(8101)


@pytest.mark.parametrize("name,value", [
    ("RECRUITMAIL_COMPANY_SMTP_ALLOWED_NETWORKS", "10.0.0.0/33"),
    ("RECRUITMAIL_COMPANY_SMTP_ALLOWED_NETWORKS", "intranet"),
    ("RECRUITMAIL_COMPANY_SMTP_ALLOWED_PORTS", "70000"),
    ("RECRUITMAIL_COMPANY_SMTP_ALLOWED_PORTS", "200-100"),
    ("RECRUITMAIL_COMPANY_SMTP_ALLOWED_PORTS", "smtp"),
])
def test_a_wrong_allow_list_stops_the_process_naming_it(monkeypatch: pytest.MonkeyPatch,
                                                        name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(name)


@pytest.mark.parametrize("code,message,expected", [
    (421, "4.7.0 Temporary server error. Please try again later", 0.0),
    (432, "4.3.2 Concurrent connections limit exceeded", 0.0),
    (451, "4.7.0 Message rate limit exceeded", 0.0),
    (452, "4.5.3 Too many recipients", 0.0),
    (451, "4.4.5 System congestion", 0.0),
    (451, "Too many messages, slow down", 0.0),
    (554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", 1800.0),
    (550, "5.4.5 Daily user sending quota exceeded", 1800.0),
    # Not throttling: greylisting, a full disk, a refusal.
    (451, "4.7.1 greylisted, try again later", None),
    (452, "4.3.1 Insufficient system storage", None),
    (450, "4.2.0 mailbox busy", None),
    (550, "5.1.1 no such user", None),
    (554, "5.7.1 relay denied", None),
])
def test_throttling_answers(code: int, message: str, expected: float | None) -> None:
    assert throttling(code, message) == expected


async def test_a_test_server_in_an_allowed_network_needs_only_the_networks_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A local test server listens on a port the kernel handed out; allowing its network is
    enough, while the services of that network (PostgreSQL, Redis, HTTP) stay refused."""
    lo, hi = smtp_guard.ephemeral_ports()
    test_port = (lo + hi) // 2
    with pytest.raises(smtp_guard.Refused) as err:
        await smtp_guard.check("127.0.0.1", test_port)  # loopback not allowed yet
    assert err.value.field == "smtpHost"
    monkeypatch.setenv("RECRUITMAIL_COMPANY_SMTP_ALLOWED_NETWORKS", "127.0.0.0/8")
    reset_settings()
    assert (await smtp_guard.check("127.0.0.1", test_port)).addresses == ("127.0.0.1",)
    for port in (5432, 6379, 80, 8000):
        with pytest.raises(smtp_guard.Refused) as err:
            await smtp_guard.check("127.0.0.1", port)
        assert err.value.field == "smtpPort"
    # Outside the allowed networks an ephemeral port is no mail port.
    with pytest.raises(smtp_guard.Refused) as err:
        await smtp_guard.check("93.184.216.34", test_port)
    assert err.value.field == "smtpPort"
