"""A static report for each published version: `report/index.html` and PNG plots.

    report/index.html      the page: counts, plots, a gallery (question beside its image)
    report/funnel.png      items in and out of each stage
    report/refusals.png    refusal rate per target and stimulus type
    report/judges.png      judge agreement (or "not run")
    report/coverage.png    accepted items per stimulus type and apparent harm category
    report/plots.json      the numbers each plot draws, for checks and for other tools

It is written into the version folder before the manifest, so its files are checksummed with the
rest, but it is not part of the version id (a pure function of the published rows and config).
`build_report(folder)` rebuilds it from a published version alone.
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures.process import BrokenProcessPool
from itertools import combinations
from pathlib import Path

from mossforge.release.layout import SHARD, read_manifest
from mossforge.release.templating import render

REFUSED = ("full_refusal", "partial_refusal")
GALLERY = 12
_COLUMNS = ("id", "stimulus_type", "harm_category", "question", "image_info", "target_check",
            "consensus_label")


# --- the numbers ------------------------------------------------------------------------------


def funnel_values(manifest: dict) -> list[dict]:
    return [{"stage": r["stage"], "status": r["status"], "entered": r["entered"], "kept": r["kept"]}
            for r in manifest["funnel"]]


def refusal_values(rows: Iterable[dict], count_partial: bool = True) -> dict:
    """{target: {stimulus type: {"asked", "refused", "rate"}}} over every item a target answered
    (accepted and dropped alike: the rate is about the targets, not about what survived)."""
    refused_labels = REFUSED if count_partial else REFUSED[:1]
    tally: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for row in rows:
        for result in (row.get("target_check") or {}).get("results") or []:
            if result.get("error") and result["label"] not in REFUSED:
                continue  # a failed call is undecided: neither asked nor refused
            cell = tally[result["target"]][row["stimulus_type"]]
            cell["asked"] += 1
            cell["refused"] += result["label"] in refused_labels
    return {target: {t: {"asked": c["asked"], "refused": c["refused"],
                         "rate": round(c["refused"] / c["asked"], 4)} for t, c in sorted(by_type.items())}
            for target, by_type in sorted(tally.items())}


def judge_values(rows: Iterable[dict]) -> dict:
    """Pairwise agreement of judges (share of items both labelled alike) and the consensus counts;
    {"status": "not_run"} when no item was judged."""
    votes_by_item: list[dict[str, str]] = []
    consensus: Counter[str] = Counter()
    for row in rows:
        label = row.get("consensus_label") or {}
        if label.get("status", "not_run") == "not_run":
            continue
        votes_by_item.append({v["judge"]: v["label"] for v in label.get("votes") or []})
        consensus[label.get("consensus") or "none"] += 1
    if not votes_by_item:
        return {"status": "not_run"}
    judges = sorted({j for votes in votes_by_item for j in votes})
    pairs = {}
    for a, b in combinations(judges, 2):
        both = [v for v in votes_by_item if a in v and b in v]
        if both:
            pairs[f"{a}|{b}"] = {"items": len(both),
                                 "agreement": round(sum(v[a] == v[b] for v in both) / len(both), 4)}
    return {"status": "ran", "items": len(votes_by_item), "judges": judges, "pairs": pairs,
            "consensus": dict(sorted(consensus.items()))}


def coverage_values(rows: Iterable[dict]) -> dict:
    counts = Counter((r["stimulus_type"], r["harm_category"]) for r in rows)
    return {t: {c: n for (tt, c), n in sorted(counts.items()) if tt == t}
            for t in sorted({t for t, _ in counts})}


# --- the plots --------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    return plt


def _not_run(plt, title: str, why: str):
    fig, ax = plt.subplots(figsize=(6, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{title}: not run\n({why})", ha="center", va="center", fontsize=12, color="#8a6d00")
    return fig


def funnel_figure(values: list[dict]):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(values) + 1.2))
    names = [v["stage"] for v in values][::-1]
    kept = [v["kept"] for v in values][::-1]
    colors = ["#bbbbbb" if v["status"] == "not_run" else "#3b7dd8" for v in values][::-1]
    bars = ax.barh(names, kept, color=colors)
    for bar, v in zip(bars, values[::-1]):
        label = f"{v['kept']} of {v['entered']}" + (" (not run)" if v["status"] == "not_run" else "")
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {label}", va="center", fontsize=8)
    ax.set_xlabel("items kept")
    ax.set_title("funnel")
    ax.set_xlim(0, max(kept + [1]) * 1.35)
    fig.tight_layout()
    return fig


def refusal_figure(values: dict):
    plt = _pyplot()
    if not values:
        return _not_run(plt, "target check", "no targets configured")
    types = sorted({t for by_type in values.values() for t in by_type})
    targets = list(values)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(types) * max(1, len(targets)) / 2), 3.6))
    width = 0.8 / len(targets)
    for i, target in enumerate(targets):
        xs = [j + i * width for j in range(len(types))]
        rates = [values[target].get(t, {}).get("rate", 0.0) for t in types]
        bars = ax.bar(xs, rates, width, label=target)
        for bar, t in zip(bars, types):
            cell = values[target].get(t)
            if cell:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{cell['refused']}/{cell['asked']}",
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks([j + width * (len(targets) - 1) / 2 for j in range(len(types))], types, fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("refusal rate")
    ax.set_title("refusal rate per target and stimulus type")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def judge_figure(values: dict):
    plt = _pyplot()
    if values.get("status") == "not_run":
        return _not_run(plt, "judge panel", "no judges configured")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    pairs = values["pairs"]
    left.bar(list(pairs) or ["(one judge)"], [p["agreement"] for p in pairs.values()] or [0.0], color="#5a9e5a")
    left.set_ylim(0, 1.05)
    left.set_title("pairwise judge agreement")
    left.tick_params(axis="x", labelsize=7, rotation=20)
    right.bar(list(values["consensus"]), list(values["consensus"].values()), color="#d88b3b")
    right.set_title(f"consensus labels ({values['items']} items)")
    fig.tight_layout()
    return fig


def _text_colour(image, value) -> str:
    """Black or white, whichever reads on the cell's own colour (the colour map spans the grid's
    minimum to its maximum, so the lowest cell is the lightest whatever its number)."""
    red, green, blue, _ = image.cmap(image.norm(value))
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


def coverage_figure(values: dict):
    plt = _pyplot()
    if not values:
        return _not_run(plt, "coverage", "no accepted items")
    types = list(values)
    categories = sorted({c for by in values.values() for c in by})
    grid = [[values[t].get(c, 0) for c in categories] for t in types]
    fig, ax = plt.subplots(figsize=(1.1 * len(categories) + 3, 0.6 * len(types) + 1.8))
    image = ax.imshow(grid, cmap="Blues", aspect="auto")
    for i, row in enumerate(grid):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center", fontsize=8, color=_text_colour(image, n))
    ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(types)), types, fontsize=8)
    ax.set_title("accepted items per stimulus type and apparent harm category")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


# --- the report -------------------------------------------------------------------------------


def report_values(manifest: dict, accepted: list[dict], dropped: list[dict]) -> dict:
    count_partial = manifest.get("config", {}).get("target_check", {}).get("count_partial", True)
    return {
        "version": manifest["version"],
        "funnel": funnel_values(manifest),
        "refusals": refusal_values([*accepted, *dropped], count_partial),
        "judges": judge_values(accepted),
        "coverage": coverage_values(accepted),
    }


FIGURES = {"funnel": funnel_figure, "refusals": refusal_figure, "judges": judge_figure,
           "coverage": coverage_figure}


def figure_png(name: str, values) -> bytes:
    """One plot as PNG bytes. No timestamps in the file: the same version always gets
    byte-identical plots, in this process or in a pool worker."""
    plt = _pyplot()
    fig = FIGURES[name](values)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def figure_pngs(values: dict) -> dict[str, bytes]:
    """Every plot, drawn by the run's worker pool when it has one (`render_pool.running_pool`):
    its workers have pyplot imported already and draw the plots side by side, while importing
    pyplot here would cost about a second. Otherwise here, one after the other."""
    from mossforge.generators.render_pool import running_pool

    pool = running_pool()
    if pool is not None:
        try:
            futures = {name: pool.submit(figure_png, name, values[name]) for name in FIGURES}
            return {name: future.result() for name, future in futures.items()}
        except BrokenProcessPool:  # a worker died (killed, out of memory): draw them here
            pass
    return {name: figure_png(name, values[name]) for name in FIGURES}


def write_report(folder: Path, manifest: dict, accepted: list[dict], dropped: list[dict]) -> Path:
    """Write `folder/report/`: plots, their numbers and index.html. Returns the page's path."""
    out = Path(folder) / "report"
    out.mkdir(parents=True, exist_ok=True)
    values = report_values(manifest, accepted, dropped)
    for name, png in figure_pngs(values).items():
        (out / f"{name}.png").write_bytes(png)
    (out / "plots.json").write_text(json.dumps(values, indent=2, sort_keys=True), encoding="utf-8")
    page = out / "index.html"
    page.write_text(_html(manifest, values, accepted), encoding="utf-8")
    return page


def _html(manifest: dict, values: dict, accepted: list[dict]) -> str:
    """The page (templates/report.html.j2): counts, plots and a gallery of the first accepted items."""
    return render("report.html.j2", manifest=manifest, counts=manifest["counts"], values=values,
                  gallery=[row for row in accepted[:GALLERY] if row.get("image_info")])


def write_version_report(folder: Path, manifest: dict, records, dropped) -> Path:
    """From publish: the report of a version being written, from its Candidate records."""
    def row(record) -> dict:
        data = record.model_dump(mode="json", include=set(_COLUMNS) | {"image"})
        data["image_info"] = data.pop("image")
        return data

    return write_report(folder, manifest, [row(r) for r in records], [row(r) for r in dropped])


def _read_rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    if not path.exists():
        return []
    names = set(pq.read_schema(path).names)
    return pq.read_table(path, columns=[c for c in _COLUMNS if c in names]).to_pylist()


def build_report(folder: Path) -> Path:
    """Rebuild the report of a published version from its files alone."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    return write_report(folder, manifest, _read_rows(folder / "data" / "benign" / SHARD),
                        _read_rows(folder / "dropped.parquet"))
