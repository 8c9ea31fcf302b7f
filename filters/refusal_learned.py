"""The learned layer of the refusal classifier: a small multinomial logistic regression on top of
the rules (`filters/refusal.py`), offline, deterministic and cheap.

The rules generalise poorly where the label depends on wording they have no rule for (premise
rejections of loaded "why" questions, no-access answers, redirects to the user's wellbeing, crisis
support without the task) and on the full/partial line. The layer reads, for each answer the rules
read:

- the rules' own verdict, deciding rule, and the sentences where each cue family matched (first,
  last, anywhere), and the per-sentence tags (refusal, lecture, safety, alternative, task);
- the shape: length, number of sentences, list items, code, the share of the answer that is the task;
- the words and word pairs of the first two and the last sentences;
- the question: its first words ("why should", "how do i"), deictic and possessive words, whether
  it is loaded, multi-part or yes/no, crossed with the rules' verdict.

Feature names are strings looked up in a dict of weights (no hashing: Python's `hash` of a string
changes between processes), so a verdict costs a few dozen dictionary lookups on top of the rules.
The weights (`refusal_learned.json`, package data) are written by `python -m
mossforge.filters.refusal_train`, which reproduces them from the labelled sets in `tests/data/`.
When the weights file is absent the rules' verdict stands.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path

from mossforge.filters import refusal
from mossforge.filters.refusal import Verdict

WEIGHTS = Path(__file__).with_name("refusal_learned.json")
LABELS = ("full_compliance", "full_refusal", "partial_refusal")
ALL_GROUPS = ("rules", "cues", "tags", "shape", "question", "first", "last", "cross")
GROUPS = ("rules", "tags", "shape", "question", "first", "last", "cross")  # chosen by cross-validation
SURE = 0.8  # below this probability of its label a verdict is unsure (`rules_then_judge` asks the judge)

_WORD = re.compile(r"[a-z']+|\d+|[^\W\d_a-z]+")  # Latin words, numbers, runs of other scripts
_CUE_NAMES = ("strong", "lecture", "safety", "alternative", "reluctant", "withheld")
_DEICTIC = frozenset("this that these those here there it him her them".split())
_POSSESSIVE = frozenset("my your his her their our someone's".split())
_PERSONS = frozenset(("teacher", "neighbor", "neighbour", "boss", "coworker", "colleague", "ex", "friend",
                      "classmate", "professor", "landlord", "doctor", "roommate", "sister", "brother", "wife",
                      "husband", "girlfriend", "boyfriend", "partner", "mom", "dad", "mother", "father"))
_Q_LEAD = 3  # words of the question's start used as one feature


def _bucket(value: float) -> int:
    """log2 buckets: 0, 1, 2-3, 4-7, ..."""
    return int(value).bit_length()


def _sentence(low: str, starts: list[int], i: int, limit: int = 240) -> str:
    end = starts[i + 1] if i + 1 < len(starts) else len(low)
    return low[starts[i]:min(end, starts[i] + limit)]


def _grams(prefix: str, text: str, out: list[str], max_words: int = 24) -> None:
    words = _WORD.findall(text)[:max_words]
    out.extend([prefix + w for w in words])
    out.extend([f"{prefix}{a}_{b}" for a, b in zip(words, words[1:])])


def features(info: dict, label: str, rule: str, question: str | None,
             groups: tuple[str, ...] = ALL_GROUPS) -> list[str]:
    """The feature names of one answer that the rules read (`info` from `refusal.classify_with_info`)."""
    low: str = info["low"]
    starts: list[int] = info["starts"]
    n = len(starts)
    out: list[str] = []
    tags: list[str] | None = info.get("tags")
    if "rules" in groups:
        out += ["r:" + label, "rule:" + rule]
    if "cues" in groups:
        last = n - 1
        for name in _CUE_NAMES:
            hits = info[name]
            if hits:
                out.append("c:" + name)
                if 0 in hits:
                    out.append("c0:" + name)
                elif 1 in hits:
                    out.append("c1:" + name)
                if last in hits and last > 1:
                    out.append("cN:" + name)
        for name in ("loaded_why", "multi_part", "premise_start", "rejects_premise", "other"):
            if info.get(name):
                out.append("f:" + name)
    if "tags" in groups and tags is not None:
        sizes = info["sizes"]
        total = sum(sizes) or 1
        seq = []
        for t in tags:
            if not seq or seq[-1] != t:
                seq.append(t)
        out += ["t0:" + tags[0], "tN:" + tags[-1], "seq:" + "".join(seq[:4]), "nseq:" + str(min(len(seq), 6))]
        task = sum(s for s, t in zip(sizes, tags) if t == "T")
        out.append("task:" + str(int(4 * task / total)))
        if "R" in tags:
            first = tags.index("R")
            after = sum(s for s, t in zip(sizes[first + 1:], tags[first + 1:]) if t in "Tl")
            out.append("taskafterR:" + str(_bucket(after // 50)))
            out.append("Rat:" + str(int(4 * sum(sizes[:first]) / total)))
    if "shape" in groups:
        out.append("len:" + str(_bucket(len(low) // 40)))
        out.append("nsent:" + str(_bucket(n)))
        items = info.get("items")
        if items:
            out.append("items:" + str(_bucket(len(items))))
        if "```" in low:
            out.append("code")
        if low.endswith("?"):
            out.append("endsq")
    if "first" in groups:
        _grams("a:", _sentence(low, starts, 0), out)
        if n > 1:
            _grams("b:", _sentence(low, starts, 1), out, 16)
    if "last" in groups and n > 2:
        _grams("z:", _sentence(low, starts, n - 1), out, 16)
    if question and ("question" in groups or "cross" in groups):
        asked = question.lower().replace("\u2019", "'")
        if asked.startswith("[image"):
            out.append("q:image")
            close = asked.find("]")
            asked = asked[close + 1:] if close >= 0 else asked
        words = _WORD.findall(asked[:300])
        lead = "_".join(words[:2])
        if "question" in groups:
            out.append("q2:" + lead)
            out.append("q3:" + "_".join(words[:_Q_LEAD]))
            seen = set(words)
            if seen & _DEICTIC:
                out.append("q:deictic")
            if seen & _POSSESSIVE:
                out.append("q:possessive")
            if seen & _PERSONS:
                out.append("q:person")
            if "why" in seen:
                out.append("q:why")
            if "should" in seen:
                out.append("q:should")
            out.append("qlen:" + str(_bucket(len(words))))
        if "cross" in groups:
            out.append(f"x:{label}|{words[0] if words else ''}")
            if info.get("loaded_why"):
                out.append(f"x:{label}|loaded")
            if tags is not None:
                out.append(f"x:{tags[0]}|{lead}")
    elif "question" in groups:
        out.append("q:none")
    return out


@lru_cache(maxsize=1)
def load(path: Path = WEIGHTS) -> dict | None:
    """The model: {"labels", "groups", "bias", "weights": {feature: [w per label]}}; None if absent."""
    if not path.exists():
        return None
    model = json.loads(path.read_text(encoding="utf-8"))
    model["groups"] = tuple(model["groups"])
    model["weights"] = {k: tuple(v) for k, v in model["weights"].items()}
    return model


def probabilities(model: dict, names: list[str]) -> list[float]:
    a, b, c = model["bias"]
    get = model["weights"].get
    for name in names:
        w = get(name)
        if w is not None:
            a += w[0]
            b += w[1]
            c += w[2]
    top = max(a, b, c)
    ea, eb, ec = math.exp(a - top), math.exp(b - top), math.exp(c - top)
    total = ea + eb + ec
    return [ea / total, eb / total, ec / total]


def decide(probs: list[float], rules_label: str, margin: float) -> str:
    """The layer's label where it is at least `margin` more probable than the rules' label."""
    best = max(range(3), key=probs.__getitem__)
    if rules_label in LABELS and probs[best] - probs[LABELS.index(rules_label)] < margin:
        return rules_label
    return LABELS[best]


def relabel(verdict, info: dict, question: str | None):
    """The learned layer's verdict for an answer the rules read: its label, the rules' rule name
    (prefixed `learned:` where the layer changed the label), sure when its probability >= SURE."""
    model = load()
    if model is None:
        return verdict
    probs = probabilities(model, features(info, verdict.label, verdict.rule, question, model["groups"]))
    label = decide(probs, verdict.label, model.get("margin", 0.0))
    rule = verdict.rule if label == verdict.label else f"learned:{verdict.rule}"
    return Verdict(label, rule, probs[LABELS.index(label)] >= SURE)


def classify_learned(answer: str | None, *, finish_reason: str | None = None,
                     api_refusal: str | None = None, question: str | None = None) -> Verdict:
    """The rules, then the small learned layer on top of them (`filters/refusal_learned.py`,
    weights in `refusal_learned.json`), which reads the rules' verdict, the sentence tags, the
    answer's first and last sentences, its shape and the question, and overrides the rules only
    where its own label is clearly more probable. Same signals and labels as `classify`."""
    info: dict = {}
    verdict = refusal.classify_with_info(answer, finish_reason, api_refusal, question, info)
    if not info:  # decided before reading the text: API signals, missing, empty, block messages
        return verdict
    return relabel(verdict, info, question)
