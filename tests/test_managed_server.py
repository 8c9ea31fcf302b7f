"""The local Prefect server that mossforge manages (flows/server.py), against real
`prefect server start` processes in a temporary state folder and PREFECT_HOME.

Every server these tests start is stopped at the end (the fixture also kills any process a
state file still names), so no server outlives the session.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mossforge.flows import server
from mossforge.flows.server import api_request

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A private state folder and Prefect home; any server left running is stopped afterwards."""
    env = {"MOSSFORGE_SERVER_DIR": str(tmp_path / "server"), "PREFECT_HOME": str(tmp_path / "home"),
           "MOSSFORGE_SERVER_PORT": "0"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("MOSSFORGE_SERVER", raising=False)
    started: list[int] = []
    yield {"env": {**os.environ}, "dir": tmp_path / "server", "started": started}
    info = server.read_state()
    server.stop()
    for pid in started + ([info.pid] if info else []):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _servers_in(folder: Path) -> list[int]:
    """Pids of running `prefect server start` processes whose PREFECT_HOME lies in `folder`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"prefect" in cmdline and b"server\0start" in cmdline and str(folder).encode() in environ:
            pids.append(int(proc.name))
    return pids


def test_two_runs_starting_at_once_start_one_server(state, tmp_path):
    script = "from flows import server; i = server.ensure_running(); print(i.pid, i.port)"
    procs = [subprocess.Popen([sys.executable, "-c", script], env=state["env"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    answers = {out.strip() for out, _ in outs}
    assert len(answers) == 1, f"two servers: {answers}"
    pid, port = map(int, answers.pop().split())
    state["started"].append(pid)
    assert _servers_in(tmp_path) == [pid]
    assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200
    info = server.status()
    assert info is not None and info.pid == pid and info.port == port

    assert server.stop().pid == pid
    assert server.status() is None and server.read_state() is None and not _servers_in(tmp_path)


def test_the_live_run_check_retries_a_busy_server(monkeypatch):
    """`server stop` asks the server which runs are alive; a busy SQLite makes Prefect answer 503
    for a moment, which ended `server stop` with an HTTPStatusError (Prefect's client retries it)."""
    from datetime import UTC, datetime

    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    now = datetime.now(UTC).isoformat()
    answers = {"/flow_runs/filter": [503, 200], "/events/filter": [502, 429, 200]}
    bodies = {"/flow_runs/filter": [{"id": "r1", "name": "busy-run", "start_time": now}],
              "/events/filter": {"events": []}}

    def request(method, url, **kwargs):
        path = url.removeprefix("http://127.0.0.1:1/api")
        status = answers[path].pop(0)
        return httpx.Response(status, json=bodies[path] if status == 200 else {"detail": "busy"},
                              request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "request", request)
    assert server.live_flow_runs("http://127.0.0.1:1/api") == ["busy-run"]
    answers["/flow_runs/filter"] = [500]  # not a status to retry: said at once
    with pytest.raises(httpx.HTTPStatusError):
        server.live_flow_runs("http://127.0.0.1:1/api")


def test_crash_detection_installs_one_at_a_time(state, monkeypatch):
    """Two `mossforge server start` at once both found no automation and both created one: the
    install now holds the server's lock (a stand-in install records overlap; no server needed)."""
    import threading

    from mossforge.flows import crash_detection

    inside, overlapped = [], []

    def slow_install(api_url):
        overlapped.append(bool(inside))
        inside.append(api_url)
        time.sleep(0.3)
        inside.pop()

    monkeypatch.setattr(crash_detection, "install", slow_install)
    info = server.ServerInfo(pid=1, port=1, api_url="http://127.0.0.1:1/api", ui_url="", started_at="", log="")
    threads = [threading.Thread(target=server.install_crash_detection, args=(info,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlapped == [False, False]


def test_a_stale_state_file_is_recovered(state, tmp_path):
    state["dir"].mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    for stale_pid in (dead.pid, os.getpid()):  # a crashed server; a pid reused by another program
        (state["dir"] / "state.json").write_text(json.dumps({
            "pid": stale_pid, "port": 9, "api_url": "http://127.0.0.1:9/api", "ui_url": "http://127.0.0.1:9",
            "started_at": "2026-01-01T00:00:00+0000", "log": "x"}))
        assert server.status() is None
    info = server.ensure_running()
    state["started"].append(info.pid)
    assert info.pid not in (dead.pid, os.getpid()) and info.port != 9
    assert server.read_state() == info and server.status() == info

    os.killpg(info.pid, signal.SIGKILL)  # the server crashes: the state file stays behind
    server._terminate(info.pid, wait=10)
    assert server.status() is None and server.read_state() == info
    again = server.ensure_running()
    state["started"].append(again.pid)
    assert again.pid != info.pid and server.status() == again


@pytest.fixture
def answering_port():
    """A port where an HTTP server answers every GET (a stand-in for someone's own Prefect server:
    `select` only checks that something answers)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"true")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()


def test_prefect_api_url_set_leaves_the_managed_server_alone(state, monkeypatch, answering_port):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # even if a test harness set one
        assert server.select(temporary=True).kind == "temporary"  # the opt-outs
        monkeypatch.setenv("MOSSFORGE_SERVER", "temporary")
        assert server.select().kind == "temporary"
    api = f"http://127.0.0.1:{answering_port}/api"
    monkeypatch.setenv("PREFECT_API_URL", api)  # wins over everything
    for chosen in (server.select(), server.select(temporary=True)):
        assert (chosen.kind, chosen.api_url, chosen.ui_url) == ("configured", api, api.removesuffix("/api"))
    assert chosen.run_url("abc") == f"http://127.0.0.1:{answering_port}/runs/flow-run/abc"
    assert not state["dir"].exists(), "the managed server's folder must not even be created"


def test_prefect_api_url_where_nothing_answers_is_an_error_before_the_run(state, monkeypatch):
    """Not a connection error from deep inside Prefect's client seconds later: the variable, the
    two ways out, no credentials, and the managed server left alone."""
    from typer.testing import CliRunner

    from mossforge.cli.main import app

    monkeypatch.setenv("PREFECT_API_URL", "http://user:s3cret@127.0.0.1:9/api")  # port 9: discard, closed
    with pytest.raises(server.ServerError) as error:
        server.select()
    message = str(error.value)
    assert "PREFECT_API_URL=http://127.0.0.1:9/api is set" in message and "unset PREFECT_API_URL" in message
    assert "s3cret" not in message
    result = CliRunner().invoke(app, ["run", "--per-type", "1", "--outputs", str(state["dir"].parent / "out")])
    assert result.exit_code == 1 and "no Prefect server answers there" in " ".join(result.output.split())
    assert "s3cret" not in result.output
    assert not state["dir"].exists()
    import gc

    assert gc.isenabled(), "run turns garbage collection off while Prefect loads: an error there must turn it on again"


def test_runs_and_serve_use_and_reuse_the_managed_server_and_print_its_link(state, tmp_path):
    config = tmp_path / "small.toml"
    config.write_text('[dataset]\nname = "managed"\n[plan]\nper_type = 2\n[dedup]\nenabled = false\n'
                      '[render]\nsize = 64\n', encoding="utf-8")
    command = [sys.executable, "-m", "mossforge.cli", "run", "--config", str(config), "--outputs", str(tmp_path / "out")]
    env = {**state["env"], "COLUMNS": "200"}
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    info = server.read_state()
    if info:
        state["started"].append(info.pid)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "starting the local Prefect server" in first.stderr
    links = re.findall(r"http://127\.0\.0\.1:(\d+)/runs/flow-run/([0-9a-f-]{36})", first.stderr)
    assert links and int(links[0][0]) == info.port
    run_id = links[0][1]
    flow_run = api_request("GET", f"{info.api_url}/flow_runs/{run_id}", timeout=10).json()
    assert flow_run["state"]["type"] == "COMPLETED" and flow_run["name"].startswith("managed-")

    # The receipt would answer the same run without a flow run (tests/test_rerun.py): without it,
    # the second run goes through the flow, on the same server, every task cached.
    receipts = tmp_path / "out" / ".work" / "receipts"
    assert len(list(receipts.glob("*.json"))) == 1
    shutil.rmtree(receipts)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "starting the local Prefect server" not in second.stderr
    assert server.read_state().pid == info.pid and _servers_in(tmp_path) == [info.pid]
    second_links = re.findall(r"http://127\.0\.0\.1:(\d+)/runs/flow-run/([0-9a-f-]{36})", second.stderr)
    assert int(second_links[0][0]) == info.port and second_links[0][1] != run_id
    assert re.search(r"render\s+│\s+cached", second.stderr), second.stderr[-3000:]
    assert second.stdout.strip() == first.stdout.strip()  # the same version

    third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "already published" in third.stderr and "/runs/flow-run/" not in third.stderr
    assert third.stdout.strip() == first.stdout.strip()

    # `serve` registers its schedule on the same server, and SIGTERM stops it (exit 0, paused)
    err = _serve_then_sigterm(env, config)
    found = api_request("POST", f"{info.api_url}/deployments/filter", timeout=10,
                       json={"deployments": {"name": {"any_": ["managed"]}}}).json()
    assert f"http://127.0.0.1:{info.port}/deployments/deployment/{found[0]['id']}" in err
    assert "stopped serving (SIGTERM): the schedule" in err and "starting the local Prefect server" not in err
    assert found[0]["paused"] is True

    # Started as a script's background job (SIGINT ignored, as shells do): SIGTERM still stops it
    err = _serve_then_sigterm(env, config, sigint_ignored=True)
    assert "stopped serving (SIGTERM): the schedule" in err

    # The server stopped under a serving `serve`: SIGTERM still stops it (Prefect's client retried
    # pausing the schedule for minutes on end), and it says the schedule is not paused
    err = _serve_then_sigterm(env, config, before_sigterm=lambda: server.stop())
    assert "could not be paused" in err


def test_sigterm_stops_a_background_serve_every_time_on_a_busy_machine(state, tmp_path):
    """A shell starts `serve … &` with SIGINT ignored, so asyncio installs no SIGINT handler of its
    own, and serve's SIGTERM handler used to raise KeyboardInterrupt itself: now and then it landed
    in a weakref callback ("Exception ignored in: …"), was swallowed, and serve went on serving (under
    two busy loops it hung within two tries). SIGTERM now cancels the serving task."""
    info = server.ensure_running()
    state["started"].append(info.pid)
    config = tmp_path / "small.toml"
    config.write_text('[dataset]\nname = "busy"\n[plan]\nper_type = 1\n', encoding="utf-8")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        for _ in range(3):
            err = _serve_then_sigterm(state["env"], config, sigint_ignored=True, wait_s=30)
            assert "stopped serving (SIGTERM)" in err
    finally:
        for loop in busy:
            loop.kill()
            loop.wait()


def _serve_then_sigterm(env: dict, config: Path | None, until: str = "Ctrl-C or SIGTERM stops serving",
                        before_sigterm=lambda: None, expect: int = 0, cwd: Path = REPO,
                        sigint_ignored: bool = False, wait_s: float = 90) -> str:
    """Start `mossforge serve`, wait until its stderr says `until`, call `before_sigterm`, send
    SIGTERM; it must exit with `expect`. Returns its stderr, whitespace-normalised. `sigint_ignored`
    starts it the way a shell starts a background job (`mossforge serve … &` in a script)."""
    import threading

    command = [sys.executable, "-m", "mossforge.cli", "serve", "--cron", "0 3 * * *"]
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    proc = subprocess.Popen(command + (["--config", str(config)] if config else []), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            preexec_fn=ignore)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any(until in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, f"serve never said {until!r}: " + "".join(lines)
            time.sleep(0.1)
        before_sigterm()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=wait_s)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = " ".join("".join(lines).split())
    assert proc.returncode == expect, err[-3000:]
    return err


def test_sigterm_while_serve_starts_the_server_stops_it_with_143(state, tmp_path):
    """Before serving began (here: the managed server starting) SIGTERM is an interruption, as for
    `run`: exit 143 and one line, not a silent death by the signal."""
    try:
        err = _serve_then_sigterm(state["env"], None, until="starting the local Prefect server", expect=143,
                                  cwd=tmp_path)
    finally:
        info = server.read_state()
        if info:
            state["started"].append(info.pid)
    assert "stopped by SIGTERM before serving began" in err and "Traceback" not in err


def test_a_run_killed_without_a_word_is_marked_crashed_and_a_live_one_is_not(state, tmp_path):
    """kill -9 (the OOM killer, `docker stop` past its grace) gives Prefect no chance to record the
    end: the run showed "Running" for ever. The managed server's automation marks it Crashed once its
    heartbeats stop; a live run, sending them, is left alone (flows/crash_detection.py)."""
    from openai_server import hang, serve

    from mossforge.flows import crash_detection

    info = server.ensure_running()
    state["started"].append(info.pid)
    found = crash_detection.installed(info.api_url)
    assert found is not None and found.trigger.within.total_seconds() == crash_detection.SILENT_AFTER_S
    assert found.actions[0].state.value == "CRASHED" and found.trigger.posture == "Proactive"
    for command in ("start", "status"):  # start installs it again (a server of an older mossforge): still one
        said = subprocess.run([sys.executable, "-m", "mossforge.cli", "server", command], env=state["env"],
                              capture_output=True, text=True, timeout=120, cwd=REPO)
        assert said.returncode == 0 and said.stdout.strip() == info.ui_url, said.stderr
        assert "crash detection: on (a build run that sends no heartbeat for 120 s is marked Crashed" in said.stderr
    assert len(api_request("POST", f"{info.api_url}/automations/filter", json={}, timeout=10).json()) == 1

    # A shorter window than the default 120 s, so that the test takes one minute, not three; the
    # heartbeat stays what runs send (every 30 s), so a live run must outlast a window unharmed.
    window = 50  # (20 s more than a heartbeat's interval: slack for a loaded machine)
    crash_detection.install(info.api_url, within_s=window)
    watched_only = [spec.model_dump() for spec in crash_detection.installed(info.api_url).trigger.match_related]
    assert {"prefect.resource.id": f"prefect.tag.{crash_detection.TAG}"} in watched_only  # runs on this
    # database from elsewhere (a temporary server, plain workers) send 180 s heartbeats: not watched
    assert len(api_request("POST", f"{info.api_url}/automations/filter", json={}, timeout=10).json()) == 1

    def flow_run(run_id: str) -> dict:
        return api_request("GET", f"{info.api_url}/flow_runs/{run_id}", timeout=10).json()

    def heartbeats(run_id: str) -> list[float]:
        events = api_request("POST", f"{info.api_url}/events/filter", timeout=10, json={"filter": {
            "event": {"prefix": ["prefect.flow-run.heartbeat"]},
            "resource": {"id": [f"prefect.flow-run.{run_id}"]}}}).json()["events"]
        return sorted(_epoch(e["occurred"]) for e in events)

    def wait_for(check, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while not (result := check()):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.5)
        return result

    config = tmp_path / "hanging.toml"
    with serve(script=lambda request: hang(600)) as model:  # the target check waits: the run stays alive
        config.write_text(f'[dataset]\nname = "zombie"\n[plan]\nper_type = 2\n[dedup]\nenabled = false\n'
                          f'[render]\nsize = 64\n[run]\nout_dir = "{tmp_path / "out"}"\n'
                          f'[endpoints.slow]\nbase_url = "{model.base_url}"\nmodel = "m"\ntimeout_s = 600\n'
                          'max_retries = 0\n[[targets]]\nname = "slow"\nendpoint = "slow"\n', encoding="utf-8")
        proc = subprocess.Popen([sys.executable, "-m", "mossforge.cli", "run", "--skip-preflight", "--config",
                                 str(config)], env=state["env"], cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            running = wait_for(lambda: api_request("POST", f"{info.api_url}/flow_runs/filter", timeout=10, json={
                "flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}).json(), 300, "a running build")
            run_id = running[0]["id"]
            assert crash_detection.TAG in running[0]["tags"]
            first = wait_for(lambda: heartbeats(run_id), 30, "the run's first heartbeat")[0]
            # Alive past a whole window after its first heartbeat (plus the server's 5 s evaluation step)
            time.sleep(max(0.0, first + window + 10 - time.time()))
            beats = heartbeats(run_id)
            assert flow_run(run_id)["state"]["type"] == "RUNNING", "a live run was marked crashed"
            assert len(beats) >= 2 and 25 <= beats[1] - beats[0] <= 40, beats  # every 30 s, not Prefect's 180
            # `server stop` under a live run is refused (it broke the run, which then blamed the network)
            refused = subprocess.run([sys.executable, "-m", "mossforge.cli", "server", "stop"], env=state["env"],
                                     capture_output=True, text=True, timeout=120, cwd=REPO)
            assert refused.returncode == 2 and "1 run(s) are running on the local server" in refused.stderr
            assert server.status() is not None
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
            killed = time.time()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
    crashed = wait_for(lambda: (run := flow_run(run_id))["state"]["type"] == "CRASHED" and run, 2 * window + 30,
                       "the killed run to be marked Crashed")
    last_beat = heartbeats(run_id)[-1]
    assert last_beat < killed and _epoch(crashed["state"]["timestamp"]) - last_beat >= window
    assert f"no heartbeat from this run for {window} s" in crashed["state"]["message"]
    assert not any((tmp_path / "out" / "zombie").glob("[!.]*")), "a killed run published something"

    # A server alive but not answering (SIGSTOP) is not "not running": status says which
    os.kill(info.pid, signal.SIGSTOP)
    try:
        said = subprocess.run([sys.executable, "-m", "mossforge.cli", "server", "status"], env=state["env"],
                              capture_output=True, text=True, timeout=120, cwd=REPO)
    finally:
        os.kill(info.pid, signal.SIGCONT)
    assert said.returncode == 3 and f"not answering: pid {info.pid} is alive" in " ".join(said.stderr.split())


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_a_served_schedule_puts_its_runs_on_the_server(state, tmp_path):
    """`serve --cron` registers a schedule; the server's scheduler must turn it into scheduled runs.
    With SQLAlchemy 2.1 under Prefect 3.8.8 it failed every minute in the server's log ("Can't
    evaluate bulk DML statement") and no scheduled run was ever created, while `serve` looked fine."""
    from mossforge.flows import crash_detection

    info = server.ensure_running()
    state["started"].append(info.pid)
    config = tmp_path / "sched.toml"
    config.write_text('[dataset]\nname = "sched"\n[plan]\nper_type = 2\n', encoding="utf-8")
    command = [sys.executable, "-m", "mossforge.cli", "serve", "--cron", "0 3 * * *", "--config", str(config)]
    proc = subprocess.Popen(command, env=state["env"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, scheduled = time.monotonic() + 90, []
        while not scheduled and time.monotonic() < deadline:
            time.sleep(2)
            found = api_request("POST", f"{info.api_url}/deployments/filter", timeout=10,
                               json={"deployments": {"name": {"any_": ["sched"]}}}).json()
            if found:
                scheduled = api_request("POST", f"{info.api_url}/flow_runs/filter", timeout=10, json={
                    "deployments": {"id": {"any_": [found[0]["id"]]}},
                    "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}).json()
        log = Path(info.log).read_text(encoding="utf-8", errors="replace")
        assert scheduled, "no scheduled run after 90 s; the server log says: " + log[-2000:]
        assert crash_detection.TAG in found[0]["tags"]  # served runs are watched by crash detection
        assert all(run["expected_start_time"].split("T")[1].startswith("03:00") for run in scheduled)
        assert "Can't evaluate bulk DML" not in log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
