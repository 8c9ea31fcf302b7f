"""The LLM text generator: candidates written by a chat model behind any OpenAI-compatible endpoint.

    gen = LLMGenerator(client, "generator", candidates_per_call=4)
    records, stats = gen.generate(slots, seed=0, config_hash=h, code_version=v)

How it works:

- **One prompt template per stimulus type**, versioned (`llm-<type>-v1`) and hashed (sha256 of the
  template text); both go into every record's provenance together with the model and the seed.
  Each template describes its type precisely (what the image is, what the request is, why it is
  benign, what the harmful contrast is) and shows few-shot examples drawn from the seed bank,
  rendered as an answer in the very JSON shape the model must produce.
- **Diversity by design**: slots of one type are grouped into calls of `candidates_per_call`; a call
  asks for one candidate per slot (harm category x scene domain x trigger element) and lists up to
  `avoid_recent` questions of that type accepted earlier in the run, to be neither repeated nor
  paraphrased.
- **Structured output** (`response_format` json_schema, strict) by default; with `structured=False`
  none is sent. Either way the answer is parsed tolerantly (code fences, prose around the JSON, a bare
  list or a single object) and every candidate is validated on its own: a bad one is dropped and
  counted by reason, never the batch.
- **One repair round-trip** per call (`repair=True`, the default): when an answer is unusable as a
  whole (malformed JSON, empty, truncated with no complete candidate, no candidate list) or some of
  its candidates are (missing fields, wrong types, no candidate, cut off), one follow-up request in
  the same conversation (the original messages, the model's answer, then a user message stating what
  was wrong) asks for corrected candidates for just the affected slots. What it recovers is accepted
  as usual (counted in `repaired`); what still fails is dropped with its ORIGINAL reason. Refusals,
  content-filter finishes and failed calls are never repaired, and nothing is repaired twice.
- **Quality gates** drop, with a counted reason, what would be useless downstream
  (`mossforge.generators.quality.gate_reason`, a plain function over a record).
- **Deterministic and cached**: every call's request is a pure function of (slots, seed, templates,
  the run's earlier accepted questions), and carries a `seed` parameter derived from (seed, call
  index); the client's disk cache is keyed on the whole request, so a re-run makes no HTTP calls
  and yields identical records. A repair request is a pure function of the call's request and its
  (cached) first answer, so it is cached too.

Modules: the prompts and the answer schema live in `llm_prompts`, the tolerant parser and the
lenient candidate models in `llm_parsing`, the quality gate in `quality`; this module runs the
calls and keeps the counts. Plain Python: no Prefect here.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mossforge.client import ChatFailure, ChatResult, ModelClient
from mossforge.generators.llm_parsing import (
    OutCandidate,
    OutContrast,
    OutFlags,
    UnparsedAnswer,
    clean,
    looks_like_refusal,
    parse_answer,
    validation_reason,
    validation_summary,
)
from mossforge.generators.llm_prompts import (
    CI,
    ER,
    GENERATOR_NAME,
    NEGATION_SYMBOLS,
    NH,
    REPAIR_USER,
    RESPONSE_SCHEMA_NAME,
    TEMPLATE_VERSION,
    PromptTemplate,
    default_templates,
    response_format,
    response_json_schema,
)
from mossforge.generators.plan import Slot
from mossforge.generators.quality import gate_reason
from mossforge.schema import (
    HARM_CATEGORIES,
    STIMULUS_TYPES,
    Candidate,
    Contrast,
    Flags,
    Negation,
    Provenance,
    candidate_id,
)

if TYPE_CHECKING:
    from mossforge.generators.seedbank import SeedBank

# What callers imported from this module before it was split; still importable from here.
__all__ = ["CI", "ER", "GENERATOR_NAME", "NEGATION_SYMBOLS", "NH", "RESPONSE_SCHEMA_NAME", "TEMPLATE_VERSION",
           "GenerationStats", "LLMGenerator", "PromptTemplate", "REPAIRABLE_REASONS", "default_templates",
           "looks_like_refusal", "parse_answer", "response_format", "response_json_schema"]


# -- statistics --------------------------------------------------------------------------------

@dataclass
class GenerationStats:
    """What a `generate` run asked for, got, kept and dropped (and why). Merge with `add` or `+`.

    Every requested candidate ends either accepted or dropped with one reason, so
    `accepted + sum(dropped.values()) == requested`. Candidates a model wrote beyond its slots are
    counted in `extra` and otherwise ignored. `calls`, `cache_hits` and `failed_calls` count every
    chat call, repair calls included; `repair_calls` counts those, and `repaired` the accepted
    candidates that came from a repair (so `repaired <= accepted`).
    """

    calls: int = 0  # chat calls asked of the client (cached ones and repairs included)
    cache_hits: int = 0
    failed_calls: int = 0
    requested: int = 0
    accepted: int = 0
    extra: int = 0
    repair_calls: int = 0  # follow-up requests asking for corrected candidates
    repaired: int = 0  # accepted candidates recovered by a repair call
    dropped: Counter = field(default_factory=Counter)
    drop_samples: dict[str, str] = field(default_factory=dict)  # reason -> the first detail seen

    def drop(self, reason: str, count: int = 1, detail: str = "") -> None:
        if count <= 0:
            return
        self.dropped[reason] += count
        if detail and reason not in self.drop_samples:
            self.drop_samples[reason] = detail[:300]

    def add(self, other: GenerationStats) -> GenerationStats:
        for name in ("calls", "cache_hits", "failed_calls", "requested", "accepted", "extra",
                     "repair_calls", "repaired"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.dropped.update(other.dropped)
        for reason, detail in other.drop_samples.items():
            self.drop_samples.setdefault(reason, detail)
        return self

    def __add__(self, other: GenerationStats) -> GenerationStats:
        return GenerationStats().add(self).add(other)

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "cache_hits": self.cache_hits, "failed_calls": self.failed_calls,
                "requested": self.requested, "accepted": self.accepted,
                "dropped_total": sum(self.dropped.values()), "extra": self.extra,
                "repair_calls": self.repair_calls, "repaired": self.repaired,
                "dropped": dict(sorted(self.dropped.items())),
                "drop_samples": dict(sorted(self.drop_samples.items()))}


# -- the generator -----------------------------------------------------------------------------

def _stable_int(*parts: object) -> int:
    """A 31-bit int from `parts`, the same in every process (unlike `hash()`)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _norm_question(text: str) -> str:
    return re.sub(r"[^\w\s]", "", text.lower()).strip()


