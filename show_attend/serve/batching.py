"""Micro-batching: concurrent requests collected for a few milliseconds and run as one batched call.

    batcher = MicroBatcher(run_batch, max_batch=16, max_wait_s=0.01)   # run_batch(key, items) -> results
    result = batcher.submit(image, key=(beam_size,)).result()          # a concurrent.futures.Future
    result.value, result.batch_size, result.wait_ms, result.run_ms

One worker thread takes the first waiting item, then gathers more until ``max_batch`` items are
there or ``max_wait_s`` has passed since that item arrived (under load the queue already holds
them, so nothing waits), and calls ``run_batch`` once per distinct key among them (items with
different decoding options cannot share a call). All model work happens on that one thread. An
exception in ``run_batch`` fails only that call's items; the worker goes on.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Generic, Hashable, Optional, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


@dataclass
class Batched(Generic[R]):
    """One item's result and how it was run."""

    value: R
    batch_size: int  # items in the call that produced it
    wait_ms: float  # from submit to the start of that call
    run_ms: float  # the call itself


@dataclass
class BatchStats:
    batches: int = 0  # calls of run_batch
    items: int = 0
    largest: int = 0
    failed_batches: int = 0

    @property
    def mean_batch_size(self) -> float:
        return self.items / self.batches if self.batches else 0.0


@dataclass
class _Job(Generic[T, R]):
    item: T
    key: Hashable
    future: "Future[Batched[R]]"
    submitted: float = field(default_factory=time.perf_counter)


class MicroBatcher(Generic[T, R]):
    def __init__(self, run_batch: Callable[[Hashable, list[T]], Sequence[R]], max_batch: int = 16,
                 max_wait_s: float = 0.01, name: str = "micro-batcher"):
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_s >= 0, got {max_batch}, {max_wait_s}")
        self.run_batch, self.max_batch, self.max_wait_s = run_batch, max_batch, max_wait_s
        self.stats = BatchStats()
        self._queue: "queue.Queue[Optional[_Job[T, R]]]" = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T, key: Hashable = None) -> "Future[Batched[R]]":
        future: "Future[Batched[R]]" = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.put(_Job(item, key, future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Finish the items already submitted, then stop the worker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = [first], False
            deadline = first.submitted + self.max_wait_s
            while len(jobs) < self.max_batch:
                try:
                    job = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            groups: dict[Hashable, list[_Job[T, R]]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for key, group in groups.items():
                self._run(key, group)
            if stop:
                return

    def _run(self, key: Hashable, jobs: list[_Job[T, R]]) -> None:
        start = time.perf_counter()
        try:
            values = list(self.run_batch(key, [j.item for j in jobs]))
            if len(values) != len(jobs):
                raise RuntimeError(f"run_batch returned {len(values)} results for {len(jobs)} items")
        except Exception as exc:  # noqa: BLE001 - one failed call must not stop the worker
            log.exception("a batch of %d failed", len(jobs))
            self.stats.failed_batches += 1
            for job in jobs:
                job.future.set_exception(exc)
            return
        run_ms = (time.perf_counter() - start) * 1000.0
        self.stats.batches += 1
        self.stats.items += len(jobs)
        self.stats.largest = max(self.stats.largest, len(jobs))
        for job, value in zip(jobs, values):
            job.future.set_result(Batched(value, len(jobs), (start - job.submitted) * 1000.0, run_ms))
