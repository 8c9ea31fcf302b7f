"""The dataset card and the version report, pinned byte for byte against golden files.

The inputs are two real manifests and their rows (tests/data/release/, captured from the two
configs of tests/test_version_ids.py: the default config, and targets + judges on the loopback
server) plus a variant that reaches the branches those runs do not (a controversial split, a local
judge, human labels, costs, an LLM generator, HTML-special characters in questions).

The golden files were written by the f-string card and report before they moved to Jinja
templates; the templates must reproduce them exactly. To regenerate them deliberately (and say
why in the commit): MOSSFORGE_REGEN_GOLDEN=1 pytest tests/test_card_report_golden.py
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from mossforge.release import publish
from mossforge.release.card import render_card
from mossforge.release.report import write_report
from mossforge.schema import dataset_features

DATA = Path(__file__).parent / "data" / "release"
GOLDEN = DATA / "golden"
REGENERATE = os.environ.get("MOSSFORGE_REGEN_GOLDEN") == "1"


def _load(name: str) -> tuple[dict, list[dict], list[dict]]:
    manifest = json.loads((DATA / f"manifest_{name}.json").read_text())
    rows = json.loads((DATA / f"rows_{name}.json").read_text())
    return manifest, rows["accepted"], rows["dropped"]


def _extra() -> tuple[dict, list[dict], list[dict]]:
    """The targets + judges manifest bent to reach every optional branch of card and report."""
    manifest, accepted, dropped = _load("models")
    manifest = copy.deepcopy(manifest)
    manifest["counts"]["controversial"] = 2
    manifest["generators"].append({"generator": "llm", "model_id": "writer <b>&</b>", "prompt_template_id":
                                   "llm-negated_harm-v1", "prompt_template_hash": "ab" * 32})
    manifest["renderers"].append({"renderer": "diffusers", "model_id": "tiny-sd"})
    judge = manifest["models"]["judges"][0]
    judge["local_model"] = {"model": "qwen", "upstream": "Qwen/Qwen2.5-Coder-1.5B-Instruct",
                            "quantization": "Q4_K_M", "license": "apache-2.0", "sha256": "cd" * 32}
    manifest["models"]["targets"][0]["image_as_text"] = True
    consensus = manifest["consensus"]
    consensus["human_labelled"] = 3
    consensus["human_mode"] = "override"
    consensus["abstentions"] = {"ja": 2}
    consensus["controversial_split"] = True
    for endpoint in manifest["model_calls"]["endpoints"].values():
        endpoint["cost_usd"] = 0.01234
        endpoint["failures"] = {"timeout": 1}
    manifest["dataset"] = "demo <&> \"quoted\" 'set'"
    accepted = copy.deepcopy(accepted)
    accepted[0]["question"] = "What's <this> & \"that\"?"
    return manifest, accepted, dropped


CASES = {"default": lambda: _load("default"), "models": lambda: _load("models"), "extra": _extra}


def _check(actual: str, golden: Path) -> None:
    if REGENERATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    expected = golden.read_text(encoding="utf-8")
    assert actual == expected, f"{golden.name} differs from the golden file"


@pytest.mark.parametrize("case", sorted(CASES))
def test_card_matches_golden(case):
    manifest, _, _ = CASES[case]()
    card = render_card(manifest, dataset_features(), publish._contrast_features())
    _check(card, GOLDEN / f"card_{case}.md")


@pytest.mark.parametrize("case", sorted(CASES))
def test_report_matches_golden(case, tmp_path):
    manifest, accepted, dropped = CASES[case]()
    page = write_report(tmp_path, manifest, accepted, dropped)
    _check(page.read_text(encoding="utf-8"), GOLDEN / f"report_{case}.html")
    _check((page.parent / "plots.json").read_text(encoding="utf-8"), GOLDEN / f"plots_{case}.json")


def test_golden_files_are_not_being_regenerated():
    """A run with MOSSFORGE_REGEN_GOLDEN=1 rewrites the golden files and so cannot fail: never in CI."""
    assert not REGENERATE or not os.environ.get("CI"), "MOSSFORGE_REGEN_GOLDEN=1 in CI"


def test_a_reviewers_only_card_says_the_reviewers_split_the_controversial_items():
    """Without a judge panel the reviewers' disagreement makes an item controversial; the card's
    Contents line said 'the judges did not agree' all the same."""
    manifest, _, _ = _extra()
    consensus = manifest["consensus"]
    consensus["judges"] = []
    consensus["labels"] = {"benign": 1, "controversial": 2, "unreviewed": 3}
    card = render_card(manifest, dataset_features(), publish._contrast_features())
    assert "2 in `controversial` (the reviewers did not agree they are benign" in card
    assert "the judges did not agree" not in card
    panel, _, _ = _extra()
    assert "2 in `controversial` (the judges did not agree" in render_card(panel, dataset_features(),
                                                                           publish._contrast_features())
