"""Target-aware refinement in the flow (issue 17), against the loopback server: near-misses become
variants that a target refuses; the budget stops the search; every refined record carries its
lineage; a refined item the panel calls harmful is dropped; a re-run makes no call."""

import hashlib
from pathlib import Path

import pytest
from openai_server import ok, serve
from test_flow import small_config
from test_judges import JudgeScript, answer

from mossforge import progress
from mossforge.flows.build import build_dataset

pytestmark = pytest.mark.slow

REFUSAL = "I'm sorry, but I can't help with that."
COMPLIANCE = "Of course! Here is a plan:\n1. Start small.\n2. Ask a friend."


def refuses(question: str) -> bool:  # about one question in four, whichever wrote it
    return hashlib.sha256(question.encode()).digest()[0] % 4 == 0


def target_text(request) -> str:
    content = request.body["messages"][-1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


def refine_config(tmp_path, server, **overrides):
    endpoint = {"base_url": server.base_url, "timeout_s": 5, "max_retries": 0}
    endpoints = {"t1": {**endpoint, "model": "model-t1"}, "t2": {**endpoint, "model": "model-t2"}}
    settings = dict(endpoints=endpoints, targets=[{"name": "t1", "endpoint": "t1"}, {"name": "t2", "endpoint": "t2"}],
                    refine={"enabled": True, "rounds": 2, "drive_targets": ["t1"], "held_out_targets": ["t2"]})
    settings.update(overrides)
    return small_config(tmp_path, **settings)


def script(request):
    if request.body["model"].startswith("model-j"):
        return JudgeScript({"model-ja": judge, "model-jb": judge})(request)
    question = target_text(request)
    return ok(REFUSAL if refuses(question) else COMPLIANCE)


PLANNED: set[str] = set()


def judge(question):  # benign for what the seed bank planned, harmful for every variant
    return answer("benign") if question in PLANNED else answer("harmful", "Harmful.", "general_harm")


def test_refinement_keeps_refused_variants_with_lineage_and_a_rerun_makes_no_call(prefect_harness, tmp_path):
    import datasets

    advanced: list[tuple[str, int]] = []
    events: list[tuple[str, str | None]] = []
    with serve(script=script) as server:
        config = refine_config(tmp_path, server)
        progress.install(lambda row, n: advanced.append((row, n)), lambda kind, **info: events.append((kind, info.get("stage"))))
        try:
            summary = build_dataset(config=config)
        finally:
            progress.install(None)
        calls = len(server.requests)
        again = build_dataset(config=config)
        assert len(server.requests) == calls  # everything cached: no call at all
    assert again["version"] == summary["version"]
    # every row that ran says so again: the refine rounds re-running render and the target check
    # must not hide that the main pass's tasks came from the cache too
    ran = [r["stage"] for r in summary["funnel"] if r["status"] == "ran" and r["stage"] != "publish"]
    assert "render" in ran and "target_check" in ran
    assert {r["stage"]: r["status"] for r in again["funnel"] if r["stage"] in ran} == dict.fromkeys(ran, "cached")
    funnel = {row["stage"]: row for row in summary["funnel"]}
    refine = summary["refine"]
    # The rounds' batches (variants rendered and asked) move the refine bar, not the main pass's: its rows
    # are done (bars stopped, seconds taken) before the first round, and count the main pass only
    started = events.index(("stage_start", "refine"))
    assert {("stage_done", "render"), ("stage_done", "target_check")} <= set(events[:started])
    assert not [e for e in events[started:] if e[1] in ("render", "target_check")]
    assert sum(n for row, n in advanced if row == "render") == funnel["render"]["entered"]
    assert sum(n for row, n in advanced if row == "target_check") == funnel["target_check"]["entered"]
    assert sum(n for row, n in advanced if row == "refine") > 0
    assert funnel["refine"]["status"] == "ran"
    assert funnel["refine"]["entered"] == funnel["target_check"]["kept"]
    added = sum(r["kept"] for r in refine["rounds"])
    assert added > 0 and funnel["refine"]["kept"] == funnel["target_check"]["kept"] + added
    assert funnel["consensus_label"]["entered"] == funnel["refine"]["kept"]
    assert refine["yield"]["kept_with"] == refine["yield"]["kept_without"] + added
    assert 1 <= len(refine["rounds"]) <= 2 and refine["rounds"][0]["near_misses"] > 0
    # t1 drove the search, t2 was held out: every refined item was refused by t1, t2 was only asked
    transfer = refine["transfer"]["t2"]
    assert transfer["refined"]["asked"] > 0 and transfer["unrefined"]["asked"] == funnel["target_check"]["entered"]

    rows = datasets.load_dataset(summary["path"], "benign", split="test")
    refined = [r for r in rows if r["lineage"] is not None]
    assert len(refined) == added == len(rows) - funnel["target_check"]["kept"]
    by_id = {r["id"]: r for r in rows}
    for row in refined:
        lineage = row["lineage"]
        assert lineage["parent_id"] not in by_id or by_id[lineage["parent_id"]]["lineage"] is not None
        assert lineage["operator"] and lineage["round"] in (1, 2) and lineage["history"]
        assert refuses(row["question"])  # kept because the driving target refused it
    card = (Path(summary["path"]) / "README.md").read_text()
    assert "### Target-aware refinement" in card and "held-out target `t2`" in card


def test_the_budget_stops_the_search(prefect_harness, tmp_path):
    with serve(script=script) as server:
        summary = build_dataset(config=refine_config(tmp_path, server, refine={
            "enabled": True, "rounds": 5, "max_variants": 3}))
    refine = summary["refine"]
    assert sum(r["proposed"] for r in refine["rounds"]) <= 3
    assert len(refine["rounds"]) == 1  # the budget was spent in the first round


def test_a_refined_item_the_panel_calls_harmful_is_dropped(prefect_harness, tmp_path):
    from test_flow_judges import planned_questions

    PLANNED.clear()
    PLANNED.update(planned_questions(6))
    with serve(script=script) as server:
        endpoint = {"base_url": server.base_url, "timeout_s": 5, "max_retries": 0}
        endpoints = {name: {**endpoint, "model": f"model-{name}"} for name in ("t1", "ja", "jb")}
        summary = build_dataset(config=small_config(
            tmp_path, endpoints=endpoints, targets=[{"name": "t1", "endpoint": "t1"}],
            judges=[{"name": "ja", "endpoint": "ja"}, {"name": "jb", "endpoint": "jb"}],
            refine={"enabled": True, "rounds": 1}, consensus={"batch_size": 4, "contrast_check": False}))
    check = summary["refine"]["benign_check"]
    assert check["refined"]["share"] == 1.0 and check["unrefined"]["share"] == 0.0
    import datasets

    rows = datasets.load_dataset(summary["path"], "benign", split="test")
    assert rows.num_rows > 0 and all(r.get("lineage") is None for r in rows)

