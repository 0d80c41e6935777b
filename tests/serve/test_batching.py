"""Concurrent requests share batched calls, and each still gets its own image's caption."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_fixtures import captioner, need_serve_extra, photos, uploads  # noqa: F401 (fixtures)

from show_attend.serve.batching import MicroBatcher


def test_concurrent_items_are_run_in_few_calls_each_getting_its_own_result():
    calls = []

    def run(key, items):
        calls.append((key, list(items)))
        time.sleep(0.02)
        return [key * x for x in items]

    batcher = MicroBatcher(run, max_batch=8, max_wait_s=0.05)
    with ThreadPoolExecutor(20) as pool:
        futures = list(pool.map(lambda i: batcher.submit(i, key=10 if i % 2 else 1), range(40)))
    results = [f.result(timeout=10) for f in futures]
    batcher.close()
    assert [r.value for r in results] == [(10 if i % 2 else 1) * i for i in range(40)]
    assert len(calls) < 40 and all(len(items) <= 8 for _, items in calls)
    assert all(len({k}) == 1 for k, _ in calls) and sum(len(i) for _, i in calls) == 40
    assert batcher.stats.items == 40 and batcher.stats.mean_batch_size > 1
    assert all(r.batch_size >= 1 and r.run_ms > 0 and r.wait_ms >= 0 for r in results)


def test_a_failing_call_fails_its_items_only_and_the_worker_goes_on():
    def run(key, items):
        if "bad" in items:
            raise ValueError("cannot")
        return [x.upper() for x in items]

    batcher = MicroBatcher(run, max_batch=4, max_wait_s=0.0)
    with pytest.raises(ValueError, match="cannot"):
        batcher.submit("bad").result(timeout=5)
    assert batcher.submit("good").result(timeout=5).value == "GOOD"
    assert batcher.stats.failed_batches == 1 and batcher.stats.batches == 1
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit("late")


def test_close_finishes_what_was_submitted():
    gate = threading.Event()

    def run(key, items):
        gate.wait(5)
        return items

    batcher = MicroBatcher(run, max_batch=2, max_wait_s=0.0)
    futures = [batcher.submit(i) for i in range(5)]
    gate.set()
    batcher.close()
    assert [f.result(timeout=5).value for f in futures] == list(range(5))


def test_concurrent_http_requests_share_decoder_calls(captioner, photos, uploads):
    """12 requests at once over real sockets: fewer decode calls than requests; every caption equals
    what the Captioner gives for that image alone."""
    need_serve_extra()
    from show_attend.serve.app import create_app
    from show_attend.serve.client import CaptionClient
    from show_attend.serve.server import ServerThread
    from show_attend.serve.settings import ServeSettings

    alone = [captioner.caption(im, beam_size=2) for im in photos]
    calls = []
    real = captioner.decode

    def counted(images, *args, **kwargs):
        calls.append(len(images))
        return real(images, *args, **kwargs)

    captioner.decode = counted
    try:
        with ServerThread(create_app(captioner, ServeSettings(max_batch=8, max_wait_ms=300))) as server:
            def one(i):
                client = CaptionClient(server.host, server.port)
                try:
                    return i % len(uploads), client.caption(uploads[i % len(uploads)], beam_size=2)
                finally:
                    client.close()

            with ThreadPoolExecutor(12) as pool:
                answers = list(pool.map(one, range(12)))
    finally:
        del captioner.decode
    assert all(status == 200 for _, (status, _) in answers)
    assert [body["caption"] for _, (_, body) in answers] == [alone[i] for i, _ in answers]
    assert sum(calls) == 12 and len(calls) < 12 and max(calls) > 1, calls
    assert max(body["timing"]["batch_size"] for _, (_, body) in answers) > 1
