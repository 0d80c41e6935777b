"""An ASGI middleware that caps a request body: a declared ``Content-Length`` over the limit gets a
413 without the app seeing the request; a body that grows past it while streaming (chunked uploads)
stops with :class:`~show_attend.serve.uploads.UploadError` (413) where the app reads it; a body that
has not arrived within ``timeout_s`` of the request (a Content-Length longer than what is sent, a
chunked body never ended, a client trickling bytes) stops with 408 where the app reads it, and the
app closes that connection.

A client that sends its whole body before reading the answer (Python's http.client, many scripts)
would see a reset connection instead of the 413 if the server closed early, so the rest of the
body is read and dropped first, up to ``drain_factor`` times the limit; a client that asked
``Expect: 100-continue`` (curl, for large bodies) gets the 413 before it sends anything."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable, Optional

from .uploads import UploadError

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, limit_text: str, drain_factor: float = 4.0,
                 timeout_s: float = 30.0, counters: Optional[dict[str, int]] = None):
        self.app, self.max_bytes, self.limit_text = app, max_bytes, limit_text
        self.drain_bytes, self.timeout_s = int(drain_factor * max_bytes), timeout_s
        self.counters = {} if counters is None else counters  # body_timeouts: bodies that did not arrive in time
        self.counters.setdefault("body_timeouts", 0)

    def _message(self, size: str) -> str:
        return f"the request body is {size}, more than the upload limit of {self.limit_text}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout_s

        async def timed_receive() -> Message:
            try:
                return await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                self.counters["body_timeouts"] += 1
                raise UploadError(408, f"the request body did not arrive within {self.timeout_s:g} s") from None

        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            if headers.get(b"expect", b"").lower() != b"100-continue" and int(declared) <= self.drain_bytes:
                try:
                    await _drain(timed_receive, self.drain_bytes)
                except UploadError:
                    pass  # the 413 goes out anyway, and the connection closes
            await _send_json(send, 413, {"error": self._message(f"{int(declared) / 2**20:.1f} MB")})
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await timed_receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    if message.get("more_body", False):
                        try:
                            await _drain(timed_receive, self.drain_bytes - seen)
                        except UploadError:
                            pass
                    raise UploadError(413, self._message(f"over {self.max_bytes / 2**20:.1f} MB"))
            return message

        await self.app(scope, limited_receive, send)


async def _drain(receive: Receive, budget: int) -> bool:
    """Read and drop the rest of a body, up to ``budget`` bytes; True if it ended within them."""
    while budget >= 0:
        message = await receive()
        if message["type"] != "http.request":
            return False
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
