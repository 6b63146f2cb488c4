from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # The task workers' repair of the safety net's schedule, and its system check.
        # (The 64-bit schedule ids are mall.patches.use_64_bit_schedule_ids, applied by mall.apps.)
        from orders import expiry, signals  # noqa: F401
