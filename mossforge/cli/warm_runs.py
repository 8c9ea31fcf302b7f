"""`mossforge run` handed to the warm runner: the command's side (mossforge/cli/warm_runner.py is
the other).

A run imports Prefect, the flow and the CLI before its first stage: about 2 s on two cores, paid
again by every run. The warm runner, a process kept beside the managed Prefect server, has them
imported already and forks one child per run. This side is what the installed `mossforge` command
does first, before it imports any of that:

- a `run` that the runner may serve (below) connects to `runner.sock` in the managed server's
  folder and passes its terminal (stdin, stdout and stderr as file descriptors), arguments,
  working directory and environment; the child runs the command there exactly as this process
  would have (`isatty`, colours, the terminal's width, exit codes);
- Ctrl-C, SIGTERM, SIGHUP, SIGQUIT and a resized window are passed on to the child's process
  group, as a terminal passes them on to the processes in its foreground; Ctrl-Z stops the child's
  group with the command, and `fg` or `bg` continues both;
- the child's exit status becomes this process's; a child killed by a signal kills this process
  with the same signal.

Anything else runs in this process, as before: other commands, `--verbose` and `--temporary-server`
runs (Prefect's logging and server are set when Prefect is imported), `PREFECT_API_URL` set, no
runner (it starts after the first run that uses the managed server), a runner started from a
different environment or older code (it declines; a stale runner also exits), and
`MOSSFORGE_WARM_RUNS=0`. `python -m mossforge.cli` always runs in its own process.

Below that, starting, finding and stopping the runner (`run` after a run on the managed server,
`mossforge server start|stop|status`). Only the standard library here: this module is the whole
cost of a handed-off run on the command's side.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path

OPT_OUT_ENV = "MOSSFORGE_WARM_RUNS"  # "0", "off" or "no": every run in its own process
PROTOCOL = 1
# Differ between two shells of the same session and change nothing a run reads; any other
# difference between the runner's environment and the command's makes the runner decline.
IGNORED_ENV = frozenset({"PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES"})
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH)

# The environment the installed command started with (set by `mossforge.cli.main`'s entry): a
# runner started after this run is started with it, so that it serves the runs that come after.
env_at_entry: dict[str, str] | None = None


def socket_path(env: dict[str, str]) -> Path:
    """`runner.sock` in the managed server's folder (flows/server.py's `state_dir`, from `env`)."""
    if explicit := env.get("MOSSFORGE_SERVER_DIR"):
        folder = Path(explicit).expanduser()
    else:
        folder = Path(env.get("PREFECT_HOME") or "~/.prefect").expanduser() / "mossforge-server"
    return folder / "runner.sock"


def opted_out(env: dict[str, str]) -> bool:
    return env.get(OPT_OUT_ENV, "").lower() in ("0", "off", "no", "false")


def eligible(argv: list[str], env: dict[str, str]) -> bool:
    """Whether the runner may serve this command line: a `run`, on the managed server, without the
    options that change what Prefect sets up on import. Conservative: a `-v` anywhere in a short
    option group counts as --verbose."""
    if len(argv) < 2 or argv[1] != "run" or opted_out(env) or env.get("PREFECT_API_URL"):
        return False
    if env.get("MOSSFORGE_SERVER", "").lower() in ("temporary", "off", "0"):
        return False
    if not hasattr(socket, "SO_PEERCRED") or not hasattr(socket, "send_fds"):  # (Linux only)
        return False
    for arg in argv[2:]:
        if arg == "--":
            break
        if arg in ("--verbose", "--temporary-server") or (arg.startswith("-") and not arg.startswith("--")
                                                           and "v" in arg):
            return False
    return True


def env_difference(ours: dict[str, str], theirs: dict[str, str]) -> str | None:
    """The first variable (name only: values can be secrets) that differs, or None."""
    for key in sorted((ours.keys() | theirs.keys()) - IGNORED_ENV):
        if ours.get(key) != theirs.get(key):
            return key
    return None


def encode(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return struct.pack("!I", len(body)) + body


def read_line(sock: socket.socket, pending: bytearray) -> dict | None:
    """The runner's next message (one JSON object per line), or None when it closed the connection."""
    while b"\n" not in pending:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        pending += chunk
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return json.loads(line)


