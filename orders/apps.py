from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from orders import signals  # noqa: F401 (connects the qcluster worker's telemetry set-up)
        from orders.schedules import use_64_bit_schedule_ids

        use_64_bit_schedule_ids()
