"""HTTP transport: one thread per connection, keep-alive, answers written in one piece.

The handler reads a whole request, hands it to the :class:`~.server.Emulator` (amoCRM
requests) or its control API (``/_emulator/…``), and writes what comes back: a response,
or a closed connection (FIN for ``drop``, RST for ``reset``).

A request is taken in ("sent", from which its arrival is modelled) when the kernel received
the first bytes of its request line (``SO_TIMESTAMPNS``), not when this process's thread got
round to reading them: on a busy 2-core machine the emulator's threads wake tens of
milliseconds late, and a gateway counting that lag as network time sees windows the client
never made (issue 16). Where the kernel gives no stamp, the moment the line is read.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from .server import Emulator

JSON = "application/json"
# Linux: a receive timestamp (struct timespec, CLOCK_REALTIME) with each message read
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")


def kernel_received_at(sock: socket.socket) -> Optional[float]:
    """When the kernel received the next unread bytes of ``sock``, on ``time.monotonic``'s clock;
    blocks until there are some. None at end of stream or when the kernel gives no stamp.

    Peeks only: the request is then read as usual. The connection must carry no unread
    buffered request (HTTP/1.1 clients without pipelining: the next request is written
    after the previous answer was read)."""
    try:
        data, ancillary, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(_TIMESPEC.size), socket.MSG_PEEK)
    except (OSError, NotImplementedError):   # NotImplementedError: a TLS socket
        return None
    if not data:
        return None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
            # realtime -> monotonic; never later than now
            return min(seconds + nanoseconds / 1e9 - wall_ahead_of_monotonic(), time.monotonic())
    return None


def wall_ahead_of_monotonic(tries: int = 5) -> float:
    """``time.time() - time.monotonic()``, from the tightest of a few pairs of reads.

    A thread descheduled between its two reads would shift the stamps it converts by as long
    as it waited: a request stamped that much earlier than it came, and a window of eight
    arrivals the client never made (a possible cause of the one 429 a full-scale proof run
    drew on a busy machine, tests/proof/RESULTS.md, stop 29)."""
    best_gap, offset = float("inf"), 0.0
    for _ in range(tries):
        before = time.monotonic()
        wall = time.time()
        after = time.monotonic()
        if after - before < best_gap:
            best_gap, offset = after - before, wall - (before + after) / 2
        if best_gap < 0.0002:
            break
    return offset


class EmulatorServer(ThreadingHTTPServer):
    # One thread per connection, none joined on shutdown: a client's idle keep-alive
    # connection or a request still sleeping through its delays must not hold up stop().
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256  # listen backlog: many clients connecting at once
    emulator: Emulator


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stalls on small answers
    server_version = "nginx"
    sys_version = ""
    server: EmulatorServer
    _stamp: Optional[float] = None

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self._kernel_stamps = True
        except OSError:
            self._kernel_stamps = False

    def handle_one_request(self) -> None:
        # wait here, not in the request line's readline, so the moment the bytes came is known
        self._stamp = kernel_received_at(self.connection) if self._kernel_stamps else None
        super().handle_one_request()

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def parse_request(self) -> bool:
        # The request line has just been read; it reached this host when the kernel stamped
        # its first bytes: the moment a gateway such as amoCRM's nginx takes the request in.
        # This thread may have got the CPU tens of milliseconds later (see the module
        # docstring); without a kernel stamp, now is the best bound.
        now = time.monotonic()
        self.received_at = now if self._stamp is None else min(self._stamp, now)
        self._stamp = None
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request stderr
        return

    def _handle(self, method: str) -> None:
        emulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        if split.path.startswith("/_emulator/"):
            status, body = emulator.control(method, split.path, query, raw)
            self._send(status, body, JSON, secrets.token_hex(8))
            return
        outcome, request_id = emulator.handle(method, split.path, query, raw, self.headers,
                                              received_at=self.received_at)
        if outcome.close:
            self._close(reset=outcome.close == "reset")
            return
        self._send(outcome.status, outcome.body, outcome.content_type, request_id)

    def _send(self, status: int, body: Any, content_type: str, request_id: str) -> None:
        if status == 204 or body is None:
            payload = b""
        elif isinstance(body, str):
            payload = body.encode("utf-8")
        else:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        reason = self.responses.get(status, ("Error",))[0]
        head = [
            f"{self.protocol_version} {status} {reason}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            f"X-Request-Id: {request_id}",
        ]
        if status != 204:
            head += [f"Content-Type: {content_type}", f"Content-Length: {len(payload)}"]
        # Status line, headers and body leave in one write (one segment for small answers).
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

    def _close(self, reset: bool) -> None:
        self.close_connection = True
        if reset:  # SO_LINGER 0: close() sends RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
