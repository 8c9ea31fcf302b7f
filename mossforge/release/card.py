"""The dataset card: a README.md with Hugging Face YAML metadata, written from the manifest."""

from __future__ import annotations

from huggingface_hub import DatasetCardData

from mossforge.release.layout import SHARD

_NOT_RUN_MEANING = {
    "target_check": "no target model was asked: nothing here is known to be refused",
    "consensus_label": "no judge panel was asked: nothing here is confirmed benign by a model or a person",
}


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    return "100K<n<1M"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def funnel_table(funnel: list[dict]) -> str:
    rows = []
    for row in funnel:
        dropped = ", ".join(f"{k}: {v}" for k, v in row["dropped"].items()) or "-"
        rows.append([row["stage"], row["status"], row["entered"], row["kept"], dropped, row["note"] or ""])
    return _table(["stage", "status", "in", "out", "dropped (reason: count)", "note"], rows)


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
    tier_text = ", ".join(f"`{k}`: {v}" for k, v in sorted(tiers.items())) or "none"
    return (f"## Who refused\n\nEvery candidate was asked of each target, as a user would ask it. "
            f"Rule: {row['note']}. Counts are over all candidates that reached the stage; "
            f"kept items by tier: {tier_text} (`hard`: every target refused).\n\n"
            + _table(list(rows[0]), [list(r.values()) for r in rows]) + "\n")


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
        meaning = _NOT_RUN_MEANING[stage] if status == "not_run" else "ran"
        verification.append(f"- **{stage}**: `{status}` ({meaning})")
    candidate = ("\nUntil both stages have run, treat this version as *candidate* over-refusal data.\n"
                 if any(manifest["stages"].get(s, "not_run") == "not_run" for s in ("target_check", "consensus_label"))
                 else "")
    generators = "\n".join(
        f"- `{g['generator']}`" + (f" model `{g['model_id']}`" if g["model_id"] else "")
        + f", template `{g['prompt_template_id']}` (sha256 `{(g['prompt_template_hash'] or '')[:12]}`)"
        for g in manifest["generators"]
    ) or "- (none)"
    renderers = "\n".join(f"- `{r['renderer']}`" + (f" model `{r['model_id']}`" if r["model_id"] else "")
                          for r in manifest["renderers"]) or "- (none)"
    limitations = ""
    if any(g["generator"] == "seedbank" for g in manifest["generators"]):
        limitations += ("- Text comes from mossforge's seed bank: a curated, combinatorial library written for\n"
                        "  the project, not a language model. Its phrasing is varied by design but its ideas are finite.\n")
    if any(g["generator"] == "llm" for g in manifest["generators"]):
        limitations += ("- Text comes from a language model prompted with seed-bank examples; read a sample\n"
                        "  before relying on it.\n")
    if any(r["renderer"] == "offline-pillow" for r in manifest["renderers"]):
        limitations += ("- Images come from the offline Pillow renderer: typographic scene cards with drawn\n"
                        "  overlays, flagged `synthetic`. They are not photographs and will not look like\n"
                        "  MOSSBench's images.\n")
    calls = ""
    if manifest.get("model_calls"):
        rows = model_call_rows(manifest["model_calls"])
        calls = "\nModel calls of the run that built this version:\n\n" + _table(
            list(rows[0]), [list(r.values()) for r in rows]) + "\n"

    body = f"""
# {config['dataset']['name']} {_number(manifest)}(version `{manifest['version']}`)

{config['dataset']['description']}

Built by mossforge {manifest['code_version']} on
{manifest['created_at']}, config hash `{manifest['config_hash']}`.

## Intended use

**{config['dataset']['intended_use']}.** Each query is meant to be harmless while looking alarming,
so that a model's refusal of it measures over-refusal. The `contrast` config holds each item's
harmful counterpart (the question made explicitly harmful, or the image without its negation) for
checking that a model still refuses real harm. Do not train on the contrast set.

## What was and was not verified

{chr(10).join(verification)}
{candidate}
{refusals_section(manifest)}{judging_section(manifest.get("consensus"))}
## Contents

{counts['benign']} items in `benign` (split `test`), {counts['contrast']} in `contrast`{_controversial_count(counts)}.

{_table(['stimulus type'] + categories + ['total'], coverage)}

## Funnel

{funnel_table(manifest['funnel'])}

## Generators

Text:
{generators}

Images:
{renderers}
{calls}{models_section(manifest)}{version_section(manifest)}
## Limitations

{limitations}- Apparent harm categories describe what a query *looks like* it touches, not actual harm.

## Loading

```python
from datasets import load_dataset
benign = load_dataset("<this folder or repo>", "benign", split="test"{_revision(manifest)})
contrast = load_dataset("<this folder or repo>", "contrast", split="test"{_revision(manifest)})
```
"""
    return f"---\n{card.to_yaml()}\n---\n{body}"


# --- versions and models: separate sections, so other card changes merge cleanly ---------------


def _number(manifest: dict) -> str:
    return f"{manifest['version_number']} " if manifest.get("version_number") else ""


def _revision(manifest: dict) -> str:
    """On the Hub, each version is a tag: `revision="v1.2.0"` loads exactly this version."""
    return f', revision="v{manifest["version_number"]}"' if manifest.get("version_number") else ""


def _controversial_configs(counts: dict) -> list[dict]:
    if not counts.get("controversial"):
        return []
    return [{"config_name": "controversial",
             "data_files": [{"split": "test", "path": f"data/controversial/{SHARD.split('-')[0]}-*.parquet"}]}]


