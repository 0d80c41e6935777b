"""A real uvicorn server on 127.0.0.1: 100 requests from 8 concurrent clients, a tenth of them bad
uploads, leave it answering with no 5xx; a body over the limit on a real socket gets its 413."""
from __future__ import annotations

import http.client
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image
from serve_fixtures import captioner, need_serve_extra, photos, png_bytes, uploads  # noqa: F401 (fixtures)

need_serve_extra()
from show_attend.serve.app import create_app  # noqa: E402
from show_attend.serve.client import CaptionClient  # noqa: E402
from show_attend.serve.server import ServerThread  # noqa: E402
from show_attend.serve.settings import ServeSettings  # noqa: E402

BAD = [  # (bytes, filename, declared type)
    (b"GIF89a but not really", "fake.gif", "image/gif"),
    (b"", "empty.png", "image/png"),
    (b"plain text", "notes.txt", "text/plain"),
    (bytes(300_000), "huge.png", "image/png"),  # over the 0.25 MB limit below
    (png_bytes(Image.new("1", (2000, 2000))), "bomb.png", "image/png"),  # over max_pixels below
]


@pytest.fixture(scope="module")
def server(captioner):
    with ServerThread(create_app(captioner, ServeSettings(max_upload_mb=0.25, max_pixels=1_000_000))) as s:
        yield s


def test_100_requests_from_8_clients_a_tenth_bad_no_5xx(server, uploads):
    bad_at = sorted(random.Random(0).sample(range(100), 10))  # each bad kind twice, at random places
    plan = [BAD[bad_at.index(i) % len(BAD)] if i in bad_at else (uploads[i % len(uploads)], "photo.png", "image/png")
            for i in range(100)]
    chunks = [plan[c::8] for c in range(8)]

    def client_run(requests):
        client = CaptionClient(server.host, server.port)
        try:
            return [client.caption(data, name, kind)[0] for data, name, kind in requests]
        finally:
            client.close()

    with ThreadPoolExecutor(8) as pool:
        statuses = Counter(s for chunk in pool.map(client_run, chunks) for s in chunk)
    assert sum(statuses.values()) == 100 and not any(s >= 500 for s in statuses), statuses
    assert statuses == {200: 90, 400: 4, 413: 4, 415: 2}, statuses
    status, health = CaptionClient(server.host, server.port).health()
    assert status == 200 and health["batching"]["images"] >= 90


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_body_on_a_real_socket_gets_413_and_a_message(server, uploads, chunked):
    """A client that sends all of its body before reading (http.client) still reads the 413."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    body = bytes(1_000_000)
    if chunked:
        conn.request("POST", "/api/caption", body=(body[i: i + 65536] for i in range(0, len(body), 65536)),
                     headers={"Content-Type": "image/png"}, encode_chunked=True)
    else:
        conn.request("POST", "/api/caption", body=body, headers={"Content-Type": "image/png"})
    response = conn.getresponse()
    assert response.status == 413 and b"limit of 0.25 MB" in response.read()
    conn.close()
    assert CaptionClient(server.host, server.port).caption(uploads[0])[0] == 200


def test_it_listens_on_loopback_only_by_default(server):
    assert server.host == "127.0.0.1"
    from show_attend.serve.server import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
