"""The GraphQL operation counters: a strawberry extension feeding core/metrics.py.

schema/__init__.py adds it to EXTENSIONS (the class, not an instance); api/metrics.py serves
what it counts at /metrics. What is exposed and how it is computed: core/metrics.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from core.metrics import GRAPHQL_DURATION, GRAPHQL_OPERATIONS, GRAPHQL_SUBSCRIPTIONS


class GraphQLMetrics(SchemaExtension):
    """Counts every GraphQL operation (ok/error by operation type) and times queries/mutations.

    Give strawberry the class (a fresh instance per operation, no shared state).
    """

    def __init__(self) -> None:
        super().__init__()
        self._subscription_open = False

    def _operation_type(self) -> str:
        try:
            op = self.execution_context.operation_type
        except Exception:  # no parsable document, or an unknown operation name
            return "unknown"
        return op.value if isinstance(op, OperationType) else str(op)

    def on_parse(self) -> Iterator[None]:
        yield
        if (self.execution_context.graphql_document is not None
                and self._operation_type() == "subscription"):
            self._subscription_open = True
            GRAPHQL_SUBSCRIPTIONS.inc()

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            if self._subscription_open:
                GRAPHQL_SUBSCRIPTIONS.dec()
                self._subscription_open = False
            op_type = self._operation_type()
            ctx = self.execution_context
            result_errors = getattr(ctx.result, "errors", None) if ctx.result is not None else None
            error = failed or bool(ctx.pre_execution_errors) or bool(result_errors)
            GRAPHQL_OPERATIONS.labels(op_type, "error" if error else "ok").inc()
            if op_type in ("query", "mutation"):
                GRAPHQL_DURATION.labels(op_type).observe(time.perf_counter() - started)


__all__ = ["GraphQLMetrics"]
