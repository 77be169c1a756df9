"""Every text argument of every query and mutation checked before its resolver runs.

Walks the arguments of a Query / Mutation root field along their GraphQL
types (input objects and lists included), so an argument added tomorrow is checked too:
each String or ID value against the core.text_input rule named for it in ``RULES`` (by
``Type.field`` or ``Root.field.argument`` coordinate), or ``ID_RULE`` / ``DEFAULT`` when
unnamed. A refused value never reaches a resolver:

- a mutation whose payload has ``errors`` answers that payload with UserErrors
  (``INVALID_INPUT`` / ``TOO_LONG``, the field path as in every other UserError);
- any other field answers a GraphQL error with the same code and the field path in
  ``extensions.field``.

Subscription fields start through graphql-core's ``subscribe``, which runs no resolver
middleware, so this hook does not see them; their arguments are ids, and a malformed id
(NUL, surrogates, any length) parses as no id (core.ids.from_global_id).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLString,
)
from strawberry.extensions import SchemaExtension

from core import text_input as t
from core.errors import FieldError
from schema.errors import UserError

ROOT_TYPES = frozenset({"Query", "Mutation", "Subscription"})

RULES: dict[str, t.TextRule] = {
    # Candidates and positions.
    "CreateCandidateInput.firstName": t.NAME,
    "CreateCandidateInput.lastName": t.NAME,
    "CreateCandidateInput.email": t.ADDRESS,
    "CreateCandidateInput.language": t.LANGUAGE,
    "CreateCandidateInput.timezone": t.TIMEZONE,
    "CreatePositionInput.title": t.LINE,
    "Query.candidates.search": t.KEY,
    "Query.candidates.after": t.KEY,
    "Query.applications.after": t.KEY,
    "Query.messages.after": t.KEY,
    # Company.
    "Mutation.createRejectionReason.label": t.NAME,
    "Mutation.updateMySignature.signature": t.NOTE,
    "CompanyEmailSettingsInput.recruitingAddress": t.ADDRESS,
    "CompanyEmailSettingsInput.smtpHost": t.HOSTNAME,
    "CompanyEmailSettingsInput.smtpUsername": t.HOSTNAME,
    "CompanyEmailSettingsInput.smtpPassword": t.SECRET,
    # Interviews.
    "ScheduleInterviewInput.title": t.LINE,
    "ScheduleInterviewInput.timezone": t.TIMEZONE,
    "ScheduleInterviewInput.location": t.LOCATION,
    "ScheduleInterviewInput.videoLink": t.URL,
    "RescheduleInterviewInput.location": t.LOCATION,
    "RescheduleInterviewInput.videoLink": t.URL,
    # Templates.
    "EmailTemplateInput.name": t.NAME,
    "EmailTemplateInput.subject": t.SUBJECT,
    "EmailTemplateInput.body": t.BODY,
    "PreviewMessageInput.subject": t.SUBJECT,
    "PreviewMessageInput.body": t.BODY,
    # Messages.
    "SendMessageInput.subject": t.SUBJECT,
    "SendMessageInput.body": t.BODY,
    "SendMessageInput.cc": t.ADDRESS,
    "SendMessageInput.bcc": t.ADDRESS,
    "SendMessageInput.idempotencyKey": t.KEY,
    "SendInterviewInvitationInput.subject": t.SUBJECT,
    "SendInterviewInvitationInput.body": t.BODY,
    "SendInterviewInvitationInput.cc": t.ADDRESS,
    "SendInterviewInvitationInput.bcc": t.ADDRESS,
    "SendInterviewInvitationInput.idempotencyKey": t.KEY,
    "SendBulkEmailInput.subject": t.SUBJECT,
    "SendBulkEmailInput.body": t.BODY,
    "SendBulkEmailInput.idempotencyKey": t.KEY,
    "RejectApplicationsInput.note": t.NOTE,
    "RejectApplicationsInput.idempotencyKey": t.KEY,
}
ID_RULE = t.IDENTIFIER


def _named(type_: GraphQLInputType) -> tuple[GraphQLInputType, bool]:
    """The type without NonNull, and whether it is a list (of the unwrapped item type)."""
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return type_, isinstance(type_, GraphQLList)


def _walk(value: Any, type_: GraphQLInputType, coordinate: str, path: tuple[str, ...],
          errors: list[FieldError]) -> None:
    if value is None:
        return
    type_, is_list = _named(type_)
    if is_list:
        assert isinstance(type_, GraphQLList)
        if isinstance(value, list | tuple):
            for i, item in enumerate(value):
                _walk(item, type_.of_type, coordinate, (*path, str(i)), errors)
        return
    if isinstance(type_, GraphQLInputObjectType) and isinstance(value, Mapping):
        for name, field in type_.fields.items():
            key = field.out_name or name
            if key in value:
                _walk(value[key], field.type, f"{type_.name}.{name}", (*path, name), errors)
        return
    if isinstance(type_, GraphQLScalarType) and isinstance(value, str):
        rule = RULES.get(coordinate)
        if rule is None:
            rule = ID_RULE if type_ is GraphQLID else t.DEFAULT if type_ is GraphQLString else None
        if rule is None:  # custom scalars (DateTime) parse their own input
            return
        errors.extend(t.text_errors(value, rule, path))


def argument_errors(info: Any, kwargs: Mapping[str, Any]) -> list[FieldError]:
    """What is wrong with the text in a root field's arguments."""
    field_def = info.parent_type.fields.get(info.field_name)
    errors: list[FieldError] = []
    if field_def is None:  # __type(name:) and friends: graphql-core's own fields
        return errors
    for name, arg in field_def.args.items():
        key = arg.out_name or name
        if key in kwargs:
            _walk(kwargs[key], arg.type, f"{info.parent_type.name}.{info.field_name}.{name}",
                  (name,), errors)
    return errors


def _payload_with_errors(info: Any, errors: list[FieldError]) -> Any:
    """The mutation's payload holding the errors, or None when it has no `errors` list."""
    return_type = info.return_type
    while isinstance(return_type, GraphQLNonNull):
        return_type = return_type.of_type
    if not isinstance(return_type, GraphQLObjectType) or "errors" not in return_type.fields:
        return None
    definition = (return_type.extensions or {}).get("strawberry-definition")
    origin = getattr(definition, "origin", None)
    if origin is None:
        return None
    try:
        return origin(errors=[UserError.from_field_error(e) for e in errors])
    except TypeError:  # other required fields: no payload can carry only errors
        return None


class InputGuard(SchemaExtension):
    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        if info.path.prev is None and info.parent_type.name in ROOT_TYPES and kwargs:
            errors = argument_errors(info, kwargs)
            if errors:
                if info.parent_type.name == "Mutation":
                    payload = _payload_with_errors(info, errors)
                    if payload is not None:
                        return payload
                first = errors[0]
                raise GraphQLError(first.message, extensions={
                    "code": first.code.value, "field": list(first.field or ())})
        return _next(root, info, *args, **kwargs)


__all__ = ["ID_RULE", "RULES", "InputGuard", "argument_errors"]
