"""The GraphQL schema: one module per domain, merged into the root types here.

To add a query or mutation, add a method to the domain's `...Query` / `...Mutation`
class (schema/<domain>.py); to add a domain, add its classes to QUERIES / MUTATIONS.
Then run `make schema` to refresh schema/schema.graphql.

schema/schema.graphql is generated and spells every type out: SubsidiaryInput repeats the
fields of CompanyEmailSettingsInput (GraphQL inputs cannot extend one another; the Python
class does). It stays beside the code it is made from.
"""

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.printer import print_schema
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from schema.candidates import CandidateMutation, CandidateQuery
from schema.company import CompanyMutation, CompanyQuery
from schema.documents import DocumentMutation
from schema.extensions import MaskInternalErrors, RequireAuthentication, is_internal
from schema.guards import guard_extensions
from schema.input_guard import InputGuard
from schema.interviews import InterviewMutation, InterviewQuery
from schema.messages import MessageMutation, MessageQuery
from schema.metrics import GraphQLMetrics
from schema.node import NodeQuery
from schema.outbox import OutboxQuery
from schema.subscriptions import Subscription
from schema.subsidiaries import SubsidiaryMutation, SubsidiaryQuery
from schema.templates import PreviewQuery, TemplateMutation, TemplateQuery
from schema.types.candidates import Application, Candidate, RejectionReason
from schema.types.company import Company, Employee, Position, Subsidiary
from schema.types.documents import Document
from schema.types.interviews import Interview
from schema.types.messages import BulkOperation, Message
from schema.types.templates import EmailTemplate

QUERIES: tuple[type, ...] = (
    NodeQuery, CompanyQuery, CandidateQuery, InterviewQuery, MessageQuery, TemplateQuery,
    PreviewQuery, OutboxQuery, SubsidiaryQuery,
)
MUTATIONS: tuple[type, ...] = (
    CandidateMutation, CompanyMutation, InterviewMutation, TemplateMutation, DocumentMutation,
    MessageMutation, SubsidiaryMutation,
)

Query = merge_types("Query", QUERIES)
Mutation = merge_types("Mutation", MUTATIONS)

# Every Node type, so `node(id:)` can return any of them.
NODE_TYPES: list[type] = [
    Company, Employee, Position, Candidate, Application, RejectionReason, Interview,
    Document, EmailTemplate, Message, BulkOperation, Subsidiary,
]

# Order matters little; guards such as depth/alias limits go here too.
# Classes or factories: strawberry makes one instance per request (a shared instance would
# mix overlapping requests' state). The parser/validation caches are shared by maxsize.
EXTENSIONS: list[Any] = [
    GraphQLMetrics,
    InputGuard,  # before RequireAuthentication: graphql-core runs the later one first
    RequireAuthentication,
    *guard_extensions(),
    lambda: ParserCache(maxsize=256),
    lambda: ValidationCache(maxsize=256),
    MaskInternalErrors,
]

class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        # Log bugs with their traceback; a client's mistakes (no token, bad query, bad
        # cursor) are answered, not logged.
        bugs = [e for e in errors if is_internal(e)]
        if bugs:
            super().process_errors(bugs, execution_context)


schema = Schema(
    query=Query, mutation=Mutation, subscription=Subscription, types=NODE_TYPES,
    extensions=EXTENSIONS,
)


def export_sdl() -> str:
    """The SDL of the schema as served (schema/schema.graphql holds the committed copy)."""
    return print_schema(schema) + "\n"


__all__ = ["EXTENSIONS", "export_sdl", "schema"]
