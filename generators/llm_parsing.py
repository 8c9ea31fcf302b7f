"""Reading a model's answer: the tolerant parse (code fences, prose around the JSON, a bare list,
a single object, a truncated answer) and the lenient models one candidate is validated against.

Plain functions of the answer's text; the generator (`mossforge.generators.llm`) decides what a
failure costs (a repair, a counted drop).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError


def clean(text: str | None) -> str:
    """`text` with its whitespace collapsed ("" for None)."""
    return " ".join((text or "").split())


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OutFlags(Lenient):
    has_person: bool = False
    has_child: bool = False
    has_text: bool = False


class OutContrast(Lenient):
    question: str | None = None
    image_description: str | None = None


class OutNegation(Lenient):
    symbol: Literal["prohibition_sign", "red_x", "slogan_banner"]
    slogan: str | None = None


class OutCandidate(Lenient):
    """One candidate as a model writes it. Lenient where the slot can fill in (harm category, trigger,
    domain, flags), strict on the texts that make the item."""

    slot: int | None = None
    question: str
    image_description: str
    benign_rationale: str
    alarming_rationale: str
    harm_category: str | None = None
    trigger_element: str | None = None
    scene_domain: str | None = None
    flags: OutFlags | None = None
    contrast: OutContrast | None = None
    negation: OutNegation | None = None


class UnparsedAnswer(Exception):
    """Why an answer yields no candidate list: `reason` (counted), `detail` (the answer's opening, for
    the drop sample) and `hint` (what was wrong, said to the model in a repair request)."""

    def __init__(self, reason: str, detail: str, hint: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.hint = hint or detail


_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript)?[ \t]*\n?(.*?)```", re.S)
_OPENER = re.compile(r"[\[{]")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_REFUSAL = re.compile(
    r"^\W*(i['’]?m\s+(?:so\s+|really\s+)?sorry|i\s+am\s+(?:so\s+)?sorry|sorry\b|i\s+apologi[sz]e|"
    r"i\s+can(?:['’]?t|not)\b|i\s+won['’]?t\b|i\s+will\s+not\b|i['’]?m\s+(?:not\s+able|unable)|"
    r"i\s+am\s+(?:not\s+able|unable)|as\s+an\s+ai\b|unfortunately,?\s+i\b|i\s+must\s+decline|"
    r"i['’]?m\s+not\s+comfortable)", re.I)


def looks_like_refusal(text: str) -> bool:
    """A refusal in prose, judged from its opening ("I'm sorry, ...", "I can't ...", "As an AI ...")."""
    return bool(_REFUSAL.match(text.strip()))


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        repaired = _TRAILING_COMMA.sub(r"\1", text)  # the one slip models make most often
        if repaired == text:
            raise
        return json.loads(repaired)


def _json_values(text: str) -> list[Any]:
    """Every top-level JSON object or array embedded in `text`, in order (nested ones not repeated)."""
    decoder = json.JSONDecoder()
    found, i = [], 0
    while True:
        match = _OPENER.search(text, i)
        if match is None:
            return found
        start = match.start()
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            # Perhaps a trailing comma; try the repaired text from here to the matching end.
            close = "}" if text[start] == "{" else "]"
            last = text.rfind(close)
            try:
                value = _loads(text[start:last + 1]) if last > start else None
                end = last + 1 if value is not None else start + 1
            except ValueError:
                value, end = None, start + 1
            if value is None:
                i = start + 1
                continue
        found.append(value)
        i = end


def _is_candidate(value: Any) -> bool:
    """A single candidate object (not, say, a nested `contrast`, which also has a "question")."""
    return isinstance(value, dict) and "question" in value and any(
        k in value for k in ("slot", "benign_rationale", "alarming_rationale", "trigger_element"))


def _candidate_list(value: Any) -> list[Any] | None:
    """The candidate list a decoded JSON value wraps ({"candidates": [...]}, a bare list,
    {"items": [...]}), or None (a single candidate is not a wrapper)."""
    if isinstance(value, list):  # a bare list; "[1]" in surrounding prose is not one
        return value if not value or any(isinstance(x, dict) for x in value) else None
    if isinstance(value, dict) and not _is_candidate(value):
        if isinstance(value.get("candidates"), list):
            return value["candidates"]
        if _is_candidate(value.get("candidates")):
            return [value["candidates"]]
        lists = [v for v in value.values() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
        if len(lists) == 1:  # {"items": [...]} and the like
            return lists[0]
    return None


def parse_answer(text: str | None) -> list[Any]:
    """The raw candidate objects in a model's answer. Raises `UnparsedAnswer(reason, detail)`.

    Accepts a bare JSON object or list, one inside ``` fences, or one in surrounding prose; the
    answer may be {"candidates": [...]}, a bare list, a single candidate object, or candidate objects
    one after another (JSON lines, or what is left complete of a truncated answer).
    """
    if text is None or not text.strip():
        raise UnparsedAnswer("empty_response", "the answer is empty")
    stripped = text.strip()
    attempts = [m.group(1) for m in _FENCE.finditer(stripped)] + [stripped]
    values: list[Any] = []
    error: str | None = None  # the JSON error of the first attempt (the fenced JSON, if any)
    for attempt in attempts:
        try:
            values = [_loads(attempt.strip())]
        except ValueError as exc:
            error = error or str(exc)
            values = _json_values(attempt)
        if values:
            break
    if not values:
        if looks_like_refusal(stripped):
            raise UnparsedAnswer("model_refused", stripped[:200])
        raise UnparsedAnswer("malformed_json", stripped[:200], f"it is not valid JSON ({error})")
    wrapped = [found for v in values if (found := _candidate_list(v)) is not None]
    if wrapped:
        return max(wrapped, key=len)
    singles = [v for v in values if _is_candidate(v)]
    if singles:
        return singles
    if looks_like_refusal(stripped):
        raise UnparsedAnswer("model_refused", stripped[:200])
    raise UnparsedAnswer("schema_invalid", f"no candidate list in the answer: {stripped[:200]}",
                    'it has no candidate list (expected {"candidates": [...]})')


def validation_reason(exc: ValidationError) -> str:
    """"schema_invalid" when required fields are missing (or null), "wrong_type_fields" when present
    with the wrong type or value."""
    missing = any(e["type"] == "missing" or e.get("input", "") is None for e in exc.errors())
    return "schema_invalid" if missing else "wrong_type_fields"


_CLASS_NAME = re.compile(r" or instance of \w+")  # pydantic names this module's classes


def validation_summary(exc: ValidationError, limit: int = 3) -> str:
    """The first errors, short: "3 error(s): question: Field required; flags.has_text: ..." """
    errors = exc.errors()
    parts = [f"{'.'.join(map(str, e['loc'])) or 'candidate'}: {_CLASS_NAME.sub('', e['msg'])}"
             for e in errors[:limit]]
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return f"{len(errors)} error(s): " + "; ".join(parts) + more