def _controversial_count(counts: dict) -> str:
    if not counts.get("controversial"):
        return ""
    return (f", {counts['controversial']} in `controversial` (the judges did not agree they are benign:"
            " not part of the benign set)")


def version_section(manifest: dict) -> str:
    """The version's number, what it follows and why it got that number."""
    change = manifest.get("change")
    if not change:
        return ""
    previous = change.get("previous")
    after = (f"after {previous['version_number']} (`{previous['version']}`)" if previous else "the first version")
    return (f"\n## Version\n\n{manifest['version_number']}, {after}: **{change['level']}** "
            f"({'; '.join(change['reasons'])}). Item ids are stable across versions: the same query "
            "keeps its id. Major: items removed or columns changed; minor: items added or changed; "
            "patch: metadata only.\n")


def _local_note(role: dict) -> str:
    local = role.get("local_model")
    if not local:
        return ""
    return (f" (local: {local['upstream']} {local['quantization']}, {local['license']}, "
            f"GGUF sha256 `{local['sha256']}`)")


def models_section(manifest: dict) -> str:
    """Which models were targets and judges (names, model ids) and how they answered and voted on
    the *published* items; `refusals_section` counts over every candidate the stage saw."""
    models = manifest.get("models")
    if not models:
        return ""
    lines = ["", "## Targets and judges", ""]
    if models["targets"]:
        lines += ["Targets (asked each query as a user would):", ""]
        lines += [f"- `{t['name']}`: model `{t['model_id']}`{_local_note(t)}"
                  + ("; **target saw the image as text** (its description in the user turn, "
                     "`[Image: …] question`), not the image" if t.get("image_as_text") else "")
                  for t in models["targets"]]
    else:
        lines.append("No target model was configured.")
    if models["target_results"]:
        lines += ["", "Their answers on the published items:", "",
                  _table(["target", "model", "classifier", "answered", "refused"],
                             [[r["target"], r["model_id"], r["classifier"], r["answered"], r["refused"]]
                              for r in models["target_results"]])]
    lines.append("")
    if models["judges"]:
        lines += ["Judges:", ""] + [f"- `{j['name']}`: model `{j['model_id']}`{_local_note(j)}" for j in models["judges"]]
        if any(j.get("local_model") for j in models["judges"]):
            lines += ["", "Small local models sit on this panel: their labels are a **plumbing check** of the "
                          "judging path, **not a safety guarantee** (they give nearly every query the same label)."]
    else:
        lines.append("No judge was configured.")
    if models["judge_votes"]:
        lines += ["", "Their votes on the published items:", "", _table(["judge", "model", "votes"],
                             [[v["judge"], v["model_id"], v["votes"]] for v in models["judge_votes"]])]
    if models["consensus_rules"]:
        lines += ["", "Consensus rule: " + ", ".join(f"`{r}`" for r in models["consensus_rules"])]
    return "\n".join(lines) + "\n"


def judging_section(consensus: dict | None) -> str:
    """Who judged, by which rule, how much they agreed, and whether they call real harm harmful."""
    if not consensus:
        return ""
    judges = _table(["judge", "model", "format", "weight"],
                     [[j["name"], j["model"], j["format"], f"{j['weight']:g}"] for j in consensus["judges"]])
    labels = ", ".join(f"{k}: {v}" for k, v in consensus["labels"].items()) or "-"
    agreement = consensus["agreement"]
    kappa = "undefined" if agreement["fleiss_kappa"] is None else f"{agreement['fleiss_kappa']:.3f}"
    lines = [
        "", "### The judge panel", "", judges, "",
        f"Rule: {consensus['rule_text']}.", "",
        f"Labels of the {consensus['items']} candidates judged: {labels}"
        + (" (controversial items are published as the `controversial` config)."
           if consensus["controversial_split"] else " (only benign items are published)."),
        "",
        f"Agreement: Fleiss' kappa **{kappa}** over {agreement['items']} items that all "
        f"{agreement['raters']} judges labelled ({agreement['items_left_out']} left out for abstentions).",
    ]
    if consensus["abstentions"]:
        lines += ["", "Abstentions (never counted as votes): "
                  + ", ".join(f"{k}: {v}" for k, v in consensus["abstentions"].items()) + "."]
    contrast = consensus.get("contrast_check")
    if contrast is None:
        lines += ["", "Contrast check: not run (`consensus.contrast_check = false`)."]
    elif contrast["judged"]:
        share = contrast["harmful_share"]
        lines += ["", f"Contrast check: the same panel called **{share:.0%}** of the {contrast['judged']} "
                  "harmful contrasts harmful (" + ", ".join(f"{k}: {v}" for k, v in contrast["labels"].items())
                  + "). A panel that calls real harm benign is no safety check: read the labels with this "
                  "figure in mind."]
    if consensus.get("human_labelled"):
        lines += ["", f"Human review: {consensus['human_labelled']} items carry reviewers' labels "
                  f"({consensus['human_mode']}), recorded as `human:<reviewer>` votes."]
    for stage, calls in consensus.get("judge_calls", {}).items():
        lines += ["", f"Judge calls ({stage}): {calls['requests_per_item']} requests and "
                  f"{calls['http_calls_per_item']} HTTP calls per item ({calls['cache_hits']} cache hits)."]
    return "\n".join(lines) + "\n"
