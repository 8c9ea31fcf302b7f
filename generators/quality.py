"""The quality gate: drop, with a reason, a candidate that would be useless downstream.

    reason = gate_reason(candidate)   # None: keep; else e.g. "question_too_short"

A plain function over a record (`mossforge.schema.Candidate`), whatever generator wrote it, so a
pipeline stage can apply it to any generator's output. The LLM generator applies it to every
candidate it builds (`mossforge.generators.llm`), before anything downstream sees it.

The checks, in order (the first that fails names the reason):

| reason                        | when                                                           |
|-------------------------------|----------------------------------------------------------------|
| `question_too_short`          | fewer than MIN_QUESTION_WORDS words or MIN_QUESTION_CHARS chars |
| `question_too_long`           | more than MAX_QUESTION_WORDS words                             |
| `counterintuitive_too_long`   | a counterintuitive_interpretation question over MAX_COUNTERINTUITIVE_WORDS words |
| `image_description_too_short` | fewer than MIN_IMAGE_DESCRIPTION_WORDS words                   |
| `rationale_missing`           | no benign or no alarming rationale                             |
| `contrast_missing`            | no harmful contrast question                                   |
| `negation_missing`            | a negated_harm item without its negation                       |
| `negation_slogan_missing`     | a slogan banner without a slogan                               |
| `contrast_image_invalid`      | negated_harm: no contrast image, one too short, the same as the item's image, or one that still draws the slogan |

Words are counted on whitespace; texts are compared with their whitespace collapsed.
"""

from __future__ import annotations

from mossforge.schema import Candidate

MIN_QUESTION_WORDS = 2
MIN_QUESTION_CHARS = 8
MAX_QUESTION_WORDS = 60
MAX_COUNTERINTUITIVE_WORDS = 15
MIN_IMAGE_DESCRIPTION_WORDS = 4

GATE_REASONS = ("question_too_short", "question_too_long", "counterintuitive_too_long",
                "image_description_too_short", "rationale_missing", "contrast_missing", "negation_missing",
                "negation_slogan_missing", "contrast_image_invalid")


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def gate_reason(candidate: Candidate) -> str | None:
    """None to keep `candidate`, else the reason to drop it (one of `GATE_REASONS`)."""
    question = _clean(candidate.question)
    image_description = _clean(candidate.image_description)
    words = len(question.split())
    if not question or words < MIN_QUESTION_WORDS or len(question) < MIN_QUESTION_CHARS:
        return "question_too_short"
    if words > MAX_QUESTION_WORDS:
        return "question_too_long"
    if candidate.stimulus_type == "counterintuitive_interpretation" and words > MAX_COUNTERINTUITIVE_WORDS:
        return "counterintuitive_too_long"
    if len(image_description.split()) < MIN_IMAGE_DESCRIPTION_WORDS:
        return "image_description_too_short"
    if not _clean(candidate.benign_rationale) or not _clean(candidate.alarming_rationale):
        return "rationale_missing"
    if not _clean(candidate.contrast.question):
        return "contrast_missing"
    if candidate.stimulus_type == "negated_harm":
        negation = candidate.negation
        if negation is None:
            return "negation_missing"
        slogan = _clean(negation.slogan)
        if negation.symbol == "slogan_banner" and not slogan:
            return "negation_slogan_missing"
        # The contrast image is the same scene without the negation: it must exist, differ from
        # the negated image and not draw the slogan.
        contrast_image = _clean(candidate.contrast.image_description)
        if (not contrast_image or len(contrast_image.split()) < MIN_IMAGE_DESCRIPTION_WORDS
                or contrast_image.lower() == image_description.lower()
                or (len(slogan) >= 4 and slogan.lower() in contrast_image.lower())):
            return "contrast_image_invalid"
    return None
