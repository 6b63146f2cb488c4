"""The performance lab beside the shop: load generator, bench and soak, one command line (``python -m perf``).

- ``perf.loadgen``: places planned orders with the shop (``manage.py place_test_orders`` drives it);
- ``perf.bench``: the benchmark and its parts (see docs/PERFORMANCE.md), the soak (docs/SOAK.md).

No product module imports this package (tests/test_architecture.py); the only door from the shop is the
``place_test_orders`` management command, which imports ``perf.loadgen`` and nothing else of it.
"""
