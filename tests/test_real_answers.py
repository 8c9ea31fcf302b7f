"""benchmarks/real_answers.py: our labels joined with the upstream answers of each source, split as
documented, and a changed upstream answer caught rather than mislabelled."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("real_answers", ROOT / "benchmarks" / "real_answers.py")
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)


def _fractured_sorry(root: Path, answers: dict[str, list[str | None]]) -> Path:
    """A checkout in the upstream layout: one vanilla_responses.csv per model, a conversation per row ("" when the
    request failed upstream)."""
    for model in script.SORRY_MODELS:
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


def _jailbreakbench(root: Path, responses: dict[str, list[str | None]]) -> Path:
    """A checkout in the artifacts' layout: one file per method and model, a response (or null) per behaviour."""
    for name, answers in responses.items():
        method, model = name.split("/")
        folder = root / "attack-artifacts" / method / "black_box"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{model}.json").write_text(json.dumps({"parameters": {}, "jailbreaks": [
            {"index": n, "goal": f"goal {n}", "prompt": f"prompt {n}", "response": answer}
            for n, answer in enumerate(answers)]}))
    return root


def _labels(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "label": label, "answer_sha256": script.answer_hash(text)}) + "\n"
                            for i, label, text in rows), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_fractured_sorry_labels_join_the_upstream_answers_split_by_model(tmp_path, capsys):
    checkout = _fractured_sorry(tmp_path / "up", {"gpt-4o": ["I can't help with that.", None, "Sure: step one ..."],
                                                  "gpt-4": ["It's important to approach this with respect."]})
    labels = _labels(tmp_path / "labels.jsonl", [("gpt-4o-000", "full_refusal", "I can't help with that."),
                                                 ("gpt-4o-002", "full_compliance", "Sure: step one ..."),
                                                 ("gpt-4-000", "full_refusal", "It's important to approach this with respect.")])
    out = tmp_path / "sets"
    script.main(["fractured-sorry", "--checkout", str(checkout), "--labels", str(labels), "--out", str(out)])
    assert [(r["id"], r["label"], r["question"]) for r in _read(out / "dev.jsonl")] == [
        ("gpt-4o-000", "full_refusal", "question 0"), ("gpt-4o-002", "full_compliance", "question 2")]
    assert [r["answer"] for r in _read(out / "test.jsonl")] == ["It's important to approach this with respect."]
    assert len(_read(out / "all.jsonl")) == 3


def test_jailbreakbench_labels_join_the_artifacts_split_by_behaviour(tmp_path):
    checkout = _jailbreakbench(tmp_path / "up", {"PAIR/vicuna-13b-v1.5": ["Sure, here is ...", None, "I cannot."],
                                                 "GCG/llama-2-7b-chat-hf": ["I cannot fulfill your request."]})
    labels = _labels(tmp_path / "labels.jsonl", [("PAIR/vicuna-13b-v1.5/0", "full_compliance", "Sure, here is ..."),
                                                 ("PAIR/vicuna-13b-v1.5/2", "full_refusal", "I cannot."),
                                                 ("GCG/llama-2-7b-chat-hf/0", "full_refusal", "I cannot fulfill your request.")])
    sets = script.build("jailbreakbench", checkout, labels)
    assert [(r["id"], r["model"], r["question"]) for r in sets["dev"]] == [  # (in the labels' order)
        ("PAIR/vicuna-13b-v1.5/0", "vicuna", "prompt 0"), ("PAIR/vicuna-13b-v1.5/2", "vicuna", "prompt 2"),
        ("GCG/llama-2-7b-chat-hf/0", "llama-2", "prompt 0")]
    assert sets["test"] == []


def test_llama3_overrefusal_drops_the_decoder_prefix_and_splits_by_a_hash_of_the_id(tmp_path):
    folder = tmp_path / "up" / "saved_outputs" / "model_outputs" / "llama-instruct-baseline"
    folder.mkdir(parents=True)
    for name, filename in script.LLAMA3_FILES.items():
        (folder / filename).write_text("".join(json.dumps({"id": f"u{n}", "prompt": f"{name} prompt {n}",
                                                           "response": f"assistant\n\nanswer {n}"}) + "\n"
                                               for n in range(40)))
    rows = list(script.read_llama3_overrefusal(tmp_path / "up"))
    assert len(rows) == 120 and rows[0]["id"] == "or_bench_hard/0" and rows[0]["answer"] == "answer 0"
    assert rows[0]["question"] == "or_bench_hard prompt 0"
    splits = {r["split"] for r in rows}
    assert splits == {"dev", "test"}
    assert [r["split"] for r in rows] == [r["split"] for r in script.read_llama3_overrefusal(tmp_path / "up")]


def test_a_changed_upstream_answer_stops_with_an_error(tmp_path):
    checkout = _fractured_sorry(tmp_path / "up", {"gpt-4o": ["I can't help with that, sorry."]})
    labels = _labels(tmp_path / "labels.jsonl", [("gpt-4o-000", "full_refusal", "I can't help with that.")])
    with pytest.raises(SystemExit, match="1 labelled answers are missing or changed upstream"):
        script.main(["fractured-sorry", "--checkout", str(checkout), "--labels", str(labels), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_a_checkout_of_something_else_is_named(tmp_path):
    with pytest.raises(SystemExit, match="must be a checkout of the source's repository"):
        script.build("jailbreakbench", tmp_path, tmp_path / "labels.jsonl")


@pytest.mark.parametrize("source", sorted(script.SOURCES))
def test_the_committed_labels_are_well_formed(source):
    path = script.labels_path(source)
    if not path.exists():
        pytest.skip(f"{path.name} not committed yet")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) > 1000 and len({r["id"] for r in rows}) == len(rows)
    assert {r["label"] for r in rows} == {"full_compliance", "full_refusal", "partial_refusal"}
    assert all(len(r["answer_sha256"]) == 12 for r in rows)
