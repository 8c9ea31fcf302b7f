"""The warm runner: a process, kept beside the managed Prefect server, that has imported what a
`mossforge run` imports before its first stage (Prefect, the flow, the CLI: about 2 s on two
cores) and forks one child per run handed to it (mossforge/cli/warm_runs.py is the command's side).

Where it lives: the managed server's folder (flows/server.py), `runner.sock` (a Unix socket that
only this user's processes may use: each connection's peer credentials are checked), `runner.json`
(pid, start) and `runner.log` (its own output; a run's output goes to the run's terminal).

When it starts: `mossforge server start`, and after a run on the managed server that found no
runner (the next run is the first to use it). It is started with that command's environment and
serves only commands whose environment is the same (warm_runs.IGNORED_ENV aside): Prefect reads
its settings when it is imported.

When it declines (the command then runs in its own process, as before): another environment, or
code that changed since it started (any imported module's file; it also exits then, and the next
run starts a new one).

When it exits: `mossforge server stop`, SIGTERM, the managed server gone (checked every few
seconds), its socket replaced by a newer runner's, or its code changed; runs it is serving are
finished first (SIGTERM passed on to them when it was itself stopped by a signal).

The child of each run (`_become_the_run`) takes the command's file descriptors as 0, 1 and 2, its
directory, umask, environment and arguments, a process group of its own (the command forwards
terminal signals to it), consoles detected again on the new terminal, and then runs the command
line's `app` exactly as `mossforge` would.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time

from mossforge.cli import warm_runs

CHECK_EVERY_S = 3.0  # how often it looks for the server, its socket and its code while idle


# --- the runner process ------------------------------------------------------------------------


def preload() -> None:
    """What `mossforge run` imports before its first stage (mossforge/cli/build.py's `run`)."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # as a run without --verbose sets it
    import mossforge.cli.main  # noqa: F401  (typer, rich, every command)
    from mossforge import progress, rerun  # noqa: F401
    from mossforge.cli import build
    from mossforge.cli.display import RunDisplay  # noqa: F401
    from mossforge.flows import server  # noqa: F401
    from mossforge.flows.build import run_build  # noqa: F401
    from mossforge.generators import render_pool  # noqa: F401
    from mossforge.preflight import check_run  # noqa: F401
    from mossforge.release.publish import dataset_lock  # noqa: F401

    build.import_flow_engine()


def module_files() -> dict[str, int]:
    """Every imported module's file and its modification time: a changed one makes the runner stale."""
    stamps = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            with contextlib.suppress(OSError):
                stamps[path] = os.stat(path).st_mtime_ns
    return stamps


def changed(stamps: dict[str, int]) -> str | None:
    for path, mtime in stamps.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return path
        except OSError:
            return path
    return None


class Runner:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env  # as started, before the imports' own setdefaults
        self.path = warm_runs.socket_path(env)
        self.stamps = module_files()
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket | None] = {}  # pid -> its command's connection
        self.accepting = True
        self.signalled: int | None = None
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, self._on_signal)
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        tmp = self.path.with_name(f".runner.{os.getpid()}.sock")
        tmp.unlink(missing_ok=True)
        self.listener.bind(str(tmp))
        os.chmod(tmp, 0o600)  # (connections are checked for this user's uid as well)
        self.listener.listen(16)
        os.replace(tmp, self.path)  # ready: a command that connects from now on is served
        self.inode = os.stat(self.path).st_ino
        self.selector.register(self.listener, selectors.EVENT_READ, "listen")

    def _on_signal(self, number, _frame) -> None:
        if number != signal.SIGCHLD:
            self.signalled = number

    def serve(self) -> None:
        last_check = time.monotonic()
        while self.accepting or self.children:
            for key, _ in self.selector.select(timeout=CHECK_EVERY_S):
                if key.data == "listen" and self.accepting:
                    self._accept()
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                elif isinstance(key.data, int):
                    self._command_gone(key.data, key.fileobj)
            self._reap()
            if self.signalled is not None and self.accepting:
                self._close(f"stopped by {signal.Signals(self.signalled).name}")
                for pid in self.children:  # (they were asked to stop as their command was)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGTERM)
            if self.accepting and time.monotonic() - last_check >= CHECK_EVERY_S:
                last_check = time.monotonic()
                if why := self._reason_to_stop():
                    self._close(why)

    def _reason_to_stop(self) -> str | None:
        from mossforge.flows import server

        if server.running_process() is None:
            return "the managed Prefect server is gone"
        try:
            if os.stat(self.path).st_ino != self.inode:
                return "another runner took its socket"
        except OSError:
            return "its socket was removed"
        if path := changed(self.stamps):
            return f"code changed ({path})"
        return None

    def _close(self, why: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} stopping ({why}); {len(self.children)} run(s) still to finish",
              flush=True)
        self.accepting = False
        self.selector.unregister(self.listener)
        self.listener.close()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:
                self.path.unlink()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        fds: list[int] = []
        try:
            conn.settimeout(10)
            peer_pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                      struct.calcsize("3i")))
            if uid != os.getuid():
                raise PermissionError(f"a process of user {uid} connected")
            request, fds = _receive(conn)
            if request is None:  # a probe (`answers`): connected, sent nothing
                raise _Declined
            declined = self._decline(request, fds)
            if declined:
                print(f"{time.strftime('%H:%M:%S')} declined pid {peer_pid}: {declined}", flush=True)
                conn.sendall(json.dumps({"declined": declined}).encode() + b"\n")
                if declined.startswith("code changed"):
                    self._close(declined)
                raise _Declined
            pid = os.fork()
            if pid == 0:
                _become_the_run(request, fds, close=[self.selector, self.listener, conn, self.wake_r, self.wake_w,
                                                     *(c for c in self.children.values() if c)])
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)  # (the child does it too: whichever runs first)
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            conn.settimeout(None)
            self.children[pid] = conn
            self.selector.register(conn, selectors.EVENT_READ, pid)
            print(f"{time.strftime('%H:%M:%S')} pid {pid}: {' '.join(request['argv'][1:])} (from pid {peer_pid})",
                  flush=True)
        except _Declined:
            conn.close()
        except Exception as error:  # one bad connection never stops the runner
            print(f"{time.strftime('%H:%M:%S')} connection dropped: {type(error).__name__}: {error}", flush=True)
            conn.close()
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _decline(self, request: dict, fds: list[int]) -> str | None:
        if request.get("protocol") != warm_runs.PROTOCOL or len(fds) != 3:
            return "another version of mossforge"
        if request.get("python") != sys.executable:
            return f"another Python ({request.get('python')})"
        if key := warm_runs.env_difference(self.env, request.get("env", {})):
            return f"the environment differs ({key})"
        if path := changed(self.stamps):
            return f"code changed ({path})"
        return None

    def _command_gone(self, pid: int, conn: socket.socket) -> None:
        """The command's connection closed before its run ended (the command was killed): the run
        is stopped with SIGTERM, which it handles (`mossforge run` stops its work and says so), so
        that nothing builds on unseen."""
        self.selector.unregister(conn)
        conn.close()
        self.children[pid] = None
        print(f"{time.strftime('%H:%M:%S')} pid {pid}: its command is gone; SIGTERM", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 1 << 8
            if not done:
                continue
            conn = self.children.pop(pid)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            if conn is not None:
                self.selector.unregister(conn)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
                conn.close()


class _Declined(Exception):
    pass


def _receive(conn: socket.socket) -> tuple[dict | None, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    if not data and not fds:
        return None, []
    while len(data) < 4 or len(data) < 4 + struct.unpack("!I", data[:4])[0]:
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the command closed the connection mid-request")
        data += chunk
    (size,) = struct.unpack("!I", data[:4])
    return json.loads(data[4:4 + size]), list(fds)


def _become_the_run(request: dict, fds: list[int], close: list) -> None:
    """In the forked child: become the command's process, run the command line, exit. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for item in close:
            item.close() if hasattr(item, "close") else os.close(item)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setpgid(0, 0)
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        warm_runs.env_at_entry = None  # (the runner is there: nothing to start after this run)
        # As Python sets them up at start: stdout line-buffered on a terminal, block-buffered otherwise
        sys.stdout.reconfigure(line_buffering=sys.stdout.isatty())
        from prefect.logging.configuration import setup_logging

        from mossforge.cli import base
        from mossforge.cli.main import app

        base.attach_consoles()  # colours and width for this terminal, not the runner's log
        setup_logging(incremental=False)  # Prefect's console handler too
        try:
            app(args=sys.argv[1:], prog_name="mossforge")
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            if isinstance(exit_.code, str):
                print(exit_.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        # What the interpreter does on its way out, in its order, then leave without unwinding into
        # the runner's loop: threading's exit hooks and the join of non-daemon threads (Prefect stops
        # its event loop threads from such a hook), then the atexit handlers.
        with contextlib.suppress(BaseException):
            threading._shutdown()
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def main() -> None:
    env = dict(os.environ)  # before any import adds its own defaults
    started = time.monotonic()
    preload()
    if threading.active_count() != 1:  # forking a process with threads can deadlock the child
        print(f"not serving: the imports started threads ({threading.enumerate()})", flush=True)
        return
    gc.collect()
    gc.freeze()  # the children share these pages instead of copying them when the collector touches them
    runner = Runner(env)
    print(f"{time.strftime('%H:%M:%S')} ready in {time.monotonic() - started:.1f} s on {runner.path} (pid "
          f"{os.getpid()}, python {sys.executable})", flush=True)
    runner.serve()
    state = runner.path.with_name("runner.json")
    with contextlib.suppress(OSError, ValueError):
        if json.loads(state.read_text(encoding="utf-8")).get("pid") == os.getpid():
            state.unlink()
    print(f"{time.strftime('%H:%M:%S')} stopped", flush=True)


if __name__ == "__main__":
    main()
