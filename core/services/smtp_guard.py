"""Company SMTP servers are somewhere on the internet, never inside our own network.

A company admin chooses `smtpHost` and `smtpPort`; without this guard the worker would
connect wherever they point (our database, Redis, the cloud metadata service) and tell
them in the message's error what answered. A host is refused when any address it resolves
to is loopback, private, link-local, multicast, reserved or unspecified, and a port
unless it is a mail port (25, 465, 587, 2525); the operator may allow networks and ports
(RECRUITMAIL_COMPANY_SMTP_ALLOWED_NETWORKS / _PORTS). The check runs when the settings are
saved and again before every connection, which then goes to the address that was checked
(DNS may answer differently a second later).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from core.settings import get_settings

MAIL_PORTS = (25, 465, 587, 2525)
RESOLVE_TIMEOUT_SECONDS = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The host or port may not be used; the message says why, in words."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field  # "smtpHost" or "smtpPort"


class Unresolved(Exception):
    """The host name does not resolve (now)."""


@dataclass(frozen=True)
class Checked:
    host: str
    port: int
    addresses: tuple[str, ...]  # every address the host resolved to, all allowed


def port_allowed(port: int) -> bool:
    if port in MAIL_PORTS:
        return True
    return any(lo <= port <= hi for lo, hi in get_settings().company_smtp_ports)


def check_port(port: int) -> None:
    if not port_allowed(port):
        raise Refused(
            f"Port {port} is not a mail submission port (allowed: "
            f"{', '.join(map(str, MAIL_PORTS))}"
            + (f", {get_settings().company_smtp_allowed_ports}"
               if get_settings().company_smtp_allowed_ports else "") + ").",
            field="smtpPort")


def _unwrap(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
    return ip


def address_problem(address: str) -> str | None:
    """Why an address may not be a company's mail server, or None when it may."""
    ip = _unwrap(ipaddress.ip_address(address.split("%", 1)[0]))
    for net in get_settings().company_smtp_networks:
        if ip.version == net.version and ip in net:
            return None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return "a private or reserved address"
    return None


def _literal(host: str) -> str | None:
    text = host.strip("[]")
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> tuple[str, ...]:
    literal = _literal(host)
    if literal is not None:
        return (literal,)
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
            RESOLVE_TIMEOUT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise Unresolved(f"the host name {host} does not resolve ({exc})") from None
    addresses: list[str] = []
    for *_, sockaddr in infos:
        a = str(sockaddr[0])
        if a not in addresses:
            addresses.append(a)
    if not addresses:
        raise Unresolved(f"the host name {host} does not resolve")
    return tuple(addresses)


async def check(host: str, port: int) -> Checked:
    """The host's addresses when host and port may be used; Refused or Unresolved else.
    Every address must be allowed: a name with one private address among public ones is
    refused (which one a connection would take is not ours to choose)."""
    check_port(port)
    addresses = await resolve(host, port)
    for a in addresses:
        problem = address_problem(a)
        if problem is not None:
            shown = host if _literal(host) else f"{host} ({a})"
            raise Refused(
                f"{shown} is {problem}: a company's mail server must be reachable on the "
                "internet, not inside the platform's network.", field="smtpHost")
    return Checked(host, port, addresses)
