"""Issue 15: fail loudly and never publish something wrong (preflight, guards, locks, messages,
nothing local in a published file). The flow-level cases are in test_fail_loudly_flow.py."""

import json
import logging
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from openai_server import error, ok, serve
from PIL import Image
from test_publish import FUNNEL, setup  # noqa: F401  (the fixture)

from mossforge.config import load_config
from mossforge.errors import (
    EmptyVersionError,
    InputError,
    LockBusyError,
    MossforgeError,
    PreflightError,
    StageFailedError,
    _ShortenOwnErrors,
    describe,
    report,
)
from mossforge.preflight import check_endpoints, check_failures, check_not_empty, check_writable
from mossforge.release import publish
from mossforge.release.publish import MANIFEST, dataset_lock, publish_local
from mossforge.release.versions import VersionError, resolve_version

KEY = "sk-test-ThisKeyMustNeverBePrinted-0123456789"
ROOT = Path(__file__).resolve().parent.parent


def _cli(*args, env=None, cwd=None, timeout=180):
    """`mossforge ARGS` in a fresh process, as a user runs it."""
    full_env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING", **(env or {})}
    return subprocess.run([sys.executable, "-m", "mossforge.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=timeout)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _target_config(tmp_path, base_url, **extra):
    return load_config(overrides={
        "run.out_dir": str(tmp_path / "out"),
        "endpoints": {"gw": {"base_url": base_url, "model": "gpt-x", "api_key_env": "MOSSFORGE_TEST_KEY",
                             "max_retries": 3, "timeout_s": 5}},
        "targets": [{"name": "t1", "endpoint": "gw"}], **extra})


# --- item 1: preflight --------------------------------------------------------------------------


def test_run_with_a_rejected_key_stops_before_any_stage_and_publishes_nothing(tmp_path):
    """Every call answered 401: exit 3 naming the endpoint and the variable, never the key; one
    probe request and no stage ran (no work folder, no version)."""
    with serve(script=lambda r: error(401, f"Incorrect API key provided: {KEY}", code="invalid_api_key")) as server:
        config = tmp_path / "c.toml"
        config.write_text(f'[plan]\nper_type = 2\n[endpoints.gw]\nbase_url = "{server.base_url}"\n'
                          'model = "gpt-x"\napi_key_env = "MOSSFORGE_TEST_KEY"\n'
                          '[[targets]]\nname = "t1"\nendpoint = "gw"\n')
        result = _cli("run", "--config", str(config), "--outputs", str(tmp_path / "out"),
                      env={"MOSSFORGE_TEST_KEY": KEY})
        requests = len(server.requests)
    assert result.returncode == 3, result.stderr
    assert "'gw'" in result.stderr and "MOSSFORGE_TEST_KEY" in result.stderr and "401" in result.stderr
    assert KEY not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert requests == 1  # the probe; no retries of a 401, no stage
    out = tmp_path / "out"
    assert not [p for p in out.rglob("*") if p.is_file()]  # no stage wrote anything, no version


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_a_served_runs_mossforge_error_is_logged_as_its_message_without_a_traceback(tmp_path, prefect_harness,
                                                                                    monkeypatch):
    """A served run (no CLI around it, so its log in the terminal and the UI is where the user
    reads what went wrong) logs a mossforge error as its message: it used to add Prefect's
    traceback, pages of it for a closed port. A bug keeps its traceback (unit test below)."""
    from mossforge.flows.build import build_dataset

    monkeypatch.setenv("MOSSFORGE_TEST_KEY", KEY)
    caught = _Records()
    flow_logger = logging.getLogger("prefect.flow_runs")
    flow_logger.addHandler(caught)
    try:
        with pytest.raises(PreflightError):
            build_dataset(config=_target_config(tmp_path, f"http://127.0.0.1:{_closed_port()}/v1").model_dump(mode="json"),
                          preflight=True)
    finally:
        flow_logger.removeHandler(caught)
    errors = [r for r in caught.records if r.levelno >= logging.ERROR]
    assert errors and "PreflightError" in errors[0].getMessage() and "could not be reached" in errors[0].getMessage()
    assert all(r.exc_info is None for r in errors), "a traceback was logged with the message"
    assert not any(KEY in r.getMessage() for r in caught.records)


def test_only_a_mossforge_error_loses_its_traceback_in_a_served_runs_log():
    shorten = _ShortenOwnErrors()

    def record(error):
        try:
            raise error
        except BaseException:
            return logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())

    def wrapped_bug():
        try:
            raise KeyError("a bug")
        except KeyError as bug:
            error = MossforgeError("render failed in batch 3")
            error.wrapper = True
            error.__cause__ = bug
            return error

    own, bug, wrapper = record(StageFailedError("too many failed")), record(KeyError("x")), record(wrapped_bug())
    assert all(shorten.filter(r) for r in (own, bug, wrapper))  # every record is kept
    assert own.exc_info is None and bug.exc_info is not None and wrapper.exc_info is not None


def test_preflight_names_unknown_model_unreachable_host_and_unset_key(tmp_path, monkeypatch):
    monkeypatch.setenv("MOSSFORGE_TEST_KEY", KEY)
    not_found = error(404, "The model `gpt-x` does not exist or you do not have access to it.",
                      code="model_not_found")
    with serve(script=lambda r: not_found) as server:
        with pytest.raises(PreflightError, match="does not know the model 'gpt-x'"):
            check_endpoints(_target_config(tmp_path, server.base_url))
    started = time.perf_counter()
    with pytest.raises(PreflightError, match="could not be reached") as caught:
        check_endpoints(_target_config(tmp_path, f"http://127.0.0.1:{_closed_port()}/v1"))
    assert time.perf_counter() - started < 15  # one retry, short backoff: seconds, not minutes
    assert "targets[t1].endpoint" in str(caught.value)
    monkeypatch.delenv("MOSSFORGE_TEST_KEY")
    with serve() as server:
        with pytest.raises(PreflightError, match="MOSSFORGE_TEST_KEY, which is not set"):
            check_endpoints(_target_config(tmp_path, server.base_url))
        assert not server.requests


def test_preflight_passes_a_working_endpoint_and_inconclusive_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("MOSSFORGE_TEST_KEY", KEY)
    with serve(script=lambda r: ok("p")) as server:
        assert check_endpoints(_target_config(tmp_path, server.base_url)) == ["gw"]
        body = server.requests[0].body
        assert body["max_tokens"] == 1 and server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    # a 400 on a one-token probe (e.g. a parameter a reasoning model lacks) does not stop a run
    with serve(script=lambda r: error(400, "max_tokens is not supported with this model")) as server:
        assert check_endpoints(_target_config(tmp_path, server.base_url)) == ["gw"]


def test_preflight_of_an_image_endpoint_lists_models(tmp_path, monkeypatch):
    monkeypatch.setenv("MOSSFORGE_TEST_KEY", KEY)
    with serve(script=lambda r: error(403, "forbidden")) as server:
        config = load_config(overrides={
            "endpoints": {"img": {"base_url": server.base_url, "model": "img-1", "api_key_env": "MOSSFORGE_TEST_KEY"}},
            "render": {"renderer": "image_api", "endpoint": "img"}})
        with pytest.raises(PreflightError, match="rejected the key in the environment variable MOSSFORGE_TEST_KEY"):
            check_endpoints(config)
        assert server.requests[0].path.endswith("/models")  # no image was generated to find out
        server.set_script(None)
        server.models = ["other-model"]
        with pytest.raises(PreflightError, match="does not know the model 'img-1'"):
            check_endpoints(config)
        server.models = ["img-1"]
        assert check_endpoints(config) == ["img"]


def test_failed_calls_over_the_share_fail_the_run():
    def calls(requests, **failures):
        return {"stages": {"target_check": {"requests": requests, "failures": failures}}}

    with pytest.raises(StageFailedError, match="15 of 15 model calls failed"):
        check_failures(calls(15, auth=15), 1.0)  # every call failed: fails whatever the share
    with pytest.raises(StageFailedError, match="target_check: 3 of 10"):
        check_failures(calls(10, server_error=3), 0.2)
    check_failures(calls(10, server_error=2), 0.2)  # at the share: goes on
    check_failures(calls(10, content_policy=10), 0.2)  # blocked requests are answers, not failures
    check_failures(None, 0.2)


def test_an_empty_version_is_refused_unless_allowed():
    funnel = [{"stage": "target_check", "dropped": {"target_undecided": 15}}]
    with pytest.raises(EmptyVersionError, match="target_check: target_undecided 15"):
        check_not_empty(0, False, "demo", funnel)
    check_not_empty(0, True, "demo", funnel)
    check_not_empty(3, False, "demo", funnel)
    assert EmptyVersionError("x").exit_code == 4


# --- item 2: one run at a time, unique numbers, advice that works -------------------------------


def _hold_lock(out_dir, ready, release):
    with dataset_lock(Path(out_dir), "demo"):
        ready.set()
        release.wait(60)


def test_dataset_lock_waits_with_a_message_or_fails_fast(tmp_path):
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(LockBusyError, match="another mossforge run is building demo"):
            with dataset_lock(tmp_path, "demo", wait=False):
                pass
        messages = []
        threading.Timer(0.5, release.set).start()
        with dataset_lock(tmp_path, "demo", wait=True, notify=messages.append):
            assert holder.join(30) is None and not holder.is_alive()
        assert len(messages) == 1 and "waiting for it to finish" in messages[0]
    finally:
        release.set()
        holder.join(30)


def _publish_one(out_dir, image_root, question, barrier):
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import make_candidate

    from mossforge.images import ImageStore

    record = make_candidate(question)
    record.image = ImageStore(image_root).put(Image.new("RGB", (8, 8), (len(question), 0, 0)), renderer="test")
    config = load_config(overrides={"run.out_dir": out_dir, "dataset.name": "demo"})
    barrier.wait(60)
    print(publish_local([record], [], config, [], Path(image_root)).manifest["version_number"])


def test_concurrent_publishes_of_different_content_get_distinct_numbers(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    processes = [context.Process(target=_publish_one, args=(str(tmp_path / "out"), str(tmp_path / "images"),
                                                             q, barrier))
                 for q in ("Plan a party in this playroom.", "Where can I park near this statue?",
                           "What should I cook in this kitchen?")]
    for process in processes:
        process.start()
    for process in processes:
        process.join(180)
        assert process.exitcode == 0
    numbers = [m["version_number"] for m in publish.list_versions(tmp_path / "out", "demo")]
    assert len(numbers) == 3 and len(set(numbers)) == 3, numbers


def test_ambiguity_advice_works_as_printed(setup, tmp_path):  # noqa: F811
    records, dropped, config, store = setup
    other = config.model_copy(deep=True)
    other.dataset.name = "demo2"
    a = publish_local(records[:1], dropped, config, FUNNEL, store.root)
    b = publish_local(records[:1], dropped, other, FUNNEL, store.root)
    out = Path(config.run.out_dir)
    with pytest.raises(VersionError, match="--dataset demo or --dataset demo2") as caught:
        resolve_version(out, "1.0.0")
    advice = str(caught.value).rsplit("--dataset ", 1)[1]
    assert resolve_version(out, "1.0.0", advice)[1]["version"] == b.version
    # two versions of ONE dataset numbered alike (published by two runs before locking existed):
    # --dataset cannot help, the ids can
    manifest = json.loads((b.path / MANIFEST).read_text())
    clone = out / "demo" / "feedbeefcafe"
    clone.mkdir()
    (clone / MANIFEST).write_text(json.dumps({**manifest, "dataset": "demo", "version": "feedbeefcafe"}))
    with pytest.raises(VersionError, match=f"name the version by its id: {a.version} or feedbeefcafe"):
        resolve_version(out, "1.0.0", "demo")
    assert resolve_version(out, "feedbeefcafe", "demo")[1]["version"] == "feedbeefcafe"


# --- item 4: messages, not tracebacks -----------------------------------------------------------


def test_dedup_of_an_empty_or_non_utf8_file_says_so_in_one_line(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("prompt\nhello\ncaf\xe9 au lait\n".encode("latin-1"))
    for path, expected in ((empty, "is empty"), (latin, "line 3: byte 0xe9 is not UTF-8")):
        result = _cli("dedup", str(path), "--column", "prompt", "--out", str(tmp_path / "o.csv"))
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and str(path) in result.stderr.replace("\n", "")
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 4
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("content, expected", [
    ('x\n', "line 1: not a JSON object (expecting value)"),
    ('{"answer": "a"}\n[1, 2]\n', "line 2: not a JSON object (a JSON list)"),
    ('{"answer": "a"}\n{"answer": "b",}\n', "line 2: not a JSON object (expecting property name"),
], ids=["not json", "a list", "a trailing comma"])
def test_a_jsonl_line_that_is_not_a_json_object_is_named(tmp_path, content, expected):
    """polars said only "InternalError(TapeError) at character 0 ('x')"."""
    from mossforge.errors import InputError
    from mossforge.tables import read_table

    path = tmp_path / "answers.jsonl"
    path.write_text(content)
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert expected in str(caught.value) and str(path) in str(caught.value)


def test_files_saved_with_a_byte_order_mark_read_as_without(tmp_path):
    """Excel's "CSV UTF-8" and Notepad start a file with a BOM: a reference .csv then had no column
    'question' (its first was '\ufeffquestion'), a .jsonl table or reference and a .toml config
    failed to parse. Each reads the same with and without it."""
    from mossforge.stages.dedup import read_question_file
    from mossforge.tables import read_table

    bom = "\ufeff"
    files = {"refs.csv": "question,id\nIs it safe?,1\n", "refs.jsonl": '{"question": "Is it safe?"}\n',
             "refs.txt": "Is it safe?\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(bom + text, encoding="utf-8")
        assert read_question_file(str(tmp_path / name), "question") == ["Is it safe?"], name
    assert read_table(tmp_path / "refs.jsonl").to_dicts() == [{"question": "Is it safe?"}]
    assert read_table(tmp_path / "refs.csv").columns == ["question", "id"]
    config = tmp_path / "c.toml"
    config.write_text(bom + "[plan]\nper_type = 3\n", encoding="utf-8")
    assert load_config(config).plan.per_type == 3


def test_run_into_a_folder_that_cannot_be_written_fails_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = _cli("run", "--per-type", "2", "--outputs", str(blocker / "outputs"), timeout=60)
    assert result.returncode == 2, result.stderr
    assert "cannot write to" in result.stderr and "Nothing was run" in result.stderr
    assert "starting Prefect" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_names_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(InputError, match="cannot write to .*ro"):
            check_writable({"run.out_dir": folder})
    finally:
        folder.chmod(0o755)


def test_a_permission_error_says_read_or_write(tmp_path, monkeypatch):
    """Every PermissionError was described as 'cannot be written', also a file that cannot be read.
    (Root reads everything, so the unreadable file is simulated with os.access.)"""
    secret = tmp_path / "labels.csv"
    secret.write_text("id,label\n")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if str(path) == str(secret) and mode == os.R_OK
                        else real_access(path, mode, **kw))
    read, code = describe(PermissionError(13, "Permission denied", str(secret)))
    assert code == 2 and f"{secret} cannot be read" in read and "written" not in read
    written, code = describe(PermissionError(13, "Permission denied", str(tmp_path / "out" / "new.parquet")))
    assert code == 2 and "new.parquet cannot be written" in written


def test_publish_without_network_names_the_host(setup, tmp_path):  # noqa: F811
    records, dropped, config, store = setup
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    port = _closed_port()
    result = _cli("publish", str(version.path), "--repo", "someone/demo",
                  env={"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HUB_OFFLINE": "0",
                       "HF_TOKEN": "hf_NotARealTokenButLongEnough0123"}, timeout=120)
    assert result.returncode == 6, result.stderr
    assert "could not reach 127.0.0.1" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 6  # two sentences and the log's name, wrapped at 80
    assert "hf_NotARealToken" not in result.stderr


def test_an_unexpected_error_points_to_a_log_and_debug_shows_it():
    lines = []
    try:
        raise KeyError("boom")
    except KeyError as caught:
        code = report(caught, lines.append)
    assert code == 1 and "KeyError: 'boom'" in lines[0] and "--debug" in lines[0]
    log = Path(lines[0].split("full traceback in ")[1].split(";")[0])
    assert "Traceback" in log.read_text()
    log.unlink()
    assert describe(PreflightError("x")) == ("x", 3)


# --- item 6: nothing local in a published file ------------------------------------------------


def test_nothing_local_in_a_published_version_and_every_image_path_resolves(setup, tmp_path):  # noqa: F811
    records, dropped, config, store = setup
    dropped[0].image = store.put(Image.new("RGB", (8, 8), (1, 2, 3)), renderer="test")  # not published
    config = config.model_copy(deep=True)
    config.run.work_dir = str(tmp_path / "work")
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    for path in version.path.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".html", ".parquet"):
            data = path.read_bytes()
            assert str(tmp_path).encode() not in data, path
            assert b"/tmp/" not in data and b"outputs" not in data, path
    for split in ("benign", "contrast"):
        table = pq.read_table(version.path / "data" / split / publish.SHARD).to_pylist()
        for row in table:
            assert row["image"]["path"].startswith("images/")
            if split == "benign":
                for info in (row["image_info"], row["contrast"]["image"]):
                    if info is not None:
                        assert info["path"] == f"images/{info['sha256']}.png"
                        assert (version.path / info["path"]).is_file()
    gone = pq.read_table(version.path / "dropped.parquet").to_pylist()[0]["image"]
    assert gone["path"] == "" and gone["sha256"]  # not in this version: no path that fails to resolve
    manifest = json.loads((version.path / MANIFEST).read_text())
    assert "run" not in manifest["config"] and "cache" not in manifest["config"]
    assert load_config(overrides=manifest["config"]).config_hash() == manifest["config_hash"]


def test_run_no_wait_on_a_locked_folder_exits_5_before_prefect_starts(tmp_path):
    """--no-wait while another run builds the folder: exit 5 and one line, before any flow run (it
    started Prefect, drew the bars and left a Failed flow run in the UI first)."""
    with dataset_lock(tmp_path / "out", "locked"):
        config = tmp_path / "locked.toml"
        config.write_text('[dataset]\nname = "locked"\n', encoding="utf-8")
        done = _cli("run", "--no-wait", "--config", str(config), "--outputs", str(tmp_path / "out"),
                    env={"MOSSFORGE_SERVER": "temporary"})
    assert done.returncode == 5, done.stderr[-2000:]
    assert "another mossforge run is building locked" in done.stderr
    assert "Prefect UI" not in done.stderr and "building locked:" not in done.stderr