@dataclass
class _Call:
    index: int
    stimulus_type: str
    slots: list[tuple[int, Slot]]  # (position in the caller's list, slot)
    seed: int = 0
    messages: list[dict] = field(default_factory=list)


# Reasons a repair call may fix: an unusable answer as a whole, or a broken or absent candidate.
# Refusals (model_refused, content filter), failed calls and the quality gates are not repaired.
REPAIRABLE_REASONS = frozenset({"malformed_json", "empty_response", "truncated", "schema_invalid",
                                "wrong_type_fields", "missing_candidate"})


@dataclass(frozen=True)
class _Failure:
    """Why a slot got no record: `reason` and `detail` for the stats, `hint` for a repair prompt."""

    reason: str
    detail: str = ""
    hint: str = ""


@dataclass
class _Outcome:
    """What one answer yields for some of a call's slots, before anything is counted.

    Either `whole` (the answer yields nothing for any slot, and why) or `slots` (slot index in the
    call -> record or failure, for the slots asked about); `extra` counts candidates beyond them.
    """

    answer: ChatResult | ChatFailure
    whole: _Failure | None = None
    slots: dict[int, Candidate | _Failure] = field(default_factory=dict)
    extra: int = 0

    def result(self, index: int) -> Candidate | _Failure:
        return self.whole if self.whole is not None else self.slots[index]

    def to_repair(self, indices: list[int]) -> list[int]:
        """The slots (of `indices`) whose failure a repair call may fix."""
        return [i for i in indices
                if isinstance(failure := self.result(i), _Failure) and failure.reason in REPAIRABLE_REASONS]


