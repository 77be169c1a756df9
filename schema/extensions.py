"""Schema extensions: authentication on every root field, and masked internal errors."""

from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension

from schema.errors import INTERNAL_SERVER_ERROR, unauthenticated

ROOT_TYPES = frozenset({"Query", "Mutation", "Subscription"})


class RequireAuthentication(SchemaExtension):
    """Every root field but introspection needs a signed-in employee.

    Adding a query or mutation cannot forget the check; resolvers reading
    `info.context.viewer` / `company_id` raise the same error as a second line.
    """

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        if (info.path.prev is None and info.parent_type.name in ROOT_TYPES
                and not info.field_name.startswith("__")
                and not getattr(info.context, "authenticated", False)):
            raise unauthenticated(
                token_rejected=getattr(info.context, "token_rejected", False))
        return _next(root, info, *args, **kwargs)


def is_internal(error: GraphQLError) -> bool:
    """Mask what is not ours to show: exceptions other than GraphQLErrors we raised."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    return True


class MaskInternalErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=is_internal, error_message="Internal server error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return GraphQLError(message=self.error_message, nodes=error.nodes, source=error.source,
                            positions=error.positions, path=error.path,
                            extensions={"code": INTERNAL_SERVER_ERROR})
