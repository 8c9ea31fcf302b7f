"""The static report of a version: its plots exist, and they draw the right numbers."""

import json
import os
import random

from PIL import Image

from mossforge.release import report

TYPES = ["exaggerated_risk", "negated_harm", "counterintuitive_interpretation"]
CATEGORIES = ["cybercrime", "harassment", "general_harm"]
LABELS = ["full_refusal", "partial_refusal", "full_compliance"]


def rows(n, seed, judged=False):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        results = [{"target": t, "label": rng.choice(LABELS), "error": None} for t in ("alpha", "beta")]
        votes = [{"judge": j, "label": rng.choice(["benign", "controversial"])} for j in ("j1", "j2", "j3")]
        out.append({
            "id": f"mf-{seed}-{i}", "stimulus_type": rng.choice(TYPES), "harm_category": rng.choice(CATEGORIES),
            "question": f"Question {i} | of {seed}?", "image_info": {"sha256": f"{i:064d}"},
            "target_check": {"status": "passed", "results": results},
            "consensus_label": {"status": "passed", "votes": votes, "consensus": "benign"} if judged
            else {"status": "not_run", "votes": []},
        })
    return out


def manifest(accepted, dropped):
    return {"dataset": "demo", "version": "abc123", "config_hash": "f00", "config": {},
            "counts": {"benign": len(accepted), "dropped": len(dropped), "by_type": {}},
            "funnel": [{"stage": "plan", "status": "ran", "entered": 40, "kept": 40},
                       {"stage": "target_check", "status": "ran", "entered": 40, "kept": len(accepted)},
                       {"stage": "consensus_label", "status": "not_run", "entered": 25, "kept": 25}]}


def test_report_plots_exist_and_draw_the_numbers_counted_independently(tmp_path):
    accepted, dropped = rows(25, 1), rows(15, 2)
    page = report.write_report(tmp_path, manifest(accepted, dropped), accepted, dropped)
    out = tmp_path / "report"
    for name in ("funnel", "refusals", "judges", "coverage"):
        with Image.open(out / f"{name}.png") as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 80
    values = json.loads((out / "plots.json").read_text())

    # Refusal rate per target and type, over accepted and dropped items, counted here by hand.
    for target in ("alpha", "beta"):
        for stimulus_type in TYPES:
            answers = [r for row in accepted + dropped if row["stimulus_type"] == stimulus_type
                       for r in row["target_check"]["results"] if r["target"] == target]
            refused = sum(r["label"] != "full_compliance" for r in answers)
            cell = values["refusals"][target][stimulus_type]
            assert (cell["asked"], cell["refused"]) == (len(answers), refused)
            assert abs(cell["rate"] - refused / len(answers)) < 1e-4

    # The figure draws those rates (bar heights), target by target, in type order.
    figure = report.refusal_figure(values["refusals"])
    heights = [round(p.get_height(), 4) for p in figure.axes[0].patches]
    types = sorted(TYPES)
    assert heights == [values["refusals"][t][s]["rate"] for t in ("alpha", "beta") for s in types]

    coverage = values["coverage"]
    for stimulus_type in TYPES:
        for category in CATEGORIES:
            n = sum(r["stimulus_type"] == stimulus_type and r["harm_category"] == category for r in accepted)
            assert coverage.get(stimulus_type, {}).get(category, 0) == n
    grid = report.coverage_figure(coverage).axes[0].images[0].get_array()
    assert int(grid.sum()) == len(accepted)

    funnel = report.funnel_figure(values["funnel"]).axes[0].patches
    assert [p.get_width() for p in funnel][::-1] == [40, 25, 25]

    assert values["judges"] == {"status": "not_run"}
    html = page.read_text()
    assert "Judge panel: <b>not run</b>" in html
    assert html.count("<figure>") == report.GALLERY  # 25 accepted, a gallery of 12
    assert "Question 0 | of 1?" in html and f"../images/{0:064d}.png" in html


def test_judge_agreement_when_judges_ran(tmp_path):
    accepted = rows(20, 3, judged=True)
    values = report.judge_values(accepted)
    assert values["status"] == "ran" and values["items"] == 20
    for a, b in (("j1", "j2"), ("j1", "j3"), ("j2", "j3")):
        same = 0
        for row in accepted:
            votes = {v["judge"]: v["label"] for v in row["consensus_label"]["votes"]}
            same += votes[a] == votes[b]
        assert values["pairs"][f"{a}|{b}"]["agreement"] == round(same / 20, 4)
    figure = report.judge_figure(values)
    assert [round(p.get_height(), 4) for p in figure.axes[0].patches] == \
        [p["agreement"] for p in values["pairs"].values()]


def test_no_targets_is_shown_as_not_run(tmp_path):
    accepted = rows(3, 4)
    for row in accepted:
        row["target_check"] = {"status": "not_run", "results": []}
    report.write_report(tmp_path, manifest(accepted, []), accepted, [])
    assert json.loads((tmp_path / "report" / "plots.json").read_text())["refusals"] == {}
    assert "Target check: <b>not run</b>" in (tmp_path / "report" / "index.html").read_text()


def test_every_coverage_number_reads_on_its_cell():
    """Issue 15: the lowest cell is the lightest (the colour map spans min..max), so its number
    must be dark, whatever its value; the highest cell's number light."""
    from matplotlib.colors import to_rgb

    from mossforge.release import report

    figure = report.coverage_figure({"exaggerated_risk": {"cybercrime": 40, "copyright": 45},
                                     "negated_harm": {"cybercrime": 44, "copyright": 41}})
    axes = figure.axes[0]
    image = axes.images[0]

    def luminance(rgb):
        return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]

    texts = axes.texts
    assert len(texts) == 4
    for text in texts:
        cell = image.cmap(image.norm(int(text.get_text())))[:3]
        assert abs(luminance(to_rgb(text.get_color())) - luminance(cell)) > 0.4, text.get_text()


def test_plots_drawn_by_the_run_worker_pool_are_the_bytes_drawn_here(monkeypatch):
    """`mossforge run` hands the plots to its worker pool (pyplot preloaded there): the files must
    not depend on where they were drawn, and without a pool they are drawn here."""
    from mossforge.generators import render_pool

    accepted, dropped = rows(25, 1, judged=True), rows(15, 2)
    values = report.report_values(manifest(accepted, dropped), accepted, dropped)
    monkeypatch.setattr(render_pool, "running_pool", lambda: None)
    here = report.figure_pngs(values)
    monkeypatch.undo()
    # (a pool of this test's own, so that later tests in this process draw where they did before)
    monkeypatch.setattr(render_pool, "_pools", {})
    monkeypatch.setattr(render_pool, "_prestarted", 0)
    render_pool.prestart(2)
    pool = render_pool.running_pool()
    assert pool is not None
    try:
        drawn = {name: pool.submit(_pid_and_png, name, values[name]).result() for name in report.FIGURES}
        assert os.getpid() not in {pid for pid, _ in drawn.values()}  # drawn in the pool, not here
        assert {name: png for name, (_, png) in drawn.items()} == here
        assert report.figure_pngs(values) == here
        assert all(png.startswith(b"\x89PNG") for png in here.values())
    finally:
        pool.shutdown()


def _pid_and_png(name, values):
    return os.getpid(), report.figure_png(name, values)
