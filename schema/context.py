"""The per-request (per websocket connection) GraphQL context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypeAlias

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from core.models import Company, Employee
from schema.errors import forbidden, unauthenticated
from schema.loaders import Loaders


@dataclass
class Context:
    request: Request | WebSocket | None = None
    response: Response | WebSocket | None = None
    # Set by the ASGI layer from the bearer token (HTTP) or connection_init (websocket).
    employee: Employee | None = None
    company: Company | None = None
    connection_params: dict[str, Any] | None = None
    websocket: bool = False
    # A token was sent but matches no employee (unknown, revoked): say so instead of
    # "authentication required".
    token_rejected: bool = False
    _loaders: Loaders | None = None

    def sign_in(self, employee: Employee, company: Company) -> None:
        self.employee = employee
        self.company = company
        # A websocket lives long: batch its lookups but never serve stale rows from a cache.
        self._loaders = Loaders(company.id, cache=not self.websocket)

    @property
    def authenticated(self) -> bool:
        return self.employee is not None and self.company is not None

    @property
    def viewer(self) -> Employee:
        if self.employee is None:
            raise unauthenticated()
        return self.employee

    def require_admin(self, what: str) -> Employee:
        """Company-wide things (templates, rejection reasons, email settings) are changed
        by admins only; everyone may use them."""
        viewer = self.viewer
        if not viewer.is_admin:
            raise forbidden(f"Only a company admin may {what}.")
        return viewer

    @property
    def tenant(self) -> Company:
        if self.company is None:
            raise unauthenticated()
        return self.company

    @property
    def company_id(self) -> uuid.UUID:
        return self.tenant.id

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            raise unauthenticated()
        return self._loaders


Info: TypeAlias = strawberry.Info[Context, None]
