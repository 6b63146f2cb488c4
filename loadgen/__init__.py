"""Load generation for the shop: ``manage.py place_test_orders`` and the bench (``bench/``) both drive it.

- ``loadgen.plan``: the orders of a run, planned up front from a seeded RNG, and their outcomes;
- ``loadgen.in_process`` / ``loadgen.http_client``: the two shops a run places orders with (the
  service functions in this process, or a running shop over HTTP, traced across both);
- ``loadgen.runner``: places the planned orders on threads; ``loadgen.summary``: the run's figures;
- ``loadgen.cycles``: the bench's cart + checkout cycles over HTTP, counted and timed;
- ``loadgen.threads``: the thread harness both run on; ``loadgen.stats``: the percentile they report.
"""
