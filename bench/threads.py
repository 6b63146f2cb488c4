"""Client threads released together that share a fixed number of cycles (the HTTP load and the floor)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

Client = TypeVar("Client")


def run_together(
    clients: Sequence[Client], cycles: int, work: Callable[[Client, Callable[[], None], Callable[[], bool]], None]
) -> float:
    """Run ``work(client, ready, take)`` in one thread per client; returns the wall seconds of the run.

    Each thread sets up what it needs (a session, a connection), calls ``ready()`` and then works while
    ``take()`` hands it one of the ``cycles``. The clock starts when every thread is ready, and stops
    when the last one is done.
    """
    remaining = cycles
    lock = threading.Lock()
    start = threading.Barrier(len(clients) + 1)

    def take() -> bool:
        nonlocal remaining
        with lock:
            if remaining <= 0:
                return False
            remaining -= 1
            return True

    threads = [threading.Thread(target=work, args=(client, start.wait, take), daemon=True) for client in clients]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began
