"""An allow-list of Host names (against DNS rebinding): a request whose ``Host`` header names anything
else gets 400 before the app sees it.

A web page the user visits can make the browser send requests to ``127.0.0.1`` under a name the
page's owner controls (DNS rebinding); the browser then sends that name as ``Host``. Answering only
the names this server is reached by closes that door: ``localhost``, ``127.0.0.1`` and ``::1`` always,
the address it listens on, and the names given with ``--allow-host`` (``*``: any, no check). A request
without a Host header (HTTP/1.0) cannot come from a browser's rebinding and is served.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Optional

from .limits import ASGIApp, Receive, Scope, Send

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")


def allowed_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """The Host names answered: the local names and ``extra`` (the bound address, --allow-host names)."""
    return frozenset({*LOCAL_NAMES, *(normal_host(n) for n in extra)} - set(WILDCARD_ADDRESSES))


def normal_host(host: str) -> str:
    """``Example.COM.:8000`` -> ``example.com``; ``[::1]:8000`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, maybe with a port
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class HostAllowList:
    def __init__(self, app: ASGIApp, names: frozenset[str], counters: Optional[dict[str, int]] = None):
        self.app, self.names = app, names
        self.counters = {} if counters is None else counters
        self.counters.setdefault("refused_host", 0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "*" not in self.names:
            host = dict(scope.get("headers") or []).get(b"host")
            if host is not None and normal_host(host.decode("latin-1")) not in self.names:
                self.counters["refused_host"] += 1
                await _refuse(send)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send) -> None:
    body: dict[str, Any] = {"error": "this server does not answer to that Host name (it is not on its allow-list: "
                                     "start it with --allow-host NAME to add one)"}
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
