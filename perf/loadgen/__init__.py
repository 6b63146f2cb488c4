"""Load generation for the shop: ``manage.py place_test_orders`` and the bench (``perf/bench/``) both drive it.

- ``perf.loadgen.plan``: the orders of a run, planned up front from a seeded RNG, and their outcomes;
- ``perf.loadgen.in_process`` / ``perf.loadgen.http_client``: the two shops a run places orders with (the
  service functions in this process, or a running shop over HTTP, traced across both);
- ``perf.loadgen.runner``: places the planned orders on threads; ``perf.loadgen.summary``: the run's figures;
- ``perf.loadgen.cycles``: the bench's cart + checkout cycles over HTTP, counted and timed;
- ``perf.loadgen.stats``: the percentile they report; both run on ``harness.threads`` (shared with the tests).
"""
