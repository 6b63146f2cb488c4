from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.response import Response

from inventory.selectors import stock_list
from inventory.serializers import StockQuantitySerializer, StockSerializer
from inventory.services import set_stock_quantity


class IsStaffOrReadOnly(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or bool(request.user and request.user.is_staff)


class StockViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stock per goods: readable by everyone, set by staff (the change is ledgered)."""

    serializer_class = StockSerializer
    permission_classes = [IsStaffOrReadOnly]
    lookup_value_converter = "id"
    queryset = stock_list()

    @extend_schema(request=StockQuantitySerializer, responses=StockSerializer)
    def partial_update(self, request, pk=None):
        stock = self.get_object()
        serializer = StockQuantitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        stock = set_stock_quantity(goods_id=stock.goods_id, quantity=serializer.validated_data["quantity"])
        return Response(StockSerializer(stock).data)
