"""The HTTP part of perf/bench/run.py: the shop's configurations measured in alternating rounds, the floor, memory."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from perf.bench.checkout.statements import CHECKOUT_BODY
from perf.bench.common.environment import PAY_TIMEOUT, sampled, tracing_off, tracing_on, with_trace_store

STOCK = 1_000_000_000

# The sampling curve between "tracing off" (untraced) and "tracing on" (100 %): part → (sampler, its argument,
# the fraction of traces kept). Each is its own shop, exporting like "tracing on", alternated like the others.
SAMPLED_PARTS = {
    "always_off distinct": ("always_off", "", 0.0),
    "1 % sampled distinct": ("parentbased_traceidratio", "0.01", 0.01),
    "10 % sampled distinct": ("parentbased_traceidratio", "0.1", 0.1),
}
# Tracing on (exporting like "tracing on") and the built-in trace store on: its own cost is this ÷ tracing on.
STORE_PART = "tracing on+store distinct"
# The parts each --skip name leaves out.
SKIPPED_PARTS = {
    "tracing": ["tracing off distinct"],
    "curve": list(SAMPLED_PARTS),
    "store": [STORE_PART],
    "hot": ["tracing on hot"],
    "floor": ["floor"],
}


@dataclass
class Seed:
    buyers: list  # (user, token) per client: the HTTP clients
    floor_buyers: list  # (user, token) per client: the floor's
    distinct_goods: list  # one goods per client
    hot_goods: object


def seed(clients: int) -> Seed:
    from perf.bench.checkout.statements import new_buyer, new_goods

    return Seed(
        buyers=[new_buyer(prefix="client") for _ in range(clients)],
        floor_buyers=[new_buyer(prefix="floor") for _ in range(clients)],
        distinct_goods=[new_goods(stock=STOCK, prefix="distinct") for _ in range(clients)],
        hot_goods=new_goods(stock=STOCK, prefix="hot"),
    )


def buyers_of(seed_data: Seed, *, hot: bool):
    from perf.loadgen.cycles import Buyer

    return [
        Buyer(token=token, goods_id=(seed_data.hot_goods if hot else goods).pk)
        for (_, token), goods in zip(seed_data.buyers, seed_data.distinct_goods, strict=True)
    ]


def checkout_batch(base_url: str, seed_data: Seed, *, cycles: int, hot: bool = False):
    """``cycles`` cart + checkout cycles of the seeded clients against the shop at ``base_url``."""
    from perf.loadgen.cycles import run_batch

    return run_batch(base_url, buyers_of(seed_data, hot=hot), cycles=cycles, checkout=CHECKOUT_BODY)


def _report_batch(label: str, result) -> None:
    print(
        f"  {label:<22} {result.per_second:7.1f} cycles/s  p50 {result.percentile(0.5) * 1000:6.1f} ms"
        f"  p99 {result.percentile(0.99) * 1000:6.1f} ms  failures {sum(result.failures.values())}",
        flush=True,
    )


def _settle(sink, expected: float, *, timeout: float = 3.0) -> None:
    """Wait until the traced server exported what it buffered (its BatchSpanProcessor flushes every second
    here), so its export work does not run during the next configuration's batch."""
    deadline = time.monotonic() + timeout
    while sink.spans < expected and time.monotonic() < deadline:
        time.sleep(0.1)


