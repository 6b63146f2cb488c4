from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.response import Response

from inventory.selectors import stock_list
from inventory.serializers import StockEditSerializer, StockSerializer
from inventory.services import adjust_stock, set_stock_quantity


class CanChangeStockOrReadOnly(permissions.BasePermission):
    """Reads for everyone; changes need the ``inventory.change_stock`` model permission (is_staff is not enough)."""

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.has_perm("inventory.change_stock"))


class StockViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stock per goods: readable by everyone, changed by staff with ``change_stock`` (ledgered); never deleted."""

    serializer_class = StockSerializer
    permission_classes = [CanChangeStockOrReadOnly]
    lookup_value_converter = "id"
    queryset = stock_list()

    @extend_schema(request=StockEditSerializer, responses=StockSerializer)
    def partial_update(self, request, pk=None):
        stock = self.get_object()
        serializer = StockEditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        edit = serializer.validated_data
        if "delta" in edit:
            stock = adjust_stock(goods_id=stock.goods_id, delta=edit["delta"], user=request.user)
        else:
            stock = set_stock_quantity(
                goods_id=stock.goods_id,
                quantity=edit["quantity"],
                expected_quantity=edit["expected_quantity"],
                user=request.user,
            )
        return Response(StockSerializer(stock).data)
