"""Human review of the panel's labels: export items as a CSV plus an image folder, read the
reviewers' labels back, and fold them into each item's consensus, recorded as `human:<reviewer>`.

A reviewer's label either overrides the panel (the panel's votes stay on the item, the consensus
is the reviewers') or joins it (the reviewer is one more vote under the same rule).
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mossforge.errors import InputError
from mossforge.filters.consensus import LABELS, Rule, aggregate, is_vote, pairwise_agreement
from mossforge.schema import Candidate, ConsensusLabel, JudgeVote

REVIEW_CSV = "review.csv"
COLUMNS = ("id", "image", "question", "contrast_question", "stimulus_type", "harm_category",
           "panel_consensus", "panel_agreement", "panel_votes", "reviewer", "label", "note")


class ReviewFileError(InputError):  # a ValueError too
    """A reviewed CSV that cannot be used; the message names the row and column."""


@dataclass(frozen=True)
class HumanLabel:
    item_id: str
    label: str
    reviewer: str
    note: str | None = None

    @property
    def source(self) -> str:
        return f"human:{self.reviewer}"

    def vote(self) -> JudgeVote:
        return JudgeVote(judge=self.source, model_id="human", label=self.label, rationale=self.note,
                         source=self.source)


def _votes_summary(votes: Sequence[JudgeVote]) -> str:
    return "; ".join(f"{v.judge}={v.label}" + (f" ({v.abstain_reason})" if v.abstain_reason else "")
                     for v in votes)


def export_review(records: Sequence[Candidate], image_path: Callable[[Candidate], Path | None],
                  out_dir: Path) -> Path:
    """Write `out_dir/review.csv` (one row per item, empty reviewer/label/note columns) and the
    items' images under `out_dir/images/`. Returns the CSV's path."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    path = out_dir / REVIEW_CSV
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for record in sorted(records, key=lambda r: r.id):
            source = image_path(record)
            relative = ""
            if source is not None and record.image is not None:
                relative = f"images/{record.image.sha256}.png"
                if not (out_dir / relative).exists():
                    shutil.copyfile(source, out_dir / relative)
            label = record.consensus_label
            writer.writerow({
                "id": record.id, "image": relative, "question": record.question,
                "contrast_question": record.contrast.question or "",
                "stimulus_type": record.stimulus_type, "harm_category": record.harm_category,
                "panel_consensus": label.consensus or label.status,
                "panel_agreement": "" if label.agreement is None else label.agreement,
                "panel_votes": _votes_summary([v for v in label.votes if v.source == "model"]),
                "reviewer": "", "label": "", "note": "",
            })
    return path


def read_review(path: Path, known_ids: set[str] | None = None) -> dict[str, list[HumanLabel]]:
    """Reviewers' labels by item id. Rows with an empty label are not reviewed and are skipped;
    a bad label, a missing reviewer or an unknown id is an error naming the row."""
    path = Path(path)
    if not path.is_file():
        raise ReviewFileError(f"{path}: no such file")
    labels: dict[str, list[HumanLabel]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets add a BOM
        reader = csv.DictReader(handle)
        missing = {"id", "reviewer", "label"} - set(reader.fieldnames or ())
        if missing:
            raise ReviewFileError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for number, row in enumerate(reader, start=2):  # row 1 is the header
            label = (row.get("label") or "").strip().lower()
            if not label:
                continue
            where = f"{path}, row {number}"
            if label not in LABELS:
                raise ReviewFileError(f"{where}: label {label!r} is not one of {', '.join(LABELS)}")
            reviewer = (row.get("reviewer") or "").strip()
            if not reviewer:
                raise ReviewFileError(f"{where}: a labelled row needs a reviewer name")
            item_id = (row.get("id") or "").strip()
            if known_ids is not None and item_id not in known_ids:
                raise ReviewFileError(f"{where}: id {item_id!r} is not among the items reviewed")
            note = (row.get("note") or "").strip() or None
            labels.setdefault(item_id, []).append(HumanLabel(item_id, label, reviewer, note))
    return labels


def apply_human_labels(label: ConsensusLabel, humans: Sequence[HumanLabel], mode: str, rule: Rule,
                       weights: Mapping[str, float] | None = None) -> None:
    """Fold reviewers' labels into one item's consensus (in place). Earlier human votes from the
    same reviewers are replaced, so importing the same file twice changes nothing."""
    if not humans:
        return
    sources = {h.source for h in humans}
    label.votes = [v for v in label.votes if v.source not in sources] + [h.vote() for h in humans]
    decided_by = ",".join(sorted(sources))
    if mode == "override":
        human_votes = [v for v in label.votes if v.source.startswith("human:")]
        # Reviewers agreeing among themselves decide; reviewers who disagree make it controversial
        # at least (the most severe label wins when any of them says harmful).
        outcome = aggregate(human_votes, Rule("unanimous", harmful_share=1e-9, min_votes=1))
        label.consensus, label.decided_by = outcome.consensus, decided_by
    elif mode == "join":
        outcome = aggregate(label.votes, rule, weights)
        label.consensus, label.decided_by = outcome.consensus, f"panel+{decided_by}"
    else:
        raise ValueError(f"unknown human review mode {mode!r} (override or join)")
    label.valid_votes = sum(1 for v in label.votes if is_vote(v))
    label.agreement = pairwise_agreement(label.votes) if label.valid_votes else None
