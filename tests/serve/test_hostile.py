"""A real uvicorn server on 127.0.0.1 under hostile requests: bombs and rare formats get 4xx with our
message, slow and idle connections are closed, connections past the cap are refused at once and
logged once, Host names off the allow-list get 400, and the API's surface is small. Every loop and
wait is bounded; no timing is asserted beyond "answered before a generous socket timeout"."""
from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import struct
import sys
import threading
import time
import zlib

import pytest
from PIL import Image
from serve_fixtures import captioner, need_serve_extra, photos, png_bytes, uploads  # noqa: F401 (fixtures)

need_serve_extra()
from show_attend.serve.app import create_app  # noqa: E402
from show_attend.serve.client import CaptionClient, multipart  # noqa: E402
from show_attend.serve.pool import RequestPool  # noqa: E402
from show_attend.serve.server import ServerThread  # noqa: E402
from show_attend.serve.settings import ServeSettings  # noqa: E402
from show_attend.serve.uploads import UploadError  # noqa: E402

SETTINGS = dict(max_upload_mb=1, max_connections=6, header_timeout_s=1.0, body_timeout_s=1.0, keep_alive_s=1.0,
                allowed_hosts=("box.lan",))


@pytest.fixture(scope="module")
def server(captioner):
    with ServerThread(create_app(captioner, ServeSettings(**SETTINGS))) as s:
        yield s


