"""The flow with a judge panel against the loopback server: the stage runs, splits, the card
states who judged, the rule, the agreement and the contrast check; a re-run asks no judge again."""

import json
from pathlib import Path

import pytest
from openai_server import serve
from test_flow import small_config
from test_judges import JudgeScript, answer

from mossforge.flows.build import build_dataset

pytestmark = pytest.mark.slow


def planned_questions(per_type: int) -> set[str]:
    """The questions the seed bank writes for this plan (the judges below know them as benign)."""
    from mossforge.generators.plan import draw_slots
    from mossforge.generators.seedbank import SeedBank

    bank = SeedBank()
    return {bank.generate(slot, seed=0).question for slot in draw_slots(bank.slot_space(), per_type, 0)}


def test_flow_with_a_judge_panel(prefect_harness, tmp_path):
    import datasets

    benign = planned_questions(6)

    def judge(question):  # benign for the planned questions, harmful for anything else
        return answer("benign") if question in benign else answer("harmful", "Harmful.", "general_harm")

    def doubtful(question):
        return answer("controversial", "Could be read badly.") if question in benign and \
            question.startswith("How") else judge(question)

    endpoints = {m: {"base_url": "", "model": f"model-{m}", "max_concurrency": 4, "timeout_s": 5}
                 for m in ("ja", "jb", "jc")}
    with serve(JudgeScript({"model-ja": judge, "model-jb": judge, "model-jc": doubtful})) as server:
        for endpoint in endpoints.values():
            endpoint["base_url"] = server.base_url
        config = small_config(tmp_path, endpoints=endpoints,
                              judges=[{"name": m, "endpoint": m} for m in endpoints],
                              consensus={"controversial_split": True, "batch_size": 4})
        summary = build_dataset(config=config)
        asked = len(server.requests)
        funnel = {row["stage"]: row for row in summary["funnel"]}
        stage = funnel["consensus_label"]
        assert stage["status"] == "ran" and stage["entered"] == funnel["render"]["kept"]
        consensus = summary["consensus"]
        labels = consensus["labels"]
        assert asked == 3 * 2 * stage["entered"]  # three judges, each item and its contrast
        assert consensus["judge_calls"]["consensus_label"]["requests_per_item"] == 3.0
        assert labels.get("harmful", 0) == 0 and labels["controversial"] > 0 and labels["benign"] > 0
        assert summary["counts"]["benign"] == labels["benign"]
        assert summary["counts"]["controversial"] == labels["controversial"]

        # Contrasts: a changed question is harmful; negated_harm keeps the question (only its image
        # changes), and these judges read text only: the check reports what the panel really did.
        path = Path(summary["path"])
        contrast = datasets.load_dataset(str(path), "contrast", split="test")
        controversial = datasets.load_dataset(str(path), "controversial", split="test")
        assert len(contrast) == stage["kept"]  # every published item's contrast, controversial ones too
        expected = sum(q not in benign for q in contrast["question"])
        check = consensus["contrast_check"]
        assert check["judged"] == stage["entered"]
        assert check["labels"]["harmful"] == expected
        assert check["harmful_share"] == round(expected / check["judged"], 4) < 1.0

        rows = datasets.load_dataset(str(path), "benign", split="test")
        assert all(r["consensus_label"]["consensus"] == "benign" and len(r["consensus_label"]["votes"]) == 3
                   for r in rows)
        assert set(controversial["stimulus_type"]) and all(
            r["consensus_label"]["consensus"] == "controversial" for r in controversial)

        card = (path / "README.md").read_text()
        for text in ("### The judge panel", "model-ja", "unanimous: benign when every valid vote is benign",
                     "Fleiss' kappa", f"called **{check['harmful_share']:.0%}**", "config_name: controversial",
                     "- **consensus_label**: `ran`"):
            assert text in card, text
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["consensus"]["agreement"]["raters"] == 3

        # A fresh re-run recomputes the stage from the model-call cache: no judge is asked again.
        again = build_dataset(config=config, fresh=True)
        assert len(server.requests) == asked
        assert again["version"] == summary["version"]
