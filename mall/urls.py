from django.contrib import admin
from django.urls import include, path, register_converter
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.routers import APIRootView, DefaultRouter

from carts.views import CartItemViewSet
from goods.views import GoodsViewSet
from inventory.views import StockViewSet
from mall.api.converters import IdConverter
from mall.auth import ObtainAuthTokenUnlessLocked
from mall.views import favicon
from orders.views import OrderViewSet

# Ids in URLs: digits that fit a 64-bit column (a longer number is a 404, never an overflow).
register_converter(IdConverter, "id")

# Plain (non-regex) routes, so server spans are named "POST api/orders/", not "...$".
router = DefaultRouter(use_regex_path=False)
router.include_format_suffixes = False  # one URL per resource; the format is negotiated by Accept


class ShopAPIRootView(APIRootView):
    """The shop's API: goods and stock are public; cart and orders need a login or a token."""

    permission_classes = [AllowAny]


router.APIRootView = ShopAPIRootView
router.register("goods", GoodsViewSet, basename="goods")
router.register("stock", StockViewSet, basename="stock")
router.register("cart", CartItemViewSet, basename="cart")
router.register("orders", OrderViewSet, basename="order")

urlpatterns = [
    path("api/auth/token/", ObtainAuthTokenUnlessLocked.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/auth/", include("rest_framework.urls")),
    path("api/traces/", include("traces.api_urls")),  # the trace store's JSON (search, operations, one trace)
    path("api/", include(router.urls)),
    path("admin/traces/", include("traces.urls")),  # before the admin's catch-all
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
    path("", RedirectView.as_view(url="/api/", permanent=False)),
]

handler400 = "mall.api.error_views.bad_request"
handler404 = "mall.api.error_views.not_found"
handler500 = "mall.api.error_views.server_error"
