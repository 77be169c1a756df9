"""The per-request (per websocket connection) GraphQL context."""

from __future__ import annotations

import uuid
from collections.abc import Callable
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
    # Websockets: what the connection does when a subscription's queue overflows (the
    # api layer closes it with 4420), and the coalescing key of the result being made.
    on_fall_behind: Callable[[], None] | None = None
    live_key: Any = None
    live_keys: list[Any] | None = None  # the keys of a batch's results (messageStatusChanges)
    # How many subscriptions a result made with this context serves (shared selections).
    subscribers: Callable[[], int] = lambda: 1

    def fall_behind(self) -> None:
        if self.on_fall_behind is not None:
            self.on_fall_behind()

    # A shared subscription's context (api/live_ws.py): rows are cached per event batch.
    shared: bool = False
    _loaders_scope: Any = None

    def has_loaders_for(self, scope: object) -> bool:
        return scope is self._loaders_scope

    def loaders_for(self, scope: object, **primed: dict[Any, Any]) -> bool:
        """Shared subscriptions: results made for the events of one Redis message (one
        commit) share a loader cache, primed with rows already loaded for all of them
        (`candidate={id: row}`); the next message starts afresh. True when it started."""
        if self.shared and scope is not self._loaders_scope and self.company is not None:
            self._loaders_scope = scope
            self._loaders = Loaders(self.company.id, cache=True, viewer=self.employee)
            for name, rows in primed.items():
                getattr(self._loaders, name).prime_many(rows)
            return True
        return False

    def sign_in(self, employee: Employee, company: Company) -> None:
        self.employee = employee
        self.company = company
        # A websocket lives long: batch its lookups but never serve stale rows from a cache.
        self._loaders = Loaders(company.id, cache=not self.websocket, viewer=employee)

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
