from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import permissions, viewsets

from goods.selectors import goods_list
from goods.serializers import GoodsSerializer


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("on_sale", OpenApiTypes.BOOL, description="only goods on sale (true) or off sale (false)"),
            OpenApiParameter("search", OpenApiTypes.STR, description="part of the name"),
        ]
    )
)
class GoodsViewSet(viewsets.ReadOnlyModelViewSet):
    """The catalog, readable by everyone."""

    serializer_class = GoodsSerializer
    permission_classes = [permissions.AllowAny]
    lookup_value_converter = "int"

    def get_queryset(self):
        params = self.request.query_params
        on_sale = params.get("on_sale")
        return goods_list(
            on_sale=None if on_sale in (None, "") else on_sale.lower() in {"1", "true", "yes"},
            search=params.get("search", "")[:200],
        )
