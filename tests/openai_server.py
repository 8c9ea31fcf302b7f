"""A small, scriptable OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It speaks just enough of the API for `mossforge.client`: POST /v1/chat/completions and
POST /v1/images/generations. What each request gets back is decided by a *script*: a list of
replies consumed in order (then the default answer), or a function `(request) -> Reply`.

    with serve(script=[rate_limited(0.2), ok("hi")]) as server:
        client = ModelClient([EndpointConfig(name="local", base_url=server.base_url, model="m")])
        ...
        assert len(server.requests) == 2

Every request received is recorded (path, headers, JSON body), and the server tracks the largest
number of requests it was answering at once, so tests can check a concurrency bound.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

ReplyKind = Literal["ok", "status", "hang", "malformed", "drop"]


@dataclass
class Reply:
    """One scripted answer. Build them with the helpers below rather than by hand."""

    kind: ReplyKind = "ok"
    content: str | None = None  # None: echo the last user text
    refusal: str | None = None
    finish_reason: str = "stop"
    status: int = 200
    body: Any = None  # JSON body for kind="status"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # extra seconds before answering (on top of the server's latency)
    image: bytes | None = None  # for /images/generations: the image file to answer with


def ok(content: str | None = None, *, refusal: str | None = None,
       finish_reason: str = "stop", delay: float = 0.0) -> Reply:
    return Reply("ok", content=content, refusal=refusal, finish_reason=finish_reason, delay=delay)


def ok_image(image: bytes, *, delay: float = 0.0) -> Reply:
    """An image-generation answer carrying `image` (default: a solid-colour PNG of the size)."""
    return Reply("ok", image=image, delay=delay)


def error(status: int, message: str = "error", *, code: str | None = None,
          type_: str = "invalid_request_error", headers: dict[str, str] | None = None) -> Reply:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Reply("status", status=status, body=body, headers=dict(headers or {}))


def rate_limited(retry_after: float | None = 0.0) -> Reply:
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return error(429, "Rate limit reached", code="rate_limit_exceeded", type_="requests",
                 headers=headers)


def server_error(status: int = 500) -> Reply:
    return error(status, "The server had an error while processing your request.",
                 type_="server_error")


def content_policy(message: str = "Your request was rejected as a result of our safety system.") -> Reply:
    return error(400, message, code="content_policy_violation")


def hang(seconds: float = 30.0) -> Reply:
    """Accept the request and say nothing for `seconds` (longer than the client's timeout)."""
    return Reply("hang", delay=seconds)


def malformed() -> Reply:
    """A 200 whose body is not JSON."""
    return Reply("malformed")


def drop() -> Reply:
    """Close the connection without answering."""
    return Reply("drop")


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float


Script = list[Reply] | Callable[[Request], Reply | None] | None


def png_bytes(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (40, 160, 90)) -> bytes:
    """A real, solid-colour PNG built with the standard library (no Pillow needed)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


class OpenAIServer:
    """The running server. Use `start_server()` / `serve()` rather than constructing it."""

    def __init__(self, script: Script = None, latency: float = 0.0, port: int = 0) -> None:
        self.latency = latency
        self.models: list[str] = []  # what GET /models lists (empty: a server that lists none)
        self.requests: list[Request] = []
        self.max_active = 0
        self._active = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._script: Script = None
        self.set_script(script)
        self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)  # 0: any free port
        self._httpd.app = self
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"openai-server-{self.port}", daemon=True)
        self._thread.start()

    # -- scripting ---------------------------------------------------------------------------
    def set_script(self, script: Script) -> None:
        """Replace the script: a list of replies (consumed in order) or a function."""
        with self._lock:
            self._script = list(script) if isinstance(script, list) else script

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_active = 0

    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            script = self._script
            if isinstance(script, list):
                return script.pop(0) if script else Reply()
        reply = script(request) if script is not None else None
        return reply or Reply()

    def count(self, path_suffix: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.endswith(path_suffix))

    # -- lifecycle ---------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping.set()  # releases hung handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # the default backlog of 5 stalls bursts of concurrent connects
    app: OpenAIServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real server
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle's algorithm meets delayed ACKs and every answer waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        app = self.server.app
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
        reply = app._next_reply(request)
        with app._lock:
            app._active += 1
            app.max_active = max(app.max_active, app._active)
        try:
            self._answer(app, request, reply)
        finally:
            with app._lock:
                app._active -= 1

    def do_GET(self) -> None:  # noqa: N802  GET /v1/models (the preflight of image endpoints)
        app = self.server.app
        request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, None, time.time())
        reply = app._next_reply(request)
        if reply.kind == "status":
            return self._send(reply.status, json.dumps(reply.body).encode(), reply.headers)
        models = [{"id": m, "object": "model"} for m in app.models]
        return self._send(200, json.dumps({"object": "list", "data": models}).encode(), {})

    def _answer(self, app: OpenAIServer, request: Request, reply: Reply) -> None:
        wait = app.latency + reply.delay if reply.kind == "ok" else reply.delay
        if wait > 0 and app._stopping.wait(wait):
            return
        if reply.kind in ("hang", "drop"):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.kind == "malformed":
            return self._send(200, b'{"id": "chatcmpl-broken", "choices": [', {})
        if reply.kind == "status":
            return self._send(reply.status, json.dumps(reply.body).encode(), reply.headers)
        if request.path.rstrip("/").endswith("/images/generations"):
            return self._send(200, json.dumps(self._image_body(request.body or {}, reply)).encode(), {})
        return self._send(200, json.dumps(self._chat_body(request.body or {}, reply)).encode(), {})

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(payload)

    @staticmethod
    def _chat_body(body: dict, reply: Reply) -> dict:
        prompt = _last_user_text(body.get("messages", []))
        content = reply.content if reply.content is not None else f"echo: {prompt}"
        if reply.refusal is not None and reply.content is None:
            content = None
        prompt_tokens = max(1, len(json.dumps(body.get("messages", []))) // 4)
        completion_tokens = len((content or reply.refusal or "").split())
        return {
            "id": f"chatcmpl-{int(time.time() * 1e6)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "unknown"),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": reply.refusal},
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    @staticmethod
    def _image_body(body: dict, reply: Reply) -> dict:
        width, _, height = str(body.get("size") or "8x8").partition("x")
        data = reply.image if reply.image is not None else png_bytes(int(width or 8), int(height or 8))
        image = base64.b64encode(data).decode()
        n = int(body.get("n") or 1)
        return {"created": int(time.time()),
                "data": [{"b64_json": image, "revised_prompt": body.get("prompt")} for _ in range(n)]}


def start_server(script: Script = None, latency: float = 0.0, port: int = 0) -> OpenAIServer:
    """Start a server in a background thread; call `.stop()` when done (or use `serve`)."""
    return OpenAIServer(script=script, latency=latency, port=port)


@contextlib.contextmanager
def serve(script: Script = None, latency: float = 0.0, port: int = 0) -> Iterator[OpenAIServer]:
    server = start_server(script, latency, port)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def in_child_process(serve_fn: Callable[..., None], *args: Any) -> Iterator[tuple[str, Any]]:
    """Run `serve_fn(*args, ready, count)` in a spawned process, as a real server runs beside the
    client with a GIL of its own (benchmarks use this, so the server's work is not counted as the
    client's). `serve_fn` puts its base URL on `ready` and bumps `count` per request; this yields
    (base_url, count)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready, count = context.Queue(), context.Value("i", 0)
    process = context.Process(target=serve_fn, args=(*args, ready, count), daemon=True)
    process.start()
    try:
        yield ready.get(timeout=60), count
    finally:
        process.terminate()
        process.join()
