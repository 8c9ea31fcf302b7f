"""The local Prefect server that mossforge manages: started in the background on first use,
reused by every later run, and controlled with `mossforge server start|stop|status`.

Which server a run uses (`select`):

- `PREFECT_API_URL` is set (environment or Prefect profile): that server, exactly as before;
  the managed server is never touched.
- the opt-out (`mossforge run --temporary-server`, or `MOSSFORGE_SERVER=temporary`): Prefect's
  temporary server, started and stopped by the run itself (the old behaviour).
- otherwise: the managed server, started if it is not running.

Where it lives: `$MOSSFORGE_SERVER_DIR`, by default `$PREFECT_HOME/mossforge-server`
(`~/.prefect/mossforge-server`): `state.json` (pid, port, URLs, when it started), `server.log`
(its output) and `lock` (an advisory file lock, held while a server is checked or started, so
two runs starting at once start one server between them). Its database is Prefect's own, under
`PREFECT_HOME`. The port is 4200 when free (`MOSSFORGE_SERVER_PORT` chooses another; 0 means
any free port).

A state file whose process is gone (a crashed or killed server, a rebooted machine) or whose
process is not a Prefect server any more (a reused pid) is stale: the next run starts a new
server and writes a new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC
from pathlib import Path

from mossforge.errors import MossforgeError

DEFAULT_PORT = 4200
START_TIMEOUT_S = 180.0  # a first start creates the database: tens of seconds on a busy machine
OPT_OUT_ENV = "MOSSFORGE_SERVER"  # "temporary": each run starts Prefect's temporary server


class ServerError(MossforgeError, RuntimeError):
    """The managed server could not be started (the message names its log)."""


@dataclass
class ServerInfo:
    pid: int
    port: int
    api_url: str
    ui_url: str
    started_at: str
    log: str

    def run_url(self, flow_run_id) -> str:
        return f"{self.ui_url}/runs/flow-run/{flow_run_id}"


def state_dir() -> Path:
    if explicit := os.environ.get("MOSSFORGE_SERVER_DIR"):
        return Path(explicit).expanduser()
    home = os.environ.get("PREFECT_HOME") or "~/.prefect"
    return Path(home).expanduser() / "mossforge-server"


def _state_file() -> Path:
    return state_dir() / "state.json"


def read_state() -> ServerInfo | None:
    try:
        return ServerInfo(**json.loads(_state_file().read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _write_state(info: ServerInfo) -> None:
    path = _state_file()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    folder = state_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = (folder / "lock").open("a")
    except OSError as error:
        raise ServerError(f"cannot use the managed server's folder {folder}: {error.strerror}; set "
                          "MOSSFORGE_SERVER_DIR to a writable folder, or PREFECT_API_URL to a server "
                          "of your own") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def _is_prefect_server(pid: int) -> bool:
    """Whether `pid` is alive and is a `prefect server start` (not a pid reused by another program)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): trust the pid and the health check
    return b"prefect" in b" ".join(cmdline) and b"server" in cmdline


