"""``manage.py place_test_orders``: fill carts, place and pay orders like shoppers do, and report on it."""

import json
import logging
import sys
import threading
from contextlib import contextmanager
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mall.demo import DEMO_PASSWORD
from mall.telemetry.links import trace_url
from perf.loadgen.http_client import HttpShop
from perf.loadgen.in_process import InProcessShop
from perf.loadgen.plan import OrderOutcome, plan_orders
from perf.loadgen.runner import run_orders
from perf.loadgen.shop import LoadSetupError
from perf.loadgen.summary import LoadSummary


class Progress:
    """A tqdm bar on a terminal; otherwise a plain line about every tenth of the run."""

    def __init__(self, *, total: int, stream, enabled: bool):
        self.total, self.stream, self.enabled = total, stream, enabled
        self.counts = {"placed": 0, "rejected": 0, "failed": 0}
        self.done = 0
        self._lock = threading.Lock()
        self._bar = None
        out = getattr(stream, "_out", stream)  # Django's OutputWrapper would end each tqdm refresh with a newline
        if enabled and total and out.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, file=out, unit="order", dynamic_ncols=True)
        self._every = max(1, total // 10)

    def __call__(self, outcome: OrderOutcome) -> None:
        with self._lock:
            self.done += 1
            self.counts[outcome.result] += 1
            if self._bar is not None:
                self._bar.set_postfix(self.counts, refresh=False)
                self._bar.update(1)
            elif self.enabled and (self.done % self._every == 0 or self.done == self.total):
                self.stream.write(
                    f"{self.done}/{self.total} orders: {self.counts['placed']} placed, "
                    f"{self.counts['rejected']} rejected, {self.counts['failed']} failed",
                    style_func=str,
                )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def quiet_shop_logs(enabled: bool):
    """Keep only the shop's errors in its log: in-process, it logs every order a load run places."""
    loggers = [logging.getLogger(name) for name in ("orders", "mall")]
    levels = [logger.level for logger in loggers]
    if enabled:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class Command(BaseCommand):
    help = (
        "Place test orders as demo users user1..userN (see seed_demo): fill the cart with random goods, check out, "
        "pay some. In-process through the shop's services by default (each order a root span "
        "'place_test_order'); with --url a real HTTP client whose spans propagate traceparent into the shop "
        "(service mall-loadgen). Prints a summary; exits non-zero if any request failed with 5xx or a transport error, "
        "or if more than half of the checkouts were throttled (CHECKOUT_THROTTLE_RATE=off lifts the throttle)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=20, help="orders to place (default 20)")
        parser.add_argument("--concurrency", type=int, default=4, help="orders in flight at once (default 4)")
        parser.add_argument("--users", type=int, default=5, help="shop as user1..userN (default 5)")
        parser.add_argument("--lines", type=int, default=3, help="distinct goods per order (default 3)")
        parser.add_argument("--pay-ratio", type=float, default=0.5, help="share of placed orders paid (default 0.5)")
        parser.add_argument("--seed", type=int, default=42, help="seed of the random order plan (default 42)")
        parser.add_argument("--url", default="", help="base URL of a running shop, e.g. http://127.0.0.1:8000")
        parser.add_argument(
            "--grpc",
            default="",
            metavar="HOST:PORT",
            help="check out and pay over the gRPC order service at HOST:PORT (e.g. 127.0.0.1:9500); the carts are "
            "filled over the REST API at --url (default http://127.0.0.1:8000)",
        )
        parser.add_argument(
            "--password", default=DEMO_PASSWORD, help=f"password of the demo users with --url (default {DEMO_PASSWORD})"
        )
        parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
        parser.add_argument("--quiet", action="store_true", help="no progress output")

    def handle(self, *args, **options):
        orders, concurrency, users = options["orders"], options["concurrency"], options["users"]
        if orders < 1 or concurrency < 1 or users < 1 or options["lines"] < 1:
            raise CommandError("--orders, --concurrency, --users and --lines must be at least 1")
        if not 0 <= options["pay_ratio"] <= 1:
            raise CommandError("--pay-ratio must be between 0 and 1")

        shop_url = urlsplit(settings.MALL_SHOP_URL)
        if settings.MALL_SHOP_URL and (shop_url.scheme not in ("http", "https") or not shop_url.hostname):
            raise CommandError(
                "MALL_SHOP_URL must be the shop's http(s) URL, e.g. http://127.0.0.1:8000, "
                f"not {settings.MALL_SHOP_URL!r}"
            )

        try:
            if options["grpc"]:
                from perf.loadgen.grpc_client import GrpcShop

                base_url = options["url"] or "http://127.0.0.1:8000"
                shop = GrpcShop(target=options["grpc"], base_url=base_url, password=options["password"])
            elif options["url"]:
                shop = HttpShop(base_url=options["url"], password=options["password"])
            else:
                shop = InProcessShop()
            shoppers = shop.shoppers(users)
            goods_ids = shop.goods_in_stock()
        except LoadSetupError as exc:
            raise CommandError(str(exc)) from exc
        if not goods_ids:
            raise CommandError("no goods on sale with stock: run `manage.py seed_demo` (or seed_demo --restock)")
        plans = plan_orders(
            count=orders,
            goods_ids=goods_ids,
            lines=options["lines"],
            pay_ratio=options["pay_ratio"],
            seed=options["seed"],
        )

        if not options["quiet"]:
            where = f"against {shop.base_url}" if shop.base_url else "in-process"
            if shop.mode == "grpc":
                where = f"over gRPC at {shop.target} (carts at {shop.base_url})"
            note = f"Placing {orders} orders {where} as {users} users, {min(concurrency, users)} at a time."
            if concurrency > users:
                note += f" (--concurrency {concurrency} is capped by --users {users}: one order per user at once)"
            self.stderr.write(note, style_func=str)  # progress, not an error: no red
        progress = Progress(total=orders, stream=self.stderr, enabled=not options["quiet"])
        try:
            with quiet_shop_logs(options["verbosity"] < 2):
                outcomes, elapsed = run_orders(
                    shop=shop, shoppers=shoppers, plans=plans, concurrency=concurrency, on_outcome=progress
                )
        finally:
            progress.close()
            shop.finish()  # export the spans before the summary (the console exporter writes to stdout too)

        summary = LoadSummary(
            mode=shop.mode,
            url=shop.base_url,
            seed=options["seed"],
            outcomes=outcomes,
            elapsed=elapsed,
            trace_url=lambda trace_id: _opening_url(trace_id, base_url=shop.base_url or settings.MALL_SHOP_URL),
        )
        if options["json"]:
            self.stdout.write(json.dumps(summary.figures))
        else:
            self._print(summary.figures)
        sys.stdout.flush()
        if summary.throttled:
            self.stderr.write(
                f"Warning: {summary.throttled} of {orders} checkouts were throttled (429) by the shop's "
                "CHECKOUT_THROTTLE_RATE (60/minute per user by default): for a load test, start the shop with "
                "CHECKOUT_THROTTLE_RATE=off (e.g. CHECKOUT_THROTTLE_RATE=off make run)."
            )
        if summary.failed:
            failures = summary.figures["failures"]
            raise CommandError(f"{summary.failed} of {orders} orders hit a server or transport error: {failures}")
        if summary.mostly_throttled:
            raise CommandError(
                f"{summary.throttled} of {orders} orders were throttled (more than half): these figures measure "
                "the throttle, not the shop; run the shop with CHECKOUT_THROTTLE_RATE=off"
            )

    def _print(self, figures: dict) -> None:
        write = self.stdout.write
        where = figures["url"] or "in-process"
        write(
            self.style.SUCCESS(
                f"Placed {figures['placed']} of {figures['orders']} orders ({where}) in {figures['elapsed_s']:.2f} s: "
                f"{figures['orders_per_s']} orders/s"
            )
        )
        rejected = ", ".join(f"{code} {count}" for code, count in figures["rejected"].items())
        write(f"Rejected: {rejected or 'none'}")
        failures = ", ".join(f"{kind} {count}" for kind, count in figures["failures"].items())
        write((self.style.ERROR if failures else str)(f"Failed:   {failures or 'none'}"))
        pay_rejected = ", ".join(f"{code} {count}" for code, count in figures["pay_rejected"].items())
        write(f"Paid:     {figures['paid']}" + (f" (payment refused: {pay_rejected})" if pay_rejected else ""))
        latency = figures["latency_ms"]
        if latency["p50"] is not None:
            write(f"Checkout latency: p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms")
        samples = figures["sample_traces"]
        if samples and all(sample["url"] for sample in samples):
            where = ""
            if any(sample["url"].startswith("/") for sample in samples):
                where = " (on the shop's server, staff login; set MALL_SHOP_URL to the shop's URL for full links)"
            write(f"Sample traces{where}:")
            for sample in samples:
                write(f"  {sample['url']}  ({sample['outcome']})")
        elif samples:
            write(
                "Sample trace ids (no trace viewer: set JAEGER_UI_URL, or MALL_TRACE_STORE=on for the built-in view):"
            )
            for sample in samples:
                write(f"  {sample['trace_id']}  ({sample['outcome']})")


def _opening_url(trace_id: str, *, base_url: str | None) -> str | None:
    """Return where the trace opens: Jaeger, or the built-in view on ``base_url`` (--url, else ``MALL_SHOP_URL``;
    a path when neither says where the shop is)."""
    url = trace_url(trace_id)
    if url is not None and url.startswith("/") and base_url:
        return f"{base_url.rstrip('/')}{url}"
    return url
