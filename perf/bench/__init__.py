"""The mall benchmark suite: ``python -m perf bench --help`` (see docs/PERFORMANCE.md)."""
