from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from carts.selectors import cart_items
from carts.serializers import CartItemCreateSerializer, CartItemSerializer, CartItemUpdateSerializer
from carts.services import add_to_cart, delete_cart_item, update_cart_item


class CartItemViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """The caller's cart. Other users' lines do not exist for the caller (404)."""

    serializer_class = CartItemSerializer
    lookup_value_converter = "id"
    pagination_class = None

    def get_queryset(self):
        return cart_items(user=self.request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return CartItemCreateSerializer
        if self.action == "partial_update":
            return CartItemUpdateSerializer
        return CartItemSerializer

    @extend_schema(request=CartItemCreateSerializer, responses={201: CartItemSerializer})
    def create(self, request):
        serializer = CartItemCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item = add_to_cart(user=request.user, goods_id=data["goods"], quantity=data["nums"], checked=data["checked"])
        return Response(CartItemSerializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CartItemUpdateSerializer, responses=CartItemSerializer)
    def partial_update(self, request, pk=None):
        item = self.get_object()
        serializer = CartItemUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        edit = serializer.validated_data
        item = update_cart_item(item=item, quantity=edit.get("nums"), checked=edit.get("checked"))
        return Response(CartItemSerializer(item).data)

    def perform_destroy(self, instance):
        delete_cart_item(item=instance)
