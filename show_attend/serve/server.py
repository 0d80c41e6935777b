"""Running the app: in the foreground (``show-attend serve``) or on a thread (tests, benchmarks);
uvicorn is imported only to run one, so ``is_loopback`` and ``free_port`` need no web server.

    with ServerThread(create_app(captioner)) as server:   # 127.0.0.1, a free port
        post_image(server.host, server.port, png_bytes)
"""
from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any, Optional

DEFAULT_HOST = "127.0.0.1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nobody listens on now (for a server started right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def uvicorn_config(app: Any, host: str, port: int, log_level: str, graceful_s: float) -> Any:
    """uvicorn's settings for ``app``: with the app's connection guard (``create_app`` makes one) as the
    HTTP protocol, and its keep-alive timeout."""
    import uvicorn

    options: dict[str, Any] = {}
    state = getattr(app, "state", None)
    guard, settings = getattr(state, "connections", None), getattr(state, "settings", None)
    if guard is not None:
        from .connections import guarded_protocol

        options["http"] = guarded_protocol(guard)
    if settings is not None:
        options["timeout_keep_alive"] = settings.keep_alive_s
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=graceful_s,
                          **options)


def run_server(app: Any, host: str = DEFAULT_HOST, port: int = 8000, log_level: str = "info") -> None:
    """Serve ``app`` until interrupted (Ctrl-C)."""
    import uvicorn

    uvicorn.Server(uvicorn_config(app, host, port, log_level, 10)).run()


class ServerThread:
    """A uvicorn server on a background thread; ``port=0`` picks a free one (``.port`` tells which)."""

    def __init__(self, app: Any, host: str = DEFAULT_HOST, port: int = 0, log_level: str = "warning"):
        import uvicorn

        self.host = host
        self.server = uvicorn.Server(uvicorn_config(app, host, port, log_level, 5))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        self.port = int(self.server.servers[0].sockets[0].getsockname()[1])
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: Optional[BaseException]) -> None:
        self.stop()
