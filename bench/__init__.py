"""The mall benchmark suite: ``python bench/run.py --help`` (see docs/PERFORMANCE.md)."""
