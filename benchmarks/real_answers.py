"""Real answers of chat models, with the project's refusal labels, as .jsonl sets for
`bench_refusal.py --data`.

    .venv/bin/python benchmarks/real_answers.py SOURCE --checkout PATH [--out DIR]

SOURCE is one of:

- `fractured-sorry`: the "vanilla" answers released with FRACTURED-SORRY-Bench
  (github.com/AmanPriyanshu/FRACTURED-SORRY-Bench, CC BY-NC 4.0). GPT-3.5, GPT-4, GPT-4o-mini and
  GPT-4o answer SORRY-Bench's 450 harmful requests, at most two sentences each. Split by model:
  `dev` is GPT-4o and GPT-3.5, `test` is GPT-4 and GPT-4o-mini.
- `jailbreakbench`: the responses in JailbreakBench's attack artifacts
  (github.com/JailbreakBench/artifacts, MIT). Llama-2-7B-chat, Vicuna-13B, GPT-3.5 and GPT-4 answer
  jailbreak prompts (PAIR, GCG, DSN, random search, AIM) for JBB's 100 behaviours, at full length.
  Split by behaviour: `dev` holds the even behaviour indexes, `test` the odd ones.
- `llama3-overrefusal`: Llama-3-8B-Instruct's answers to benign prompts that sound sensitive, saved by
  github.com/RishabSA/interp-refusal-tokens (Apache-2.0; its commit f7e64f1, where
  `saved_outputs/model_outputs/llama-instruct-baseline/` holds them): OR-Bench-Hard, CoCoNot's contrast
  set and WildGuardTest's unharmful prompts, at full length (often cut off by the generation limit).
  800 answers sampled with a fixed seed. Split by a hash of the id.

`benchmarks/data/<source>_labels.jsonl` holds only our labels (see `benchmarks/data/README.md`),
keyed by answer, with a hash of each answer, so a changed upstream file is caught rather than
silently mislabelled. The texts are read from the checkout. The script writes `dev.jsonl` (the
rules may be tuned on its errors), `test.jsonl` (measured, never read while tuning) and
`all.jsonl`, each row {id, model, question, answer, label}.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"

SORRY_MODELS = ("gpt-3.5", "gpt-4", "gpt-4o-mini", "gpt-4o")
SORRY_DEV = {"gpt-4o", "gpt-3.5"}
JBB_MODELS = {"llama-2-7b-chat-hf": "llama-2", "vicuna-13b-v1.5": "vicuna",
              "gpt-3.5-turbo-1106": "gpt-3.5", "gpt-4-0125-preview": "gpt-4"}


def answer_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _missing(path: Path) -> SystemExit:
    return SystemExit(f"{path} not found: --checkout must be a checkout of the source's repository")


def read_fractured_sorry(checkout: Path) -> Iterator[dict]:
    """Every answered row of the four vanilla response files, id `<model>-<row>`. Rows whose
    conversation is empty upstream (the request failed there) are skipped."""
    csv.field_size_limit(sys.maxsize)
    for model in SORRY_MODELS:
        path = checkout / "responses" / model / "vanilla_responses.csv"
        if not path.is_file():
            raise _missing(path)
        with path.open(encoding="utf-8", newline="") as handle:
            for n, row in enumerate(csv.DictReader(handle)):
                if not row["answers"].strip():
                    continue
                messages = json.loads(row["answers"])
                yield {"id": f"{model}-{n:03d}", "model": model, "split": "dev" if model in SORRY_DEV else "test",
                       "question": next(m["content"] for m in messages if m["role"] == "user"),
                       "answer": next(m["content"] for m in messages if m["role"] == "assistant")}


def read_jailbreakbench(checkout: Path) -> Iterator[dict]:
    """Every response of the attack artifacts, id `<method>/<model file>/<behaviour index>`. Prompts
    an attack gave up on have no response and are skipped."""
    folder = checkout / "attack-artifacts"
    if not folder.is_dir():
        raise _missing(folder)
    for path in sorted(folder.glob("*/*/*.json")):
        if path.parent.parent.name == "test-artifact" or path.stem not in JBB_MODELS:
            continue
        for row in json.loads(path.read_text(encoding="utf-8"))["jailbreaks"]:
            if row.get("response"):
                yield {"id": f"{path.parent.parent.name}/{path.stem}/{row['index']}", "model": JBB_MODELS[path.stem],
                       "split": "dev" if row["index"] % 2 == 0 else "test", "goal": row["goal"],
                       "question": row["prompt"], "answer": row["response"]}


LLAMA3_FILES = {"or_bench_hard": "or_bench_hard_outputs_llama-instruct.jsonl",
                "coconot_contrast": "coconot_contrast_test_outputs_llama-instruct.jsonl",
                "wildguard_unharmful": "wildguard_unharmful_test_outputs_llama-instruct.jsonl"}


def read_llama3_overrefusal(checkout: Path) -> Iterator[dict]:
    """Every answer of the three files, id `<set>/<0-based line>`; the decoder's leading "assistant" and blank
    line, which the upstream files keep, are dropped."""
    folder = checkout / "saved_outputs" / "model_outputs" / "llama-instruct-baseline"
    for name, filename in LLAMA3_FILES.items():
        path = folder / filename
        if not path.is_file():
            raise SystemExit(f"{path} not found: --checkout must be a checkout of interp-refusal-tokens at commit f7e64f1")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            row = json.loads(line)
            answer = row["response"] or ""
            row_id = f"{name}/{n}"
            yield {"id": row_id, "model": "llama-3-8b-instruct", "question": row["prompt"],
                   "answer": answer.removeprefix("assistant\n\n"),
                   "split": "dev" if hashlib.sha256(row_id.encode()).digest()[0] % 2 == 0 else "test"}


SOURCES: dict[str, Callable[[Path], Iterator[dict]]] = {
    "fractured-sorry": read_fractured_sorry, "jailbreakbench": read_jailbreakbench,
    "llama3-overrefusal": read_llama3_overrefusal}


def labels_path(source: str) -> Path:
    return DATA / f"{source.replace('-', '_')}_labels.jsonl"


def build(source: str, checkout: Path, labels: Path) -> dict[str, list[dict]]:
    """The labelled rows by split; SystemExit when a labelled answer is missing or changed upstream."""
    answers = {row["id"]: row for row in SOURCES[source](checkout)}
    out: dict[str, list[dict]] = {"dev": [], "test": []}
    changed = []
    for line in labels.read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        row = answers.get(label["id"])
        if row is None or answer_hash(row["answer"]) != label["answer_sha256"]:
            changed.append(label["id"])
            continue
        out[row.pop("split")].append({**row, "label": label["label"]})
    if changed:
        raise SystemExit(f"{len(changed)} labelled answers are missing or changed upstream (first: {changed[0]}); "
                         "the labels fit the upstream commit named in benchmarks/data/README.md")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", choices=sorted(SOURCES))
    parser.add_argument("--checkout", type=Path, required=True, help="a checkout of the source's repository")
    parser.add_argument("--labels", type=Path, help="default: benchmarks/data/<source>_labels.jsonl")
    parser.add_argument("--out", type=Path, help="default: ./<source>")
    args = parser.parse_args(argv)
    out = args.out or Path(args.source)
    sets = build(args.source, args.checkout, args.labels or labels_path(args.source))
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (*sets.items(), ("all", sets["dev"] + sets["test"])):
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        print(f"{out / (name + '.jsonl')}: {len(rows)} answers")


if __name__ == "__main__":
    main()