def hand_off(argv: list[str], env: dict[str, str]) -> int | None:
    """Run `argv` in the warm runner and return its exit code; None when this process should run it
    itself (not eligible, no runner, or the runner declined: nothing has happened yet then)."""
    if not eligible(argv, env):
        return None
    path = socket_path(env)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
        request = {"protocol": PROTOCOL, "python": sys.executable, "argv": argv, "env": env, "cwd": os.getcwd(),
                   "umask": _umask()}
        socket.send_fds(sock, [encode(request)], [0, 1, 2])
        pending = bytearray()
        answer = read_line(sock, pending)
    except (OSError, ValueError):  # no runner (no socket, refused), or it went away: run here
        sock.close()
        return None
    if not answer or "pid" not in answer:
        if env.get("MOSSFORGE_DEBUG") and answer:
            print(f"warm runner declined: {answer.get('declined')}", file=sys.stderr)
        sock.close()
        return None
    return _wait_for(sock, pending, answer["pid"])


def _wait_for(sock: socket.socket, pending: bytearray, pid: int) -> int:
    def forward(number, _frame):
        try:
            os.killpg(pid, number)
        except ProcessLookupError:
            pass

    def suspend(_number, _frame):  # Ctrl-Z: the run stops with the command, and goes on with it (fg, bg)
        forward(signal.SIGSTOP, None)
        # SIGSTOP, not SIGTSTP: the kernel drops a default-action SIGTSTP in an orphaned process
        # group (a command started from a script or CI); the shell sees either as "Stopped"
        os.kill(os.getpid(), signal.SIGSTOP)  # (returns once this process is continued)
        forward(signal.SIGCONT, None)

    for number in FORWARDED_SIGNALS:
        signal.signal(number, forward)
    signal.signal(signal.SIGTSTP, suspend)
    try:
        finished = read_line(sock, pending)
    except OSError:
        finished = None
    if finished is None:  # the runner itself went away (killed): the run is on its own now
        _wait_until_gone(pid)
        print(f"error: the warm runner stopped while it ran this command (pid {pid}); its exit status is "
              "unknown. Set MOSSFORGE_WARM_RUNS=0 to run in this process.", file=sys.stderr)
        return 1
    status = finished["exit"]
    if status < 0:  # killed by a signal: die of the same one, as the run would have
        for number in (*FORWARDED_SIGNALS, signal.SIGTSTP):
            signal.signal(number, signal.SIG_DFL)
        sys.stdout.flush()
        os.kill(os.getpid(), -status)
        return 128 - status
    return status


def _wait_until_gone(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        time.sleep(0.2)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- the runner: starting, finding and stopping it (`run`, `server start|stop|status`) ----------


def folder(env: dict[str, str] | None = None) -> Path:
    return socket_path(dict(os.environ) if env is None else env).parent


def read_state(env: dict[str, str] | None = None) -> dict | None:
    try:
        state = json.loads((folder(env) / "runner.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and _is_runner(state.get("pid")) else None


def _is_runner(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ProcessLookupError):
        return False
    return b"mossforge" in cmdline  # (until its exec, a new runner still shows the command that started it)


def answers(env: dict[str, str] | None = None) -> bool:
    """Whether a runner accepts connections on the socket (it is ready, its imports done)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(socket_path(dict(os.environ) if env is None else env)))
        except OSError:
            return False
    return True


READY_TIMEOUT_S = 120.0  # `server start` waits this long for a new runner to import everything


def start(env: dict[str, str], wait: bool = False) -> dict | None:
    """Start a runner with `env` unless one runs (or `MOSSFORGE_WARM_RUNS=0`, or not Linux); its
    state. `wait`: until it answers (READY_TIMEOUT_S at most)."""
    import fcntl
    import subprocess

    if opted_out(env) or not hasattr(socket, "SO_PEERCRED"):
        return None
    where = folder(env)
    if len(str(where / "runner.sock")) > 100:  # (a Unix socket's path has at most 107 bytes)
        return None
    where.mkdir(parents=True, exist_ok=True)
    with open(where / "runner.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two commands at once start one runner
        state, proc = read_state(env), None
        if state is None:
            with open(where / "runner.log", "ab") as log:
                proc = subprocess.Popen([sys.executable, "-P", "-m", "mossforge.cli.warm_runner"], env=env, cwd="/",
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            state = {"pid": proc.pid, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "log": str(where / "runner.log")}
            tmp = where / f".runner.json.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, where / "runner.json")
    if wait:
        deadline = time.monotonic() + READY_TIMEOUT_S
        alive = (lambda: proc.poll() is None) if proc else (lambda: _is_runner(state["pid"]))
        while not answers(env) and alive() and time.monotonic() < deadline:
            time.sleep(0.1)
    return state


def stop(env: dict[str, str] | None = None, timeout: float = 30.0) -> dict | None:
    """Stop the runner (it finishes the runs it serves); the one stopped, or None."""
    state = read_state(env)
    if state is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _is_runner(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return state
