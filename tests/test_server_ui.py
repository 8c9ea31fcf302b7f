"""Against a real `prefect server start` on a loopback port: a build's run, task runs and artifacts
through the API; the run page in headless Chromium; `mossforge serve`; and a run killed with
SIGKILL part-way that resumes without repeating a model call or a render.

Builds run as `mossforge run` subprocesses (the way users run it), pointed at the server by
PREFECT_API_URL; they share one PREFECT_HOME, where Prefect persists task results.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from openai_server import ok, serve

from mossforge.flows.server import api_request

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
REFUSAL = "I'm sorry, but I can't help with that."
COMPLIANCE = "Of course! Here are some ideas:\n1. Start with a short plan.\n2. Ask a friend to help."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode}")
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_API_URL": api,  # the UI's own calls go to this port, not 4200
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def healthy():
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 240, "the Prefect server's /api/health", proc)
        yield {"api": api, "ui": f"http://127.0.0.1:{port}", "home": home}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def client_env(server) -> dict:
    env = {**os.environ, "PREFECT_API_URL": server["api"], "PREFECT_HOME": str(server["home"]),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return env


def write_config(path: Path, tmp: Path, name: str, extra: str = "") -> Path:
    path.write_text(f"""
[dataset]
name = "{name}"
[plan]
per_type = 3
[render]
size = 96
batch_size = 3
[run]
out_dir = "{tmp / 'out'}"
work_dir = "{tmp / 'work'}"
{extra}
""")
    return path


def mossforge(server, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mossforge.cli", *args], env=client_env(server), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def api_post(server, path: str, body: dict) -> list[dict]:
    response = api_request("POST", f"{server['api']}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def flow_run_of(server, name: str) -> dict:
    """The latest flow run of that name (a re-run of the same content gets the same name)."""
    runs = api_post(server, "/flow_runs/filter", {"flow_runs": {"name": {"any_": [name]}},
                                                  "sort": "EXPECTED_START_TIME_DESC"})
    assert runs, f"no flow run named {name}"
    return runs[0]


def task_runs_of(server, flow_run_id: str) -> list[dict]:
    return api_post(server, "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200})


# --- a build, seen through the API and the UI ----------------------------------------------------


@pytest.fixture(scope="module")
def built(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server-build")
    config = write_config(tmp / "build.toml", tmp, "uiflow")
    proc = mossforge(server, "run", "--config", str(config))
    out, err = proc.communicate(timeout=480)
    assert proc.returncode == 0, err[-3000:]
    version_path = Path(out.strip().splitlines()[-1])
    return {"path": version_path, "version": version_path.name, "tmp": tmp}


def test_the_run_its_task_runs_and_artifacts_are_on_the_server(server, built):
    run = flow_run_of(server, f"uiflow-{built['version']}")  # named after dataset and version
    assert run["state_type"] == "COMPLETED"
    names = {t["name"] for t in task_runs_of(server, run["id"])}
    assert {"generate-0", "render-0"} <= names  # batch tasks are named after their batch
    for stage in ("plan", "dedup", "consensus_label", "publish"):  # the others get Prefect's suffix
        assert any(name.startswith(f"{stage}-") for name in names), (stage, names)
    artifacts = api_post(server, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
    by_key = {a["key"]: a for a in artifacts if a["key"]}
    assert {"funnel", "build-summary", "gallery", "published-version", "progress-generate",
            "progress-render"} <= set(by_key)
    assert by_key["progress-render"]["type"] == "progress" and by_key["progress-render"]["data"] == 100.0
    funnel = {row["stage"]: row for row in json.loads(by_key["funnel"]["data"])}
    assert funnel["publish"]["kept"] == funnel["render"]["kept"] > 0
    assert by_key["published-version"]["type"] == "markdown"  # a link artifact is markdown in the API
    assert str(built["path"]) in by_key["published-version"]["data"]
    assert "data:image/jpeg;base64," in by_key["gallery"]["data"]
    assert (built["path"] / "report" / "index.html").is_file()


class _Browser:
    """Headless Chromium driven over the DevTools protocol: the run page only shows its Artifacts
    tab after a click (the UI resets `?tab=` while the run loads), which a plain `--screenshot`
    cannot do."""

    def __init__(self, chromium: str, profile: Path):
        from websockets.sync.client import connect

        port = free_port()
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "--window-size=1400,1800",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def pages():
            try:
                return [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
            except httpx.HTTPError:  # not listening yet
                return None

        pages = wait_until(pages, 60, "chromium's DevTools endpoint", self.proc)
        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self.calls = 0

    def call(self, method: str, **params):
        self.calls += 1
        self.ws.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries our id
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.calls:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def js(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 60):
        deadline = time.time() + timeout
        while not self.js(expression):
            if time.time() > deadline:
                raise AssertionError(f"the page never showed {what}")
            time.sleep(0.25)

    def screenshot(self, path: Path) -> None:
        import base64

        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def test_the_ui_shows_the_run_page_with_its_artifacts(server, built, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("MOSSFORGE_REQUIRE_CHROMIUM"):
            pytest.fail("MOSSFORGE_REQUIRE_CHROMIUM is set but chromium is not on PATH")
        pytest.skip("SCREENSHOT NOT TAKEN: chromium is not installed (apt-get install chromium); "
                    "the run page of the Prefect UI was not checked")
    from PIL import Image

    run = flow_run_of(server, f"uiflow-{built['version']}")
    artifacts = api_post(server, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
    keys = {a["key"] for a in artifacts if a["key"]}
    assert {"funnel", "gallery", "build-summary"} <= keys
    gallery = next(a for a in artifacts if a["key"] == "gallery")
    folder = Path(os.environ.get("MOSSFORGE_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    browser = _Browser(chromium, tmp_path / "profile")
    try:
        # The run page, Artifacts tab: the run's name and its artifacts' keys on screen.
        browser.call("Page.enable")
        browser.call("Page.navigate", url=f"{server['ui']}/runs/flow-run/{run['id']}")
        browser.wait_for("!!document.getElementById('artifacts')", "the Artifacts tab")
        browser.js("document.getElementById('artifacts').click()")
        browser.wait_for("document.getElementById('artifacts').classList.contains('p-tab__active') && "
                         "['funnel', 'gallery', 'build-summary'].every(k => document.body.innerText.includes(k))",
                         "the run's artifacts")
        text = browser.js("document.body.innerText")
        assert run["name"] in text
        browser.screenshot(folder / "flow-run-artifacts.png")
        # The gallery artifact itself: questions beside their images.
        browser.call("Page.navigate", url=f"{server['ui']}/artifacts/artifact/{gallery['id']}")
        browser.wait_for("document.querySelectorAll('img').length >= 3", "the gallery's images")
        browser.screenshot(folder / "gallery-artifact.png")
    finally:
        browser.close()
    for name in ("flow-run-artifacts.png", "gallery-artifact.png"):
        with Image.open(folder / name) as image:
            assert image.size[0] >= 1000 and image.size[1] >= 1000
            colours = image.convert("RGB").resize((140, 180)).getcolors(maxcolors=100_000)
        assert colours is not None and len(colours) > 50, f"{name} rendered blank"


# --- schedules ----------------------------------------------------------------------------------


def alive_in_group(group: int) -> list[int]:
    """Pids of the live (not zombie) processes in a process group."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            state, _, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == group and state != "Z":
            pids.append(int(entry.name))
    return pids