def _bomb_png(width: int, height: int) -> bytes:
    data = bytearray(png_bytes(Image.new("I;16", (64, 64))))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _raw(server, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a new connection; everything the server sends until it closes (or ``timeout``)."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as s:
        s.sendall(data)
        return _read_to_close(s)


def _read_to_close(s: socket.socket) -> bytes:
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except socket.timeout:
        return out + b"<timeout>"
    except ConnectionResetError:
        return out + b"<reset>"


def _health(server) -> dict:
    return CaptionClient(server.host, server.port, timeout=10).health()[1]


# ------------------------------------------------------------------ images: 4xx with our message
@pytest.mark.parametrize("data, name, status, words", [
    (_bomb_png(9459, 9459), "bomb16.png", 413, "9459x9459"),
    (_bomb_png(30000, 30000), "bomb30k.png", 413, "pixels"),
    (png_bytes(Image.new("F", (16, 16)), "SPIDER"), "x.spi", 415, "format is not accepted"),
    (png_bytes(Image.new("RGB", (16, 16)), "DDS"), "x.dds", 415, "format is not accepted"),
    (png_bytes(Image.new("RGB", (16, 16)), "TGA"), "x.tga", 415, "format is not accepted"),
])
def test_bombs_and_rare_formats_get_a_4xx_in_our_words(server, data, name, status, words):
    client = CaptionClient(server.host, server.port, timeout=20)
    got, body = client.caption(data, name, "image/png")
    assert got == status and words in body["error"], body
    assert "Error" not in body["error"] and "Traceback" not in body["error"]


def test_a_jpeg_with_a_broken_exif_block_is_served(server, photos):
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    photos[0].save(buffer, "JPEG", exif=exif.tobytes())
    data = bytearray(buffer.getvalue())
    at = data.find(b"Exif\x00\x00")
    data[at + 10: at + 18] = b"\xff" * 8  # the IFD offset and entry count: garbage
    got, body = CaptionClient(server.host, server.port, timeout=20).caption(bytes(data), "e.jpg", "image/jpeg")
    assert got in (200, 400), body


def test_a_decode_over_its_time_limit_is_503_with_a_message(captioner):
    big = png_bytes(Image.effect_noise((2000, 2000), 40))  # a few tenths of a second to decode
    settings = ServeSettings(max_upload_mb=8, decode_timeout_s=0.001)
    with ServerThread(create_app(captioner, settings)) as s:
        got, body = CaptionClient(s.host, s.port, timeout=20).caption(big)
        assert got == 503 and "not decoded within" in body["error"]
        assert _health(s)["requests"]["decode_timeouts"] == 1


def test_the_request_pool_bounds_pending_requests_and_concurrent_decodes():
    pool, running, peak, lock = RequestPool(workers=2, max_pending=3, decode_timeout_s=5), [0], [0], threading.Lock()

    def work(_: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return 1

    async def one(i: int) -> int:
        async with pool.admit():
            return await pool.decode(work, i)

    async def main() -> list:
        return await asyncio.gather(*(one(i) for i in range(6)), return_exceptions=True)

    results = asyncio.run(main())
    refused = [r for r in results if isinstance(r, UploadError)]
    assert len(refused) == 3 and all(r.status == 503 for r in refused) and results.count(1) == 3
    assert peak[0] <= 2 and pool.stats()["pending"] == 0 and pool.stats()["refused_busy"] == 3
    pool.close()


# ------------------------------------------------------------------ connections
def test_an_idle_connection_and_a_trickled_header_are_closed(server):
    assert _raw(server, b"") == b""  # nothing sent: closed after the header timeout
    assert _raw(server, b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n") == b""  # headers never ended
    assert _health(server)["connections"]["header_timeouts"] >= 2


@pytest.mark.parametrize("head", [
    b"POST /api/caption HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n"
    b"\x89PNG\r\n",  # promised 5,000 bytes, sent 6
    b"POST /api/caption HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"6\r\n\x89PNG\r\n\r\n",  # a chunked body never ended
])
def test_a_body_that_never_completes_gets_408_and_the_connection_closes(server, head):
    answer = _raw(server, head)
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within" in answer


def test_at_the_cap_idle_connections_make_room_and_busy_ones_mean_503_at_once(server, uploads, caplog):
    cap = SETTINGS["max_connections"]
    idle = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(cap + 4)]
    try:
        time.sleep(0.2)
        client = CaptionClient(server.host, server.port, timeout=10)
        assert client.caption(uploads[0])[0] == 200  # served: the oldest idle connections were closed for it
        client.close()
    finally:
        for s in idle:
            s.close()
    time.sleep(0.3)
    head = (b"POST /api/caption HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n"
            b"Content-Length: 100\r\n\r\n")
    busy = []
    with caplog.at_level(logging.WARNING, logger="show_attend.serve.connections"):
        try:
            for _ in range(cap):  # each one in the middle of its request: not idle
                s = socket.create_connection((server.host, server.port), timeout=10)
                s.sendall(head)
                busy.append(s)
            time.sleep(0.3)
            refused = [_raw(server, b"", timeout=5) for _ in range(5)]
        finally:
            for s in busy:
                s.close()
        time.sleep(1.5)  # the burst's log line comes a second after its first event
    assert all(r.startswith(b"HTTP/1.1 503") and b"too many connections" in r for r in refused)
    stats = _health(server)["connections"]
    assert stats["refused"] >= 5 and stats["closed_idle_at_cap"] >= 4 and stats["max_connections"] == cap
    lines = [r for r in caplog.records if r.name == "show_attend.serve.connections"]
    assert 1 <= len(lines) <= 3 and all(r.exc_info is None for r in lines)  # a line per burst, no tracebacks


# ------------------------------------------------------------------ Host names and the API's surface
@pytest.mark.parametrize("host, status", [("evil.example", 400), ("evil.example:80", 400), ("localhost", 200),
                                          ("127.0.0.1:1234", 200), ("[::1]:8000", 200), ("BOX.lan.", 200)])
def test_only_allowed_host_names_are_answered(server, host, status):
    got, body = CaptionClient(server.host, server.port).request("GET", "/api/health", headers={"Host": host})
    assert got == status
    if status == 400:
        assert "allow-host" in body["error"] and "evil" not in body["error"]


def test_no_redirect_spells_out_the_host_and_docs_are_off(server):
    for path in ("/api/health/", "/docs", "/openapi.json", "/redoc"):
        answer = _raw(server, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 404") and b"location:" not in answer.lower(), path


def test_docs_are_served_with_the_flag(captioner):
    with ServerThread(create_app(captioner, ServeSettings(api_docs=True))) as s:
        assert CaptionClient(s.host, s.port).request("GET", "/openapi.json")[0] == 200


def test_head_on_the_get_routes(server):
    for path in ("/", "/api/health"):
        answer = _raw(server, f"HEAD {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\n"), answer[:200]  # no body


def test_a_422_names_the_field_and_quotes_only_a_prefix(server, uploads):
    body, kind = multipart(uploads[0], fields={"beam_size": "9" * 60_000})
    got, answer = CaptionClient(server.host, server.port).request("POST", "/api/caption", body,
                                                                  {"Content-Type": kind})
    assert got == 422 and "beam_size" in answer["error"] and len(answer["error"]) < 200


@pytest.mark.skipif(not hasattr(os, "getpriority") or sys.platform != "linux", reason="per-thread nice is Linux's")
def test_decode_workers_run_at_a_lower_priority_than_the_model():
    """The pool's threads are niced (+10 by default), so a large decode yields the CPU to the model's thread."""
    pool = RequestPool(workers=1, max_pending=4, decode_timeout_s=5)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    worker = asyncio.run(pool.decode(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    pool.close()
    assert worker == min(19, mine + 10)
