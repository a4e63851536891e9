"""The sandbox's HTTP layer: one `SandboxService` on one loopback port, with TLS, faults and a request log.

Standard library only: `ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive (the clients pool their
connections), TLS wrapped per connection in the handler thread (a slow handshake does not stall accept),
streamed bodies sent with chunked transfer encoding, and the faults every service shares (slow, truncate,
malformed, reset, status) applied here; the service applies its own kinds in `apply_fault`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from connectors.sandbox.faults import BASE_KINDS, Fault, FaultPlan
from connectors.sandbox.http import SandboxRequest, SandboxResponse, SandboxService
from connectors.sandbox.tls import TLSFiles

log = logging.getLogger(__name__)

STREAM_CHUNK_BYTES = 64 * 1024  # coalesce a streamed body's small pieces into chunks of about this size
MAX_BODY_BYTES = 64 * 1024 * 1024  # a request body larger than this is refused (413)
IDLE_TIMEOUT_SECONDS = 120.0  # an idle keep-alive connection is closed after this


@dataclass(frozen=True)
class LoggedRequest:
    at: float  # time.time() when the answer was sent (or the connection dropped)
    service: str
    method: str
    path: str
    query: str  # the raw query string
    status: int  # 0 when no answer was sent (reset fault, client gone)
    fault: str | None  # the fault applied, in spec form


class RequestLog:
    """The requests served, newest last, for tests to count.  Shared by the servers of one sandbox.

    Only the newest ``limit`` are kept (the default holds every request of any test here many times over)
    so that a long ``kpi-agent sandbox`` session or a million-record benchmark does not grow without bound;
    ``dropped`` says how many older ones were let go."""

    def __init__(self, limit: int = 200_000) -> None:
        if limit < 1:
            raise ValueError(f"RequestLog limit must be at least 1, not {limit}")
        self._lock = threading.Lock()
        self._entries: deque[LoggedRequest] = deque(maxlen=limit)
        self.dropped = 0

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            if len(self._entries) == self._entries.maxlen:
                self.dropped += 1
            self._entries.append(entry)

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def count(self, *, service: str | None = None, path_contains: str | None = None,
              status: int | None = None) -> int:
        return sum(1 for entry in self.entries()
                   if (service is None or entry.service == service)
                   and (path_contains is None or path_contains in entry.path)
                   and (status is None or entry.status == status))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.dropped = 0


class _ConnectionDropped(Exception):
    """The answer was cut off on purpose (reset, truncate) or the client went away."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer, context: ssl.SSLContext | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sandbox = sandbox
        self.tls_context = context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.reset_connections: set[socket.socket] = set()  # to close with RST, not FIN
        super().__init__(address, _Handler)

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        # Runs in the connection's own thread: the TLS handshake happens here, not in the accept loop.
        connection: socket.socket = request
        self._track(connection, add=True)
        try:
            if self.tls_context is not None:
                # wrap_socket detaches `request`: from here on only the TLS socket owns the descriptor.
                connection = self.tls_context.wrap_socket(request, server_side=True)
                self._track(request, add=False)
                self._track(connection, add=True)
            super().finish_request(connection, client_address)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as error:
            log.debug("sandbox %s: connection from %s ended: %s", self.sandbox.service.name, client_address, error)
        finally:
            self._track(connection, add=False)
            if connection is not request:
                self._close(connection)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        self._close(request)

    def _close(self, connection: socket.socket) -> None:
        with self.connections_lock:
            reset = connection in self.reset_connections
            self.reset_connections.discard(connection)
        if not reset:  # a graceful FIN first; a reset closes at once (SO_LINGER 0 turns close into RST)
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        connection.close()

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self.connections_lock:
            if add:
                self.connections.add(connection)
            else:
                self.connections.discard(connection)

    def handle_error(self, request: object, client_address: object) -> None:
        log.debug("sandbox connection error from %s:\n%s", client_address, traceback.format_exc())

    def drop_connections(self) -> None:
        with self.connections_lock:
            open_connections = list(self.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the clients reuse pooled connections
    server: _HTTPServer
    timeout = IDLE_TIMEOUT_SECONDS
    # TCP_NODELAY: an answer goes out as headers, then body chunks, then the last chunk; with Nagle on, the
    # last small write waited for the client's delayed ACK, and every request took 40 ms more than it should
    # (a third of a first load's time was that stall, in the baseline as much as in the sync).
    disable_nagle_algorithm = True
    # Buffered: small writes leave together, and an answer's last bytes leave at the flush after
    # `serve_one` has logged the request, so a client never sees an answer its log entry does not yet hold.
    wbufsize = STREAM_CHUNK_BYTES

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        log.debug("sandbox %s: " + format, self.server.sandbox.service.name, *args)

    def handle_one_request(self) -> None:
        # Dispatch every method (GET, POST, PATCH, DELETE, ...) to one place.
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self.server.sandbox.serve_one(self)
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError(f"request body of {length} bytes is larger than the sandbox's {MAX_BODY_BYTES}")
        return self.rfile.read(length) if length else b""

    def _read_chunked_body(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise ValueError(f"chunked request body is larger than the sandbox's {MAX_BODY_BYTES} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline()


class SandboxServer:
    """One service on one port; serves in a daemon thread between `start()` and `stop()`."""

    def __init__(self, service: SandboxService, *, host: str = "127.0.0.1", port: int = 0,
                 tls: TLSFiles | None = None, faults: FaultPlan | None = None,
                 log: RequestLog | None = None) -> None:
        self.service = service
        self.host = host
        self.tls = tls
        self.faults = faults if faults is not None else FaultPlan()
        self.log = log if log is not None else RequestLog()
        self._httpd = _HTTPServer((host, port), self, self._tls_context(tls))
        self.port: int = self._httpd.server_address[1]
        scheme = "https" if tls is not None else "http"
        shown_host = f"[{host}]" if ":" in host else host
        self.base_url = f"{scheme}://{shown_host}:{self.port}"
        self._thread: threading.Thread | None = None

    @staticmethod
    def _tls_context(tls: TLSFiles | None) -> ssl.SSLContext | None:
        if tls is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(tls.cert), str(tls.key))
        return context

    def start(self) -> SandboxServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"sandbox-{self.service.name}-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.drop_connections()
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    # -- one request ---------------------------------------------------------------------------------

    def serve_one(self, handler: _Handler) -> None:
        target = handler.path
        if "://" in target:  # absolute-form request target (sent through a proxy)
            parts = urlsplit(target)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers: dict[str, str] = {}
        for name, value in handler.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        status = 0
        fault: Fault | None = None
        request = SandboxRequest.build(handler.command, target)
        try:
            try:
                body = handler.read_body()
            except ValueError as error:  # too large or badly framed: answer and hang up
                handler.close_connection = True
                response = SandboxResponse.text(str(error), 413)
            else:
                request = SandboxRequest(handler.command, request.path, request.query, headers, body,
                                         request.query_string)
                fault = self.faults.take(self.service.name, request)
                if fault is not None and fault.kind == "reset":
                    _reset(handler)
                response = self._answer(request, fault)
            status = response.status
            self._send(handler, request, response, fault)
        except _ConnectionDropped:
            handler.close_connection = True
        except (ConnectionError, TimeoutError, ssl.SSLError) as error:
            log.debug("sandbox %s: client went away: %s", self.service.name, error)
            handler.close_connection = True
            status = 0
        except Exception:  # e.g. a streamed body failed half-way: the answer is broken, so hang up
            log.exception("sandbox %s failed sending %s %s", self.service.name, request.method, request.target)
            handler.close_connection = True
        finally:
            self.log.record(LoggedRequest(time.time(), self.service.name, request.method, request.path,
                                          request.query_string, status, str(fault) if fault else None))

    def _answer(self, request: SandboxRequest, fault: Fault | None) -> SandboxResponse:
        if fault is None or fault.kind in ("truncate", "malformed"):
            return self._handle(request)
        if fault.kind == "slow":
            time.sleep(fault.int_param("ms", 1000) / 1000)
            return self._handle(request)
        if fault.kind == "status":
            return self.service.error_response(fault, request)
        answer = self.service.apply_fault(fault, request)
        return answer if answer is not None else self._handle(request)

    def _handle(self, request: SandboxRequest) -> SandboxResponse:
        try:
            return self.service.handle(request)
        except Exception:  # a bug in a service: answer as the vendor answers a 500, and say what failed
            log.exception("sandbox %s failed on %s %s", self.service.name, request.method, request.target)
            return self._internal_error(request)

    def _internal_error(self, request: SandboxRequest) -> SandboxResponse:
        try:
            return self.service.error_response(Fault(self.service.name, "status", params={"code": "500"}),
                                               request)
        except Exception:
            return SandboxResponse.text(f"sandbox {self.service.name} failed:\n{traceback.format_exc()}", 500)

    # -- sending -------------------------------------------------------------------------------------

    def _send(self, handler: _Handler, request: SandboxRequest, response: SandboxResponse,
              fault: Fault | None) -> None:
        if fault is not None and fault.kind == "malformed":
            response = _malformed(response)
        if fault is not None and fault.kind == "truncate":
            self._send_truncated(handler, response)
        elif response.is_streamed and request.method != "HEAD":
            self._send_streamed(handler, response)
        else:
            self._send_whole(handler, request, response)

    def _start(self, handler: _Handler, response: SandboxResponse, framing: dict[str, str]) -> None:
        handler.send_response(response.status)
        sent = {name.lower() for name in framing}
        for name, value in response.headers.items():
            if name.lower() not in sent and name.lower() not in ("content-length", "transfer-encoding"):
                handler.send_header(name, value)
        for name, value in framing.items():
            handler.send_header(name, value)
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()

    def _send_whole(self, handler: _Handler, request: SandboxRequest, response: SandboxResponse) -> None:
        body = response.body_bytes()
        self._start(handler, response, {"Content-Length": str(len(body))})
        if request.method != "HEAD" and response.status not in (204, 304):
            handler.wfile.write(body)

    def _send_streamed(self, handler: _Handler, response: SandboxResponse) -> None:
        self._start(handler, response, {"Transfer-Encoding": "chunked"})
        for chunk in _coalesce(response.body):  # type: ignore[arg-type]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        handler.wfile.write(b"0\r\n\r\n")

    def _send_truncated(self, handler: _Handler, response: SandboxResponse) -> None:
        # Announce the whole length, send half, close: the client sees a short read (IncompleteRead).
        body = response.body_bytes()
        handler.close_connection = True
        self._start(handler, response, {"Content-Length": str(len(body))})
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        raise _ConnectionDropped


def _reset(handler: _Handler) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a dropped connection looks to the client."""
    handler.close_connection = True
    try:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with handler.server.connections_lock:
            handler.server.reset_connections.add(handler.connection)
    except OSError:
        pass  # the socket is gone already: closing it is all that is left
    raise _ConnectionDropped


def _coalesce(pieces: Iterable[bytes]) -> Iterator[bytes]:
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        if len(buffer) >= STREAM_CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _malformed(response: SandboxResponse) -> SandboxResponse:
    """The same answer with a body the client cannot parse, in the body's own content type."""
    content_type = (response.header("Content-Type") or "application/json").lower()
    if "json" in content_type:
        body = b'{"results":[{"id":"1","properties":{"name":"trunc'
    elif "xml" in content_type:
        body = b"<?xml version=\"1.0\"?><soapenv:Envelope><unclosed"
    elif "csv" in content_type:
        body = b'"Id","Name"\n"001","unterminated\n'
    else:
        body = b"\x00\xffnot what was promised"
    return SandboxResponse(response.status, body, dict(response.headers))


__all__ = ["BASE_KINDS", "LoggedRequest", "RequestLog", "SandboxServer"]
