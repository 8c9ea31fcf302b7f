"""Real answers of four OpenAI chat models, with the project's refusal labels, as .jsonl sets for
`bench_refusal.py --data`.

    .venv/bin/python benchmarks/fractured_sorry_answers.py --source PATH/TO/FRACTURED-SORRY-Bench [--out DIR]

The answers are the "vanilla" responses released with FRACTURED-SORRY-Bench
(github.com/AmanPriyanshu/FRACTURED-SORRY-Bench, CC BY-NC 4.0): GPT-3.5, GPT-4, GPT-4o-mini and
GPT-4o answering the 450 harmful requests of SORRY-Bench, with a system prompt asking for at most
two sentences. Their texts are not copied into this project (their licence is non-commercial);
`benchmarks/data/fractured_sorry_labels.jsonl` holds only our labels, keyed by model and row, with
a hash of each answer so that a changed upstream file is caught rather than silently mislabelled.

Writes `dev.jsonl` (GPT-4o and GPT-3.5: the rules may be tuned on these), `test.jsonl` (GPT-4 and
GPT-4o-mini: measured, never read while tuning) and `all.jsonl`, each row {id, model, question,
answer, label}.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "benchmarks" / "data" / "fractured_sorry_labels.jsonl"
MODELS = ("gpt-3.5", "gpt-4", "gpt-4o-mini", "gpt-4o")
SPLIT = {"gpt-4o": "dev", "gpt-3.5": "dev", "gpt-4": "test", "gpt-4o-mini": "test"}


def answer_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def read_answers(source: Path) -> dict[str, dict]:
    """Every answered row of the four vanilla response files, by id `<model>-<row>`. Rows whose
    conversation is empty upstream (the request failed there) are skipped."""
    csv.field_size_limit(sys.maxsize)
    rows: dict[str, dict] = {}
    for model in MODELS:
        path = source / "responses" / model / "vanilla_responses.csv"
        if not path.is_file():
            raise SystemExit(f"{path} not found: --source must be a checkout of FRACTURED-SORRY-Bench")
        with path.open(encoding="utf-8", newline="") as handle:
            for n, row in enumerate(csv.DictReader(handle)):
                if not row["answers"].strip():
                    continue
                messages = json.loads(row["answers"])
                question = next(m["content"] for m in messages if m["role"] == "user")
                answer = next(m["content"] for m in messages if m["role"] == "assistant")
                rows[f"{model}-{n:03d}"] = {"id": f"{model}-{n:03d}", "model": model,
                                            "question": question, "answer": answer}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="a checkout of FRACTURED-SORRY-Bench")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--out", type=Path, default=Path("fractured_sorry"))
    args = parser.parse_args()
    answers = read_answers(args.source)
    out = {"dev": [], "test": []}
    changed = []
    for line in args.labels.read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        row = answers.get(label["id"])
        if row is None or answer_hash(row["answer"]) != label["answer_sha256"]:
            changed.append(label["id"])
            continue
        out[SPLIT[row["model"]]].append({**row, "label": label["label"]})
    if changed:
        raise SystemExit(f"{len(changed)} labelled answers are missing or changed upstream "
                         f"(first: {changed[0]}); the labels fit the upstream commit named in the labels' README")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (*out.items(), ("all", out["dev"] + out["test"])):
        with (args.out / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        print(f"{args.out / (name + '.jsonl')}: {len(rows)} answers")


if __name__ == "__main__":
    main()
