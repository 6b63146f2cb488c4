from django.core.management.base import BaseCommand, CommandError

from faults.errors import FaultInjectionOff
from faults.scenarios import SCENARIOS, run_scenario
from mall.demo import DEMO_PASSWORD


class Command(BaseCommand):
    help = (
        "Run a guided diagnosis scenario: set its faults, place orders, print where to look, clear the faults "
        "(also on Ctrl-C). README, section Diagnose."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", choices=sorted(SCENARIOS))
        parser.add_argument("--orders", type=int, default=300, help="orders to place (default 300)")
        parser.add_argument("--concurrency", type=int, default=8, help="buyers at once (default 8)")
        parser.add_argument("--url", default="", help="base URL of a running shop (default: in-process)")
        parser.add_argument("--password", default=DEMO_PASSWORD, help="password of the demo users with --url")
        parser.add_argument(
            "--collector",
            default="",
            help="collector-outage, in-process: the OTLP/gRPC endpoint that comes back (e.g. http://127.0.0.1:4317)",
        )

    def handle(self, *args, name, orders, concurrency, url, password, collector, **options):
        if orders < 1 or concurrency < 1:
            raise CommandError("--orders and --concurrency must be at least 1")
        scenario = SCENARIOS[name]
        self.stdout.write(f"Scenario {name}: {scenario.summary}")
        try:
            run_scenario(
                scenario,
                orders=orders,
                concurrency=concurrency,
                url=url,
                password=password,
                collector=collector,
                say=self.stdout.write,
            )
        except FaultInjectionOff as off:
            raise CommandError(f"refused: {off.detail}") from off
        except LookupError as missing:
            raise CommandError(str(missing)) from missing
