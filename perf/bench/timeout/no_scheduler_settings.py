"""The shop's settings for a bench cluster whose scheduler the bench runs itself (perf/bench/timeout/run.py's burst)."""

from mall.settings import *  # noqa: F403
from mall.settings import Q_CLUSTER

Q_CLUSTER = {**Q_CLUSTER, "scheduler": False}
import os  # noqa: E402

if os.environ.get("BENCH_Q_SAVE_LIMIT"):
    Q_CLUSTER["save_limit"] = int(os.environ["BENCH_Q_SAVE_LIMIT"])
