from django.conf import settings
from django.core.cache import caches
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from orders.checkout import create_order
from orders.models import IDEMPOTENCY_KEY_MAX_LENGTH
from orders.selectors import orders_of
from orders.serializers import CheckoutSerializer, OrderDetailSerializer, OrderSerializer
from orders.services import cancel_order, pay_order

ACTION_PAGE = "The order, unchanged: the page to send the POST from (browsable API). Only POST acts."


class CheckoutRateThrottle(UserRateThrottle):
    """Checkouts per user across all processes, at ``settings.CHECKOUT_THROTTLE_RATE`` (None: unlimited).

    The counts live in the shared "throttle" cache (the database, or Redis), not in a process's memory.
    """

    scope = "checkout"
    cache = caches["throttle"]

    def get_rate(self):
        return settings.CHECKOUT_THROTTLE_RATE


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's orders; other users' orders do not exist for the caller (404)."""

    serializer_class = OrderSerializer
    lookup_value_converter = "id"

    def get_queryset(self):
        return orders_of(user=self.request.user, with_events=self.action == "retrieve")

    def get_serializer_class(self):
        if self.action == "create":
            return CheckoutSerializer
        return OrderSerializer if self.action == "list" else OrderDetailSerializer

    def get_throttles(self):
        return [CheckoutRateThrottle()] if self.action == "create" else []

    @extend_schema(
        request=CheckoutSerializer,
        responses={201: OrderSerializer, 200: OrderSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER)],
    )
    def create(self, request):
        """Place an order from the checked cart lines."""
        serializer = CheckoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip() or None
        if key is not None and len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
            raise ValidationError({"Idempotency-Key": [f"At most {IDEMPOTENCY_KEY_MAX_LENGTH} characters."]})
        result = create_order(user=request.user, idempotency_key=key, **serializer.validated_data)
        return Response(
            OrderSerializer(result.order, context={"lines": result.lines}).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    # GET on an action answers the order: in the browsable API, the page a user opens to press POST
    # on (it used to open on a 405). The action itself is POST only.
    @extend_schema(methods=["GET"], responses=OrderDetailSerializer, description=ACTION_PAGE)
    @extend_schema(methods=["POST"], request=None, responses=OrderDetailSerializer)
    @action(detail=True, methods=["get", "post"])
    def pay(self, request, pk=None):
        """Pay a pending order (simulated payment)."""
        if request.method == "GET":
            return Response(OrderDetailSerializer(self.get_object()).data)
        return Response(OrderDetailSerializer(pay_order(order=self.get_object())).data)

    @extend_schema(methods=["GET"], responses=OrderDetailSerializer, description=ACTION_PAGE)
    @extend_schema(methods=["POST"], request=None, responses=OrderDetailSerializer)
    @action(detail=True, methods=["get", "post"])
    def cancel(self, request, pk=None):
        """Cancel a pending order; its stock is returned."""
        if request.method == "GET":
            return Response(OrderDetailSerializer(self.get_object()).data)
        return Response(OrderDetailSerializer(cancel_order(order=self.get_object())).data)
