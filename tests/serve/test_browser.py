"""The page in a real browser: headless Chromium (the system package) opens it, a PNG is set on the
file input, and the caption, one hoverable button per word and a drawn heatmap appear; a bad upload
shows the server's message. Driven over the DevTools protocol (websocket-client); skipped only
where no Chromium is installed (.ci/run installs it)."""
from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from serve_fixtures import captioner, need_serve_extra, photos, png_bytes, scene, uploads  # noqa: F401 (fixtures)

need_serve_extra()
from show_attend.serve.app import create_app  # noqa: E402
from show_attend.serve.server import ServerThread  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--no-first-run", "--disable-extensions", "--remote-allow-origins=*", "--remote-debugging-port=0",
         "--window-size=1280,960"]


def chromium() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium installed (apt-get install chromium; .ci/run does it)")


class DevTools:
    """A page target over the Chrome DevTools protocol: send a command, wait for its answer."""

    def __init__(self, binary: str, profile: Path):
        websocket = pytest.importorskip("websocket", reason="the browser test drives Chromium with websocket-client")
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
            while not (port_file.is_file() and port_file.read_text().strip()):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{binary} did not start its DevTools endpoint")
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
            page = next(t for t in targets if t["type"] == "page")
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        except BaseException:
            self._stop()
            raise
        self.ids = itertools.count(1)

    def __call__(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def js(self, expression: str) -> Any:
        result = self("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 90.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := self.js(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.1)
        return value

    def upload(self, path: Path) -> None:
        root = self("DOM.getDocument")["root"]["nodeId"]
        node = self("DOM.querySelector", nodeId=root, selector="#file")["nodeId"]
        self("DOM.setFileInputFiles", files=[str(path)], nodeId=node)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        self.ws.close()
        self._stop()

    def _stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


HEAT_PIXELS = """(() => { const c = document.getElementById('heat'); if (!c.width) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, colours = new Set();
  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) { n++; colours.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]); }
  return n > 0 && colours.size > 8 ? n : 0; })()"""
WORDS = "[...document.querySelectorAll('#words .word span:first-child')].map(s => s.textContent)"


@contextmanager
def open_page(captioner, tmp_path) -> Iterator[DevTools]:
    """The page of a live server in headless Chromium; both stopped afterwards, whatever happens."""
    binary = chromium()
    with ServerThread(create_app(captioner)) as server:
        browser = DevTools(binary, tmp_path / "profile")
        try:
            browser("Emulation.setDeviceMetricsOverride", width=1280, height=960, deviceScaleFactor=1, mobile=False)
            browser("Page.navigate", url=server.url + "/")
            browser.wait_for("document.getElementById('model')?.textContent.startsWith('model:')")
            yield browser
        finally:
            browser.close()


def test_an_upload_shows_the_caption_and_each_words_heatmap(captioner, tmp_path):
    photo = scene(5, 224)
    (tmp_path / "shapes.png").write_bytes(png_bytes(photo))
    with open_page(captioner, tmp_path) as browser:
        browser.upload(tmp_path / "shapes.png")
        words = browser.wait_for(f"{WORDS}.length ? {WORDS} : null")
        assert " ".join(words) == captioner.caption(photo)
        assert browser.wait_for(HEAT_PIXELS) > 1000  # the first word's map, drawn over the photo
        assert browser.js("document.querySelectorAll('#strip .panel canvas').length") == len(words)
        assert browser.js("document.querySelectorAll('#beams tr').length") >= 2  # the beam's hypotheses
        assert "\u03b2" in browser.js("document.getElementById('words').textContent")
        # hovering the last word (a real mouse move) shows its map and its beta
        box = browser.js("(() => { const r = [...document.querySelectorAll('.word')].pop().getBoundingClientRect();"
                         " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        browser("Input.dispatchMouseEvent", type="mouseMoved", x=box[0], y=box[1])
        assert browser.wait_for("document.getElementById('heat').dataset.word") == words[-1]
        assert words[-1] in browser.js("document.getElementById('focus').textContent")
        assert browser.wait_for(HEAT_PIXELS) > 1000
        shot = browser.screenshot(tmp_path / "serve_page.png")
        assert shot.stat().st_size > 10_000


def test_a_bad_upload_shows_the_servers_message(captioner, tmp_path):
    (tmp_path / "notes.png").write_bytes(b"these are notes, not pixels")
    with open_page(captioner, tmp_path) as browser:
        browser.upload(tmp_path / "notes.png")
        text = browser.wait_for("document.querySelector('#status.error')?.textContent")
        assert text.startswith("400: notes.png: not an image")
