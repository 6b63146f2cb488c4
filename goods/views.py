from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import permissions, viewsets
from rest_framework.exceptions import ValidationError

from goods.selectors import goods_list
from goods.serializers import GoodsSerializer

_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _parse_on_sale(value: str | None) -> bool | None:
    if value in (None, ""):
        return None
    if value.lower() not in _BOOLEANS:
        raise ValidationError({"on_sale": ["Must be true or false."]})
    return _BOOLEANS[value.lower()]


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
    lookup_value_converter = "id"

    def get_queryset(self):
        params = self.request.query_params
        return goods_list(on_sale=_parse_on_sale(params.get("on_sale")), search=params.get("search", "")[:200])
