"""Pushing versions to the Hub, against a stubbed Hub API at the HTTP level (tests/hub_server.py)."""

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hub_server import HubStub
from test_publish import FUNNEL, setup  # noqa: F401  (the fixture)

from mossforge.release.hub import HubError, push_version
from mossforge.release.layout import list_versions
from mossforge.release.publish import publish_local

TOKEN = "hf_TestTokenThatMustNeverBeWritten0123"
REPO = "mossforge-test/demo"


@pytest.fixture
def hub(monkeypatch, caplog):
    from huggingface_hub import constants

    with HubStub(TOKEN) as stub:
        # conftest switches the Hub off for every test; this test talks to the loopback stub only
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", stub.url)
        # hf_hub_download builds its URL from this template (read at import), not from ENDPOINT
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", stub.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setenv("HF_ENDPOINT", stub.url)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        caplog.set_level(logging.DEBUG)
        yield stub


def _no_token_anywhere(tmp_path: Path, *texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_push_tags_and_second_push_makes_no_commit(setup, hub, tmp_path, caplog, capsys):  # noqa: F811
    records, dropped, config, store = setup
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    first = push_version(version.path, REPO, endpoint=hub.url)
    assert first.created_commit and first.tag == "v1.0.0" and first.revision
    assert first.url == f"{hub.url}/datasets/{REPO}/tree/v1.0.0"
    repo = hub.repos[REPO]
    assert repo.tags == {"v1.0.0": first.revision} and repo.branches["main"] == first.revision
    tree = repo.commits[first.revision]
    local = {str(p.relative_to(version.path)) for p in version.path.rglob("*") if p.is_file()}
    assert set(tree) == local | {".gitattributes"}
    for name in local:  # byte for byte what the manifest checksums
        assert tree[name] == (version.path / name).read_bytes()
    assert all(hub.authorized[i] for i, (m, _) in enumerate(hub.requests) if m == "POST")

    commits = hub.posts("commit")
    again = push_version(version.path, REPO, endpoint=hub.url)
    assert not again.created_commit and again.revision == first.revision and again.files == []
    assert hub.posts("commit") == commits and hub.posts("tag") == 1
    _no_token_anywhere(tmp_path, caplog.text, *capsys.readouterr())


def test_next_version_replaces_the_tree_and_keeps_old_tags(setup, hub):  # noqa: F811
    records, dropped, config, store = setup
    v1 = publish_local(records, dropped, config, FUNNEL, store.root)
    push_version(v1.path, REPO, endpoint=hub.url)
    v2 = publish_local(records[:1], dropped, config, FUNNEL, store.root)  # an item removed: major
    assert v2.manifest["version_number"] == "2.0.0"
    second = push_version(v2.path, REPO, endpoint=hub.url)
    repo = hub.repos[REPO]
    assert set(repo.tags) == {"v1.0.0", "v2.0.0"} and repo.tags["v1.0.0"] != second.revision
    assert json.loads(repo.commits[repo.tags["v1.0.0"]]["manifest.json"])["version"] == v1.version
    gone = set(repo.commits[repo.tags["v1.0.0"]]) - set(repo.commits[second.revision])
    assert gone == set(second.deleted) and gone  # v1's image of the removed item is not in v2
    # pushing the older version again is a no-op: its tag already points at it
    assert not push_version(v1.path, REPO, endpoint=hub.url).created_commit


def test_missing_token_fails_before_any_request(setup, hub, monkeypatch):  # noqa: F811
    records, dropped, config, store = setup
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubError, match="no Hugging Face token.*Nothing was uploaded"):
        push_version(version.path, REPO, endpoint=hub.url)
    assert hub.requests == []


def test_wrong_token_fails_before_upload_without_printing_it(setup, hub, monkeypatch, tmp_path, caplog):  # noqa: F811
    records, dropped, config, store = setup
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    wrong = "hf_WrongTokenAlsoNeverWritten987"
    monkeypatch.setenv("HF_TOKEN", wrong)
    with pytest.raises(HubError, match="HF_TOKEN.*rejected \\(401") as error:
        push_version(version.path, REPO, endpoint=hub.url)
    assert wrong not in str(error.value) and wrong not in caplog.text
    assert [path for _, path in hub.requests] == ["/api/whoami-v2"]
    assert REPO not in hub.repos


def test_read_only_token_is_refused(setup, hub):  # noqa: F811
    records, dropped, config, store = setup
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    hub.role = "read"
    with pytest.raises(HubError, match="read-only"):
        push_version(version.path, REPO, endpoint=hub.url)
    assert hub.posts("commit") == 0


