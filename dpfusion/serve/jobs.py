"""A bounded decode queue: one worker thread owns the model, extra requests wait or are told to come back."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Busy(Exception):
    """Every slot of the queue is taken; ``retry_after`` is a guess in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy decoding; retry in {retry_after} s")
        self.retry_after = retry_after


class JobQueue:
    """Runs model work on one thread, so the model is never used by two requests at once.

    ``capacity`` counts the running job and the waiting ones; a request beyond it gets
    ``Busy`` at once instead of piling up memory and latency.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpfusion-model")
        self._lock = threading.Lock()
        self._pending = 0
        self._mean_s = 1.0

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, work: Callable[..., T], *args: object) -> T:
        with self._lock:
            if self._pending >= self.capacity:
                raise Busy(max(1, math.ceil(self._pending * self._mean_s)))
            self._pending += 1
        try:
            return await asyncio.wrap_future(self._executor.submit(self._timed, work, *args))
        finally:
            with self._lock:
                self._pending -= 1

    def _timed(self, work: Callable[..., T], *args: object) -> T:
        started = time.perf_counter()
        try:
            return work(*args)
        finally:
            self._mean_s = 0.7 * self._mean_s + 0.3 * (time.perf_counter() - started)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
