"""Run worker threads released together that share a list of jobs (the load tools' and the tests' harness)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

Client = TypeVar("Client")
Job = TypeVar("Job")


class _SharedJobs(Iterator[Job]):
    """An iterator several threads draw from: each job goes to exactly one of them."""

    def __init__(self, jobs: Iterable[Job]):
        self._jobs = iter(jobs)
        self._lock = threading.Lock()

    def __next__(self) -> Job:
        with self._lock:
            return next(self._jobs)


def run_together(
    clients: Sequence[Client], jobs: Iterable[Job], work: Callable[[Client, Callable[[], None], Iterator[Job]], None]
) -> float:
    """Run ``work(client, ready, jobs)`` in one thread per client; returns the wall seconds of the run.

    Each thread sets up what it needs (a session, a connection), calls ``ready()`` and then takes jobs
    (``for job in jobs``) until none are left. The clock starts when every thread is ready and stops
    when the last one is done. A thread that fails before ``ready()`` breaks the start for all of them
    (``threading.BrokenBarrierError`` here) instead of leaving the others waiting.
    """
    shared = _SharedJobs(jobs)
    start = threading.Barrier(len(clients) + 1)

    def run(client: Client) -> None:
        try:
            work(client, start.wait, shared)
        except BaseException:
            start.abort()  # failed before ready(): the others and the clock are not left waiting
            raise

    threads = [threading.Thread(target=run, args=(client,), daemon=True) for client in clients]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began
