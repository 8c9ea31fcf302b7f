"""Train the refusal classifier's learned layer and report cross-validated figures.

    python -m mossforge.filters.refusal_train [--data DIR] [--cv] [--search] [--out FILE]

Reads every `refusal_answers*.jsonl` in `--data` (default: the checkout's `tests/data/`), runs the
rules on each answer with its question, and fits a multinomial logistic regression with an L2
penalty (scipy's L-BFGS, full batch, from zeros: deterministic) over the feature names of
`filters/refusal_learned.py`. Features seen in fewer than MIN_COUNT training answers are dropped;
weights are rounded to 3 decimals and those under 0.01 left out, so the JSON stays small and the
same data gives the same file.

`--cv` reports leave-one-set-out figures (each labelled set is written by a different author:
train on the others, measure on it), next to the rules alone. `--search` tries the penalty and the
feature groups by that cross-validation and prints the table it chose the defaults from. Without
`--cv`/`--search` (or with `--out`) it writes the weights (default: `refusal_learned.json` next to
this module).

The rules themselves were tuned on these sets, so the rules' figures here, and the layer's (which
reads the rules' verdict), are optimistic; the held-out figure is the lead's blind set B.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

from mossforge.filters import refusal, refusal_learned

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
PENALTY = 3.0
MARGIN = 0.3  # the layer overrides the rules only when its label is this much more probable than theirs  # L2 strength (sum of squared weights times PENALTY / 2, against the summed log-loss)
MIN_COUNT = 2
GROUPS = refusal_learned.GROUPS  # chosen by --search: the cue sentences (also in the tags) overfit
_GROUP_OF = {"r": "rules", "rule": "rules", "c": "cues", "c0": "cues", "c1": "cues", "cN": "cues", "f": "cues",
             "t0": "tags", "tN": "tags", "seq": "tags", "nseq": "tags", "task": "tags", "taskafterR": "tags",
             "Rat": "tags", "len": "shape", "nsent": "shape", "items": "shape", "code": "shape", "endsq": "shape",
             "a": "first", "b": "first", "z": "last", "q": "question", "q2": "question", "q3": "question",
             "qlen": "question", "x": "cross"}


def group_of(name: str) -> str:
    return _GROUP_OF[name.split(":", 1)[0]]


def load_sets(data: Path) -> dict[str, list[dict]]:
    sets = {}
    for path in sorted(data.glob("refusal_answers*.jsonl")):
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{number}: not JSON ({exc})") from None
            if row.get("label") not in refusal_learned.LABELS:
                raise SystemExit(f"{path}:{number}: label {row.get('label')!r} is not one of {refusal_learned.LABELS}")
            rows.append(row)
        sets[path.stem] = rows
    if not sets:
        raise SystemExit(f"no refusal_answers*.jsonl in {data}")
    return sets


def featurize(rows: list[dict]) -> list[tuple[str, list[str] | None]]:
    """Per row: the rules' label, and every feature name (None: decided before the text was read,
    such as an empty answer; the rules' label stands)."""
    out = []
    for row in rows:
        info: dict = {}
        question = row.get("question")
        verdict = refusal.classify_with_info(row.get("answer"), None, None, question, info)
        out.append((verdict.label, refusal_learned.features(info, verdict.label, verdict.rule, question)
                    if info else None))
    return out


def _matrix(names: list[list[str]], index: dict[str, int]) -> sparse.csr_matrix:
    rows, cols = [], []
    for r, feats in enumerate(names):
        for c in {index[f] for f in feats if f in index}:
            rows.append(r)
            cols.append(c)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), len(index)))


def fit(names: list[list[str]], labels: list[str], penalty: float = PENALTY,
        min_count: int = MIN_COUNT) -> dict:
    counts = Counter(f for feats in names for f in set(feats))
    vocabulary = sorted(f for f, c in counts.items() if c >= min_count)
    index = {f: i for i, f in enumerate(vocabulary)}
    x = _matrix(names, index)
    y = np.array([refusal_learned.LABELS.index(label) for label in labels])
    onehot = np.eye(3)[y]
    d = len(vocabulary)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[:3 * d].reshape(d, 3)
        b = theta[3 * d:]
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        p = np.exp(logp)
        value = -(onehot * logp).sum() + penalty / 2 * (w * w).sum()
        g = p - onehot
        grad_w = x.T @ g + penalty * w
        return value, np.concatenate([np.asarray(grad_w).ravel(), g.sum(axis=0)])

    result = minimize(loss, np.zeros(3 * d + 3), jac=True, method="L-BFGS-B",
                      options={"maxiter": 2000, "gtol": 1e-6})
    w = result.x[:3 * d].reshape(d, 3)
    weights = {f: [round(float(v), 3) for v in w[i]] for f, i in index.items()
               if np.abs(w[i]).max() >= 0.01}
    return {"labels": list(refusal_learned.LABELS), "bias": [round(float(v), 4) for v in result.x[3 * d:]],
            "weights": weights}


