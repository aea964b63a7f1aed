"""A scripted OpenAI-compatible chat server on loopback, started by the judge tests and the
benchmark evaluation tests: the requested model name picks the behaviour (good, refused,
malformed, slow, flaky, unauthorised...); every request is recorded."""
from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator

REF, GEN = b"\x89PNG\r\n\x1a\nreference", b"\x89PNG\r\n\x1a\ngenerated"
GOOD_REPLY = ("Comments:\n- Chart Types: bars match, 20\n- Layout: 10\n- Text Content: 18\n"
              "- Data: 15\n- Style: 12\n- Clarity: 10\n\nScore: 85\n")


def completion(content=None, refusal=None, finish="stop") -> dict:
    return {"choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": content,
                                     "refusal": refusal}}]}


class Scripted(http.server.BaseHTTPRequestHandler):
    """Behaviour chosen by the requested model name; every request is recorded."""

    requests: list[dict] = []
    calls: dict[str, int] = {}

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, code: int, body: bytes, headers: dict | None = None):
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                              "body": body})
        model = body["model"]
        n = self.calls[model] = self.calls.get(model, 0) + 1
        reply = lambda payload: self._send(200, json.dumps(payload).encode())  # noqa: E731
        if model == "good":
            reply(completion(GOOD_REPLY))
        elif model == "markdown":
            reply(completion("Score: **91/100**\n(a later Score: 3 does not count)"))
        elif model == "refuse":
            reply(completion(None, refusal="I can't help with that."))
        elif model == "filtered":
            reply(completion("", finish="content_filter"))
        elif model == "garbage":
            self._send(200, b"<html>proxy error</html>")
        elif model == "no-score":
            reply(completion("The charts look similar. I would rate it highly."))
        elif model == "out-of-range":
            reply(completion("Score: 250"))
        elif model == "slow":
            time.sleep(1.0)
            reply(completion(GOOD_REPLY))
        elif model == "flaky":  # a 503 with Retry-After, then an answer
            if n == 1:
                self._send(503, b"overloaded", {"Retry-After": "0"})
            else:
                reply(completion(GOOD_REPLY))
        elif model == "denied":
            self._send(401, b'{"error": "bad key"}')
        else:
            self._send(404, b"unknown model")


@contextlib.contextmanager
def serve() -> Iterator[str]:
    """The server's API base URL while the block runs; the records start empty."""
    Scripted.requests, Scripted.calls = [], {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
