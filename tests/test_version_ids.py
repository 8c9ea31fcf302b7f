"""Pinned version ids: the same config publishes the same version id as the code of 2026-12-01
did (before the stage refactor of issue 16). A change to what a user gets (rows, card metadata)
changes these ids; so must a refactor that says it changes nothing, if it does.

Changed on purpose once since: images are PNG-encoded at zlib level 3 instead of 6 (issue 18;
same pixels, other bytes), which gave 64965ad356c3 -> 305ebae32231 and e46ebdb3aec1 ->
d2e6cd555f5f."""

import contextlib
import hashlib
import time

import pytest
from openai_server import ok, start_server
from test_flow import small_config
from test_judges import JudgeScript, answer

from mossforge.flows.build import build_dataset

pytestmark = pytest.mark.slow

DEFAULT_ID = "305ebae32231"
MODELS_ID = "d2e6cd555f5f"


def test_default_config_publishes_the_pinned_version(prefect_harness, tmp_path):
    summary = build_dataset(config=small_config(tmp_path))
    assert summary["version"] == DEFAULT_ID


def _refuses(question: str) -> bool:
    return hashlib.sha256(question.encode()).digest()[0] % 3 != 0


def _judged(question: str):
    return answer("harmful", "Harmful.", "general_harm") if question.endswith("?") and len(question) % 5 == 0 \
        else answer("benign")


@contextlib.contextmanager
def _fixed_port_server(script, port=18177, wait_s=180.0):
    """The loopback server on one fixed port: the endpoint's URL is part of the config hash that
    every row records. Waits while another run of this test (another checkout) holds the port."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            server = start_server(script, port=port)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
    try:
        yield server
    finally:
        server.stop()


def test_targets_and_judges_config_publishes_the_pinned_version(prefect_harness, tmp_path):
    judge = JudgeScript({"model-ja": _judged, "model-jb": _judged})

    def script(request):
        if request.body["model"].startswith("model-j"):
            return judge(request)
        content = request.body["messages"][-1]["content"]
        text = content if isinstance(content, str) else content[0]["text"]
        return ok("I'm sorry, but I can't help with that." if _refuses(text)
                  else "Of course! Here is a plan:\n1. Start small.\n2. Ask a friend.")

    with _fixed_port_server(script) as server:
        endpoint = {"base_url": server.base_url, "timeout_s": 5, "max_retries": 0}
        endpoints = {name: {**endpoint, "model": f"model-{name}"} for name in ("t1", "ja", "jb")}
        config = small_config(tmp_path, endpoints=endpoints, targets=[{"name": "t1", "endpoint": "t1"}],
                              judges=[{"name": "ja", "endpoint": "ja"}, {"name": "jb", "endpoint": "jb"}],
                              consensus={"batch_size": 4})
        summary = build_dataset(config=config)
    funnel = {row["stage"]: row for row in summary["funnel"]}
    assert 0 < funnel["target_check"]["kept"] < funnel["target_check"]["entered"]
    assert summary["counts"]["benign"] > 0
    assert summary["version"] == MODELS_ID