def measure_rounds(args, env, sink, seed_data, results, plan, fingerprint) -> None:
    """Both shops (tracing on and off) run side by side; short batches alternate between the configurations,
    reversing their order every round, so that load changes on a shared machine hit all of them alike."""
    from harness.processes import gunicorn

    parts = ["tracing on distinct", "tracing off distinct", *SAMPLED_PARTS, STORE_PART, "tracing on hot", "floor"]
    parts = [part for part in parts if not any(part in SKIPPED_PARTS.get(k, ()) for k in args.skip)]
    on_env = tracing_on(env, sink.endpoint_for(args.otlp_protocol), args.otlp_protocol, args.traced_env)
    servers = {"on": on_env, "off": tracing_off(env), "store": with_trace_store(on_env)}
    servers |= {part: sampled(on_env, sampler, arg) for part, (sampler, arg, _) in SAMPLED_PARTS.items()}
    server_of = {"tracing off distinct": "off", STORE_PART: "store", **{part: part for part in SAMPLED_PARTS}}
    fraction_of = {part: fraction for part, (_, _, fraction) in SAMPLED_PARTS.items()}
    with ExitStack() as stack:
        urls, warmed = {}, {}
        # The fully traced shops warm up first: their spans alone tell how many a cycle makes.
        for name in sorted(servers, key=lambda name: name not in ("on", "store")):
            if name != "on" and not any(server_of.get(part) == name for part in parts):
                continue
            log = Path(args.log_dir) / f"gunicorn-tracing-{name.split()[0].replace('%', 'pct')}.log"
            urls[name], _ = stack.enter_context(
                gunicorn(env=servers[name], workers=args.workers, threads=args.threads, log_path=log)
            )
            warmed[name] = checkout_batch(urls[name], seed_data, cycles=args.warmup).cycles
            if name == "store" or (name == "on" and STORE_PART not in parts):
                _settle(sink, float("inf"), timeout=2.5)  # the warm-up's spans, to learn how many a cycle makes
                spans_per_cycle = sink.spans / max(warmed["on"] + warmed.get("store", 0), 1)  # both export here
                results.spans_per_cycle.append(spans_per_cycle)
        for number in range(args.rounds):
            print(f"round {number + 1}/{args.rounds}", flush=True)
            for part in parts if number % 2 == 0 else parts[::-1]:
                if part == "floor":
                    measure_floor(args, seed_data, results, plan, fingerprint)
                    continue
                url = urls[server_of.get(part, "on")]
                spans_before = sink.spans
                result = checkout_batch(url, seed_data, cycles=args.cycles, hot=part.endswith("hot"))
                results.samples(part).add_batch(result)
                _report_batch(part, result)
                # Its export must not run during the next batch (a sampled shop's share is random: roughly).
                fraction = 1.0 if part.startswith("tracing on") else fraction_of.get(part, 0.0)
                if fraction:
                    expected = (0.97 if fraction == 1 else 0.5) * fraction * spans_per_cycle * result.cycles
                    _settle(sink, spans_before + expected)


def measure_floor(args, seed_data, results, plan, fingerprint) -> None:
    from django.conf import settings

    from perf.bench.checkout.floor import FloorClient, run_floor

    clients = [
        FloorClient(token=token, user_id=user.pk, goods_id=goods.pk)
        for (user, token), goods in zip(seed_data.floor_buyers, seed_data.distinct_goods, strict=True)
    ]
    result = run_floor(
        database_url=args.database_url, options=settings.DATABASES["default"]["OPTIONS"], plan=plan,
        clients=clients, cycles=args.cycles, fingerprint=fingerprint, pay_timeout=PAY_TIMEOUT,
    )  # fmt: skip
    results.samples("floor").add_floor(result)
    print(f"  {'floor (raw driver)':<22} {result.per_second:7.1f} cycles/s  failures {result.errors}", flush=True)


def measure_memory(args, env, seed_data, results) -> None:
    from harness.processes import children, gunicorn, memory_kib

    log = Path(args.log_dir) / "gunicorn-memory.log"
    with gunicorn(env=env, workers=args.workers, threads=args.threads, log_path=log) as (base_url, master):
        checkout_batch(base_url, seed_data, cycles=args.warmup)
        for step in range(3):
            result = checkout_batch(base_url, seed_data, cycles=args.memory_checkouts)
            workers = children(master.pid)
            results.memory.append([memory_kib(pid) for pid in workers])
            rss = ", ".join(f"{now / 1024:.1f} MiB (peak {peak / 1024:.1f})" for now, peak in results.memory[-1])
            print(f"  after {(step + 1) * args.memory_checkouts} checkouts: {rss}  [{result.per_second:.1f}/s]")
