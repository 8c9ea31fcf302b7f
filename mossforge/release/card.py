"""The dataset card: a README.md with Hugging Face YAML metadata, written from the manifest.

The text is in Jinja templates (`templates/card/`): `card.md.j2` is the card, and each optional
section has a template of its own (`refusals`, `judging`, `models`, `version`) so that changes to one
merge cleanly with changes to another. This module shapes the manifest's numbers into what the
templates show; the Hub metadata (YAML) comes from `huggingface_hub.DatasetCardData`.
"""

from __future__ import annotations

from huggingface_hub import DatasetCardData

from mossforge.release.layout import SHARD
from mossforge.release.templating import md_table, render

_NOT_RUN_MEANING = {
    "target_check": "no target model was asked: nothing here is known to be refused",
    "consensus_label": "no judge panel was asked: nothing here is confirmed benign by a model or a person",
}


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    return "100K<n<1M"


def funnel_table(funnel: list[dict]) -> str:
    rows = []
    for row in funnel:
        dropped = ", ".join(f"{k}: {v}" for k, v in row["dropped"].items()) or "-"
        rows.append([row["stage"], row["status"], row["entered"], row["kept"], dropped, row["note"] or ""])
    return md_table(["stage", "status", "in", "out", "dropped (reason: count)", "note"], rows)


def model_call_rows(accounting: dict) -> list[dict]:
    """One row per endpoint of a client's accounting: what the run asked, and what it cost."""
    rows = []
    for name, tally in accounting["endpoints"].items():
        rows.append({
            "endpoint": name, "model": tally["model"], "requests": tally["requests"],
            "calls": tally["calls"], "cache_hits": tally["cache_hits"], "retries": tally["retries"],
            "failures": ", ".join(f"{k}: {v}" for k, v in tally["failures"].items()) or "-",
            "tokens_in": tally["input_tokens"], "tokens_out": tally["output_tokens"],
            "cost_usd": "-" if tally["cost_usd"] is None else f"{tally['cost_usd']:.4f}",
        })
    return rows


def target_rows(funnel: list[dict]) -> list[dict]:
    """Per target: how many queries it was asked and how it answered (from the funnel's details)."""
    row = next((r for r in funnel if r["stage"] == "target_check"), None)
    details = (row or {}).get("details") or {}
    targets = sorted(key.split(":", 1)[1] for key in details if key.startswith("asked:"))
    rows = []
    for target in targets:
        asked = details[f"asked:{target}"]
        count = {label: details.get(f"{label}:{target}", 0) for label in
                 ("full_refusal", "partial_refusal", "full_compliance", "unparsed", "error")}
        refused = count["full_refusal"] + count["partial_refusal"]
        rows.append({"target": target, "asked": asked, "refused": refused,
                     "refusal_rate": f"{refused / asked:.1%}" if asked else "-", **count})
    return rows


def refusals_section(manifest: dict) -> str:
    """Who refused: one row per target, with the rule that decided what was kept."""
    rows = target_rows(manifest["funnel"])
    if not rows:
        return ""
    row = next(r for r in manifest["funnel"] if r["stage"] == "target_check")
    tiers = {k.split(":", 1)[1]: v for k, v in (row.get("details") or {}).items() if k.startswith("tier:")}
    return render("card/refusals.md.j2", row=row, rows=rows, tiers=tiers)


