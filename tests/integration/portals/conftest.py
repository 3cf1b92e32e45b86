"""A metadata server on 127.0.0.1 whose answers a test sets (document, status, delay)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Answer:
    body: bytes = b""
    status: int = 200
    delay: float = 0.0


@dataclass
class MetadataServer:
    """Serves ``answers[path]``; ``hits`` counts requests per path."""

    port: int
    answers: dict[str, Answer] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/saml/metadata") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, body: bytes | str, path: str = "/saml/metadata", status: int = 200,
              delay: float = 0.0) -> str:
        self.answers[path] = Answer(body.encode() if isinstance(body, str) else body, status,
                                    delay)
        return self.url(path)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def metadata_server() -> Iterator[MetadataServer]:
    state = MetadataServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            answer = state.answers.get(self.path, Answer(b"not found", 404))
            time.sleep(answer.delay)
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (timeout tests)
                self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.server, state.port = server, server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                              daemon=True)
    thread.start()
    yield state
    state.stop()
