"""drf-spectacular's decorators when it is installed (the ``api`` extra), no-ops otherwise.

The API must work in projects without drf-spectacular; only its OpenAPI schema needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drf_spectacular.utils import (
        OpenApiParameter,
        OpenApiResponse,
        extend_schema,
        extend_schema_field,
        extend_schema_view,
        inline_serializer,
    )
else:
    try:
        from drf_spectacular.utils import (
            OpenApiParameter,
            OpenApiResponse,
            extend_schema,
            extend_schema_field,
            extend_schema_view,
            inline_serializer,
        )
    except ImportError:

        def _passthrough(*args: Any, **kwargs: Any) -> Any:
            return lambda target: target

        def _inert(*args: Any, **kwargs: Any) -> None:
            return None

        extend_schema = extend_schema_field = extend_schema_view = _passthrough
        OpenApiParameter = OpenApiResponse = inline_serializer = _inert

__all__ = [
    "OpenApiParameter",
    "OpenApiResponse",
    "extend_schema",
    "extend_schema_field",
    "extend_schema_view",
    "inline_serializer",
]
