"""An ASGI middleware that caps a request body: a declared ``Content-Length`` over the limit gets a
413 at once, before anything is read; a body that grows past it while streaming (chunked uploads)
stops with :class:`~show_attend.serve.uploads.UploadError` (413) where the app reads it."""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from .uploads import UploadError

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, limit_text: str):
        self.app, self.max_bytes, self.limit_text = app, max_bytes, limit_text

    def _message(self, size: str) -> str:
        return f"the request body is {size}, more than the upload limit of {self.limit_text}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, {"error": self._message(f"{int(declared) / 2**20:.1f} MB")})
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise UploadError(413, self._message(f"over {self.max_bytes / 2**20:.1f} MB"))
            return message

        await self.app(scope, limited_receive, send)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
