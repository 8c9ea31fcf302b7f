"""`mossforge run` handed to the warm runner (mossforge/cli/warm_runs.py, mossforge/cli/warm_runner.py),
through the installed `mossforge` command, against a real managed Prefect server in a temporary
state folder: what the user sees (output, exit codes, a terminal, Ctrl-C) is what the same run in
its own process shows, and what the runner must not serve runs in the command's own process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mossforge.cli import warm_runs

REPO = Path(__file__).resolve().parents[1]
MOSSFORGE = Path(sys.executable).parent / "mossforge"  # the installed command (its entry point hands off)
SMALL = '[dataset]\nname = "warm"\n[plan]\nper_type = 2\n[dedup]\nenabled = false\n[render]\nsize = 64\n'


# --- which command lines the runner may serve (no server needed) ---------------------------------

@pytest.mark.parametrize("argv, env, served", [
    (["mossforge", "run"], {}, True),
    (["mossforge", "run", "-c", "configs/v.toml", "-n", "5"], {}, True),
    (["mossforge", "versions"], {}, False),
    (["mossforge", "--debug", "run"], {}, False),  # (global options first: conservative)
    (["mossforge", "run", "--verbose"], {}, False),  # Prefect's log level is set when it is imported
    (["mossforge", "run", "-vn", "5"], {}, False),
    (["mossforge", "run", "--temporary-server"], {}, False),
    (["mossforge", "run"], {"PREFECT_API_URL": "http://x/api"}, False),
    (["mossforge", "run"], {"MOSSFORGE_SERVER": "temporary"}, False),
    (["mossforge", "run"], {"MOSSFORGE_WARM_RUNS": "0"}, False),
])
def test_which_command_lines_are_handed_off(argv, env, served):
    assert warm_runs.eligible(argv, env) is served


def test_an_environment_difference_is_named_not_shown():
    ours = {"HOME": "/root", "OPENAI_API_KEY": "sk-one", "PWD": "/a"}
    assert warm_runs.env_difference(ours, {**ours, "PWD": "/b"}) is None
    assert warm_runs.env_difference(ours, {**ours, "OPENAI_API_KEY": "sk-two"}) == "OPENAI_API_KEY"
    assert warm_runs.env_difference(ours, {"HOME": "/root", "PWD": "/a"}) == "OPENAI_API_KEY"


def test_no_runner_means_the_command_runs_itself(tmp_path):
    env = {"MOSSFORGE_SERVER_DIR": str(tmp_path)}
    assert warm_runs.hand_off(["mossforge", "run"], env) is None  # (no socket)
    (tmp_path / "runner.sock").write_text("")  # a leftover file, nothing listening
    assert warm_runs.hand_off(["mossforge", "run"], env) is None


# --- against a real runner ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A managed server and its warm runner, started by `mossforge server start` (as a user would)."""
    root = tmp_path_factory.mktemp("warm")
    env = {**os.environ, "MOSSFORGE_SERVER_DIR": str(root / "server"), "PREFECT_HOME": str(root / "home"),
           "MOSSFORGE_SERVER_PORT": "0", "COLUMNS": "200", "TERM": "xterm-256color"}
    for key in ("PREFECT_API_URL", "MOSSFORGE_SERVER", "MOSSFORGE_WARM_RUNS", "NO_COLOR", "FORCE_COLOR"):
        env.pop(key, None)
    config = root / "small.toml"
    config.write_text(SMALL, encoding="utf-8")
    started = subprocess.run([str(MOSSFORGE), "server", "start"], env=env, capture_output=True, text=True,
                             timeout=300, cwd=REPO)
    assert started.returncode == 0, started.stderr
    assert "serves `mossforge run`" in started.stderr, started.stderr  # (ready: `server start` waits for it)
    yield {"env": env, "root": root, "config": config, "log": root / "server" / "runner.log"}
    subprocess.run([str(MOSSFORGE), "server", "stop", "--force"], env=env, capture_output=True, timeout=120)
    state = warm_runs.read_state(env)
    if state:
        os.kill(state["pid"], signal.SIGKILL)


def _run(served, *args, env=None, **kwargs):
    return subprocess.run([str(MOSSFORGE), "run", *args], env=env or served["env"], capture_output=True,
                          text=True, timeout=600, cwd=REPO, **kwargs)


