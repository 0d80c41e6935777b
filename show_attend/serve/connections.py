"""Bounded connections: a cap on open connections, a deadline for request headers, counters, and one
log line per burst instead of a traceback per connection.

    guard = ConnectionGuard(max_connections=1000, header_timeout_s=10)
    protocol = guarded_protocol(guard)      # uvicorn.Config(app, http=protocol, ...)

A connection is *waiting* from the moment it is accepted, and again after each response, until its
next request's headers are complete; it must finish them within ``header_timeout_s`` or it is
closed (an idle socket, or a client trickling a header byte at a time). At ``max_connections``
(never more than the file-descriptor limit allows) a new connection closes the oldest waiting one
and takes its place; when every connection is busy with a request, the new one is answered 503 and
closed at once. So idle sockets cannot hold the server's file descriptors, a client that sends its
request promptly is served, and nothing ever reaches the accept() failures that log a traceback
each. Body deadlines are the app's (:class:`~show_attend.serve.limits.BodyLimit`).

Everything here runs on the event loop's thread.
"""
from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
from typing import Any, Optional

log = logging.getLogger(__name__)
FD_RESERVE = 128  # descriptors kept for the model, its files, the decode threads and logging

BUSY_BODY = b'{"error": "too many connections: try again in a moment"}'
BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
                 b"retry-after: 1\r\ncontent-length: %d\r\n\r\n%s" % (len(BUSY_BODY), BUSY_BODY))


def connection_cap(requested: int) -> int:
    """``requested``, lowered to what this process's file-descriptor limit allows."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return max(1, min(requested, soft - FD_RESERVE)) if soft != resource.RLIM_INFINITY else requested


class ConnectionGuard:
    def __init__(self, max_connections: int, header_timeout_s: float, log_every_s: float = 1.0):
        self.max_connections = connection_cap(max_connections)
        self.header_timeout_s, self.log_every_s = header_timeout_s, log_every_s
        self.open: set[Any] = set()
        self.waiting: "OrderedDict[Any, asyncio.TimerHandle]" = OrderedDict()  # oldest first
        self.counters = {"accepted": 0, "refused": 0, "closed_idle_at_cap": 0, "header_timeouts": 0}
        self._burst: dict[str, int] = {}
        self._flush: Optional[asyncio.TimerHandle] = None

    # -------------------------------------------------------------------- the protocol's events
    def admit(self, conn: Any) -> bool:
        """A new connection: True to serve it (it starts waiting for its headers), False to refuse it."""
        if len(self.open) >= self.max_connections:
            if not self.waiting:
                self._note("refused")
                return False
            oldest = next(iter(self.waiting))
            self._close(oldest)
            self._note("closed_idle_at_cap")
        self.open.add(conn)
        self.counters["accepted"] += 1
        self.wait(conn)
        return True

    def wait(self, conn: Any) -> None:
        """``conn`` waits for a request's headers (new, or after a response)."""
        if conn not in self.open:
            return
        self._unwait(conn)
        loop = asyncio.get_running_loop()
        self.waiting[conn] = loop.call_later(self.header_timeout_s, self._timed_out, conn)

    def busy(self, conn: Any) -> None:
        """``conn``'s request headers are complete: it is not waiting any more."""
        self._unwait(conn)

    def gone(self, conn: Any) -> None:
        self._unwait(conn)
        self.open.discard(conn)

    # -------------------------------------------------------------------- inside
    def _unwait(self, conn: Any) -> None:
        timer = self.waiting.pop(conn, None)
        if timer is not None:
            timer.cancel()

    def _timed_out(self, conn: Any) -> None:
        if conn in self.waiting:
            self._close(conn)
            self._note("header_timeouts")

    def _close(self, conn: Any) -> None:
        self._unwait(conn)
        self.open.discard(conn)
        conn.transport.close()

    def _note(self, event: str) -> None:
        """Count ``event``; log the burst's counts once, ``log_every_s`` after its first event."""
        self.counters[event] += 1
        self._burst[event] = self._burst.get(event, 0) + 1
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.log_every_s, self._log_burst)

    def _log_burst(self) -> None:
        counts = ", ".join(f"{n:,} {event.replace('_', ' ')}" for event, n in self._burst.items())
        log.warning("connections: %s in %g s (%d open, cap %d)", counts, self.log_every_s, len(self.open),
                    self.max_connections)
        self._burst, self._flush = {}, None

    def stats(self) -> dict[str, int]:
        return {"open": len(self.open), "waiting_for_headers": len(self.waiting),
                "max_connections": self.max_connections,
                **self.counters}


def guarded_protocol(guard: ConnectionGuard) -> type:
    """uvicorn's h11 protocol, reporting to ``guard`` (a class per guard: uvicorn instantiates it)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if not guard.admit(self):
                transport.write(BUSY_RESPONSE)
                transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._report()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._report()

        def connection_lost(self, exc: Optional[Exception]) -> None:
            guard.gone(self)
            super().connection_lost(exc)

        def _report(self) -> None:
            if self.transport.is_closing():
                guard.gone(self)
            elif self.cycle is not None and not self.cycle.response_complete:
                guard.busy(self)
            elif self not in guard.waiting:
                guard.wait(self)

    return GuardedH11Protocol
