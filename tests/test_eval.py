"""`mossforge eval`: scripted targets on the loopback server refuse known shares, and the report
shows exactly those rates; Wilson intervals on published values; external answers; resumability."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
from openai_server import ok, serve
from PIL import Image
from typer.testing import CliRunner

from mossforge.cli import app
from mossforge.config import TargetCheckSection, load_config
from mossforge.images import ImageStore
from mossforge.release.evaluate import ExternalAnswer, rank_correlation, score_answers, summarize, wilson_interval
from mossforge.release.publish import publish_local

REFUSAL = "I'm sorry, but I can't help with that request."
COMPLIANCE = "Sure! Here is a plan:\n1. Balloons\n2. Cake\n3. Games in the garden."
TYPES = {"exaggerated_risk": 10, "negated_harm": 5, "counterintuitive_interpretation": 5}


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("k, n, low, high", [  # Newcombe (1998), Stat. Med. 17:857, Table I, method 3
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)])
def test_wilson_interval_matches_published_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_wilson_interval_of_nothing_is_undefined():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


@pytest.fixture
def version(tmp_path, candidate_factory) -> Path:
    """A published version: 20 benign items (10/5/5 per type), each with its harmful contrast."""
    store = ImageStore(tmp_path / "images")
    records = []
    for kind, count in TYPES.items():
        for i in range(count):
            record = candidate_factory(f"Benign {kind} question number {i}?", kind,
                                       contrast={"question": f"Harmful {kind} question number {i}?"})
            record.image = store.put(Image.new("RGB", (16, 16), (10 * i, 50, 90)), renderer="test")
            records.append(record)
    config = load_config(overrides={"run.out_dir": str(tmp_path / "out"), "dataset.name": "evalset"})
    return publish_local(records, [], config, [], store.root).path


def refuses(model: str, question: str) -> bool:
    """strict refuses everything; half refuses the even-numbered benign items and every harmful
    one; lenient refuses nothing benign and the harmful exaggerated-risk items only."""
    number = int(question.rstrip("?").rsplit(" ", 1)[1])
    harmful = question.startswith("Harmful")
    if model == "strict-model":
        return True
    if model == "half-model":
        return harmful or number % 2 == 0
    return harmful and "exaggerated_risk" in question


def is_probe(request) -> bool:
    """eval's preflight asks each endpoint "ping" (text only) before any query."""
    return request.body["messages"][-1]["content"] == "ping"


def queries(server) -> list:
    return [r for r in server.requests if not is_probe(r)]


def script(request):
    if is_probe(request):
        return ok("pong")
    text = request.body["messages"][-1]["content"][0]["text"]
    return ok(REFUSAL if refuses(request.body["model"], text) else COMPLIANCE)


def write_config(path: Path, server, cache: Path) -> Path:
    lines = [f'[cache]\ndir = "{cache}"\n']
    for name in ("strict", "half", "lenient"):
        lines.append(f'[endpoints.{name}]\nbase_url = "{server.base_url}"\nmodel = "{name}-model"\n'
                     f"timeout_s = 5\nmax_retries = 0\n")
        lines.append(f'[[targets]]\nname = "{name}"\nendpoint = "{name}"\n')
    path.write_text("\n".join(lines))
    return path


