"""The served model under hostile load: a normal client's latency and the server's memory while another
client sends large-pixel images back to back, and while it holds many idle connections open.

    result = hostile_benchmark("runs/shapes_demo", HostileSettings())   # starts show-attend serve
    print(format_hostile(result))

The server runs as its own process (as in :mod:`.serving`); its resident memory is sampled from
``/proc/PID/status`` every 20 ms (Linux). Phases, each bounded in requests and seconds:

* ``idle``: the normal client alone (224 px PNG shapes photos, one request after another);
* ``over the cap``: the same while ``bomb_clients`` threads send images over the pixel cap back to back
  (a 9459 x 9459 16-bit grey PNG of ~170 KB, a 30000 x 30000 PNG header, an 85 MP TIFF of ~2 KB): their
  answers are counted by status, with the slowest;
* ``under the cap``: the same with a 7000 x 7000 RGB PNG (49 MP, under the 50 MP cap), which is decoded
  in full and captioned: a legitimate request that takes the model's turn as well;
* ``idle connections``: the same while another thread opens up to ``idle_connections`` TCP connections
  (bounded by this process's file-descriptor limit and ``connect_seconds``) and sends nothing; the
  normal client opens a fresh connection per request, as a browser does after a pause.

Per phase: the normal client's p50/p95, its failures, the server's peak resident memory above its
idle level, and the lines the server logged.
"""
from __future__ import annotations

import io
import os
import resource
import socket
import struct
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

from ..serve.client import CaptionClient
from ..serve.server import DEFAULT_HOST
from ..utils.markdown import markdown_table
from .serving import ServingSettings, _photos, _start_server, _stop_server
from .timing import machine


@dataclass
class HostileSettings:
    requests: int = 40  # the normal client's requests per phase
    bomb_clients: int = 1  # clients sending large-pixel images back to back
    idle_connections: int = 5000  # at most; also bounded by this process's file-descriptor limit
    connect_seconds: float = 20.0  # the time allowed to open them
    phase_seconds: float = 180.0  # a phase stops after this long, its requests done or not
    request_timeout_s: float = 30.0  # the normal client's socket timeout
    device: str = "cpu"
    extra_args: tuple[str, ...] = ()  # more `show-attend serve` flags


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def gray16_png(side: int) -> bytes:
    """A genuine side x side 16-bit grey PNG of zeros (compressed row by row: ~side^2 / 500 bytes)."""
    comp, row = zlib.compressobj(9), b"\x00" * (1 + 2 * side)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))


def rgb_png(side: int) -> bytes:
    comp, row = zlib.compressobj(9), b"\x00" * (1 + 3 * side)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height and holds one empty compressed row."""
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def tall_tiff(width: int, height: int) -> bytes:
    """An uncompressed grey TIFF whose header says width x height, with a 10-row strip of data."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, 10), 128).save(buffer, format="TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd: ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry: entry + 2])[0] == 257:  # ImageLength
            data[entry + 2: entry + 12] = struct.pack("<HII", 4, 1, height)
    return bytes(data)


def bombs() -> list[tuple[str, bytes, str]]:
    """Images over the default 50 MP cap, small on the wire: each must be refused from its header."""
    return [("9459x9459 16-bit PNG", gray16_png(9459), "image/png"),
            ("30000x30000 PNG header", png_header(30000, 30000), "image/png"),
            ("1000x85000 TIFF", tall_tiff(1000, 85_000), "image/tiff")]


def largest_accepted() -> list[tuple[str, bytes, str]]:
    """A 7000 x 7000 RGB PNG (49 MP, just under the cap, 140 KB): decoded in full and captioned."""
    return [("7000x7000 RGB PNG", rgb_png(7000), "image/png")]


