"""Errors as data (UserError in payloads) and the few GraphQL errors (auth, bad paging)."""

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import strawberry
from graphql import GraphQLError

from core.errors import ErrorCode, FieldError, InputError
from schema.enums import ErrorCode as ErrorCodeEnum

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
INVALID_INPUT = "INVALID_INPUT"
NOT_FOUND = "NOT_FOUND"

P = TypeVar("P")
R = TypeVar("R")


@strawberry.type
class UserError:
    code: ErrorCodeEnum  # type: ignore[valid-type]
    message: str
    field: list[str] | None = strawberry.field(
        default=None,
        description='Path to the offending input field, e.g. ["input", "cc", "2"].',
    )

    @classmethod
    def from_field_error(cls, err: FieldError) -> "UserError":
        return cls(code=err.code, message=err.message,
                   field=list(err.field) if err.field is not None else None)


@strawberry.type
class Payload:
    """What every mutation's payload carries besides its result: the input errors (empty
    when it succeeded, and then nothing was written)."""

    errors: list[UserError] = strawberry.field(default_factory=list)


def user_errors(exc: InputError | Iterable[FieldError]) -> list[UserError]:
    errors = exc.errors if isinstance(exc, InputError) else exc
    return [UserError.from_field_error(e) for e in errors]


async def payload_of(payload: Callable[..., P], action: Callable[[], Awaitable[R]],
                     result: Callable[[R], P], errors: Iterable[FieldError] = ()) -> P:
    """A mutation's payload: the input errors found before acting (the action is not run),
    the errors the action refused with (it writes nothing then), or its result."""
    found = list(errors)
    if found:
        return payload(errors=user_errors(found))
    try:
        value = await action()
    except InputError as exc:
        return payload(errors=user_errors(exc))
    return result(value)


def field_error(code: ErrorCode, message: str, *path: str) -> FieldError:
    return FieldError(code, message, tuple(path) if path else None)


def not_found(what: str, *path: str) -> FieldError:
    """Another company's id, a malformed id and a deleted row all read the same."""
    return FieldError(ErrorCode.NOT_FOUND, f"No such {what}.", tuple(path))


def graphql_error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def unauthenticated(*, token_rejected: bool = False) -> GraphQLError:
    if token_rejected:
        return graphql_error("The bearer token is invalid or expired: sign in again or ask "
                             "for a new token.", UNAUTHENTICATED)
    return graphql_error("Authentication required: send Authorization: Bearer <token>.",
                         UNAUTHENTICATED)


def forbidden(message: str = "Not allowed.") -> GraphQLError:
    return graphql_error(message, FORBIDDEN)
