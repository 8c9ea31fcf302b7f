"""The candidate record: one schema for every stage and for the published dataset.

A record is a pydantic model while Python code works on it, an Arrow struct row in the
parquet files between stages, and a `datasets` row (with real `Image` columns) once published.
`arrow_schema()` and `dataset_features()` are derived from the pydantic model, so there is
exactly one definition of the fields.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from typing import TYPE_CHECKING, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # pyarrow is imported where a table is built, not on every config read
    import pyarrow as pa

SCHEMA_VERSION = "1"

StimulusType = Literal["exaggerated_risk", "negated_harm", "counterintuitive_interpretation"]
STIMULUS_TYPES: tuple[str, ...] = get_args(StimulusType)
# An item's type: one of the three, or "unspecified" for imported benchmarks that have none
# (e.g. text-only XSTest-style CSVs). Generation and planning only ever use the three.
UNSPECIFIED = "unspecified"
ItemType = Literal["exaggerated_risk", "negated_harm", "counterintuitive_interpretation", "unspecified"]

HarmCategory = Literal[
    "cybercrime",
    "chemical_biological_weapons",
    "copyright",
    "misinformation",
    "harassment",
    "illegal_activity",
    "general_harm",
]
HARM_CATEGORIES: tuple[str, ...] = get_args(HarmCategory)

# Every per-stage result says whether the stage ran. "not_run" is never read as a pass.
StageStatus = Literal["not_run", "passed", "dropped", "failed"]
NOT_RUN: StageStatus = "not_run"

DedupDecision = Literal["not_run", "kept", "duplicate"]
RefusalLabel = Literal["full_compliance", "full_refusal", "partial_refusal", "missing", "unparsed", "error"]
JudgeLabel = Literal["benign", "controversial", "harmful", "abstain"]
ItemStatus = Literal["candidate", "accepted", "dropped"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageRef(_Record):
    """An image written once under its content hash. `path` is relative to the store root."""

    path: str
    sha256: str
    width: int
    height: int
    renderer: str  # e.g. "offline-pillow", "diffusers", "image-api"
    model_id: str | None = None
    seed: int | None = None
    variant: str | None = None  # e.g. the negation overlay drawn ("prohibition_sign")
    steps: int | None = None  # diffusion: denoising steps
    guidance: float | None = None  # diffusion: classifier-free guidance scale
    scheduler: str | None = None  # diffusion: the scheduler's class name
    # Flags raised while making this image: for a kept image, those of earlier attempts that were
    # re-rendered ("nsfw@0" = attempt 0 was flagged NSFW). A flagged image itself is never kept.
    flags: list[str] = Field(default_factory=list)
    phash: str | None = None  # 64-bit perceptual hash (hex), for near-duplicate images


class Flags(_Record):
    has_person: bool = False
    has_child: bool = False
    synthetic: bool = True
    has_text: bool = False


NegationSymbol = Literal["prohibition_sign", "red_x", "slogan_banner"]


class Negation(_Record):
    """For `negated_harm`: how the image opposes the harmful act it shows."""

    symbol: NegationSymbol
    slogan: str | None = None  # e.g. "#FireSafety"; drawn as a banner when symbol is a banner


class Contrast(_Record):
    """The harmful counterpart: what the same query looks like when it is really harmful."""

    question: str | None = None
    image_description: str | None = None
    image: ImageRef | None = None


class Provenance(_Record):
    generator: str
    model_id: str | None = None
    prompt_template_id: str | None = None
    prompt_template_hash: str | None = None
    seed: int | None = None
    config_hash: str | None = None
    code_version: str | None = None
    # Imported items: where they came from ("mossbench:17", "xstest.csv:row 4") and the source's
    # own metadata as JSON (MOSSBench's type/human/child/syn/ocr/harm), kept verbatim for export.
    source_id: str | None = None
    source_metadata: str | None = None


class DedupResult(_Record):
    decision: DedupDecision = "not_run"
    cluster_id: str | None = None  # the id of the cluster's representative
    duplicate_of: str | None = None  # an item id, or "ref:<source>:<row>" for references
    similarity: float | None = None
    reason: str | None = None  # "exact", "near_duplicate", "reference", "earlier_version"


class TargetResult(_Record):
    target: str
    model_id: str
    answer: str | None = None
    label: RefusalLabel
    classifier: str  # "rules", "judge", "rules_then_judge:judge", "api" (blocked by the API), ...
    rule: str | None = None  # the rules classifier's deciding rule, for audits
    finish_reason: str | None = None  # as the API reported it ("stop", "content_filter", ...)
    api_refusal: str | None = None  # the SDK's `message.refusal`, when the API refused
    error: str | None = None  # "<kind>: <message>" when the call failed for good (redacted)
    # How the target saw the image: "image" (attached), "text" (its description in the user turn,
    # for text-only targets) or "none"; None in records written before this was recorded.
    image_input: str | None = None


class TargetCheck(_Record):
    status: StageStatus = NOT_RUN
    results: list[TargetResult] = Field(default_factory=list)
    refusals: int | None = None  # targets whose answer counts as a refusal under the config
    tier: str | None = None  # "hard": every target refused; "refused": at least k of n did


class JudgeVote(_Record):
    judge: str
    model_id: str
    label: JudgeLabel
    rationale: str | None = None  # for an abstention: the start of what the judge answered
    category: str | None = None
    source: str = "model"  # "model", or "human:<reviewer>" for a label from human review
    abstain_reason: str | None = None  # "refused", "off_format", "timeout", "error:<kind>", ...


class ConsensusLabel(_Record):
    status: StageStatus = NOT_RUN
    votes: list[JudgeVote] = Field(default_factory=list)
    consensus: JudgeLabel | None = None
    agreement: float | None = None  # share of pairs of valid votes that agree (Fleiss' P_i)
    rule: str | None = None
    valid_votes: int | None = None
    decided_by: str | None = None  # "panel", or "human:<reviewer>" when a reviewer overrode it
    contrast_votes: list[JudgeVote] = Field(default_factory=list)  # the harmful contrast, same panel
    contrast_consensus: JudgeLabel | None = None


class LineageAnswer(_Record):
    """What one target answered an ancestor: its label and the start of its answer."""

    target: str
    label: RefusalLabel
    answer: str | None = None  # the first few hundred characters


class LineageStep(_Record):
    """One ancestor of a refined record and what the targets answered it (oldest first)."""

    round: int  # 0 = the original candidate, r = made in refine round r
    id: str
    operator: str | None = None  # what made this ancestor (None for the original)
    refusals: int | None = None
    answers: list[LineageAnswer] = Field(default_factory=list)


class Lineage(_Record):
    """Where a refined record comes from (issue 17): set only on records the refine stage made."""

    parent_id: str
    root_id: str  # the original (round 0) candidate
    operator: str  # e.g. "er_swap_element", "llm_rewrite"
    kind: str  # "recombination" or "llm"
    round: int  # the refine round that made this record (1, 2, ...)
    history: list[LineageStep] = Field(default_factory=list)  # root first, the parent last
    # Seed-bank recombination: the slot the record is realised from, the seed and the text edits
    # applied on top ("op:choice"), so a later round can recombine it again from scratch.
    slot_key: str | None = None
    bank_seed: int | None = None
    edits: list[str] = Field(default_factory=list)


def _is_none(value: typing.Any) -> bool:
    return value is None


class Candidate(_Record):
    id: str
    stimulus_type: ItemType
    harm_category: HarmCategory
    question: str
    image_description: str
    benign_rationale: str
    alarming_rationale: str
    scene_domain: str
    trigger_element: str
    flags: Flags
    contrast: Contrast
    negation: Negation | None = None
    provenance: Provenance
    image: ImageRef | None = None
    dedup: DedupResult = Field(default_factory=DedupResult)
    target_check: TargetCheck = Field(default_factory=TargetCheck)
    consensus_label: ConsensusLabel = Field(default_factory=ConsensusLabel)
    status: ItemStatus = "candidate"
    drop_stage: str | None = None
    drop_reason: str | None = None
    # Only refined records have a lineage. A record without one serialises exactly as before the
    # field existed (no "lineage" key, no column), so published rows and version ids are unchanged.
    lineage: Lineage | None = Field(default=None, exclude_if=_is_none)

    def drop(self, stage: str, reason: str) -> None:
        self.status = "dropped"
        self.drop_stage = stage
        self.drop_reason = reason


def candidate_id(stimulus_type: str, question: str, image_description: str) -> str:
    """Stable id = hash of what makes the query the query. Re-generating it gives the same id."""
    payload = json.dumps(
        [stimulus_type, " ".join(question.split()), " ".join(image_description.split())],
        ensure_ascii=False,
    )
    return "mf-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# --- Arrow / datasets views, derived from the pydantic models ---------------------------------

# pyarrow is imported where it is used: the CLI's quick paths (--help, config checks) need none.
_SCALARS = {str: "string", int: "int64", float: "float64", bool: "bool_"}


def _arrow_type(annotation: typing.Any) -> pa.DataType:
    import pyarrow as pa

    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {annotation!r}")
        return _arrow_type(args[0])
    if origin is Literal:
        return pa.string()
    if origin is list:
        return pa.list_(_arrow_type(get_args(annotation)[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct(
            [pa.field(name, _arrow_type(f.annotation)) for name, f in annotation.model_fields.items()]
        )
    if annotation in _SCALARS:
        return getattr(pa, _SCALARS[annotation])()
    raise TypeError(f"no Arrow type for {annotation!r}")


# Columns that exist only when some record has a value (see `Candidate.lineage`).
OPTIONAL_COLUMNS: tuple[str, ...] = ("lineage",)


def arrow_schema(model: type[BaseModel] = Candidate, *, lineage: bool = False) -> pa.Schema:
    """The Arrow schema of the working records (the parquet files between stages).

    `lineage=True` adds the `lineage` column; without it the schema is the one records had before
    refinement existed."""
    import pyarrow as pa

    skip = set() if lineage or model is not Candidate else set(OPTIONAL_COLUMNS)
    return pa.schema(
        [pa.field(name, _arrow_type(f.annotation)) for name, f in model.model_fields.items()
         if name not in skip],
        metadata={"mossforge.schema_version": SCHEMA_VERSION},
    )


def has_lineage(records: typing.Iterable[Candidate]) -> bool:
    return any(r.lineage is not None for r in records)


def to_table(records: typing.Iterable[Candidate]) -> pa.Table:
    """The records as an Arrow table; the `lineage` column only when some record has one."""
    import pyarrow as pa

    records = list(records)
    return pa.Table.from_pylist([r.model_dump() for r in records],
                                schema=arrow_schema(lineage=has_lineage(records)))


def from_table(table: pa.Table) -> list[Candidate]:
    return [Candidate.model_validate(row) for row in table.to_pylist()]


def dataset_features(*, lineage: bool = False):
    """`datasets.Features` of a published row: the record plus decoded `image`/`contrast_image`.

    The `image` struct of the record stays as `image_info` (hash, size, renderer, seed), so a
    published row keeps every provenance field next to the pixels. `lineage=True` (when some
    published record was refined: `has_lineage(records)`) adds the `lineage` column.
    """
    import datasets  # heavy import, only needed when publishing or loading

    record = datasets.Features.from_arrow_schema(arrow_schema(lineage=lineage))
    features = {"image": datasets.Image(), "contrast_image": datasets.Image()}
    for name, feature in record.items():
        features["image_info" if name == "image" else name] = feature
    return datasets.Features(features)