def predict(model: dict, feats: list[str] | None, rules_label: str, margin: float = 0.0) -> str:
    if feats is None:
        return rules_label
    return refusal_learned.decide(refusal_learned.probabilities(model, feats), rules_label, margin)


def _keep(feats: list[str] | None, groups: tuple[str, ...]) -> list[str] | None:
    return None if feats is None else [f for f in feats if group_of(f) in groups]


def scores(gold: list[str], predicted: list[str]) -> tuple[float, float]:
    """(refusal vs compliance, three labels)."""
    binary = sum((p != "full_compliance") == (g != "full_compliance") for p, g in zip(predicted, gold))
    return binary / len(gold), sum(p == g for p, g in zip(predicted, gold)) / len(gold)


def cross_validate(sets: dict[str, list[dict]], cache: dict[str, list], groups: tuple[str, ...] = GROUPS,
                   penalty: float = PENALTY, margin: float = MARGIN) -> dict[str, dict[str, tuple[float, float]]]:
    """Leave one set (author) out: train on the other sets, measure on it."""
    report = {}
    for held in sets:
        names, labels = [], []
        for name, rows in sets.items():
            if name == held:
                continue
            for row, (_, feats) in zip(rows, cache[name]):
                if feats is not None:
                    names.append(_keep(feats, groups))
                    labels.append(row["label"])
        model = fit(names, labels, penalty)
        gold = [r["label"] for r in sets[held]]
        learned = [predict(model, _keep(feats, groups), rules_label, margin) for rules_label, feats in cache[held]]
        report[held] = {"rules": scores(gold, [rules_label for rules_label, _ in cache[held]]),
                        "learned": scores(gold, learned)}
    return report


def _print(report: dict, title: str) -> None:
    print(title)
    print(f"  {'held-out set':40} {'n':>5}  rules bin / 3-lab   learned bin / 3-lab")
    for name, r in report.items():
        print(f"  {name:40} {r.get('n', ''):>5}  {r['rules'][0]:6.1%} / {r['rules'][1]:6.1%}    "
              f"{r['learned'][0]:6.1%} / {r['learned'][1]:6.1%}")
    mean = lambda k, i: sum(r[k][i] for r in report.values()) / len(report)  # noqa: E731
    print(f"  {'mean over sets':40} {'':>5}  {mean('rules', 0):6.1%} / {mean('rules', 1):6.1%}    "
          f"{mean('learned', 0):6.1%} / {mean('learned', 1):6.1%}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with refusal_answers*.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="where to write the weights")
    parser.add_argument("--cv", action="store_true", help="leave-one-set-out figures")
    parser.add_argument("--search", action="store_true", help="try penalties and feature groups by cross-validation")
    args = parser.parse_args(argv)
    sets = load_sets(args.data)
    cache = {name: featurize(rows) for name, rows in sets.items()}
    if args.search:
        for margin in (0.0, 0.3, 0.6):
            for dropped in (None, "first", "cues", "question"):
                groups = tuple(g for g in refusal_learned.ALL_GROUPS if g != dropped)
                _print(cross_validate(sets, cache, groups, PENALTY, margin),
                       f"without {dropped}, penalty {PENALTY}, margin {margin}")
    if args.cv:
        report = cross_validate(sets, cache)
        for name in report:
            report[name]["n"] = len(sets[name])
        _print(report, f"leave-one-set-out, groups {','.join(GROUPS)}, penalty {PENALTY}")
    if args.out or not (args.cv or args.search):
        names = [_keep(feats, GROUPS) for name in sets for _, feats in cache[name] if feats is not None]
        labels = [row["label"] for name in sets for row, (_, feats) in zip(sets[name], cache[name])
                  if feats is not None]
        model = fit(names, labels)
        model["groups"] = list(GROUPS)
        model["trained_on"] = {name: len(rows) for name, rows in sets.items()}
        model["penalty"] = PENALTY
        model["margin"] = MARGIN
        model["trained_with"] = {"numpy": np.__version__, "scipy": __import__("scipy").__version__}
        model["min_count"] = MIN_COUNT
        out = args.out or refusal_learned.WEIGHTS
        out.write_text(json.dumps(model, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
        print(f"wrote {out} ({len(model['weights'])} weights, {sum(model['trained_on'].values())} answers)",
              file=sys.stderr)


if __name__ == "__main__":
    main()