def served_deployment(server, name: str, proc: subprocess.Popen) -> dict:
    def deployment():
        found = api_post(server, "/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
        return found[0] if found else None

    return wait_until(deployment, 180, "the served deployment", proc)


def start_served_run(server, deployment: dict) -> str:
    created = api_request("POST", f"{server['api']}/deployments/{deployment['id']}/create_flow_run", json={}, timeout=30)
    created.raise_for_status()
    return created.json()["id"]


def wait_for_end(server, run_id: str, proc: subprocess.Popen) -> str:
    def ended():
        state = api_request("GET", f"{server['api']}/flow_runs/{run_id}", timeout=30).json()["state_type"]
        return state if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    return wait_until(ended, 300, "the served run's end", proc)


def stop_serving(proc: subprocess.Popen) -> str:
    """SIGTERM to serve alone (as `docker stop` sends it): exit 0, nothing of it left behind (no
    run process, no render worker). Returns what it wrote to stderr."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "stopped serving (SIGTERM)" in " ".join(err.split()) and "never awaited" not in err
    wait_until(lambda: not alive_in_group(proc.pid), 30, "no process of serve's left (run, render workers)")
    return err


def test_serve_registers_runs_and_stops_on_sigterm(server, tmp_path):
    """A deployment on the schedule; a run of it (in a process Prefect's runner spawns) builds and
    ends; SIGTERM (`docker stop`, systemd) stops `serve` with exit 0 and a paused schedule. The
    run's idle render workers used to keep its process, and so `serve`, alive for ever."""
    config = write_config(tmp_path / "serve.toml", tmp_path, "nightly", extra="cpu_workers = 2")  # (a render pool)
    proc = mossforge(server, "serve", "--cron", "0 3 * * *", "--config", str(config), start_new_session=True)
    try:
        found = served_deployment(server, "nightly", proc)
        assert [s["schedule"]["cron"] for s in found["schedules"]] == ["0 3 * * *"]
        assert found["parameters"]["config"]["dataset"]["name"] == "nightly"
        assert wait_for_end(server, start_served_run(server, found), proc) == "COMPLETED"
        assert len(list((tmp_path / "out" / "nightly").glob("[0-9a-f]*"))) == 1  # its version
        stop_serving(proc)
        assert api_request("GET", f"{server['api']}/deployments/{found['id']}", timeout=30).json()["paused"] is True
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def test_a_served_run_cancelled_from_the_ui_stops_its_work_and_publishes_nothing(server, tmp_path):
    """Cancel in the UI (the run's state set to Cancelling): the run ends Cancelled, no model call
    after it, no version, and `serve` goes on serving."""
    arrived = []

    def script(request):
        if isinstance(request.body["messages"][-1]["content"], str):  # a served run's preflight probe
            return ok("ok")
        arrived.append(question_of(request))
        return ok(COMPLIANCE, delay=5.0 if len(arrived) >= 2 else 0.0)  # the run is mid-stage when cancelled

    with serve(script=script) as model_server:
        config = target_config(tmp_path, model_server.base_url, "cancelled")
        proc = mossforge(server, "serve", "--cron", "0 3 * * *", "--config", str(config), start_new_session=True)
        try:
            run_id = start_served_run(server, served_deployment(server, "cancelled", proc))
            wait_until(lambda: len(arrived) >= 2, 300, "2 target requests", proc)
            asked = len(arrived)  # the last of them is in flight
            api_post(server, f"/flow_runs/{run_id}/set_state", {"state": {"type": "CANCELLING", "name": "Cancelling"}})
            assert wait_for_end(server, run_id, proc) == "CANCELLED"
            time.sleep(6.0)  # longer than a call takes: any call still queued would have arrived
            assert len(arrived) == asked, f"{len(arrived) - asked} model calls after the cancel"
            assert not any((tmp_path / "out" / "cancelled").glob("[!.]*")), "a version was published"
            assert proc.poll() is None  # still serving
            stop_serving(proc)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()


# --- kill -9 and resume ---------------------------------------------------------------------------


def picky_refuses(question: str) -> bool:
    return hashlib.sha256(question.encode()).digest()[0] % 2 == 0


def question_of(request) -> str:
    return request.body["messages"][-1]["content"][0]["text"]


KILL_AT = 5


def target_config(tmp: Path, base_url: str, name: str) -> Path:
    return write_config(tmp / "resume.toml", tmp, name, extra=f"""
[endpoints.picky]
base_url = "{base_url}"
model = "picky-model"
max_concurrency = 1
timeout_s = 30
max_retries = 0
[[targets]]
name = "picky"
endpoint = "picky"
""")


def resume_and_check(server, config: Path, arrived: list, answered: list, expected_calls: list,
                     expected_version: str) -> list:
    """Run the killed run's command again: it publishes the uninterrupted run's version and asks
    exactly what was not answered before the kill. Returns what it asked."""
    arrived.clear()
    proc = mossforge(server, "run", "--skip-preflight", "--config", str(config))
    out, err = proc.communicate(timeout=480)
    assert proc.returncode == 0, err[-3000:]
    resumed = list(arrived)
    assert Path(out.strip().splitlines()[-1]).name == expected_version
    assert not set(resumed) & set(answered), "a model call answered before the kill was repeated"
    assert sorted(resumed + answered) == sorted(expected_calls)  # exactly the calls that had not finished
    return resumed


def test_a_killed_run_resumes_without_repeating_calls_or_renders(server, tmp_path):
    arrived = []

    def script(request):
        arrived.append(question_of(request))
        # The KILL_AT-th request is left unanswered until after the kill: it never completes.
        delay = 20.0 if len(arrived) == KILL_AT and not killed else 0.0
        return ok(REFUSAL if picky_refuses(question_of(request)) else COMPLIANCE, delay=delay)

    killed = False
    with serve(script=script) as model_server:
        # An uninterrupted run, in its own folders: the version a resumed run must reproduce.
        clean = tmp_path / "clean"
        clean.mkdir()
        proc = mossforge(server, "run", "--skip-preflight", "--config", str(target_config(clean, model_server.base_url, "resume")))
        out, err = proc.communicate(timeout=480)
        assert proc.returncode == 0, err[-3000:]
        expected_version = Path(out.strip().splitlines()[-1]).name
        expected_calls = sorted(arrived)
        assert len(expected_calls) > KILL_AT + 1

        arrived.clear()
        run = tmp_path / "run"
        run.mkdir()
        config = target_config(run, model_server.base_url, "resume")
        proc = mossforge(server, "run", "--skip-preflight", "--config", str(config), start_new_session=True)
        wait_until(lambda: len(arrived) >= KILL_AT, 480, f"{KILL_AT} target requests", proc)
        time.sleep(1.0)  # the answered requests' cache entries are on disk; the last is unanswered
        os.killpg(proc.pid, signal.SIGKILL)  # a real kill: no cleanup, no flush
        proc.communicate()
        killed = True
        assert not any((run / "out" / "resume").glob("[!.]*")), "no version was published before the kill"
        answered = arrived[:KILL_AT - 1]
        resumed = resume_and_check(server, config, arrived, answered, expected_calls, expected_version)

    print(f"resume: {len(answered)} calls answered before the kill, {len(resumed)} after, "
          f"{len(expected_calls)} in an uninterrupted run; repeated: 0")

    resumed_run = flow_run_of(server, f"resume-{expected_version}")
    tasks = {t["name"]: t for t in task_runs_of(server, resumed_run["id"])}
    renders = [t for name, t in tasks.items() if name.startswith("render-")]
    assert renders and all(t["state_name"] == "Cached" for t in renders), \
        {t["name"]: t["state_name"] for t in renders}


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_says_what_happened_and_how_to_resume(server, tmp_path, number):
    """Ctrl-C (SIGINT to the terminal's process group), or SIGTERM to the run's process (`timeout`,
    `docker stop`), in the middle of the target check: exit 130 or 143, one line saying the finished
    stages are cached and the same command resumes, no version, no traceback, and no model call
    after it (the flow waits for its task threads, which used to go on calling the model for the
    rest of their batches: 4 more calls, 27 s, in this test; after SIGTERM Prefect printed "Crash
    detected!" and mossforge nothing)."""
    arrived = []

    def script(request):
        arrived.append(question_of(request))
        return ok(COMPLIANCE, delay=5.0 if len(arrived) >= 2 else 0.0)  # the run is mid-stage when hit

    with serve(script=script) as model_server:
        config = target_config(tmp_path, model_server.base_url, "interrupted")
        proc = mossforge(server, "run", "--skip-preflight", "--config", str(config), start_new_session=True)
        wait_until(lambda: len(arrived) >= 2, 480, "2 target requests", proc)
        asked = len(arrived)  # the last of them is in flight (answered in 5 s)
        if number == signal.SIGINT:
            os.killpg(proc.pid, number)
        else:
            os.kill(proc.pid, number)
        out, err = proc.communicate(timeout=120)
        assert len(arrived) == asked, f"{len(arrived) - asked} model calls after the signal"
    assert proc.returncode == 128 + number, err[-3000:]
    said = " ".join(err.split())
    how = "interrupted" if number == signal.SIGINT else "stopped by SIGTERM"
    assert f"error: {how} before the run finished" in said and "the same command resumes" in said, err[-2000:]
    assert "Traceback" not in err, err
    # one line, as the README says: not Prefect's "Crash detected!" for the flow, a Failed line per task
    # run and a Crashed one per task the runner cancelled first (which tasks were queued is timing)
    assert "Crash detected" not in err and "RunInterrupted" not in err and "cancelled by the task runner" not in err, err
    assert not any((tmp_path / "out" / "interrupted").glob("[!.]*")), "no version is published"


def test_a_run_killed_in_a_refine_round_resumes_without_repeating_calls(server, tmp_path):
    """Issue 17: kill -9 while the refinement's round asks the target; the same command again
    asks only what was not answered before the kill and publishes the uninterrupted run's version."""
    refine = '\n[refine]\nenabled = true\nrounds = 2\nper_parent = 2\n'
    arrived: list[str] = []
    state = {"kill_at": None}

    def script(request):
        # A refined variant may keep its parent's question with another image: the whole request
        # (text and image bytes) is what must not be asked twice.
        arrived.append(hashlib.sha256(json.dumps(request.body["messages"], sort_keys=True).encode()).hexdigest())
        # The kill_at-th request of the run to be killed never completes before the kill.
        delay = 20.0 if state["kill_at"] is not None and len(arrived) == state["kill_at"] else 0.0
        return ok(REFUSAL if picky_refuses(question_of(request)) else COMPLIANCE, delay=delay)

    def config_in(folder: Path) -> Path:
        folder.mkdir()
        path = target_config(folder, model_server.base_url, "refresume")
        path.write_text(path.read_text() + refine)
        return path

    with serve(script=script) as model_server:
        clean = tmp_path / "clean"
        proc = mossforge(server, "run", "--skip-preflight", "--config", str(config_in(clean)))
        out, err = proc.communicate(timeout=480)
        assert proc.returncode == 0, err[-3000:]
        expected_version = Path(out.strip().splitlines()[-1]).name
        expected_calls = list(arrived)
        manifest = json.loads(next((clean / "out").glob("*/*/manifest.json")).read_text())
        main_pass = manifest["refine"]["yield"]["target_calls_without"]  # one target: calls = candidates
        assert len(expected_calls) - main_pass >= 4, "the rounds asked too little to kill inside them"
        assert manifest["refine"]["yield"]["kept_with"] > manifest["refine"]["yield"]["kept_without"]

        arrived.clear()
        state["kill_at"] = len(expected_calls) - 2  # inside the refinement's last calls
        config = config_in(tmp_path / "run")
        proc = mossforge(server, "run", "--skip-preflight", "--config", str(config), start_new_session=True)
        wait_until(lambda: len(arrived) >= state["kill_at"], 480, "the refine round's requests", proc)
        time.sleep(1.0)  # answered requests' cache entries are on disk; the last one is unanswered
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        assert not any((tmp_path / "run" / "out" / "refresume").glob("[!.]*")), "published before the kill"
        answered = arrived[:state["kill_at"] - 1]
        assert answered[main_pass:], "the kill came before the refinement asked anything"
        state["kill_at"] = None
        resumed = resume_and_check(server, config, arrived, answered, expected_calls, expected_version)
    print(f"refine resume: {len(answered)} answered before the kill ({len(answered) - main_pass} in the "
          f"rounds), {len(resumed)} after, {len(expected_calls)} uninterrupted; repeated: 0")
