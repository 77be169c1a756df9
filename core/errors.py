"""Errors a user can fix, raised by services and returned as data by the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_EMAIL = "INVALID_EMAIL"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    TOO_LARGE = "TOO_LARGE"
    # A text longer than its field allows (the field is named in the error).
    TOO_LONG = "TOO_LONG"
    TEMPLATE_ERROR = "TEMPLATE_ERROR"
    FEATURE_NOT_ENABLED = "FEATURE_NOT_ENABLED"
    INVALID_STATE = "INVALID_STATE"


@dataclass(frozen=True)
class FieldError:
    code: ErrorCode
    message: str
    # Path to the offending input field, e.g. ("input", "cc", "2").
    field: tuple[str, ...] | None = None


class InputError(Exception):
    """One or more FieldErrors; nothing was written."""

    def __init__(self, errors: Sequence[FieldError] | FieldError) -> None:
        self.errors: list[FieldError] = (
            [errors] if isinstance(errors, FieldError) else list(errors)
        )
        super().__init__("; ".join(e.message for e in self.errors))


