"""A real HTTP server on 127.0.0.1 with scripted answers, for testing fetch code.

Patching `requests` would test our assumptions about it; a loopback server tests the real
client stack (sockets, timeouts, chunked encoding, resets) while staying offline.

Usage::

    with LoopbackServer() as server:
        server.route("/data.csv", Reply(body=b"a,b\\n1,2\\n"))
        server.route("/flaky", Reply(status=503), Reply(body=b"ok"))  # then "ok" forever
        download(server.url("/data.csv"), ...)
        assert server.requests_to("/flaky")[0].headers["user-agent"]

Each route holds a queue of replies consumed one per request; the last one repeats. A
reply may also be a callable taking the `Recorded` request and returning a `Reply`, e.g.
to answer 304 only when the right `If-None-Match` arrives. Unknown paths get a 404.

In a test module, wrap it in a fixture::

    @pytest.fixture
    def server():
        with serve() as running:
            yield running
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    """One scripted answer, including ways of misbehaving."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Announce this Content-Length instead of len(body) (e.g. larger, for a truncated body).
    content_length: int | None = None
    # Send the body with Transfer-Encoding: chunked (no Content-Length).
    chunked: bool = False
    chunk_size: int = 16 * 1024
    # Wait this long before the status line (a stalled server: read timeouts).
    delay_s: float = 0.0
    # Send only this many body bytes, then reset the connection (TCP RST).
    reset_after: int | None = None


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # keys lower-cased
    query: str = ""  # routes match on the path alone


Script = Reply | Callable[[Recorded], Reply]


class LoopbackServer:
    """ThreadingHTTPServer on 127.0.0.1, an ephemeral port, in a daemon thread."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Script]] = {}
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting
    def route(self, path: str, *replies: Script) -> None:
        """Script the answers for `path` (replacing any previous script)."""
        if not replies:
            raise ValueError("route() needs at least one reply")
        with self._lock:
            self._routes[path] = list(replies)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _next(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            queue = self._routes.get(recorded.path)
            if not queue:
                return Reply(status=404, body=b"not found")
            script = queue.pop(0) if len(queue) > 1 else queue[0]
        return script(recorded) if callable(script) else script

    # -- lifecycle
    def start(self) -> LoopbackServer:
        handler = _handler_for(self)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            headers = {k.lower(): v for k, v in self.headers.items()}
            path, _, query = self.path.partition("?")
            recorded = Recorded(self.command, path, headers, query)
            reply = server._next(recorded)
            if reply.delay_s and server._stopping.wait(reply.delay_s):
                return
            self.close_connection = True
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                length = len(reply.body) if reply.content_length is None else reply.content_length
                self.send_header("Content-Length", str(length))
            self.send_header("Connection", "close")
            self.end_headers()
            body = reply.body
            if reply.reset_after is not None:
                self.wfile.write(body[: reply.reset_after])
                self.wfile.flush()
                server._stopping.wait(0.05)  # let the client read the headers first
                # SO_LINGER with a zero timeout turns close() into a TCP reset.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                return
            if reply.chunked:
                for start in range(0, len(body), reply.chunk_size):
                    piece = body[start : start + reply.chunk_size]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(body)

    return Handler


@contextmanager
def serve() -> Iterator[LoopbackServer]:
    """Context manager form: `with serve() as server: ...`."""
    server = LoopbackServer().start()
    try:
        yield server
    finally:
        server.stop()


def closed_port() -> int:
    """A local port nothing listens on (bound then released), for connection-refused tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
