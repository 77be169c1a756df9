"""testCompanySmtp: try a company's mail server settings step by step, sending nothing.

Steps, in order, each answered OK or FAILED with the reason in words: CONNECT (the guard,
DNS, TCP and the server's greeting), TLS (with security TLS or STARTTLS: the handshake and
the certificate), AUTH (when a user name is set), MAIL_FROM (the recruiting address as
envelope sender; the transaction is reset, no mail is sent). Only the steps the settings
need are listed, and none after the first failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from enum import StrEnum

import aiosmtplib
from aiosmtplib.typing import SMTPStatus

from core.mail.smtp_connect import SmtpTarget, make_client, open_socket
from core.models.enums import SmtpSecurity
from core.services import smtp_guard
from core.settings import get_settings


class Step(StrEnum):
    CONNECT = "CONNECT"
    TLS = "TLS"
    AUTH = "AUTH"
    MAIL_FROM = "MAIL_FROM"


class StepStatus(StrEnum):
    OK = "OK"
    FAILED = "FAILED"


@dataclass(frozen=True)
class StepResult:
    step: Step
    status: StepStatus
    message: str


def _words(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


def _tls_reason(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"the server's certificate was not accepted: {cause.verify_message}"
    if cause is not None:
        return f"the TLS handshake failed: {cause.reason or cause}"
    return f"the TLS handshake failed: {exc}"


async def check(target: SmtpTarget, sender: str) -> list[StepResult]:
    """Run the steps against `target` (a company's server: the network guard applies)."""
    results: list[StepResult] = []
    where = target.describe()

    def done(step: Step, status: StepStatus, message: str) -> None:
        results.append(StepResult(step, status, message))

    def skip_rest() -> list[StepResult]:
        return results  # the steps after a failure are not tried

    timeout = get_settings().smtp_timeout_seconds
    try:
        sock = await open_socket(target.host, target.port, timeout)
    except smtp_guard.Refused as exc:
        done(Step.CONNECT, StepStatus.FAILED, str(exc))
        return skip_rest()
    except smtp_guard.Unresolved as exc:
        done(Step.CONNECT, StepStatus.FAILED, f"{exc}.")
        return skip_rest()
    except aiosmtplib.SMTPConnectTimeoutError:
        done(Step.CONNECT, StepStatus.FAILED, f"{where} did not answer in time.")
        return skip_rest()
    except aiosmtplib.SMTPConnectError as exc:
        done(Step.CONNECT, StepStatus.FAILED, f"could not connect to {where}: {exc}")
        return skip_rest()

    # Connect without STARTTLS first, so that the greeting and TLS are told apart.
    client = make_client(target, sock)
    implicit_tls = target.security == SmtpSecurity.TLS
    try:
        try:
            greeting = await client.connect(start_tls=False)
            await client.ehlo()
        except aiosmtplib.SMTPConnectResponseError as exc:
            done(Step.CONNECT, StepStatus.FAILED,
                 f"{where} refused the connection: {_words(exc.code, exc.message)}")
            return skip_rest()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if implicit_tls:
                done(Step.CONNECT, StepStatus.OK, f"connected to {where}")
                done(Step.TLS, StepStatus.FAILED, _tls_reason(exc))
            else:
                done(Step.CONNECT, StepStatus.FAILED,
                     f"{where} did not greet as an SMTP server: {exc}")
            return skip_rest()
        first_line = (greeting.message.splitlines() or [""])[0]
        plain = (" (security NONE: the connection is not encrypted)"
                 if target.security == SmtpSecurity.NONE else "")
        done(Step.CONNECT, StepStatus.OK,
             f"connected to {where}: {_words(greeting.code, first_line)}{plain}")
        if implicit_tls:
            done(Step.TLS, StepStatus.OK, "TLS from the first byte, certificate accepted")
        elif target.security == SmtpSecurity.STARTTLS:
            if not client.supports_extension("starttls"):
                done(Step.TLS, StepStatus.FAILED,
                     f"{where} does not offer STARTTLS (choose security NONE or TLS, or "
                     "another port)")
                return skip_rest()
            try:
                await client.starttls()
            except aiosmtplib.SMTPResponseException as exc:
                done(Step.TLS, StepStatus.FAILED,
                     f"{where} refused STARTTLS: {_words(exc.code, exc.message)}")
                return skip_rest()
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                done(Step.TLS, StepStatus.FAILED, _tls_reason(exc))
                return skip_rest()
            done(Step.TLS, StepStatus.OK, "STARTTLS done, certificate accepted")

        if target.username:
            try:
                await client.login(target.username, target.password or "")
            except aiosmtplib.SMTPAuthenticationError as exc:
                done(Step.AUTH, StepStatus.FAILED,
                     f"{where} refused the login of {target.username}: "
                     f"{_words(exc.code, exc.message)} (wrong user name or password?)")
                return skip_rest()
            except aiosmtplib.SMTPException as exc:
                done(Step.AUTH, StepStatus.FAILED, f"the login failed: {exc}")
                return skip_rest()
            done(Step.AUTH, StepStatus.OK, f"logged in as {target.username}")

        try:
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            reply = await client.execute_command(b"MAIL", b"FROM:<" + sender.encode() + b">")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            done(Step.MAIL_FROM, StepStatus.FAILED, f"MAIL FROM failed: {exc}")
            return skip_rest()
        if reply.code != SMTPStatus.completed:
            done(Step.MAIL_FROM, StepStatus.FAILED,
                 f"{where} refused the sender {sender}: {_words(reply.code, reply.message)}")
            return skip_rest()
        done(Step.MAIL_FROM, StepStatus.OK, f"{where} accepts {sender} as sender")
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            await client.rset()
        return results
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.quit(), 5)
        client.close()