def _served_lines(served) -> list[str]:
    return re.findall(r"pid \d+: (run .*) \(from pid", served["log"].read_text(encoding="utf-8"))


@pytest.mark.slow
def test_a_handed_off_run_prints_what_its_own_process_prints(served):
    out = served["root"] / "out-a"
    warm = _run(served, "--config", str(served["config"]), "--outputs", str(out))
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert f"run --config {served['config']} --outputs {out}" in _served_lines(served)
    own = _run(served, "--config", str(served["config"]), "--outputs", str(served["root"] / "out-b"),
               env={**served["env"], "MOSSFORGE_WARM_RUNS": "0"})
    assert own.returncode == 0, own.stderr[-3000:]
    assert not any("out-b" in line for line in _served_lines(served))
    # the same version (content-addressed), and the same report on stderr
    assert Path(warm.stdout.strip()).name == Path(own.stdout.strip()).name
    for said in (warm.stderr, own.stderr):
        assert "published 6 items" in said, said[-2000:]
        assert re.search(r"Prefect UI, this run: http://127\.0\.0\.1:\d+/runs/flow-run/", said)
    assert "\x1b[" not in warm.stderr  # a pipe stays a pipe: no colours


@pytest.mark.slow
def test_errors_and_exit_codes_come_back_as_they_are(served, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[plan]\nper_tpye = 3\n", encoding="utf-8")
    warm = _run(served, "--config", str(bad))
    own = _run(served, "--config", str(bad), env={**served["env"], "MOSSFORGE_WARM_RUNS": "0"})
    assert any(str(bad) in line for line in _served_lines(served))
    assert warm.returncode == own.returncode == 2
    assert warm.stderr == own.stderr and "per_tpye" in warm.stderr


@pytest.mark.slow
def test_a_terminal_stays_a_terminal(served):
    """On a terminal the child's output is what the command's own process shows there, colours
    and all (byte for byte)."""
    warm = _on_a_terminal(["run", "--help"], served["env"])
    assert "run --help" in _served_lines(served)
    own = _on_a_terminal(["run", "--help"], {**served["env"], "MOSSFORGE_WARM_RUNS": "0"})
    assert _served_lines(served).count("run --help") == 1
    assert b"\x1b[" in warm and b"--per-type" in re.sub(rb"\x1b\[[0-9;]*m", b"", warm), warm[-2000:]
    assert warm == own


def _on_a_terminal(args: list[str], env: dict) -> bytes:
    """What `mossforge ARGS` writes to a new pseudo-terminal (its stdin, stdout and stderr)."""
    import pty
    import select

    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(MOSSFORGE), *args], env=env, cwd=REPO, stdin=follower, stdout=follower,
                            stderr=follower)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([leader], [], [], 0.5)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every process holding the terminal has closed it
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(timeout=10) == 0
    return seen


def _started_run(served, args, env=None, new_session=False) -> tuple[subprocess.Popen, int, Path]:
    """A run started in the background; its child's pid, read from the runner's log."""
    err = served["root"] / f"stderr-{time.monotonic_ns()}.txt"
    before = len(_served_lines(served))
    with err.open("w") as handle:
        proc = subprocess.Popen([str(MOSSFORGE), "run", *args], env=env or served["env"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=handle, start_new_session=new_session)
    deadline = time.monotonic() + 60
    while len(_served_lines(served)) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(re.findall(r"pid (\d+): run ", served["log"].read_text(encoding="utf-8"))[-1])
    while "Prefect UI, this run" not in err.read_text(encoding="utf-8") and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.1)  # the flow has started
    time.sleep(2)  # (inside dedup or render: the whole build takes 10 s or more)
    assert proc.poll() is None, err.read_text(encoding="utf-8")[-2000:]
    return proc, child, err


def _gone(pgid: int, within: float = 60) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_ctrl_c_reaches_the_run_and_its_workers(served):
    proc, child, err = _started_run(served, ["--per-type", "150", "--outputs", str(served["root"] / "out-int")])
    proc.send_signal(signal.SIGINT)  # what a terminal sends to its foreground process: the command
    assert proc.wait(timeout=120) == 130
    said = err.read_text(encoding="utf-8")
    assert "interrupted" in said and "Traceback" not in said, said[-2000:]
    assert _gone(child), "the run's process group (the run, its render workers) outlived Ctrl-C"


