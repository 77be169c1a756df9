"""Candidates and applications: queries and mutations."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import strawberry
from babel import Locale, UnknownLocaleError
from tortoise.expressions import Q

from core import models
from core.errors import ErrorCode, FieldError
from core.mail.addresses import normalize_address
from schema.company import one_line
from schema.context import Info
from schema.enums import ApplicationStatus
from schema.errors import Payload, field_error, not_found, user_errors
from schema.relay import by_id, connection, paginate, uuid_of
from schema.types.candidates import (
    Application,
    ApplicationConnection,
    Candidate,
    CandidateConnection,
)

MAX_NAME = 200
MAX_SEARCH = 200


def language_tag(value: str | None) -> str | None:
    """The tag in canonical BCP 47 form ("pt-BR") when babel knows it, else None."""
    tag = (value or "").strip()
    if not tag or len(tag) > 35 or not all(c.isalnum() or c in "-_" for c in tag):
        return None
    try:
        loc = Locale.parse(tag, sep="-" if "-" in tag else "_")
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    return "-".join(p for p in (loc.language, loc.script, loc.territory, loc.variant) if p)


def timezone_name(value: str | None) -> str | None:
    name = (value or "").strip()
    if not name or len(name) > 64:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return name


@strawberry.input
class CreateCandidateInput:
    first_name: str
    last_name: str
    email: str
    language: str | None = "en"
    timezone: str | None = "UTC"


@strawberry.input
class CreateApplicationInput:
    candidate_id: strawberry.ID
    position_id: strawberry.ID


@strawberry.type
class CandidatePayload(Payload):
    candidate: Candidate | None = None


@strawberry.type
class ApplicationPayload(Payload):
    application: Application | None = None


@strawberry.type
class CandidateQuery:
    @strawberry.field
    async def candidates(self, info: Info, first: int | None = 50, after: str | None = None,
                         search: str | None = None) -> CandidateConnection:
        qs = models.Candidate.filter(company_id=info.context.company_id)
        term = (search or "").strip()[:MAX_SEARCH]
        if term:
            qs = qs.filter(Q(first_name__icontains=term) | Q(last_name__icontains=term)
                           | Q(email__icontains=term))
        return connection(await paginate(qs, first, after), "Candidate")

    candidate: Candidate | None = strawberry.field(resolver=by_id("Candidate"))

    @strawberry.field
    async def applications(
        self, info: Info, first: int | None = 50, after: str | None = None,
        position_id: strawberry.ID | None = None,
        status: ApplicationStatus | None = None,  # type: ignore[valid-type]
    ) -> ApplicationConnection:
        qs = models.Application.filter(company_id=info.context.company_id)
        if position_id is not None:
            # A malformed or foreign id filters to nothing, as if it did not exist.
            qs = qs.filter(position_id=uuid_of(position_id, "Position"))
        if status is not None:
            qs = qs.filter(status=status)
        return connection(await paginate(qs, first, after), "Application")


@strawberry.type
class CandidateMutation:
    @strawberry.mutation
    async def create_candidate(self, info: Info, input: CreateCandidateInput) -> CandidatePayload:
        company_id = info.context.company_id
        errors: list[FieldError] = []
        first, e = one_line(input.first_name, MAX_NAME, "A first name", "input", "firstName")
        errors += e
        last = input.last_name.strip()
        if last:
            last, e = one_line(last, MAX_NAME, "The last name", "input", "lastName")
            errors += e
        email = normalize_address(input.email)
        if email is None:
            errors.append(field_error(ErrorCode.INVALID_EMAIL,
                                      f"{input.email!r} is not a valid email address.",
                                      "input", "email"))
        language = language_tag(input.language if input.language is not None else "en")
        if language is None:
            errors.append(field_error(ErrorCode.INVALID_INPUT,
                                      f"{input.language!r} is not a known language tag.",
                                      "input", "language"))
        timezone = timezone_name(input.timezone if input.timezone is not None else "UTC")
        if timezone is None:
            errors.append(field_error(ErrorCode.INVALID_INPUT,
                                      f"{input.timezone!r} is not an IANA time zone.",
                                      "input", "timezone"))
        if errors:
            return CandidatePayload(errors=user_errors(errors))
        row = await models.Candidate.create(company_id=company_id, first_name=first,
                                            last_name=last or None, email=email,
                                            language=language, timezone=timezone)
        return CandidatePayload(candidate=Candidate.from_row(row))

    @strawberry.mutation
    async def create_application(self, info: Info,
                                 input: CreateApplicationInput) -> ApplicationPayload:
        company_id = info.context.company_id
        errors: list[FieldError] = []
        candidate_id = uuid_of(input.candidate_id, "Candidate")
        position_id = uuid_of(input.position_id, "Position")
        candidate = (await models.Candidate.get_or_none(id=candidate_id, company_id=company_id)
                     if candidate_id else None)
        position = (await models.Position.get_or_none(id=position_id, company_id=company_id)
                    if position_id else None)
        if candidate is None:
            errors.append(not_found("candidate", "input", "candidateId"))
        if position is None:
            errors.append(not_found("position", "input", "positionId"))
        if errors:
            return ApplicationPayload(errors=user_errors(errors))
        assert candidate is not None and position is not None
        if await models.Application.exists(company_id=company_id, candidate_id=candidate.id,
                                           position_id=position.id):
            return ApplicationPayload(errors=user_errors([field_error(
                ErrorCode.INVALID_STATE, "The candidate already applied for this position.",
                "input", "positionId")]))
        row = await models.Application.create(company_id=company_id, candidate=candidate,
                                              position=position)
        return ApplicationPayload(application=Application.from_row(row))
