"""A small HTTP client for ``POST /api/caption`` on the standard library (benchmarks and tests; users
can use curl or any HTTP library): one keep-alive connection per client."""
from __future__ import annotations

import http.client
import json
import uuid
from typing import Any, Mapping, Optional


def multipart(data: bytes, filename: str = "image.png", content_type: str = "image/png",
              fields: Optional[Mapping[str, Any]] = None) -> tuple[bytes, str]:
    """A multipart/form-data body with the file as field ``file``; returns (body, Content-Type)."""
    boundary = uuid.uuid4().hex
    parts = []
    for key, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class CaptionClient:
    def __init__(self, host: str, port: int, timeout: float = 120.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: Optional[http.client.HTTPConnection] = None

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Mapping[str, str]] = None) -> tuple[int, Any]:
        """(status, the JSON answer, or the text when it is not JSON); reconnects once if dropped."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=dict(headers or {}))
                response = self.conn.getresponse()
                raw = response.read()
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                break
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode("utf-8", "replace")

    def caption(self, data: bytes, filename: str = "image.png", content_type: str = "image/png",
                **options: Any) -> tuple[int, Any]:
        body, kind = multipart(data, filename, content_type, options)
        return self.request("POST", "/api/caption", body, {"Content-Type": kind})

    def health(self) -> tuple[int, Any]:
        return self.request("GET", "/api/health")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
