"""Run the same action from many threads at once, to test races against a real database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor


def run_together(count: int, action):
    """Call ``action(i)`` from ``count`` threads released at the same moment; results in order."""
    barrier = threading.Barrier(count)

    def call(i):
        barrier.wait()
        try:
            return action(i)
        except Exception as exc:  # returned, so the test can count outcomes
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))
