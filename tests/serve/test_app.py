"""The HTTP API in process (fastapi's TestClient): the JSON answer, the page, every kind of bad upload
(the right 4xx, a clear message, and the next request still served), an ensemble."""
from __future__ import annotations

import math

import pytest
from PIL import Image
from serve_fixtures import captioner, need_serve_extra, photos, png_bytes, scene, uploads  # noqa: F401 (fixtures)

need_serve_extra()
pytest.importorskip("httpx", reason="fastapi's TestClient needs httpx")
from fastapi.testclient import TestClient  # noqa: E402

from show_attend.serve.app import create_app  # noqa: E402
from show_attend.serve.settings import ServeSettings  # noqa: E402


@pytest.fixture(scope="module")
def client(captioner):
    settings = ServeSettings(max_upload_mb=0.05, max_pixels=200_000, max_wait_ms=1)
    with TestClient(create_app(captioner, settings), base_url="http://localhost") as c:
        yield c


def post(client, data: bytes, name: str = "photo.png", kind: str = "image/png", **params):
    return client.post("/api/caption", files={"file": (name, data, kind)}, params=params)


def test_caption_json_holds_words_attention_beta_and_the_beam(client, captioner, photos, uploads):
    r = post(client, uploads[4], beam_size=3)
    assert r.status_code == 200, r.text
    body = r.json()
    d = captioner.decode([photos[4]], beam_size=3, alternatives=True)[0]
    assert body["caption"] == captioner.caption(photos[4], beam_size=3) == " ".join(d.words)
    assert body["words"] == d.words and len(body["attention"]) == len(body["beta"]) == len(d.words) > 0
    g = captioner.cfg.encoder.grid_size
    assert body["grid"] == [g, g] and all(len(a) == g * g for a in body["attention"])
    assert all(abs(sum(a) - 1.0) < 1e-3 for a in body["attention"])  # each word's map is a distribution
    assert all(0.0 <= b <= 1.0 for b in body["beta"])
    assert body["image_size"] == [200, 90] and body["crop_box"] == [0.0, 0.0, 200.0, 90.0]  # squash: all of it
    assert body["attention_shown"] == "the model's attention" and body["models"] == ["serve"]
    # the beam's other hypotheses, ranked, each with its own words and maps
    alts = body["alternatives"]
    assert [a["caption"] for a in alts] == [" ".join(a.words) for a in d.alternatives] and 1 <= len(alts) <= 2
    scores = [body["score"]] + [a["score"] for a in alts]
    assert scores == sorted(scores, reverse=True) and all(math.isfinite(s) for s in scores)
    assert all(len(a["attention"]) == len(a["words"]) == len(a["beta"]) for a in alts)
    assert set(body["timing"]) == {"read_ms", "queue_ms", "decode_ms", "batch_size", "total_ms"}


def test_options_greedy_no_attention_and_a_preview(client, captioner, photos, uploads):
    body = post(client, uploads[0], beam_size=1, attention="false", preview="true").json()
    assert body["caption"] == captioner.caption(photos[0], beam_size=1) and "alternatives" not in body
    assert "attention" not in body and "words" not in body and body["beam_size"] == 1
    assert body["preview"].startswith("data:image/jpeg;base64,") and body["preview_size"] == [112, 112]


def test_the_raw_body_is_an_upload_too(client, captioner, photos, uploads):
    r = client.post("/api/caption", content=uploads[1], headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and r.json()["caption"] == captioner.caption(photos[1])


def test_health_describes_the_model(client, captioner):
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["vocab_size"] == len(captioner.vocab) and h["grid"] == [7, 7]
    assert h["device"] == "cpu" and h["ensemble"] == 1 and h["beam_size"] == captioner.cfg.decode.beam_size
    assert h["batching"]["max_batch"] == 16 and h["max_upload_mb"] == 0.05


def test_the_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'type="file"' in r.text and "api/caption" in r.text and "api/health" in r.text


def _truncated() -> bytes:
    data = png_bytes(scene(1))
    return data[: len(data) // 2]


BAD = {  # name -> (request kwargs, status, words the message must hold)
    "not an image": (dict(files={"file": ("notes.png", b"hello, not pixels", "image/png")}), 400, "not an image"),
    "empty": (dict(files={"file": ("empty.png", b"", "image/png")}), 400, "empty"),
    "truncated": (dict(files={"file": ("cut.png", _truncated(), "image/png")}), 400, "truncated"),
    "wrong type": (dict(files={"file": ("notes.txt", b"hello", "text/plain")}), 415, "text/plain"),
    "huge": (dict(files={"file": ("big.png", b"\x89PNG" + bytes(100_000), "image/png")}), 413, "limit"),
    "pixel bomb": (dict(files={"file": ("bomb.png", png_bytes(Image.new("1", (1000, 1000))), "image/png")}),
                   413, "pixels"),
    "no file field": (dict(files={"photo": ("a.png", b"x", "image/png")}), 422, "'file'"),
    "not a form": (dict(content=b"{}", headers={"Content-Type": "application/json"}), 415, "multipart"),
    "no content type": (dict(content=b"abc"), 415, "Content-Type"),
    "bad beam": (dict(files={"file": ("a.png", png_bytes(scene(2)), "image/png")}, params={"beam_size": 0}),
                 422, "beam_size"),
    "bad flag": (dict(files={"file": ("a.png", png_bytes(scene(2)), "image/png")}, params={"preview": "maybe"}),
                 422, "preview"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_upload_is_a_4xx_with_a_message_and_the_server_goes_on(client, uploads, kind):
    kwargs, status, words = BAD[kind]
    r = client.post("/api/caption", **kwargs)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert post(client, uploads[0]).status_code == 200  # still serving


def test_a_failure_while_decoding_is_a_500_with_a_request_id_for_that_request_only(client, captioner, uploads, monkeypatch):
    real = captioner.decode
    calls = []

    def broken_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(captioner, "decode", broken_once)
    r = post(client, uploads[0])
    assert r.status_code == 500 and r.json()["request_id"] in r.json()["error"]
    assert "simulated" not in r.text and "RuntimeError" not in r.text  # nothing internal: the log has it
    assert post(client, uploads[0]).status_code == 200
    assert client.get("/api/health").json()["batching"]["failed_batches"] == 1


def test_an_ensemble_is_served_and_its_attention_stated(trained_run, photos, uploads):
    from show_attend.api import Captioner

    run_dir, _ = trained_run
    ensemble = Captioner.from_checkpoints([run_dir / "best.pt", run_dir / "last.pt"], device="cpu")
    with TestClient(create_app(ensemble), base_url="http://localhost") as c:
        h = c.get("/api/health").json()
        assert h["ensemble"] == 2 and h["attention_shown"] == "the mean of the 2 members' attention"
        body = post(c, uploads[2]).json()
    assert body["caption"] == ensemble.caption(photos[2]) and "mean of the 2" in body["attention_shown"]
    assert len(body["attention"]) == len(body["words"]) and all(len(a) == 49 for a in body["attention"])
