"""The seed bank: realises every sensible combination of the library as a `Candidate`.

Why the wording is chosen the way it is: each slot belongs to a *group* of slots that would
otherwise share the same question (same scene and request; same subject and request; same
action). The slots of a group take consecutive phrasings from the group's list of phrasings,
offset by a stable hash of the group and by the seed. That keeps the questions of a group
distinct, spreads phrasings (and so sentence openers) evenly, and makes `generate` a pure
function of (slot, seed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from mossforge.generators.plan import Slot, draw_slots
from mossforge.schema import (
    STIMULUS_TYPES,
    Candidate,
    Contrast,
    Flags,
    Negation,
    Provenance,
    candidate_id,
)

from . import data_counterintuitive as ci
from . import data_exaggerated as er
from . import data_negated as nh

SEEDBANK_TEMPLATE_ID = "seedbank-v1"
GENERATOR_NAME = "seedbank"

ER, NH, CI = STIMULUS_TYPES  # "exaggerated_risk", "negated_harm", "counterintuitive_interpretation"


def _stable(*parts: str) -> int:
    """A hash that, unlike `hash()`, is the same in every process."""
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()[:8], "big")


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class _Spec:
    """What a slot key stands for: library keys, its group and its position in the group."""

    stimulus_type: str
    parts: tuple[str, ...]
    group: str
    ordinal: int


class SeedBank:
    """Offline text generator over a hand-written library (see `library.py`)."""

    template_id = SEEDBANK_TEMPLATE_ID

    def __init__(self) -> None:
        self.template_hash = hashlib.sha256(library_dump().encode("utf-8")).hexdigest()
        self._scenes = {s.key: s for s in er.SCENES}
        self._elements = {e.key: e for e in er.ELEMENTS}
        self._requests = {r.key: r for r in er.REQUESTS}
        self._subjects = {s.key: s for s in nh.SUBJECTS}
        self._advocacies = {a.key: a for a in nh.ADVOCACIES}
        self._variants = {v[0]: v for v in nh.VARIANTS}
        self._placements = {p.key: p for p in ci.PLACEMENTS}
        self._actions = {a.key: a for a in ci.ACTIONS}
        self._referents = {r.key: r for r in ci.REFERENTS}
        # One generic-opener frame per action, dealt round-robin so each wrapper is used equally.
        self._wrapper = {a.key: ci.WRAPPERS[i % len(ci.WRAPPERS)] for i, a in enumerate(ci.ACTIONS)}
        self._specs: dict[str, _Spec] = {}
        self._example_orders: dict[str, tuple[list[Slot], int]] = {}
        self._space: dict[str, list[Slot]] = {t: [] for t in STIMULUS_TYPES}
        self._phrasing_cache: dict[tuple, list[tuple[str, str]]] = {}
        self._build()

    # --- the slot space -----------------------------------------------------------------------

    def _add(self, slot: Slot, parts: tuple[str, ...], group: str, counters: dict[str, int]) -> None:
        if slot.key in self._specs:
            raise ValueError(f"duplicate slot key {slot.key}")
        ordinal = counters.get(group, 0)
        counters[group] = ordinal + 1
        self._specs[slot.key] = _Spec(slot.stimulus_type, parts, group, ordinal)
        self._space[slot.stimulus_type].append(slot)

    @staticmethod
    def _fits(request: er.Request, scene: er.Scene) -> bool:
        tags = set(scene.tags) | {scene.key}
        if tags & set(request.excludes):
            return False
        return "*" in request.fits or bool(tags & set(request.fits))

    def _build(self) -> None:
        counters: dict[str, int] = {}
        for scene in er.SCENES:
            requests = [r for r in er.REQUESTS if self._fits(r, scene)]
            for element in (e for e in er.ELEMENTS if scene.key in e.scenes):
                for request in requests:
                    slot = Slot(f"er:{scene.key}:{element.key}:{request.key}", ER, element.category,
                                scene.domain, element.trigger)
                    self._add(slot, (scene.key, element.key, request.key),
                              f"er:{scene.key}:{request.key}", counters)
        for subject in nh.SUBJECTS:
            for variant, _symbol, _slogan in nh.VARIANTS:
                for advocacy in nh.ADVOCACIES:
                    slot = Slot(f"nh:{subject.key}:{variant}:{advocacy.key}", NH, subject.category,
                                subject.domain, subject.trigger)
                    self._add(slot, (subject.key, variant, advocacy.key),
                              f"nh:{subject.key}:{advocacy.key}", counters)
        for referent in ci.REFERENTS:
            for action_key, _gloss in referent.acts:
                action = self._actions[action_key]
                for place in referent.places:
                    placement = self._placements[place]
                    slot = Slot(f"ci:{referent.key}:{action_key}:{place}", CI, action.category,
                                placement.domain, referent.trigger)
                    self._add(slot, (referent.key, action_key, place), f"ci:{action_key}", counters)

    def slots(self, stimulus_type: str) -> list[Slot]:
        """Every distinct combination the bank can realise for a type, in a fixed order."""
        if stimulus_type not in self._space:
            raise ValueError(f"unknown stimulus type {stimulus_type!r}; expected one of {STIMULUS_TYPES}")
        return list(self._space[stimulus_type])

    def slot_space(self) -> dict[str, list[Slot]]:
        return {t: list(slots) for t, slots in self._space.items()}

    # --- generation ---------------------------------------------------------------------------

    def generate(self, slot: Slot, *, seed: int, config_hash: str | None = None,
                 code_version: str | None = None) -> Candidate:
        """The candidate for `slot`; the same (slot, seed) always gives the same candidate."""
        spec = self._specs.get(slot.key)
        if spec is None:
            raise KeyError(f"the seed bank has no slot {slot.key!r}")
        if slot.stimulus_type != spec.stimulus_type:
            raise ValueError(f"slot {slot.key!r} is {spec.stimulus_type}, not {slot.stimulus_type}")
        realise = {ER: self._exaggerated, NH: self._negated, CI: self._counterintuitive}[spec.stimulus_type]
        fields = realise(slot.key, spec, seed)
        question, image_description = fields["question"], fields["image_description"]
        return Candidate(
            id=candidate_id(spec.stimulus_type, question, image_description),
            stimulus_type=spec.stimulus_type,
            provenance=Provenance(
                generator=GENERATOR_NAME, model_id=None, prompt_template_id=self.template_id,
                prompt_template_hash=self.template_hash, seed=seed, config_hash=config_hash,
                code_version=code_version,
            ),
            **fields,
        )

    def examples(self, stimulus_type: str, n: int, seed: int) -> list[Candidate]:
        """`n` examples of a type spread over harm categories and scene domains (for few-shot prompts).

        They are `n` consecutive slots, from a place chosen by `seed`, of one stratified order of
        all the type's slots (drawn once and kept): consecutive slots of that order come from
        different categories and domains, and a prompt per call costs no new draw.
        """
        if stimulus_type not in self._example_orders:
            slots = self.slots(stimulus_type)
            order = draw_slots({stimulus_type: slots}, per_type=len(slots), seed=0)
            # The draw deals one slot per category in turn until the smallest category runs out;
            # windows inside that balanced prefix cover every category.
            per_category = Counter(slot.harm_category for slot in slots)
            balanced = len(per_category) * min(per_category.values())
            self._example_orders[stimulus_type] = (order, balanced)
        order, balanced = self._example_orders[stimulus_type]
        start = _stable(stimulus_type, str(seed)) % max(1, balanced - n + 1)
        picked = [order[(start + i) % len(order)] for i in range(min(n, len(order)))]
        return [self.generate(slot, seed=seed) for slot in picked]

    # exaggerated_risk -----------------------------------------------------------------------

    def _exaggerated(self, key: str, spec: _Spec, seed: int) -> dict:
        scene = self._scenes[spec.parts[0]]
        element = self._elements[spec.parts[1]]
        request = self._requests[spec.parts[2]]

        # The form rotates over consecutive slots of the group; the child named (when the form
        # names one) advances once per full turn, so forms stay balanced and questions distinct.
        turn = spec.ordinal + _stable(spec.group) + seed
        form_index = turn % len(request.forms)
        child_index = (turn // len(request.forms) + _stable(scene.key)) % len(er.CHILDREN)
        child, childs = er.CHILDREN[child_index]
        fill = dict(place=scene.place, a_place=_article(scene.place), in_place=f"{scene.prep} this {scene.place}",
                    in_a_place=f"{scene.prep} {_article(scene.place)}", child=child, childs=childs)
        question = _sentence(request.forms[form_index].format(**fill))
        position = er.POSITIONS[(_stable(key) + seed) % len(er.POSITIONS)]
        image = f"A photo of {scene.image}. " + position.format(element=element.image)
        child_shown = scene.child or element.child
        be, look = ("are", "look") if element.plural else ("is", "looks")
        return dict(
            harm_category=element.category,
            question=question,
            image_description=_sentence(image),
            benign_rationale=(f"The {element.trigger} {be} harmless ({element.actually}). The request, "
                              f"{request.summary}, concerns the {scene.place} and has nothing to do with "
                              f"the {element.trigger}."),
            alarming_rationale=(f"At a glance the {element.trigger} {look} like {element.looks_like}"
                                f"{' and children are in the picture' if child_shown else ''}, so a cautious "
                                f"model may read an ordinary request as involving "
                                f"{er.HARM_GLOSS[element.category]} and refuse."),
            scene_domain=scene.domain,
            trigger_element=element.trigger,
            flags=Flags(has_person=scene.person or element.person, has_child=child_shown,
                        synthetic=True, has_text=element.text),
            contrast=Contrast(question=_sentence(element.contrast.format(**fill))),
            negation=None,
        )

    # negated_harm ---------------------------------------------------------------------------

    def _negated(self, key: str, spec: _Spec, seed: int) -> dict:
        subject = self._subjects[spec.parts[0]]
        _variant, symbol, slogan_index = self._variants[spec.parts[1]]
        advocacy = self._advocacies[spec.parts[2]]

        # As for exaggerated_risk: the form rotates, the audience advances once per full turn.
        turn = spec.ordinal + _stable(spec.group) + seed
        form_index = turn % len(advocacy.forms)
        audience_index = (turn // len(advocacy.forms) + _stable(subject.key)) % len(subject.audiences)
        audience, at_venue = subject.audiences[audience_index]
        question = _sentence(advocacy.forms[form_index].format(audience=audience, at_venue=at_venue))
        slogan = subject.slogans[slogan_index] if slogan_index is not None else None
        overlay = nh.OVERLAYS[symbol].format(slogan=slogan)
        long_words, short_words = nh.SYMBOL_WORDS[symbol]
        long_words = long_words.format(slogan=slogan)
        return dict(
            harm_category=subject.category,
            question=question,
            image_description=_sentence(f"A photo of {subject.image}, {overlay}."),
            benign_rationale=(f"{_sentence(long_words)} shows that the image opposes {subject.trigger}; "
                              f"\"this\" refers to that message, so the request asks to {advocacy.summary} "
                              f"the message against {subject.trigger}."),
            alarming_rationale=(f"The image prominently shows {subject.trigger}, and the request asks to "
                                f"{advocacy.summary} \"this\"; a model that overlooks the {short_words} may "
                                f"read it as endorsing {subject.trigger}."),
            scene_domain=subject.domain,
            trigger_element=subject.trigger,
            flags=Flags(has_person=subject.person, has_child=subject.child, synthetic=True,
                        has_text=slogan is not None or subject.text),
            contrast=Contrast(question=question,
                              image_description=_sentence(f"A photo of {subject.image}.")),
            negation=Negation(symbol=symbol, slogan=slogan),
        )

    # counterintuitive_interpretation --------------------------------------------------------

    def _phrasings(self, action: ci.Action, tails: tuple[str, ...]) -> list[tuple[str, str]]:
        """(frame, tail) pairs for an action: every frame bare first, then each tail in turn on
        the frames that take one. Consecutive slots of an action take consecutive pairs."""
        key = (action.key, tails)
        if key not in self._phrasing_cache:
            frames = [f for f in ci.DEFAULT_FRAMES if f not in action.drop]
            frames += list(action.frames) + [self._wrapper[action.key]]
            pairs = [(f, "") for f in frames]
            for tail in tails:
                pairs.extend((f, tail) for f in frames if "{tail}" in ci.FRAMES[f][0])
            self._phrasing_cache[key] = pairs
        return self._phrasing_cache[key]

    def _counterintuitive(self, key: str, spec: _Spec, seed: int) -> dict:
        referent = self._referents[spec.parts[0]]
        action = self._actions[spec.parts[1]]
        placement = self._placements[spec.parts[2]]
        gloss = dict(referent.acts)[action.key]
        tails = dict(referent.tails).get(action.key, action.tails)  # a referent may replace the tails
        pronouns = ci.PRONOUNS[referent.pron]
        phrasings = self._phrasings(action, tails)
        frame, tail = phrasings[(spec.ordinal + _stable(spec.group) + seed) % len(phrasings)]
        template, form = ci.FRAMES[frame]
        question = template.format(vp=action.vp.format(o=pronouns[form]),
                                   ing=action.ing.format(o=pronouns[form]),
                                   tail=tail.format(o=pronouns["it"]))
        vp_it = action.vp.format(o=pronouns["it"])
        sep = ", " if "," in referent.image else " "
        return dict(
            harm_category=action.category,
            question=_sentence(question),
            image_description=_sentence(f"A photo of {referent.image}{sep}{placement.phrase}."),
            benign_rationale=(f"Given the image, \"{vp_it}\" plainly means {gloss}; nothing harmful is "
                              f"asked."),
            alarming_rationale=(f"Out of context, \"{vp_it}\" suggests {action.harm_sense}, and the short "
                                f"question never says what \"{pronouns['it']}\" is."),
            scene_domain=placement.domain,
            trigger_element=referent.trigger,
            flags=Flags(has_person=referent.person or placement.person,
                        has_child=referent.child or placement.child, synthetic=True, has_text=referent.text),
            contrast=Contrast(question=action.contrasts[(_stable(key) + seed) % len(action.contrasts)]),
            negation=None,
        )


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def library_dump() -> str:
    """The whole library as canonical JSON: what `SeedBank.template_hash` is the hash of."""
    data = {
        "exaggerated_risk": {
            "scenes": er.SCENES, "elements": er.ELEMENTS, "requests": er.REQUESTS,
            "children": er.CHILDREN, "positions": er.POSITIONS, "harm_gloss": er.HARM_GLOSS,
        },
        "negated_harm": {
            "subjects": nh.SUBJECTS, "advocacies": nh.ADVOCACIES, "overlays": nh.OVERLAYS,
            "variants": nh.VARIANTS, "symbol_words": nh.SYMBOL_WORDS,
        },
        "counterintuitive_interpretation": {
            "placements": ci.PLACEMENTS, "actions": ci.ACTIONS, "referents": ci.REFERENTS,
            "frames": ci.FRAMES, "default_frames": ci.DEFAULT_FRAMES, "wrappers": ci.WRAPPERS,
            "pronouns": ci.PRONOUNS,
        },
    }
    return json.dumps(_plain(data), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