def test_rejected_upload_leaves_no_tag(setup, hub, tmp_path, caplog):  # noqa: F811
    records, dropped, config, store = setup
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    hub.fail["commit"] = (403, "You don't have the rights to create a commit on this repo")
    with pytest.raises(HubError, match="uploading 1.0.0 .* failed \\(nothing was tagged\\).*403.*rights"):
        push_version(version.path, REPO, endpoint=hub.url)
    assert hub.repos[REPO].tags == {}
    assert list(hub.repos[REPO].commits) == [hub.repos[REPO].branches["main"]]  # only the initial one
    del hub.fail["commit"]
    assert push_version(version.path, REPO, endpoint=hub.url).created_commit  # a retry works
    _no_token_anywhere(tmp_path, caplog.text)


def test_a_tag_naming_other_content_is_never_moved(setup, hub, tmp_path):  # noqa: F811
    records, dropped, config, store = setup
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    push_version(version.path, REPO, endpoint=hub.url)
    # the same number published elsewhere from other content
    other_cfg = config.model_copy(update={"run": config.run.model_copy(update={"out_dir": str(tmp_path / "other")})})
    other = publish_local(records[:1], dropped, other_cfg, FUNNEL, store.root)
    assert other.manifest["version_number"] == "1.0.0" and other.version != version.version
    with pytest.raises(HubError, match="already has tag v1.0.0 for another version"):
        push_version(other.path, REPO, endpoint=hub.url)
    assert hub.posts("commit") == 1


def test_a_tampered_version_is_not_pushed(setup, hub):  # noqa: F811
    records, dropped, config, store = setup
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    (version.path / "README.md").write_text("edited by hand")
    with pytest.raises(ValueError, match="checksum mismatch: README.md"):
        push_version(version.path, REPO, endpoint=hub.url)
    assert hub.requests == []


def test_dry_run_contacts_nothing(setup, hub, monkeypatch):  # noqa: F811
    records, dropped, config, store = setup
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    monkeypatch.delenv("HF_TOKEN")
    plan = push_version(version.path, REPO, dry_run=True, endpoint=hub.url)
    assert plan.dry_run and plan.tag == "v1.0.0" and plan.revision is None
    assert {name for name, _ in plan.files} >= {"README.md", "manifest.json", "data/benign/test-00000-of-00001.parquet"}
    assert hub.requests == []


