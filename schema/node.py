"""`node(id:)`: any global id of the viewer's company."""

import strawberry

from schema.context import Info
from schema.relay import Node, resolve_node


@strawberry.type
class NodeQuery:
    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        info.context.viewer  # noqa: B018 - authenticated callers only
        found: Node | None = await resolve_node(info, id)
        return found
