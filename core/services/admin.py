"""Creating tenants, employees and API tokens (the `recruitmail admin` commands)."""

from __future__ import annotations

import uuid

from tortoise.transactions import in_transaction

from core.errors import ErrorCode, FieldError, InputError
from core.mail.addresses import normalize_address
from core.models import ApiToken, Company, Employee
from core.security import hash_token, new_api_token
from core.services import starter


async def create_company(
    *, name: str, admin_name: str, admin_email: str, templates: bool = True,
    language: str = "en",
) -> tuple[Company, Employee, str]:
    """A company with its first (admin) employee and a token for them, shown once; with
    the starter set: rejection reasons in ``language`` and, with the templates add-on, its
    own copy of the starter templates (written in ``language``, the others as translations)."""
    lang = starter.check_starter_language(language)
    email = normalize_address(admin_email)
    if not name.strip() or not admin_name.strip():
        raise InputError(FieldError(ErrorCode.INVALID_INPUT, "Name and admin name are required."))
    if email is None:
        raise InputError(FieldError(ErrorCode.INVALID_EMAIL, f"{admin_email!r} is not valid."))
    token, digest = new_api_token()
    async with in_transaction():
        company = await Company.create(name=name.strip(), feature_email_templates=templates)
        employee = await Employee.create(
            company=company, name=admin_name.strip(), email=email, is_admin=True
        )
        await ApiToken.create(employee=employee, token_hash=digest)
        await starter.seed_rejection_reasons(company, lang)
        if templates:
            await starter.seed_templates(company, lang)
    return company, employee, token


async def create_employee(
    *, company_id: uuid.UUID, name: str, email: str, is_admin: bool = False
) -> tuple[Employee, str]:
    addr = normalize_address(email)
    if addr is None:
        raise InputError(FieldError(ErrorCode.INVALID_EMAIL, f"{email!r} is not valid."))
    company = await Company.get_or_none(id=company_id)
    if company is None:
        raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such company."))
    token, digest = new_api_token()
    async with in_transaction():
        employee = await Employee.create(company=company, name=name.strip(), email=addr,
                                         is_admin=is_admin)
        await ApiToken.create(employee=employee, token_hash=digest)
    return employee, token


async def create_token(*, employee_id: uuid.UUID) -> str:
    employee = await Employee.get_or_none(id=employee_id)
    if employee is None:
        raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such employee."))
    token, digest = new_api_token()
    await ApiToken.create(employee=employee, token_hash=digest)
    return token


async def employee_for_token(token: str | None) -> Employee | None:
    """The employee a bearer token belongs to, or None."""
    if not token:
        return None
    row = await ApiToken.get_or_none(token_hash=hash_token(token), revoked=False).select_related(
        "employee__company"
    )
    return row.employee if row else None