def test_cli_publish_dry_run_push_and_repush(setup, hub, tmp_path, caplog):  # noqa: F811
    from typer.testing import CliRunner

    from mossforge.cli.main import app

    records, dropped, config, store = setup
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    out = config.run.out_dir
    runner = CliRunner()
    dry = runner.invoke(app, ["publish", "1.0.0", "--repo", REPO, "--outputs", out, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would push 1.0.0" in dry.stdout and "data/benign/test-00000-of-00001.parquet" in dry.stdout
    assert hub.requests == []
    for bad in ("noslash", "bad repo/na me", "a/b/c"):  # --dry-run said "would push" to these
        refused = runner.invoke(app, ["publish", "1.0.0", "--repo", bad, "--outputs", out, "--dry-run"])
        assert refused.exit_code == 2 and f"--repo {bad!r} is not a Hugging Face repo id" in \
            " ".join(refused.output.split()), refused.output

    pushed = runner.invoke(app, ["publish", "1.0.0", "--repo", REPO, "--outputs", out, "--private"])
    assert pushed.exit_code == 0, pushed.output
    url, revision = pushed.stdout.strip().splitlines()[-2:]
    assert url == f"{hub.url}/datasets/{REPO}/tree/v1.0.0" and revision == hub.repos[REPO].tags["v1.0.0"]
    assert hub.repos[REPO].private and "pushed" in pushed.stderr

    again = runner.invoke(app, ["publish", version.version, "--repo", REPO, "--outputs", out])
    assert again.exit_code == 0 and "no new commit" in again.stderr
    assert again.stdout.strip().splitlines()[-1] == revision and hub.posts("commit") == 1

    bad = runner.invoke(app, ["publish", "1.0.0", "--repo", REPO, "--outputs", out],
                        env={"HF_TOKEN": "hf_NotTheRightOne"})
    assert bad.exit_code == 3 and "rejected (401" in bad.output and "hf_NotTheRightOne" not in bad.output
    _no_token_anywhere(tmp_path, caplog.text, dry.output, pushed.output, again.output)


def test_a_run_that_pushes_checks_the_token_before_any_stage(hub, tmp_path):
    """dataset.hub_repo set and the token wrong, read-only or the Hub unreachable: `mossforge run`
    exits 3 in its preflight, before Prefect or any stage (it used to build and publish locally,
    then fail the push at the end, exit 1); the token is never printed."""
    from test_fail_loudly import _cli, _closed_port

    config = tmp_path / "c.toml"
    config.write_text(f'[plan]\nper_type = 2\n[dataset]\nhub_repo = "{REPO}"\n')
    out = tmp_path / "out"
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_NotTheRightOne"}
    rejected = _cli("run", "--config", str(config), "--outputs", str(out), env=env)
    assert rejected.returncode == 3, rejected.stderr
    assert "dataset.hub_repo = mossforge-test/demo" in rejected.stderr and "rejected (401" in rejected.stderr
    assert "hf_NotTheRightOne" not in rejected.stderr + rejected.stdout and "Traceback" not in rejected.stderr
    paths = [path for _, path in hub.requests]  # (a fresh huggingface_hub also asks /api/agent-harnesses)
    assert "/api/whoami-v2" in paths and REPO not in hub.repos and hub.posts("commit") == 0

    hub.role = "read"
    read_only = _cli("run", "--config", str(config), "--outputs", str(out), env={**env, "HF_TOKEN": TOKEN})
    assert read_only.returncode == 3 and "read-only" in read_only.stderr, read_only.stderr
    unreachable = _cli("run", "--config", str(config), "--outputs", str(out),
                       env={**env, "HF_TOKEN": TOKEN, "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"})
    assert unreachable.returncode == 3 and "could not reach the Hugging Face Hub" in unreachable.stderr, \
        unreachable.stderr
    offline = _cli("run", "--config", str(config), "--outputs", str(out), env={**env, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 3 and "HF_HUB_OFFLINE is set" in offline.stderr, offline.stderr
    assert not [p for p in out.rglob("*") if p.is_file()]  # no stage ran, nothing published
    assert TOKEN not in "".join(r.stderr + r.stdout for r in (read_only, unreachable, offline))


def test_sigterm_during_the_push_says_the_version_is_published(hub, tmp_path):
    """SIGTERM after the version is written (here: while it is pushed to the Hub) said "stopped by
    SIGTERM before the run finished", with a complete version on disk. Exit 143 still; the message
    names the version, and the push left nothing on the Hub."""
    import signal

    from test_fail_loudly import ROOT

    config = tmp_path / "c.toml"
    config.write_text(f'[dataset]\nname = "late"\nhub_repo = "{REPO}"\n[plan]\nper_type = 1\n[render]\nsize = 64\n'
                      f'[run]\nwork_dir = "{tmp_path / "work"}"\n', encoding="utf-8")
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": TOKEN,
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "mossforge.cli", "run", "--config", str(config), "--outputs",
                             str(tmp_path / "out")], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    route = hub._route

    def route_then_stop(handler, method, path, *rest):
        if path == "/api/whoami-v2" and [p for _, p in hub.requests].count(path) == 2:  # the push's own check
            proc.send_signal(signal.SIGTERM)
            time.sleep(2)  # (the answer comes after the signal has arrived)
        return route(handler, method, path, *rest)

    hub._route = route_then_stop
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    said = " ".join(err.split())
    assert proc.returncode == 143, err[-3000:]
    versions = list_versions(tmp_path / "out", "late")
    assert len(versions) == 1 and f"stopped by SIGTERM after version {versions[0]['version']} was published" in said
    assert "before the run finished" not in said and hub.posts("commit") == 0
    assert TOKEN not in out + err


def test_the_preflight_passes_a_token_that_can_push(hub, tmp_path):
    from mossforge.config import load_config
    from mossforge.preflight import check_run

    config = load_config(overrides={"dataset.hub_repo": REPO, "run.out_dir": str(tmp_path / "out"),
                                    "run.work_dir": str(tmp_path / "work")})
    assert check_run(config) == ["the Hub"]
    assert check_run(config, endpoints=False) == []  # --skip-preflight asks nothing
    assert [path for _, path in hub.requests] == ["/api/whoami-v2"] and REPO not in hub.repos


@pytest.mark.slow
def test_flow_pushes_when_the_config_names_a_repo(prefect_harness, hub, tmp_path, caplog, capfd):
    from mossforge.config import load_config
    from mossforge.flows.build import build_dataset

    settings = {"plan.per_type": 2, "run.out_dir": str(tmp_path / "out"), "run.work_dir": str(tmp_path / "work"),
                "dataset.name": "flowhub", "render.size": 64}
    local = build_dataset(config=load_config(overrides=settings).model_dump(mode="json"))
    assert local["hub"] is None and hub.requests == []
    pushed = build_dataset(config=load_config(overrides={**settings, "dataset.hub_repo": REPO}).model_dump(mode="json"))
    # the same content (the Hub repo is not part of it): same version, every stage reused
    assert pushed["version"] == local["version"] and pushed["reused"]
    assert pushed["hub"]["tag"] == "v1.0.0" and pushed["hub"]["created_commit"]
    assert hub.repos[REPO].tags["v1.0.0"] == pushed["hub"]["revision"]
    assert pushed["config_hash"] == local["config_hash"]
    _no_token_anywhere(tmp_path, caplog.text, *capfd.readouterr())
    _no_token_anywhere(Path(os.environ["PREFECT_HOME"]))  # Prefect's database: task parameters, logs


@pytest.fixture
def loopback_only(monkeypatch):
    """Every connection and name lookup away from 127.0.0.1 is refused and recorded, so a test
    proves that it reached nothing but the stub."""
    import socket

    attempts: list = []
    lookup, connect = socket.getaddrinfo, socket.socket.connect

    def guarded_lookup(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", None):
            attempts.append(host)
            raise OSError(f"test: network lookup of {host!r} refused")
        return lookup(host, *args, **kwargs)

    def guarded_connect(sock, address):
        if isinstance(address, tuple) and address[0] != "127.0.0.1":
            attempts.append(address)
            raise OSError(f"test: connection to {address!r} refused")
        return connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    return attempts


def _load_from_hub(monkeypatch, hub, cache: Path, *args, **kwargs):
    """`datasets.load_dataset` from the stub, online for this call only, caches under `cache`."""
    import datasets
    from huggingface_hub import constants

    with monkeypatch.context() as online:
        online.delenv("HF_HUB_OFFLINE", raising=False)
        online.delenv("HF_DATASETS_OFFLINE", raising=False)
        # datasets and huggingface_hub read these at import time: patch the module values
        online.setattr(datasets.config, "HF_HUB_OFFLINE", False)
        online.setattr(datasets.config, "HF_ENDPOINT", hub.url)
        online.setattr(datasets.config, "HUB_DATASETS_URL", hub.url + "/datasets/{repo_id}/resolve/{revision}/{path}")
        online.setattr(datasets.config, "HF_UPDATE_DOWNLOAD_COUNTS", False)  # a HEAD to S3 otherwise
        online.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "datasets")
        online.setattr(constants, "HF_HUB_CACHE", str(cache / "hub"))
        online.setenv("HF_HOME", str(cache))  # the environment too, for anything that reads it late
        online.setenv("HF_DATASETS_CACHE", str(cache / "datasets"))
        return datasets.load_dataset(*args, cache_dir=str(cache / "datasets"), **kwargs)


def _rows(dataset) -> list[dict]:
    """Rows with images as (size, mode, pixels): decoded PIL images compare by content."""
    from PIL import Image

    return [{key: (value.size, value.mode, value.tobytes()) if isinstance(value, Image.Image) else value
             for key, value in row.items()} for row in dataset]


def test_pushed_version_loads_back_from_the_hub(setup, hub, loopback_only, monkeypatch, tmp_path):  # noqa: F811
    import datasets
    from huggingface_hub import HfApi, RepoFile
    from PIL import Image

    records, dropped, config, store = setup
    version = publish_local(records, dropped, config, FUNNEL, store.root)
    pushed = push_version(version.path, REPO, endpoint=hub.url)
    v2 = publish_local(records[:1], dropped, config, FUNNEL, store.root)
    newer = push_version(v2.path, REPO, endpoint=hub.url)  # main moves on: only the tag names v1
    hub.page_size = 1  # every tree listing of more than one entry is paged (Link header)
    cache, pushes = tmp_path / "hf-cache", len(hub.requests)
    for name in ("benign", "contrast"):
        local = datasets.load_dataset(str(version.path), name, split="test")
        remote = _load_from_hub(monkeypatch, hub, cache, REPO, name, revision=pushed.tag, split="test")
        assert remote.features == local.features and remote.info.config_name == name
        assert sorted(remote["id"]) == sorted(r.id for r in records)
        assert _rows(remote) == _rows(local)  # every column; images decoded, compared by pixels
        assert all(isinstance(image, Image.Image) and image.size == (32, 24) for image in remote["image"])
    reads = hub.targets[pushes:]
    assert any(f"/tree/{pushed.revision}/" in target for target in reads)  # the tag's commit was listed
    assert not any(newer.revision in target or "/main" in target for target in reads)
    assert any("cursor=" in target for target in reads)  # a paged listing was followed
    assert os.environ["HF_HUB_OFFLINE"] == "1" and datasets.config.HF_HUB_OFFLINE  # offline again
    assert list((cache / "hub").rglob("*.parquet")) and list((cache / "datasets").rglob("*.arrow"))
    _no_token_anywhere(cache)

    # the stub's paged recursive tree lists exactly what was pushed
    listed = HfApi(endpoint=hub.url).list_repo_tree(REPO, repo_type="dataset", revision=pushed.tag, recursive=True)
    files = {entry.path for entry in listed if isinstance(entry, RepoFile)}
    assert files == {str(p.relative_to(version.path)) for p in version.path.rglob("*") if p.is_file()} | {".gitattributes"}
    assert loopback_only == []  # nothing but the stub was contacted