@pytest.mark.slow
def test_ctrl_z_stops_the_run_with_the_command_and_fg_continues_both(served):
    """Also from an orphaned process group (its own session here, as under CI), where the kernel
    drops a SIGTSTP that nothing handles."""
    proc, child, err = _started_run(served, ["--per-type", "150", "--outputs", str(served["root"] / "out-stop")],
                                    new_session=True)
    proc.send_signal(signal.SIGTSTP)  # Ctrl-Z
    assert _state_becomes(proc.pid, "T") and _state_becomes(child, "T"), "Ctrl-Z left the run running"
    time.sleep(1)
    assert _state(child) == "T"
    proc.send_signal(signal.SIGCONT)  # fg
    assert proc.wait(timeout=300) == 0, err.read_text(encoding="utf-8")[-2000:]
    assert "published 450 items" in err.read_text(encoding="utf-8")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _state_becomes(pid: int, wanted: str, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while _state(pid) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return _state(pid) == wanted


@pytest.mark.slow
def test_a_killed_command_stops_its_run(served):
    proc, child, _ = _started_run(served, ["--per-type", "150", "--outputs", str(served["root"] / "out-kill")])
    proc.kill()  # kill -9: no word from the command
    proc.wait(timeout=10)
    assert _gone(child), "a run whose command was killed went on building"
    assert f"pid {child}: its command is gone" in served["log"].read_text(encoding="utf-8")


@pytest.mark.slow
def test_another_environment_or_changed_code_runs_in_its_own_process(served):
    args = ["--config", str(served["config"]), "--outputs", str(served["root"] / "out-env")]
    other = _run(served, *args, env={**served["env"], "SOME_SETTING": "1"})
    assert other.returncode == 0, other.stderr[-3000:]
    assert not any("out-env" in line for line in _served_lines(served))

    runner = warm_runs.read_state(served["env"])
    source = REPO / "mossforge" / "cli" / "display.py"  # imported by the runner
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    args = ["--config", str(served["config"]), "--outputs", str(served["root"] / "out-edited")]  # (not from a receipt)
    try:
        edited = _run(served, *args)
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert edited.returncode == 0, edited.stderr[-3000:]
    assert "code changed" in served["log"].read_text(encoding="utf-8")
    assert _gone_pid(runner["pid"]), "a stale runner stayed"
    # that run, in its own process on the managed server, started a new runner for the next one
    deadline = time.monotonic() + 60
    while not warm_runs.answers(served["env"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    again = _run(served, *args)
    assert again.returncode == 0 and "already published" in again.stderr
    assert _served_lines(served)[-1].endswith("out-edited")


def _gone_pid(pid: int, within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not warm_runs._is_runner(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_a_crashed_runner_is_replaced(served):
    """kill -9 leaves its socket and state file behind: the next run runs in its own process and
    starts a new runner, which serves the run after it."""
    runner = warm_runs.read_state(served["env"])
    os.kill(runner["pid"], signal.SIGKILL)
    assert _gone_pid(runner["pid"]) and (served["root"] / "server" / "runner.sock").exists()
    args = ["--config", str(served["config"]), "--outputs", str(served["root"] / "out-crashed")]
    alone = _run(served, *args)
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert not any("out-crashed" in line for line in _served_lines(served))
    deadline = time.monotonic() + 60
    while not warm_runs.answers(served["env"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert warm_runs.read_state(served["env"])["pid"] != runner["pid"]
    again = _run(served, *args)
    assert again.returncode == 0 and _served_lines(served)[-1].endswith("out-crashed")


@pytest.mark.slow
def test_the_runner_leaves_with_the_server(served):
    """Last in this file: it stops the module's server."""
    runner = warm_runs.read_state(served["env"])
    stopped = subprocess.run([str(MOSSFORGE), "server", "stop"], env=served["env"], capture_output=True,
                             text=True, timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert _gone_pid(runner["pid"]) and not (served["root"] / "server" / "runner.sock").exists()