def render_card(manifest: dict, benign_features, contrast_features) -> str:
    from datasets import DatasetInfo
    from datasets.info import DatasetInfosDict

    config = manifest["config"]
    counts = manifest["counts"]
    card = DatasetCardData(
        license=config["dataset"]["license"],
        language=["en"],
        pretty_name=config["dataset"]["name"],
        task_categories=["visual-question-answering"],
        tags=["over-refusal", "safety", "evaluation", "synthetic", "mossforge"],
        size_categories=[_size_category(counts["benign"])],
        configs=[
            {"config_name": "benign", "default": True,
             "data_files": [{"split": "test", "path": f"data/benign/{SHARD.split('-')[0]}-*.parquet"}]},
            {"config_name": "contrast",
             "data_files": [{"split": "test", "path": f"data/contrast/{SHARD.split('-')[0]}-*.parquet"}]},
        ] + _controversial_configs(counts),
    )
    infos = {"benign": DatasetInfo(features=benign_features),
             "contrast": DatasetInfo(features=contrast_features)}
    if counts.get("controversial"):
        infos["controversial"] = DatasetInfo(features=benign_features)
    DatasetInfosDict(infos).to_dataset_card_data(card)

    types = sorted({k.split("/")[0] for k in counts["by_type_and_category"]})
    categories = sorted(counts["by_category"])
    coverage = [
        [t] + [counts["by_type_and_category"].get(f"{t}/{c}", 0) for c in categories]
        + [counts["by_type"].get(t, 0)]
        for t in types
    ]
    verification = []
    for stage in ("target_check", "consensus_label"):
        status = manifest["stages"].get(stage, "not_run")
        verification.append((stage, status, _NOT_RUN_MEANING[stage] if status == "not_run" else "ran"))
    consensus = manifest.get("consensus") or {}
    unconfirmed = False
    if manifest["stages"].get("consensus_label") == "ran" and consensus.get("human_labelled") is not None \
            and not consensus.get("judges"):  # reviewers' labels without a panel: what they did not label is not confirmed
        unreviewed = consensus["labels"].get("unreviewed", 0)
        unconfirmed = unreviewed > 0
        verification[1] = ("consensus_label", "reviewers only", f"no judge panel: reviewers labelled "
                           f"{consensus['human_labelled']} of {consensus['items']} candidates"
                           + (f"; the other {unreviewed} are confirmed benign by nobody" if unreviewed else ""))
    return render(
        "card/card.md.j2", yaml=card.to_yaml(), manifest=manifest, config=config, counts=counts,
        verification=verification,
        candidate=unconfirmed or any(status == "not_run" for _, status, _ in verification),
        deciders="the judges" if consensus.get("judges") else "the reviewers",  # who split controversial items
        refusals=refusals_section(manifest), judging=judging_section(manifest.get("consensus")),
        refine=refine_section(manifest.get("refine")),
        categories=categories, coverage=coverage, funnel=funnel_table(manifest["funnel"]),
        call_rows=model_call_rows(manifest["model_calls"]) if manifest.get("model_calls") else [],
        models=models_section(manifest), version=version_section(manifest),
        generator_names={g["generator"] for g in manifest["generators"]},
        renderer_names={r["renderer"] for r in manifest["renderers"]},
        revision=f', revision="v{manifest["version_number"]}"' if manifest.get("version_number") else "",
    )


# --- versions and models: separate sections, so other card changes merge cleanly ---------------


def _controversial_configs(counts: dict) -> list[dict]:
    if not counts.get("controversial"):
        return []
    return [{"config_name": "controversial",
             "data_files": [{"split": "test", "path": f"data/controversial/{SHARD.split('-')[0]}-*.parquet"}]}]


def version_section(manifest: dict) -> str:
    """The version's number, what it follows and why it got that number."""
    change = manifest.get("change")
    if not change:
        return ""
    return render("card/version.md.j2", manifest=manifest, change=change, previous=change.get("previous"))


def models_section(manifest: dict) -> str:
    """Which models were targets and judges (names, model ids) and how they answered and voted on
    the *published* items; `refusals_section` counts over every candidate the stage saw."""
    models = manifest.get("models")
    if not models:
        return ""
    return render("card/models.md.j2", m=models,
                  has_local_judge=any(j.get("local_model") for j in models["judges"]))


def refine_section(refine: dict | None) -> str:
    """The refinement's rounds, yield, transfer to held-out targets, benign check and operators."""
    if not refine:
        return ""
    rounds = [[r["round"], r["near_misses"], r["proposed"], r["kept"]] for r in refine["rounds"]]
    operators = [[r["operator"], r.get("kind") or "", r.get("proposed", 0), r.get("kept", 0)]
                 for r in refine.get("operators", []) if r.get("proposed")]

    def pct(value):
        return "-" if value is None else f"{value:.0%}"

    return render("card/refine.md.j2", r=refine, y=refine["yield"], round_rows=rounds, operator_rows=operators,
                  pct=pct)


def judging_section(consensus: dict | None) -> str:
    """Who judged, by which rule, how much they agreed, and whether they call real harm harmful."""
    if not consensus:
        return ""
    judge_rows = [[j["name"], j["model"], j["format"], f"{j['weight']:g}"] for j in consensus["judges"]]
    return render("card/judging.md.j2", c=consensus, a=consensus["agreement"], judge_rows=judge_rows,
                  contrast=consensus.get("contrast_check"))
