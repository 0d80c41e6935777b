"""How fast the served model answers: images/s and latency at 1, 8 and 32 concurrent clients.

    result = serving_benchmark("runs/shapes_demo", ServingSettings())   # starts show-attend serve
    print(format_serving(result))

The server runs as its own process (``python -m show_attend serve`` on a free port of 127.0.0.1),
as users run it; the clients are threads of this process, each with one keep-alive connection,
sending synthetic shapes photos (PNG) one request after another. Per level: the requests' wall
time gives images/s, each request's round trip the p50/p95 latency, and the server's own batching
counters (``GET /api/health``) the mean batch it formed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from ..serve.client import CaptionClient
from ..serve.server import DEFAULT_HOST, free_port
from ..utils.markdown import markdown_table
from .timing import machine


@dataclass
class ServingSettings:
    clients: tuple[int, ...] = (1, 8, 32)
    requests: int = 64  # per level, at least 4 per client
    images: int = 8  # distinct photos, sent in turn
    image_size: int = 224
    beam_size: Optional[int] = None  # None: the model's decode.beam_size
    max_batch: int = 16
    max_wait_ms: float = 10.0
    device: str = "cpu"
    startup_timeout_s: float = 300.0

    @classmethod
    def quick(cls) -> "ServingSettings":
        return cls(clients=(1, 2), requests=4, images=2, image_size=64)


def _photos(n: int, size: int) -> list[bytes]:
    import io

    from ..data.scenes import render_scene

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        buffer = io.BytesIO()
        render_scene(rng, size)[0].save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def _stop_server(proc: subprocess.Popen) -> None:
    """Stop a server started by :func:`_start_server`: SIGTERM, then SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _start_server(model: Union[str, Path], s: ServingSettings, log_file: Path,
                  extra_args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, "-m", "show_attend", "serve", "--model", str(model), "--port", str(port),
           "--device", s.device, "--max-batch", str(s.max_batch), "--max-wait-ms", str(s.max_wait_ms),
           "--log-level", "warning", *extra_args]
    with open(log_file, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    client, deadline = CaptionClient(DEFAULT_HOST, port, timeout=5), time.monotonic() + s.startup_timeout_s
    while True:
        try:
            if client.health()[0] == 200:
                return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"show-attend serve did not start: {log_file.read_text()[-2000:]}")
        time.sleep(0.2)


def _level(port: int, clients: int, total: int, photos: list[bytes], options: dict[str, Any]) -> dict[str, Any]:
    before = CaptionClient(DEFAULT_HOST, port).health()[1]["batching"]
    plan = [list(range(c, total, clients)) for c in range(clients)]

    def run(indices: list[int]) -> list[tuple[int, float]]:
        client, out = CaptionClient(DEFAULT_HOST, port), []
        try:
            for i in indices:
                t0 = time.perf_counter()
                status, _ = client.caption(photos[i % len(photos)], **options)
                out.append((status, time.perf_counter() - t0))
        finally:
            client.close()
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = [a for chunk in pool.map(run, plan) for a in chunk]
    wall = time.perf_counter() - t0
    after = CaptionClient(DEFAULT_HOST, port).health()[1]["batching"]
    latency_ms = np.array([seconds for _, seconds in answers]) * 1000.0
    batches, images = after["batches"] - before["batches"], after["images"] - before["images"]
    return {"clients": clients, "requests": total, "ok": sum(s == 200 for s, _ in answers),
            "images_per_s": total / wall, "p50_ms": float(np.percentile(latency_ms, 50)),
            "p95_ms": float(np.percentile(latency_ms, 95)), "mean_batch": images / max(batches, 1),
            "largest_batch": after["largest"], "seconds": wall}


def serving_benchmark(model: Union[str, Path], settings: Optional[ServingSettings] = None) -> dict[str, Any]:
    """Start ``show-attend serve --model MODEL``, load it at each concurrency level, stop it; one JSON-able dict."""
    s = settings or ServingSettings()
    load_before = os.getloadavg()[0]  # other work on the machine slows every level alike
    photos = _photos(s.images, s.image_size)
    options = {} if s.beam_size is None else {"beam_size": s.beam_size}
    with tempfile.TemporaryDirectory(prefix="show_attend_serving_") as tmp:
        proc, port = _start_server(model, s, Path(tmp) / "server.log")
        try:
            health = CaptionClient(DEFAULT_HOST, port).health()[1]
            for c in s.clients[:1]:  # warm-up: the first requests pay for lazy initialisation
                _level(port, c, 2, photos, options)
            levels = [_level(port, c, max(s.requests, 4 * c), photos, options) for c in s.clients]
        finally:
            _stop_server(proc)
    info = machine(torch.device(s.device))
    info["threads"] = health["torch_threads"]  # the server's, not this process's
    info["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # before, after
    return {"machine": info, "settings": asdict(s), "model": str(model), "models": health["models"],
            "beam_size": s.beam_size or health["beam_size"], "server_device": health["device"], "levels": levels}


def format_serving(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    head = (f"{m.get('date')}  {m.get('cpu') or m['device']}  server on {result['server_device']}, torch {m['torch']}, "
            f"{m['threads']} threads; model {', '.join(result['models'])}, beam {result['beam_size']}, "
            f"{s['image_size']} px PNG uploads, --max-batch {s['max_batch']} --max-wait-ms {s['max_wait_ms']:g}; "
            f"load average {m['load_average_1min'][0]:g} before, {m['load_average_1min'][1]:g} after")
    rows = [[lv["clients"], lv["requests"], f"{lv['images_per_s']:.1f}", f"{lv['p50_ms']:.0f}", f"{lv['p95_ms']:.0f}",
             f"{lv['mean_batch']:.1f}", lv["largest_batch"], lv["ok"]] for lv in result["levels"]]
    table = markdown_table(["concurrent clients", "requests", "images/s", "p50 latency (ms)", "p95 latency (ms)",
                            "mean batch", "largest batch so far", "200 OK"], rows, ["right"] * 8)
    return head + "\n\n" + table


__all__ = ["ServingSettings", "format_serving", "serving_benchmark"]
