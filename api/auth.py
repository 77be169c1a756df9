"""Bearer tokens to an employee and company, for HTTP requests and websocket connections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.models import Company, Employee
from core.services.admin import employee_for_token

AUTHORIZATION = "Authorization"


def bearer_token(value: Any) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None when absent or malformed."""
    if not isinstance(value, str):
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        return None
    return token


def token_from_params(params: Mapping[str, Any] | None) -> str | None:
    """graphql-transport-ws: the connection_init payload carries {"Authorization": "Bearer …"}."""
    if not params:
        return None
    for key in (AUTHORIZATION, AUTHORIZATION.lower()):
        if key in params:
            return bearer_token(params[key])
    return None


async def authenticate(token: str | None) -> tuple[Employee, Company] | None:
    """One statement: the token joined to its employee and company."""
    employee = await employee_for_token(token)
    if employee is None:
        return None
    company = employee.company  # loaded by the same statement (select_related)
    if not isinstance(company, Company):
        return None
    return employee, company
