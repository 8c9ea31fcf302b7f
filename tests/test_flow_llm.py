"""The flow with the LLM generator, against the loopback OpenAI-compatible server."""

import json
from pathlib import Path

import pytest
from openai_server import serve
from test_llm_generator import Writer

from mossforge.config import load_config
from mossforge.flows.build import build_dataset

pytestmark = pytest.mark.slow

SECRET = "sk-test-DO-NOT-LEAK-4242"


def llm_config(tmp_path, base_url, **overrides):
    settings = {
        "dataset.name": "llmflow", "plan.per_type": 4, "render.size": 96,
        "run.out_dir": str(tmp_path / "out"), "run.work_dir": str(tmp_path / "work"),
        "generate.generator": "llm", "generate.endpoint": "writer", "generate.candidates_per_call": 3,
        "endpoints": {"writer": {"base_url": base_url, "model": "writer-model",
                                 "api_key_env": "MOSSFORGE_TEST_KEY", "max_concurrency": 4,
                                 "timeout_s": 5, "price_per_1k_input": 0.1, "price_per_1k_output": 0.2}},
    }
    settings.update(overrides)
    return load_config(overrides=settings).model_dump(mode="json")


def test_llm_flow_counts_calls_and_a_rerun_makes_none(prefect_harness, tmp_path, monkeypatch, caplog):
    import datasets

    monkeypatch.setenv("MOSSFORGE_TEST_KEY", SECRET)
    with serve(script=Writer()) as server:
        config = llm_config(tmp_path, server.base_url)
        first = build_dataset(config=config)
        calls = len(server.requests)
        assert calls > 0
        total = first["model_calls"]["total"]
        assert total["calls"] == calls and total["cache_hits"] == 0 and total["cost_usd"] > 0
        generate = next(r for r in first["funnel"] if r["stage"] == "generate")
        # 4 per type and a margin for dedup's losses (topped up when more are lost; issue 15)
        assert generate["entered"] >= 15 and "writer" in generate["note"]

        rows = datasets.load_dataset(first["path"], "benign", split="test")
        assert len(rows) == first["counts"]["benign"] > 0
        assert {r["provenance"]["generator"] for r in rows} == {"llm"}
        assert {r["provenance"]["model_id"] for r in rows} == {"writer-model"}
        assert all(r["provenance"]["prompt_template_hash"] for r in rows)
        manifest = json.loads((Path(first["path"]) / "manifest.json").read_text())
        assert manifest["model_calls"]["total"]["calls"] == calls

        # Recompute every stage (no Prefect cache): the model-call cache answers everything.
        again = build_dataset(config=config, fresh=True)
        assert len(server.requests) == calls, "a re-run must make zero model calls"
        assert again["model_calls"]["total"]["calls"] == 0
        assert again["model_calls"]["total"]["cache_hits"] == total["requests"]
        assert again["version"] == first["version"]

    # The key is never written anywhere: outputs, work files, caches, logs.
    for path in [*(tmp_path / "out").rglob("*"), *(tmp_path / "work").rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text


def test_llm_config_needs_a_declared_endpoint():
    from mossforge.config import ConfigError

    with pytest.raises(ConfigError, match="generate.endpoint: 'nope' is not declared"):
        load_config(overrides={"generate.generator": "llm", "generate.endpoint": "nope"})


def test_missing_key_variable_is_a_clear_error(prefect_harness, tmp_path, monkeypatch):
    from mossforge.client import MissingApiKeyError

    monkeypatch.delenv("MOSSFORGE_TEST_KEY", raising=False)
    config = llm_config(tmp_path, "http://127.0.0.1:9/v1")
    with pytest.raises(MissingApiKeyError, match="MOSSFORGE_TEST_KEY"):
        build_dataset(config=config)


def test_the_generators_repair_counters_reach_the_funnel(prefect_harness, tmp_path):
    """Every first answer is one candidate short; the repair call supplies it: the generate row
    counts the repairs (GenerationStats), not only the drops."""
    import json as _json

    from test_llm_generator import is_repair

    def render(candidates, request):
        return _json.dumps({"candidates": candidates if is_repair(request) else candidates[:-1]})

    with serve(script=Writer(render=render)) as server:
        config = llm_config(tmp_path, server.base_url, **{"dataset.name": "repairs", "plan.per_type": 2})
        config["endpoints"]["writer"].pop("api_key_env")
        summary = build_dataset(config=config)
    generate = next(r for r in summary["funnel"] if r["stage"] == "generate")
    details = generate["details"]
    assert details["repair_calls"] > 0 and details["repaired"] == details["repair_calls"]
    assert details["accepted"] == generate["kept"] and details["requested"] == generate["entered"]
    assert details["calls"] == details["repair_calls"] * 2 and not generate["dropped"]
