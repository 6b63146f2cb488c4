from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # The qcluster worker's telemetry set-up and schedule repair; the schedule's system check.
        from orders import schedules, signals  # noqa: F401

        schedules.use_64_bit_schedule_ids()