def healthy(api_url: str, timeout: float = 5.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def status() -> ServerInfo | None:
    """The managed server if it runs and answers; None otherwise."""
    info = read_state()
    if info and _is_prefect_server(info.pid) and healthy(info.api_url):
        return info
    return None


def running_process() -> ServerInfo | None:
    """The managed server when its process is alive, answering or not (no request: cheap to ask
    often); None otherwise."""
    info = read_state()
    return info if info and _is_prefect_server(info.pid) else None


def unresponsive() -> ServerInfo | None:
    """The managed server when its process is alive but does not answer (busy, or stopped with
    SIGSTOP); None otherwise. A run waits START_TIMEOUT_S for it, then replaces it."""
    info = read_state()
    if info and _is_prefect_server(info.pid) and not healthy(info.api_url):
        return info
    return None


ALIVE_WITHIN_S = 200  # a run heard from this recently is alive: longer than Prefect's 180 s default heartbeat


def live_flow_runs(api_url: str) -> list[str]:
    """Names of the flow runs Running on the server at `api_url` that are alive: a heartbeat (or
    their start) in the last ALIVE_WITHIN_S seconds. A run shown Running that nothing has heard
    from for longer (killed where no crash detection watched it) stays Running for ever: it is left out."""
    from datetime import datetime, timedelta

    since = datetime.now(UTC) - timedelta(seconds=ALIVE_WITHIN_S)
    runs = api_request("POST", f"{api_url}/flow_runs/filter", json={
        "flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}, "limit": 50}).raise_for_status().json()
    if not runs:
        return []
    events = api_request("POST", f"{api_url}/events/filter", json={"filter": {
        "occurred": {"since": since.isoformat()}, "event": {"prefix": ["prefect.flow-run.heartbeat"]},
        "resource": {"id": [f"prefect.flow-run.{run['id']}" for run in runs]}}, "limit": 50}
    ).raise_for_status().json()["events"]
    heard = {event["resource"]["prefect.resource.id"].rsplit(".", 1)[-1] for event in events}
    recent = {run["id"] for run in runs if run.get("start_time")
              and datetime.fromisoformat(run["start_time"].replace("Z", "+00:00")) > since}
    return [run["name"] for run in runs if run["id"] in heard | recent]


RETRIED_STATUSES = {429, 502, 503, 504}  # what Prefect's own client retries (a busy SQLite answers 503)


def api_request(method: str, url: str, *, attempts: int = 5, timeout: float = 10, **kwargs):
    """A Prefect server's answer to one REST call (httpx), asked again (0.5, 1, 2, 4 s apart) while it
    answers a status Prefect's own client retries; the last answer otherwise. (The tests' direct
    calls use it too.)"""
    import httpx

    for attempt in range(attempts):
        response = httpx.request(method, url, timeout=timeout, **kwargs)
        if response.status_code not in RETRIED_STATUSES or attempt == attempts - 1:
            return response
        time.sleep(0.5 * 2 ** attempt)
    raise AssertionError("unreachable")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_port() -> int:
    wanted = int(os.environ.get("MOSSFORGE_SERVER_PORT", DEFAULT_PORT))
    if wanted and _port_free(wanted):
        return wanted
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _terminate(pid: int, wait: float = 20.0) -> None:
    """Stop a server we started (its own session, so its whole process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _is_prefect_server(pid):
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
            time.sleep(0.1)


def ensure_running(on_start: Callable[[ServerInfo], None] | None = None,
                   timeout: float = START_TIMEOUT_S) -> ServerInfo:
    """The running managed server, started (and waited for) if there is none.

    `on_start` is called once a new server process exists, before waiting for it to answer (so a
    caller can say "starting…")."""
    info = status()
    if info:
        return info
    with _locked():
        info = read_state()  # another run may have started it while we waited for the lock
        if info and _is_prefect_server(info.pid):
            if healthy(info.api_url) or _wait_healthy(info, None, timeout):
                return info
            _terminate(info.pid)  # alive but not answering: replace it
        return _start(on_start, timeout)


def _wait_healthy(info: ServerInfo, proc: subprocess.Popen | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(info.api_url):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        if proc is None and not _is_prefect_server(info.pid):
            return False
        time.sleep(0.25)
    return False


def _start(on_start, timeout: float) -> ServerInfo:
    folder = state_dir()
    port = _choose_port()
    api, ui = f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}"
    log_path = folder / "server.log"
    env = {**os.environ, "PREFECT_UI_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": os.environ.get("MOSSFORGE_SERVER_LOG_LEVEL", "WARNING")}
    env.pop("PREFECT_API_URL", None)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # outlives this run, and Ctrl-C in the run's terminal
    info = ServerInfo(pid=proc.pid, port=port, api_url=api, ui_url=ui,
                      started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), log=str(log_path))
    _write_state(info)
    if on_start:
        on_start(info)
    if not _wait_healthy(info, proc, timeout):
        _terminate(proc.pid)
        _state_file().unlink(missing_ok=True)
        raise ServerError(f"the managed Prefect server did not answer on {api} within {timeout:.0f} s; "
                          f"its log is {log_path}. Run with --temporary-server (or set "
                          f"{OPT_OUT_ENV}=temporary) to use a temporary server instead")
    _warm(api)
    _install_crash_detection(info)
    return info


def _install_crash_detection(info: ServerInfo) -> None:
    """Runs killed without a word are marked Crashed on this server (flows/crash_detection.py). A
    server that will not take the automation still serves runs: its log says so, and `mossforge
    server status` shows crash detection as off."""
    from mossforge.flows import crash_detection

    try:
        crash_detection.install(info.api_url)
    except Exception as error:  # (the server answers /health; this is a safety net, not the run)
        with open(info.log, "a", encoding="utf-8") as log:
            log.write(f"mossforge: could not install the automation {crash_detection.NAME!r}: "
                      f"{type(error).__name__}: {error}\n")


def install_crash_detection(info: ServerInfo) -> None:
    """`crash_detection.install` under the managed server's lock: two `mossforge server start` at
    once would both find no automation and both create one (errors are the caller's to say)."""
    from mossforge.flows import crash_detection

    with _locked():
        crash_detection.install(info.api_url)


def _warm(api_url: str) -> None:
    """Ask once what every run's client asks first (its API version check): a new server answers
    that first request in about 1.5 s (it finishes loading on demand), later ones in milliseconds.
    Paid here, once per server, not by the run that happens to come first."""
    import httpx

    with contextlib.suppress(httpx.HTTPError):
        httpx.get(f"{api_url}/admin/version", timeout=30.0)


def stop() -> ServerInfo | None:
    """Stop the managed server; the one stopped, or None if none was running."""
    with _locked():
        info = read_state()
        running = info is not None and _is_prefect_server(info.pid)
        if running:
            _terminate(info.pid)
        _state_file().unlink(missing_ok=True)
    return info if running else None


def configured_api_url() -> str | None:
    """PREFECT_API_URL as Prefect sees it (environment, profile or a test harness), or None."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def ui_url_for(api_url: str) -> str | None:
    """The UI that belongs to a server's API: PREFECT_UI_URL when set, else Prefect's own rule (the
    API URL without /api)."""
    if explicit := os.environ.get("PREFECT_UI_URL"):
        return explicit.rstrip("/")
    api_url = api_url.rstrip("/")
    if api_url.endswith("/api"):
        return api_url[:-4]
    from prefect.settings import get_current_settings

    ui = get_current_settings().ui_url
    return ui.rstrip("/") if ui else None


@dataclass
class Selection:
    """The server a run talks to: `kind` is "configured", "managed" or "temporary"."""

    kind: str
    api_url: str | None = None
    ui_url: str | None = None

    def run_url(self, flow_run_id) -> str | None:
        return f"{self.ui_url}/runs/flow-run/{flow_run_id}" if self.ui_url else None

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Prefect pointed at this server for the duration (a change only when managed). Runs
        started inside, on any server, carry the tag that crash detection watches
        (flows/crash_detection.py; served runs get it from the deployment, and every build run
        sends the heartbeat itself)."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from mossforge.flows.crash_detection import watched

        updates = {PREFECT_API_URL: self.api_url} if self.kind == "managed" else {}
        with temporary_settings(updates=updates), watched():
            yield


def without_credentials(url: str | None) -> str:
    """A URL as it may be printed: without the user:password@ it may carry."""
    import re

    return re.sub(r"//[^/@]*@", "//", url or "")


def check_configured(url: str) -> None:
    """A ServerError naming PREFECT_API_URL when nothing answers there, before a run starts (else the
    run would fail seconds later in Prefect's client with a bare connection error). Only a refused or
    timed-out connection counts: what a server answers (Prefect Cloud's codes) is Prefect's to judge."""
    import httpx

    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10)
    except httpx.TransportError as error:
        raise ServerError(f"PREFECT_API_URL={without_credentials(url)} is set, but no Prefect server answers there "
                          f"({type(error).__name__}: {error}); start that server, or unset PREFECT_API_URL "
                          "so that mossforge starts and manages a local one") from None


def select(temporary: bool = False, on_start: Callable[[ServerInfo], None] | None = None) -> Selection:
    """Choose (and if needed start) the server for a run; see the module's docstring."""
    if url := configured_api_url():
        check_configured(url)
        return Selection("configured", url, ui_url_for(url))
    if temporary or os.environ.get(OPT_OUT_ENV, "").lower() in ("temporary", "off", "0"):
        return Selection("temporary")
    info = ensure_running(on_start)
    return Selection("managed", info.api_url, info.ui_url)
