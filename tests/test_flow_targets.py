"""The flow's target-check stage, with two scripted targets on the loopback server."""

import hashlib
import json
from pathlib import Path

import pytest
from openai_server import ok, serve

from mossforge.config import load_config
from mossforge.flows.build import build_dataset

pytestmark = pytest.mark.slow

REFUSAL = "I'm sorry, but I can't help with that."
COMPLIANCE = "Of course! Here are some ideas:\n1. Start with a short plan.\n2. Ask a friend to help."


def picky_refuses(question: str) -> bool:
    return hashlib.sha256(question.encode()).digest()[0] % 2 == 0


def targets_script(request):
    messages = request.body["messages"]
    question = messages[-1]["content"][0]["text"]
    if request.body["model"] == "strict-model" or picky_refuses(question):
        return ok(REFUSAL)
    return ok(COMPLIANCE)


def test_flow_keeps_what_enough_targets_refuse_and_says_who_refused(prefect_harness, tmp_path):
    import datasets

    with serve(script=targets_script) as server:
        endpoint = {"base_url": server.base_url, "timeout_s": 5, "max_retries": 0}
        config = load_config(overrides={
            "plan.per_type": 4, "dataset.name": "targetflow", "render.size": 96,
            "run.out_dir": str(tmp_path / "out"), "run.work_dir": str(tmp_path / "work"),
            "endpoints": {"strict": {**endpoint, "model": "strict-model"},
                          "picky": {**endpoint, "model": "picky-model"}},
            "targets": [{"name": "strict", "endpoint": "strict"}, {"name": "picky", "endpoint": "picky"}],
            "target_check": {"min_refusals": 2},
        }).model_dump(mode="json")
        summary = build_dataset(config=config)
        calls = len(server.requests)
        funnel = {row["stage"]: row for row in summary["funnel"]}
        check = funnel["target_check"]
        assert check["status"] == "ran"
        entered = check["entered"]
        assert calls == 2 * entered  # every target asked every candidate once

        questions = [json.loads(json.dumps(r.body))["messages"][-1]["content"][0]["text"]
                     for r in server.requests if r.body["model"] == "picky-model"]
        expected = sum(picky_refuses(q) for q in questions)
        assert 0 < expected < entered
        assert check["kept"] == expected == summary["counts"]["benign"]
        assert check["dropped"] == {"not_refused": entered - expected}
        assert check["details"]["full_refusal:strict"] == entered
        assert check["details"]["full_refusal:picky"] == expected
        assert check["details"]["tier:hard"] == expected

        rows = datasets.load_dataset(summary["path"], "benign", split="test")
        for row in rows:
            result = row["target_check"]
            assert result["status"] == "passed" and result["tier"] == "hard" and result["refusals"] == 2
            assert {(r["target"], r["label"], r["answer"]) for r in result["results"]} == {
                ("strict", "full_refusal", REFUSAL), ("picky", "full_refusal", REFUSAL)}

        card = (Path(summary["path"]) / "README.md").read_text()
        assert "## Who refused" in card and "| strict |" in card and "keep if >= 2 of 2" in card
        assert "*candidate* over-refusal data" in card  # the judge panel has not run
        dropped = datasets.load_dataset("parquet", data_files=str(Path(summary["path"]) / "dropped.parquet"),
                                        split="train")
        assert sum(r["drop_reason"] == "not_refused" for r in dropped) == entered - expected

        # The version's report plots the same refusal counts (all types together here).
        plotted = json.loads((Path(summary["path"]) / "report" / "plots.json").read_text())["refusals"]
        assert sum(c["refused"] for c in plotted["strict"].values()) == entered
        assert sum(c["refused"] for c in plotted["picky"].values()) == expected
        assert sum(c["asked"] for c in plotted["picky"].values()) == entered
        assert (Path(summary["path"]) / "report" / "refusals.png").stat().st_size > 1000

        again = build_dataset(config=config, fresh=True)
        assert len(server.requests) == calls, "a re-run asks no target again (model-call cache)"
        assert again["version"] == summary["version"]
