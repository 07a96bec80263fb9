"""A real HTTP server on 127.0.0.1 for the paid-API tests (test_openai, test_gemini): no network, no money.

`FakeApi` records every POST it gets (the photo it carries, when, which attempt for that photo, how many requests
were in flight at once) and answers with what a test scripts, else with an image. A subclass says how its API
spells a request (`parse`) and its answer (`answer`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeApi:
    """`script(request) -> answer | None` decides the answers other than an image; `hold` keeps each request that
    many seconds before its answer (to see concurrency, or to time the client out)."""

    id_prefix = "req"  # the answers' ids: req_0000, req_0001, ...
    url_path = ""
    protocol_version = "HTTP/1.0"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.photos: list[str] = []  # distinct input photos (sha256 of the uploaded image), in the order first seen
        self.issued_ids: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hold = 0.0
        self.script = lambda request: None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = self.protocol_version

            def do_POST(self) -> None:
                server.handle(self)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}{self.url_path}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def parse(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[bytes | None, dict]:
        """(the photo's bytes, the request's other fields as the tests read them)."""
        raise NotImplementedError

    def answer(self, request: dict, answer_id: str, scripted: tuple | None) -> tuple[int, dict, dict]:
        """(status, headers, JSON body): the scripted answer in this API's shape, or an image."""
        raise NotImplementedError

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        start = time.monotonic()
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            photo_bytes, fields = self.parse(handler, handler.rfile.read(int(handler.headers["Content-Length"])))
            photo = hashlib.sha256(photo_bytes).hexdigest() if photo_bytes is not None else None
            with self.lock:
                if photo not in self.photos:
                    self.photos.append(photo)
                request = fields | {
                    "path": handler.path,
                    "photo": photo,
                    "photo_index": self.photos.index(photo),
                    "attempt": sum(r["photo"] == photo for r in self.requests),
                    "start": start,
                }
                self.requests.append(request)
            time.sleep(self.hold)
            scripted = self.script(request)
            with self.lock:
                answer_id = f"{self.id_prefix}_{len(self.issued_ids):04d}"
                self.issued_ids.append(answer_id)
            request["status"] = self.send(handler, *self.answer(request, answer_id, scripted))
            request["end"] = time.monotonic()
        finally:
            with self.lock:
                self.in_flight -= 1

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, headers: dict, payload: dict) -> int | None:
        """The answer's status, or None where the client had timed out and left."""
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name.replace("_", "-"), str(value))
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return None
        return status

    def attempts(self, photo_index: int) -> list[dict]:
        return [r for r in self.requests if r["photo_index"] == photo_index]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