class _MemorySampler:
    """The peak VmRSS of a process, sampled every ``every`` seconds on a thread."""

    def __init__(self, pid: int, every: float = 0.02):
        self.pid, self.every, self.peak_kb = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_kb(self) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self.rss_kb())
            time.sleep(self.every)

    def __enter__(self) -> "_MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _normal_client(port: int, photos: list[bytes], n: int, timeout: float, fresh: bool,
                   deadline: float, until: Callable[[], bool] = lambda: True) -> dict[str, Any]:
    """``n`` requests, and more while ``until()`` is False, until ``deadline``."""
    latencies, failures, statuses = [], 0, {}
    client = CaptionClient(DEFAULT_HOST, port, timeout=timeout)
    i = 0
    while (i < n or not until()) and time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            status, _ = client.caption(photos[i % len(photos)], beam_size=3)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                failures += 1
        except OSError:
            failures += 1
            client.close()
        if fresh:
            client.close()
        i += 1
    client.close()
    ms = np.array(latencies or [float("nan")]) * 1000.0
    return {"requests": i, "ok": len(latencies), "failures": failures, "statuses": statuses,
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "max_ms": float(ms.max())}


def _bomber(port: int, payloads: list[tuple[str, bytes, str]], stop: threading.Event, timeout: float,
            out: dict[str, Any]) -> None:
    client, i = CaptionClient(DEFAULT_HOST, port, timeout=timeout), 0
    while not stop.is_set():
        label, data, kind = payloads[i % len(payloads)]
        t0 = time.perf_counter()
        try:
            status = str(client.caption(data, "bomb", kind)[0])
        except OSError:
            status = "no answer"
            client.close()
        seconds = time.perf_counter() - t0
        with out["lock"]:
            key = f"{label}: {status}"
            out["answers"][key] = out["answers"].get(key, 0) + 1
            out["slowest_s"][label] = round(max(out["slowest_s"].get(label, 0.0), seconds), 2)
        i += 1
    client.close()


def _idle_connector(port: int, limit: int, seconds: float, stop: threading.Event, out: dict[str, Any]) -> None:
    socks, deadline = [], time.monotonic() + seconds
    try:
        while len(socks) < limit and time.monotonic() < deadline and not stop.is_set():
            try:
                s = socket.create_connection((DEFAULT_HOST, port), timeout=2)
                socks.append(s)
            except OSError:
                out["connect_failures"] += 1
        out["opened"] = len(socks)
        stop.wait()
        alive = 0
        for s in socks:  # a closed-by-the-server socket reads b"" (or resets) at once
            s.setblocking(False)
            try:
                alive += s.recv(1) != b""
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        out["still_open_at_end"] = alive
    finally:
        for s in socks:
            s.close()


def _phase(name: str, sampler: _MemorySampler, base_kb: int, log_file: Path, run: Callable[[], dict[str, Any]],
           background: Optional[Callable[[threading.Event], None]] = None, lead_s: float = 0.0) -> dict[str, Any]:
    lines_before = len(log_file.read_text(errors="replace").splitlines())
    sampler.peak_kb = sampler.rss_kb()
    stop, thread = threading.Event(), None
    if background is not None:
        thread = threading.Thread(target=background, args=(stop,), daemon=True)
        thread.start()
        time.sleep(lead_s)
    t0 = time.perf_counter()
    try:
        result = run()
    finally:
        stop.set()
        if thread is not None:
            thread.join(60)
    result.update(phase=name, seconds=round(time.perf_counter() - t0, 1),
                  peak_rss_mb=round(sampler.peak_kb / 1024), peak_increase_mb=round((sampler.peak_kb - base_kb) / 1024),
                  log_lines=len(log_file.read_text(errors="replace").splitlines()) - lines_before)
    return result


