"""Run one of the lab's measurements: ``python -m perf <name> [options]`` (``python -m perf <name> --help``)."""

from __future__ import annotations

import importlib
import sys

# name -> (module with a ``main(argv)``, what it measures)
COMMANDS = {
    "bench": ("perf.bench.run", "the whole bench: tracing curve, statements, floor, sweep, memory (--quick: smoke)"),
    "grpc": ("perf.bench.checkout.grpc_cycle", "the gRPC checkout cycle against the REST one, side by side"),
    "closes": ("perf.bench.timeout.closes", "payment-timeout closes under load"),
    "layers": ("perf.bench.checkout.layers", "the cost of each tracing layer, side by side"),
    "timeout": ("perf.bench.timeout.run", "the timeout sweep and the scheduler pass"),
    "soak": ("perf.bench.soak.run", "the fault soak (MariaDB; docs/SOAK.md)"),
    "explorer": (
        "perf.bench.traces.explorer",
        "the trace search and monitor at a full store, the store's write cost",
    ),
}


def usage() -> str:
    lines = ["usage: python -m perf <name> [options]", "", "names:"]
    lines += [f"  {name:<8} {about}" for name, (_, about) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
