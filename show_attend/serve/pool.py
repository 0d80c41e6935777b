"""Bounded work per request: how many requests are in progress, and where their images are decoded.

    pool = RequestPool(workers=2, max_pending=64, decode_timeout_s=20)
    async with pool.admit():                        # 503 at once when max_pending requests are in progress
        result = await pool.decode(fn, data, ...)   # on one of `workers` threads; 503 after decode_timeout_s

Decoding and resizing an upload run on a small thread pool of their own, apart from the event loop
and from the model's thread (:class:`~show_attend.serve.batching.MicroBatcher`), so one large image
costs one worker, never the model's turn; the pool's size (one thread per core by default) is the
bound on concurrent decodes. A decode that outlives its time limit answers 503 at once; the thread
finishes it in the background (the pixel cap bounds how long) and its slot stays taken until then,
so the bound holds. Every refusal is an :class:`~show_attend.serve.uploads.UploadError`.

On Linux the workers also run at a lower scheduling priority (``niceness``, +10 by default; a thread
is its own task there), so that on a machine with few cores a large decode yields the CPU to the
model's thread, and a normal request's latency stays near its idle value while another client
sends large images back to back (BENCHMARKS.md, "Serving under hostile load").
"""
from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, TypeVar

from .uploads import UploadError

R = TypeVar("R")


class RequestPool:
    def __init__(self, workers: int, max_pending: int, decode_timeout_s: float, name: str = "show-attend-image",
                 niceness: int = 10):
        self.workers, self.max_pending, self.decode_timeout_s = workers, max_pending, decode_timeout_s
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=name, initializer=lower_priority,
                                            initargs=(niceness,))
        self._lock = threading.Lock()
        self.pending = 0  # requests admitted and not finished
        self.decoding = 0  # decodes submitted and not finished (running or queued for a worker)
        self.counters = {"refused_busy": 0, "decode_timeouts": 0, "decoded": 0}

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        with self._lock:
            if self.pending >= self.max_pending:
                self.counters["refused_busy"] += 1
                raise UploadError(503, f"the server is busy ({self.pending} requests in progress): "
                                       "try again in a moment")
            self.pending += 1
        try:
            yield
        finally:
            with self._lock:
                self.pending -= 1

    async def decode(self, fn: Callable[..., R], *args: Any) -> R:
        with self._lock:
            self.decoding += 1
        future: "Future[R]" = self._executor.submit(fn, *args)
        future.add_done_callback(self._done)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.decode_timeout_s)
        except asyncio.TimeoutError:
            future.cancel()  # still queued: never runs; running: finishes in the background
            with self._lock:
                self.counters["decode_timeouts"] += 1
            raise UploadError(503, f"the image was not decoded within {self.decode_timeout_s:g} s (the server is "
                                   "busy, or the image is very large): try again, or send a smaller image") from None

    def _done(self, future: "Future[Any]") -> None:
        with self._lock:
            self.decoding -= 1
            self.counters["decoded"] += not future.cancelled() and future.exception() is None

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"workers": self.workers, "max_pending": self.max_pending, "pending": self.pending,
                    "decoding": self.decoding, **self.counters}

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def lower_priority(niceness: int) -> None:
    """Raise the calling thread's nice value by ``niceness`` (Linux: per thread); elsewhere, or when the
    system refuses, nothing changes."""
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError:
        pass