def hostile_benchmark(model: Union[str, Path], settings: Optional[HostileSettings] = None) -> dict[str, Any]:
    s = settings or HostileSettings()
    load_before = os.getloadavg()[0]
    photos, payloads = _photos(4, 224), bombs()
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    idle_target = max(0, min(s.idle_connections, fd_limit - 256))
    serve = ServingSettings(device=s.device)
    with tempfile.TemporaryDirectory(prefix="show_attend_hostile_") as tmp:
        log_file = Path(tmp) / "server.log"
        proc, port = _start_server(model, serve, log_file, extra_args=s.extra_args)
        phases = []
        try:
            with _MemorySampler(proc.pid) as sampler:
                warm = CaptionClient(DEFAULT_HOST, port)
                for p in photos:
                    warm.caption(p)
                warm.close()
                base_kb = sampler.rss_kb()
                deadline = lambda: time.monotonic() + s.phase_seconds  # noqa: E731
                normal = lambda fresh=False, until=lambda: True: _normal_client(  # noqa: E731
                    port, photos, s.requests, s.request_timeout_s, fresh, deadline(), until)
                phases.append(_phase("idle", sampler, base_kb, log_file, normal))
                def bomb_phase(what: str, images: list[tuple[str, bytes, str]]) -> dict[str, Any]:
                    """The normal client while ``s.bomb_clients`` clients send ``images`` back to back."""
                    out: dict[str, Any] = {"lock": threading.Lock(), "answers": {}, "slowest_s": {}}

                    def bomb_clients(stop: threading.Event) -> None:
                        threads = [threading.Thread(target=_bomber, daemon=True,
                                                    args=(port, images[k % len(images):] + images[:k % len(images)],
                                                          stop, 120.0, out)) for k in range(s.bomb_clients)]
                        for t in threads:
                            t.start()
                        for t in threads:
                            t.join(130)

                    every_image_answered = lambda: len(out["slowest_s"]) == len(images)  # noqa: E731
                    phase = _phase(f"{s.bomb_clients} client(s) sending {what}", sampler, base_kb, log_file,
                                   lambda: normal(until=every_image_answered), bomb_clients, lead_s=1.0)
                    phase["bomb_answers"], phase["bomb_slowest_s"] = out["answers"], out["slowest_s"]
                    return phase

                phases.append(bomb_phase("images over the pixel cap", payloads))
                phases.append(bomb_phase("49 MP images (under the cap)", largest_accepted()))
                idle_out: dict[str, Any] = {"opened": 0, "connect_failures": 0}
                phase = _phase(f"up to {idle_target} idle connections", sampler, base_kb, log_file,
                               lambda: normal(True),
                               lambda stop: _idle_connector(port, idle_target, s.connect_seconds, stop, idle_out),
                               lead_s=min(s.connect_seconds, 10.0))
                phase.update(idle=idle_out)
                phases.append(phase)
                health = CaptionClient(DEFAULT_HOST, port, timeout=30).health()
        finally:
            _stop_server(proc)
        log_tail = log_file.read_text(errors="replace")[-1500:]
    info = machine(torch.device(s.device))
    info["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    info["fd_limit"] = fd_limit
    return {"machine": info, "settings": asdict(s), "model": str(model), "base_rss_mb": round(base_kb / 1024),
            "health_after": health[0], "phases": phases, "server_log_tail": log_tail}


def format_hostile(result: dict[str, Any]) -> str:
    m = result["machine"]
    head = (f"{m.get('date')}  {m.get('cpu') or m['device']}; server idle RSS {result['base_rss_mb']} MB; "
            f"load average {m['load_average_1min'][0]:g} before, {m['load_average_1min'][1]:g} after; "
            f"/api/health afterwards: {result['health_after']}")
    rows = [[p["phase"], f"{p['ok']}/{p['requests']}", f"{p['p50_ms']:.0f}", f"{p['p95_ms']:.0f}", f"{p['max_ms']:.0f}",
             f"{p['peak_rss_mb']:,}", f"{p['peak_increase_mb']:+,}", p["log_lines"]] for p in result["phases"]]
    table = markdown_table(["phase", "normal client 200 OK", "p50 (ms)", "p95 (ms)", "max (ms)",
                            "server peak RSS (MB)", "over idle (MB)", "log lines"], rows, ["left"] + ["right"] * 7)
    notes = []
    for p in result["phases"]:
        if "bomb_answers" in p:
            notes.append(f"large-pixel answers: {p['bomb_answers']}; slowest (s): {p['bomb_slowest_s']}")
        if "idle" in p:
            notes.append(f"idle connections: {p['idle']}")
    return head + "\n\n" + table + "\n\n" + "\n".join(notes)


__all__ = ["HostileSettings", "format_hostile", "hostile_benchmark"]
