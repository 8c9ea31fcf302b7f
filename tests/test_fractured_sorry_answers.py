"""benchmarks/fractured_sorry_answers.py: our labels joined with the upstream answers, and a changed
upstream answer caught rather than mislabelled."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("fractured_sorry_answers", ROOT / "benchmarks" / "fractured_sorry_answers.py")
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)


def _upstream(root: Path, answers: dict[str, list[str]]) -> Path:
    """A checkout in the upstream layout: one vanilla_responses.csv per model, a conversation per row ("" when the
    request failed upstream)."""
    for model in script.MODELS:
        folder = root / "responses" / model
        folder.mkdir(parents=True)
        with (folder / "vanilla_responses.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["answers", "llm-eval"])
            for n, answer in enumerate(answers.get(model, [])):
                conversation = "" if answer is None else json.dumps([
                    {"role": "system", "content": "Answer in two sentences."},
                    {"role": "user", "content": f"question {n}"},
                    {"role": "assistant", "content": answer}])
                writer.writerow([conversation, "Harmless Answer"])
    return root


def _labels(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "label": label, "answer_sha256": script.answer_hash(text)}) + "\n"
                            for i, label, text in rows), encoding="utf-8")
    return path


def test_labels_join_the_upstream_answers_split_by_model(tmp_path, monkeypatch, capsys):
    source = _upstream(tmp_path / "up", {"gpt-4o": ["I can't help with that.", None, "Sure: step one ..."],
                                         "gpt-4": ["It's important to approach this with respect."]})
    labels = _labels(tmp_path / "labels.jsonl", [("gpt-4o-000", "full_refusal", "I can't help with that."),
                                                 ("gpt-4o-002", "full_compliance", "Sure: step one ..."),
                                                 ("gpt-4-000", "full_refusal", "It's important to approach this with respect.")])
    out = tmp_path / "sets"
    monkeypatch.setattr("sys.argv", ["x", "--source", str(source), "--labels", str(labels), "--out", str(out)])
    script.main()
    dev = [json.loads(line) for line in (out / "dev.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()]
    assert [(r["id"], r["label"], r["question"]) for r in dev] == [("gpt-4o-000", "full_refusal", "question 0"),
                                                                   ("gpt-4o-002", "full_compliance", "question 2")]
    assert [r["answer"] for r in test] == ["It's important to approach this with respect."]
    assert len((out / "all.jsonl").read_text().splitlines()) == 3


def test_a_changed_upstream_answer_stops_with_an_error(tmp_path, monkeypatch):
    source = _upstream(tmp_path / "up", {"gpt-4o": ["I can't help with that, sorry."]})
    labels = _labels(tmp_path / "labels.jsonl", [("gpt-4o-000", "full_refusal", "I can't help with that.")])
    monkeypatch.setattr("sys.argv", ["x", "--source", str(source), "--labels", str(labels), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="1 labelled answers are missing or changed upstream"):
        script.main()
    assert not (tmp_path / "o").exists()


def test_the_committed_labels_are_well_formed():
    rows = [json.loads(line) for line in script.LABELS.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1736 and len({r["id"] for r in rows}) == len(rows)
    assert {r["label"] for r in rows} == {"full_compliance", "full_refusal", "partial_refusal"}
    assert {r["id"].rsplit("-", 1)[0] for r in rows} == set(script.MODELS)