def test_eval_reports_exactly_the_scripted_rates_and_a_rerun_makes_no_calls(version, tmp_path):
    out = tmp_path / "report"
    with serve(script=script) as server:
        config = write_config(tmp_path / "eval.toml", server, tmp_path / "cache")
        args = ["eval", str(version), "--config", str(config), "--out", str(out)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        requests = queries(server)
        first_calls = len(requests)
        assert len(server.requests) == first_calls + 3  # and one probe per endpoint first
        assert "preflight: half, lenient, strict answered" in flat(result.output)
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0, again.output
        assert len(queries(server)) == first_calls  # resumable: every answer came from the cache
    assert first_calls == 3 * 40  # three targets, 20 benign + 20 contrast queries each
    assert "model calls: 0 made, 120 from the cache" in flat(again.output)
    # The field's protocol: question verbatim, image attached, no system prompt, temperature 0.
    for request in requests:
        (message,) = request.body["messages"]
        assert message["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
        assert request.body["temperature"] == 0

    summary = pl.read_csv(out / "summary.csv")
    rate = {(r["target"], r["split"], r["stimulus_type"]): (r["refused"], r["decided"], r["rate"])
            for r in summary.to_dicts()}
    assert rate[("strict", "benign", "all")] == (20, 20, 1.0)
    assert rate[("half", "benign", "exaggerated_risk")] == (5, 10, 0.5)   # 0, 2, 4, 6, 8
    assert rate[("half", "benign", "negated_harm")] == (3, 5, 0.6)        # 0, 2, 4
    assert rate[("half", "benign", "all")] == (11, 20, 0.55)
    assert rate[("half", "contrast", "all")] == (20, 20, 1.0)
    assert rate[("lenient", "benign", "all")] == (0, 20, 0.0)
    assert rate[("lenient", "contrast", "all")] == (10, 20, 0.5)
    low, high = wilson_interval(11, 20)
    half = summary.filter((pl.col("target") == "half") & (pl.col("split") == "benign")
                          & (pl.col("stimulus_type") == "all")).row(0, named=True)
    assert (half["ci_low"], half["ci_high"]) == pytest.approx((low, high))

    answers = pl.read_parquet(out / "answers.parquet")
    assert answers.height == 120 and set(answers["label"]) == {"full_refusal", "full_compliance"}
    assert pl.read_csv(out / "answers.csv").height == 120
    board = (out / "leaderboard.md").read_text()
    assert "| 1 | strict | strict-model | 100.0% [83.9%, 100.0%] (20/20)" in board
    assert "| 2 | half | half-model | 55.0% [34.2%, 74.2%] (11/20) | 50.0% [23.7%, 76.3%] (5/10)" in board
    # over-refusal 1.0 > 0.55 > 0.0 and safety 1.0, 1.0, 0.5: Spearman rho = 0.866
    assert "rho = 0.87" in board and "![over-refusal against safety](plot.png)" in board
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_selects_targets_and_names_a_missing_one(version, tmp_path):
    with serve(script=script) as server:
        config = write_config(tmp_path / "eval.toml", server, tmp_path / "cache")
        result = CliRunner().invoke(app, ["eval", str(version), "--config", str(config), "--target", "nope"])
        assert result.exit_code == 2
        assert "--target 'nope' is not declared in the config's [[targets]] (declared: strict, half, lenient)" \
            in flat(result.output)
        assert len(server.requests) == 0
        out = tmp_path / "two"
        result = CliRunner().invoke(app, ["eval", str(version), "--config", str(config), "--target", "half",
                                          "--target", "lenient", "--split", "benign", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert len(queries(server)) == 2 * 20 and len(server.requests) == 2 * 20 + 2  # (a probe each)
    board = (out / "leaderboard.md").read_text()
    assert "undefined: needs both splits" in board and "No plot" in board
    assert not (out / "plot.png").exists()


def test_external_answers_are_scored_without_calling_any_model(version, tmp_path):
    import pyarrow.parquet as pq

    ids = pq.read_table(version / "data" / "benign" / "test-00000-of-00001.parquet", columns=["id"])["id"].to_pylist()
    lines = []
    for n, item_id in enumerate(ids):  # model-a refuses 4 of 20 benign items; model-b none
        lines.append({"question_id": item_id, "model": "model-a", "split": "benign",
                      "answer": REFUSAL if n < 4 else COMPLIANCE})
        lines.append({"question_id": item_id, "model": "model-b", "split": "benign", "answer": COMPLIANCE})
    lines.append({"question_id": ids[0], "model": "model-b", "split": "contrast", "answer": ""})  # empty: refusal
    answers = tmp_path / "answers.jsonl"
    answers.write_text("\n".join(json.dumps(line) for line in lines))
    out = tmp_path / "ext"
    result = CliRunner().invoke(app, ["eval", str(version), "--answers", str(answers), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = {(r["target"], r["split"], r["stimulus_type"]): r for r in pl.read_csv(out / "summary.csv").to_dicts()}
    assert (summary[("model-a", "benign", "all")]["refused"], summary[("model-a", "benign", "all")]["decided"]) == (4, 20)
    assert summary[("model-b", "benign", "all")]["refused"] == 0
    assert summary[("model-b", "contrast", "all")]["refused"] == 1
    assert set(pl.read_parquet(out / "answers.parquet")["source"]) == {"external"}
    assert "note: model-b has answers to 1 of the 20 contrast items of this version" in flat(result.output)
    assert "model-a has answers to" not in result.output  # all 20 benign items
    for row in summary.values():  # the printed table keeps every interval whole (a log cut them to "12.5%–5…")
        if row["decided"]:
            assert f"{row['ci_low']:.1%}–{row['ci_high']:.1%}" in result.output, result.output

    no_split = tmp_path / "no_split.csv"
    pl.DataFrame({"question_id": [ids[0]], "model": ["m"], "answer": ["ok"]}).write_csv(no_split)
    result = CliRunner().invoke(app, ["eval", str(version), "--answers", str(no_split), "--out", str(out)])
    assert result.exit_code == 2 and "in both splits" in flat(result.output)
    result = CliRunner().invoke(app, ["eval", str(version), "--answers", str(no_split), "--split", "benign",
                                      "--out", str(tmp_path / "ok")])
    assert result.exit_code == 0, result.output


def test_unknown_answer_ids_are_an_error_and_rank_correlation_needs_three_targets(version):
    from mossforge.release.dataset_io import read_items

    items = read_items(version, "benign")
    with pytest.raises(ValueError, match="name no item of this version"):
        score_answers([ExternalAnswer("mf-nope", "m", "hi", "benign")], items, TargetCheckSection())
    # a typo in the split named no item ("1 answers name no item"); a repeated answer counted twice
    with pytest.raises(ValueError, match="a split that is neither benign nor contrast \\(e.g. 'benignn'\\)"):
        score_answers([ExternalAnswer(items[0].id, "m", "hi", "benignn")], items, TargetCheckSection())
    with pytest.raises(ValueError, match=f"model 'm' has more than one answer to '{items[0].id}' \\(benign\\)"):
        score_answers([ExternalAnswer(items[0].id, "m", a, "benign") for a in ("hi", REFUSAL)], items,
                      TargetCheckSection())
    rows = score_answers([ExternalAnswer(items[0].id, m, REFUSAL, "benign") for m in ("a", "b")], items,
                         TargetCheckSection())
    assert "undefined" in rank_correlation(summarize(rows)).note
    # two models, one with both splits: it said "1 targets" of a file with two
    contrast = read_items(version, "contrast")
    rows += score_answers([ExternalAnswer(contrast[0].id, "a", REFUSAL, "contrast")], items + contrast,
                          TargetCheckSection())
    assert rank_correlation(summarize(rows)).note == "undefined: 1 target with rates on both splits (needs at least 3)"


def test_a_missing_answer_is_counted_but_left_out_of_the_rates(version):
    """A null answer in a file of answers is `missing` (undecided), not a refusal; "" stays a refusal."""
    from mossforge.release.dataset_io import read_items

    items = read_items(version, "benign")
    answers = [ExternalAnswer(items[0].id, "m", None, "benign"), ExternalAnswer(items[1].id, "m", "", "benign"),
               ExternalAnswer(items[2].id, "m", COMPLIANCE, "benign")]
    rows = score_answers(answers, items, TargetCheckSection())
    assert [r["label"] for r in rows] == ["missing", "full_refusal", "full_compliance"]
    everything = next(r for r in summarize(rows) if r["stimulus_type"] == "all")
    assert (everything["asked"], everything["decided"], everything["undecided"], everything["refused"]) == (3, 2, 1, 1)
    assert everything["rate"] == 0.5


def test_version_by_dataset_name_under_outputs(version):
    """One resolver for every command: a folder, DATASET, DATASET/ID, DATASET/NUMBER, a bare id."""
    from mossforge.release.versions import VersionError, resolve_version

    outputs = version.parent.parent
    for ref in (str(version), "evalset", f"evalset/{version.name}", "evalset/1.0.0", "evalset/latest",
                version.name[:6], "1.0.0"):
        path, manifest = resolve_version(outputs, ref)
        assert (path, manifest["version"]) == (version, version.name), ref
    with pytest.raises(VersionError, match="no version '9.9.9' under .*evalset"):
        resolve_version(outputs, "evalset/9.9.9")
    with pytest.raises(VersionError, match="no version 'other/1.0.0'"):
        resolve_version(outputs, "other/1.0.0")


def test_eval_against_targets_that_do_not_answer_fails_and_writes_no_report(version, tmp_path):
    """A closed port or a wrong key: exit 3 from the preflight, before any query. Calls that fail
    after a good probe: exit 1 and no report. (Both used to print a table of `undecided` rows,
    write the report over the last one and exit 0.)"""
    import socket

    from openai_server import server_error

    out = tmp_path / "report"
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    config = tmp_path / "closed.toml"
    config.write_text(f'[endpoints.t]\nbase_url = "http://127.0.0.1:{closed}/v1"\nmodel = "m"\ntimeout_s = 5\n'
                      'max_retries = 0\n[[targets]]\nname = "t"\nendpoint = "t"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(version), "--config", str(config), "--out", str(out)])
    assert result.exit_code == 3, result.output
    assert "preflight failed" in flat(result.output) and not out.exists()

    with serve(script=lambda request: ok("pong") if is_probe(request) else server_error(500)) as server:
        config = write_config(tmp_path / "eval.toml", server, tmp_path / "cache")
        result = CliRunner().invoke(app, ["eval", str(version), "--config", str(config), "--out", str(out)])
        assert len(queries(server)) == 3 * 40
    assert result.exit_code == 1, result.output
    assert "eval failed, no report was written" in flat(result.output)
    assert "120 of 120 model calls failed" in flat(result.output) and not out.exists()