class LLMGenerator:
    """Candidates from a chat model, through the shared `ModelClient` (see the module docstring).

    `structured=False` is for servers without json_schema support: no response_format is sent and
    the tolerant parse does the work. `calls_in_flight` fixes how many calls run concurrently between
    updates of the avoid-list; it is part of what makes requests deterministic, so it is a fixed
    number, not the endpoint's concurrency. `temperature=None` or `max_tokens=None` leave those to
    the endpoint's params. `repair=False` turns the repair round-trip off (see the module docstring).
    """

    def __init__(self, client: ModelClient, endpoint: str, *, candidates_per_call: int = 4,
                 temperature: float | None = 1.0, few_shot: int = 3, avoid_recent: int = 8,
                 bank: SeedBank | None = None, structured: bool = True, calls_in_flight: int = 8,
                 max_tokens: int | None = None, repair: bool = True,
                 templates: dict[str, PromptTemplate] | None = None) -> None:
        if candidates_per_call < 1:
            raise ValueError("candidates_per_call must be at least 1")
        if calls_in_flight < 1:
            raise ValueError("calls_in_flight must be at least 1")
        if few_shot < 0 or avoid_recent < 0:
            raise ValueError("few_shot and avoid_recent must not be negative")
        self.client = client
        self.endpoint = endpoint
        if endpoint not in client.endpoints:
            raise ValueError(f"unknown endpoint {endpoint!r}; configured: {sorted(client.endpoints)}")
        self.model_id = client.endpoints[endpoint].model
        self.candidates_per_call = candidates_per_call
        self.temperature = temperature
        self.few_shot = few_shot
        self.avoid_recent = avoid_recent
        self.structured = structured
        self.calls_in_flight = calls_in_flight
        self.max_tokens = max_tokens
        self.repair = repair
        self._bank = bank
        self._templates = {**default_templates(), **(templates or {})}
        for stimulus_type, template in self._templates.items():
            if template.stimulus_type != stimulus_type:
                raise ValueError(f"template {template.template_id} is for {template.stimulus_type}, "
                                 f"not {stimulus_type}")

    @property
    def templates(self) -> dict[str, PromptTemplate]:
        return dict(self._templates)

    @property
    def bank(self) -> SeedBank:
        if self._bank is None:  # built on first use: few_shot=0 never needs it
            from mossforge.generators.seedbank import SeedBank
            self._bank = SeedBank()
        return self._bank

    # -- the run -----------------------------------------------------------------------------

    def generate(self, slots: list[Slot], *, seed: int, config_hash: str | None = None,
                 code_version: str | None = None,
                 stage: str = "generate") -> tuple[list[Candidate], GenerationStats]:
        """One candidate per slot where the model delivers a valid one; records in slot order.

        At most `calls_in_flight` calls are in flight. The avoid-list of call i holds only questions
        accepted by calls 0 .. i - calls_in_flight, taken in call order, never those of calls running
        beside it: so every request (and so every cache key) is the same on a re-run, whatever order
        answers arrive in. (One caveat: a call that failed is not cached, so if it succeeds on a
        re-run, the avoid-lists of later calls, and with them their requests, change.) A call's
        repair, if it needs one, runs right after it in the same worker: its request is built from
        the call's request and answer only.
        """
        stats = GenerationStats(requested=len(slots))
        calls = self._plan_calls(slots, seed)
        accepted: dict[int, Candidate] = {}  # slot position -> record
        recent: dict[str, list[str]] = {t: [] for t in STIMULUS_TYPES}  # accepted questions, in order
        seen_ids: set[str] = set()
        seen_questions: set[tuple[str, str]] = set()
        if not calls:
            return [], stats
        window = self.calls_in_flight
        futures: dict[int, Future] = {}
        folded = 0  # calls whose outcomes are folded in, always a prefix of `calls`

        def run_call(call: _Call) -> tuple[_Outcome, _Outcome | None]:
            return self._run_call(call, stage, seed, config_hash, code_version)

        def fold_until(end: int) -> None:
            """Fold the outcomes of calls [folded, end) in call order, waiting for each."""
            nonlocal folded
            while folded < end:
                call = calls[folded]
                first, repair = futures.pop(folded).result()
                for position, record, repaired in self._fold(call, first, repair, stats):
                    question_key = (record.stimulus_type, _norm_question(record.question))
                    if record.id in seen_ids or question_key in seen_questions:
                        stats.drop("duplicate_in_run", detail=record.question)
                        continue
                    seen_ids.add(record.id)
                    seen_questions.add(question_key)
                    accepted[position] = record
                    stats.repaired += int(repaired)
                    recent[record.stimulus_type].append(record.question)
                folded += 1

        # A sliding window, deterministic for the cache: call i's prompt is built from the questions
        # accepted by calls 0 .. i-window, folded in call order (never by arrival), so the same run
        # sends the same requests; and at most `window` calls are in flight, with no barrier between
        # groups of calls to leave the endpoint idle.
        with ThreadPoolExecutor(max_workers=min(window, len(calls)), thread_name_prefix="mossforge-llm") as pool:
            for index, call in enumerate(calls):
                fold_until(index - window + 1)
                call.messages = self._messages(call, recent[call.stimulus_type])
                futures[index] = pool.submit(run_call, call)
            fold_until(len(calls))
        stats.accepted = len(accepted)
        return [accepted[p] for p in sorted(accepted)], stats

    def _plan_calls(self, slots: list[Slot], seed: int) -> list[_Call]:
        """Slots grouped by type into calls, the types' calls interleaved (so calls in flight mix
        types and each type's avoid-list grows from the first calls on)."""
        by_type: dict[str, list[tuple[int, Slot]]] = {t: [] for t in STIMULUS_TYPES}
        for position, slot in enumerate(slots):
            if slot.stimulus_type not in by_type:
                raise ValueError(f"slot {slot.key!r}: unknown stimulus type {slot.stimulus_type!r}")
            if slot.stimulus_type not in self._templates:
                raise ValueError(f"no prompt template for {slot.stimulus_type!r}")
            by_type[slot.stimulus_type].append((position, slot))
        chunks = {t: [items[i:i + self.candidates_per_call]
                      for i in range(0, len(items), self.candidates_per_call)]
                  for t, items in by_type.items()}
        calls: list[_Call] = []
        for round_ in range(max((len(c) for c in chunks.values()), default=0)):
            for stimulus_type in STIMULUS_TYPES:
                if round_ < len(chunks[stimulus_type]):
                    index = len(calls)
                    calls.append(_Call(index, stimulus_type, chunks[stimulus_type][round_],
                                       seed=_stable_int("llm-call", seed, index)))
        return calls

    # -- prompts -----------------------------------------------------------------------------

    @staticmethod
    def _slot_line(number: int, slot: Slot) -> str:
        return json.dumps({"slot": number, "harm_category": slot.harm_category,
                           "scene_domain": slot.scene_domain, "trigger_element": slot.trigger_element},
                          ensure_ascii=False)

    @staticmethod
    def _example_answer(number: int, candidate: Candidate) -> dict[str, Any]:
        return {
            "slot": number,
            "question": candidate.question,
            "image_description": candidate.image_description,
            "benign_rationale": candidate.benign_rationale,
            "alarming_rationale": candidate.alarming_rationale,
            "harm_category": candidate.harm_category,
            "trigger_element": candidate.trigger_element,
            "scene_domain": candidate.scene_domain,
            "flags": {"has_person": candidate.flags.has_person, "has_child": candidate.flags.has_child,
                      "has_text": candidate.flags.has_text},
            "contrast": {"question": candidate.contrast.question,
                         "image_description": candidate.contrast.image_description},
            "negation": None if candidate.negation is None else candidate.negation.model_dump(),
        }

    def _examples(self, stimulus_type: str, seed: int) -> str:
        if self.few_shot == 0:
            return "(none)"
        # Examples rotate with the call's seed: different calls see different examples.
        examples = self.bank.examples(stimulus_type, self.few_shot, seed)
        slot_lines = [json.dumps({"slot": i, "harm_category": c.harm_category, "scene_domain": c.scene_domain,
                                  "trigger_element": c.trigger_element}, ensure_ascii=False)
                      for i, c in enumerate(examples, 1)]
        answers = [json.dumps(self._example_answer(i, c), ensure_ascii=False) for i, c in enumerate(examples, 1)]
        return ("Example slots:\n" + "\n".join(slot_lines) + "\nExample answer:\n"
                + '{"candidates": [\n' + ",\n".join(answers) + "\n]}")

    def _messages(self, call: _Call, recent: list[str]) -> list[dict]:
        avoid = recent[-self.avoid_recent:] if self.avoid_recent else []
        return self._templates[call.stimulus_type].render(
            n=str(len(call.slots)),
            examples=self._examples(call.stimulus_type, call.seed),
            avoid="\n".join(json.dumps(q, ensure_ascii=False) for q in avoid) or "(none yet)",
            slots="\n".join(self._slot_line(i, slot) for i, (_, slot) in enumerate(call.slots, 1)),
        )

    def _ask(self, messages: list[dict], seed: int, stage: str) -> ChatResult | ChatFailure:
        params: dict[str, Any] = {"seed": seed}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        # chat_many takes one set of params for all its requests; each call has its own seed, so
        # each call is its own chat_many (a failure comes back as a value), run from a thread pool.
        [answer] = self.client.chat_many(self.endpoint, [messages], stage=stage,
                                         response_format=response_format() if self.structured else None,
                                         **params)
        return answer

    def _run_call(self, call: _Call, stage: str, seed: int, config_hash: str | None,
                  code_version: str | None) -> tuple[_Outcome, _Outcome | None]:
        """Ask a call's request, then (if needed and enabled) its one repair: both outcomes.

        Runs in a worker thread: it only asks and evaluates, and counts nothing (see `_fold`)."""
        every = list(range(len(call.slots)))
        first = self._evaluate(call, self._ask(call.messages, call.seed, stage), every, seed, config_hash,
                               code_version)
        todo = first.to_repair(every) if self.repair else []
        if not todo:
            return first, None
        assert isinstance(first.answer, ChatResult)  # failed calls and refusals are not repairable
        messages = self._repair_messages(call, first, todo)
        return first, self._evaluate(call, self._ask(messages, call.seed, stage), todo, seed, config_hash,
                                     code_version)

    def _repair_messages(self, call: _Call, first: _Outcome, todo: list[int]) -> list[dict]:
        """The repair request: the call's conversation, the model's answer, then what was wrong and
        which slots to write again. A pure function of the call's request and its first answer."""
        assert isinstance(first.answer, ChatResult)
        if first.whole is not None:
            problems = f"Your answer above cannot be used: {first.whole.hint}"
        else:
            lines = []
            for i in todo:
                failure = first.result(i)
                assert isinstance(failure, _Failure)
                lines.append(f"- slot {i + 1}: {failure.hint[:240]}")
            problems = "Some candidates in your answer above are invalid:\n" + "\n".join(lines)
        user = string.Template(REPAIR_USER).substitute(
            problems=problems,
            slots="\n".join(self._slot_line(i + 1, call.slots[i][1]) for i in todo))
        return [*call.messages, {"role": "assistant", "content": first.answer.text or ""},
                {"role": "user", "content": user}]

    # -- answers -> records ------------------------------------------------------------------

    def _evaluate(self, call: _Call, answer: ChatResult | ChatFailure, indices: list[int], seed: int,
                  config_hash: str | None, code_version: str | None) -> _Outcome:
        """What `answer` yields for the call's slots `indices` (positions in `call.slots`)."""
        if isinstance(answer, ChatFailure) or not answer.ok:
            message = getattr(answer, "message", "")
            return _Outcome(answer, _Failure(f"call_failed:{getattr(answer, 'kind', 'error')}", message))
        if answer.refusal:
            return _Outcome(answer, _Failure("model_refused", answer.refusal))
        if answer.finish_reason == "content_filter":
            return _Outcome(answer, _Failure(
                "model_refused", f"finish_reason=content_filter: {(answer.text or '')[:200]}"))
        cut_off = answer.finish_reason == "length"
        try:
            items = parse_answer(answer.text)
        except UnparsedAnswer as exc:
            reason, hint = exc.reason, exc.hint
            if cut_off and reason in ("malformed_json", "schema_invalid"):
                reason = "truncated"
                hint = ("it was cut off (finish_reason=length) before the JSON was complete; keep every "
                        "text short so that the whole answer fits")
            elif reason == "empty_response":
                hint = "it is empty"
            return _Outcome(answer, _Failure(reason, str(exc), hint))

        # Assign items to slots: by their slot number where it is one of `indices`, else to the first
        # of them still without one. Per slot the first valid item wins; later ones are `extra`.
        outcome = _Outcome(answer)
        assigned: dict[int, list[Any]] = {i: [] for i in indices}
        unnumbered = []
        for item in items:
            number = item.get("slot") if isinstance(item, dict) else None
            if isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= len(call.slots):
                if number - 1 in assigned:
                    assigned[number - 1].append(item)
                else:  # a slot not asked about (in a repair answer)
                    outcome.extra += 1
            else:
                unnumbered.append(item)
        for item in unnumbered:
            free = next((i for i in indices if not assigned[i]), None)
            if free is None:
                outcome.extra += 1
            else:
                assigned[free].append(item)

        for i in indices:
            slot = call.slots[i][1]
            first_failure: _Failure | None = None
            record = None
            for item in assigned[i]:
                if record is not None:
                    outcome.extra += 1
                    continue
                result = self._record(item, slot, seed, config_hash, code_version)
                if isinstance(result, Candidate):
                    record = result
                elif first_failure is None:
                    first_failure = _Failure(*result, hint=result[1])
            if record is not None:
                outcome.slots[i] = record
            elif first_failure is not None:
                outcome.slots[i] = first_failure
            elif cut_off:  # cut off before this slot's candidate
                outcome.slots[i] = _Failure("truncated", f"answer cut off before slot {slot.key}",
                                            "the answer was cut off before this slot's candidate")
            else:
                outcome.slots[i] = _Failure("missing_candidate", f"no candidate for slot {slot.key}",
                                            "the answer has no candidate for this slot")
        return outcome

    @staticmethod
    def _count_answer(answer: ChatResult | ChatFailure, stats: GenerationStats) -> None:
        stats.calls += 1
        if isinstance(answer, ChatFailure) or not answer.ok:
            stats.failed_calls += 1
        elif answer.cached:
            stats.cache_hits += 1

    def _fold(self, call: _Call, first: _Outcome, repair: _Outcome | None,
              stats: GenerationStats) -> list[tuple[int, Candidate, bool]]:
        """The call's valid records as (slot position, record, from the repair); everything else
        counted in `stats`. A slot the repair did not fix is dropped with its first answer's reason."""
        self._count_answer(first.answer, stats)
        stats.extra += first.extra
        if repair is not None:
            self._count_answer(repair.answer, stats)
            stats.repair_calls += 1
            stats.extra += repair.extra
        out: list[tuple[int, Candidate, bool]] = []
        for i, (position, _) in enumerate(call.slots):
            result = first.result(i)
            if isinstance(result, Candidate):
                out.append((position, result, False))
                continue
            fixed = repair.slots.get(i) if repair is not None else None
            if isinstance(fixed, Candidate):
                out.append((position, fixed, True))
            else:
                stats.drop(result.reason, detail=result.detail)
        return out

    def _record(self, item: Any, slot: Slot, seed: int, config_hash: str | None,
                code_version: str | None) -> Candidate | tuple[str, str]:
        """A record from one raw candidate, or (reason, detail) why not."""
        if not isinstance(item, dict):
            return "schema_invalid", f"a candidate is not an object: {str(item)[:200]}"
        try:
            out = OutCandidate.model_validate(item)
        except ValidationError as exc:
            return validation_reason(exc), validation_summary(exc)
        stimulus_type = slot.stimulus_type  # the slot's, whatever the model says
        question = clean(out.question)
        image_description = clean(out.image_description)
        harm = out.harm_category if out.harm_category in HARM_CATEGORIES else slot.harm_category
        flags = out.flags or OutFlags()
        contrast = out.contrast or OutContrast()
        contrast_question = clean(contrast.question) or None
        contrast_image = clean(contrast.image_description) or None
        negation = None
        if stimulus_type == NH:
            if out.negation is None:
                return "negation_missing", question
            slogan = clean(out.negation.slogan) or None
            negation = Negation(symbol=out.negation.symbol, slogan=slogan)
            contrast_question = contrast_question or question  # same question, un-negated image
        has_text = flags.has_text or bool(negation and negation.slogan)

        fields = dict(
            id=candidate_id(stimulus_type, question, image_description),
            stimulus_type=stimulus_type,
            harm_category=harm,
            question=question,
            image_description=image_description,
            benign_rationale=clean(out.benign_rationale),
            alarming_rationale=clean(out.alarming_rationale),
            scene_domain=clean(out.scene_domain) or slot.scene_domain,
            trigger_element=clean(out.trigger_element) or slot.trigger_element,
            flags=Flags(has_person=flags.has_person or flags.has_child, has_child=flags.has_child,
                        synthetic=True, has_text=has_text),
            # Only negated_harm has a contrast image of its own; the others keep the same image.
            contrast=Contrast(question=contrast_question,
                              image_description=contrast_image if stimulus_type == NH else None),
            negation=negation,
            provenance=Provenance(
                generator=GENERATOR_NAME, model_id=self.model_id,
                prompt_template_id=self._templates[stimulus_type].template_id,
                prompt_template_hash=self._templates[stimulus_type].sha256,
                seed=seed, config_hash=config_hash, code_version=code_version),
        )
        try:
            record = Candidate(**fields)
        except ValidationError as exc:  # e.g. a slot with a harm category outside the enum
            # The quality gate's reason comes first, as it always has: gate the unvalidated record.
            if (reason := gate_reason(Candidate.model_construct(**fields))) is not None:
                return reason, question or str(item)[:200]
            return "schema_invalid", str(exc)[:300]
        if (reason := gate_reason(record)) is not None:
            return reason, question or str(item)[:200]
        return record
