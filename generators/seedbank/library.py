"""The seed bank's library: plain data, written by hand for mossforge.

The bank builds queries by combining small hand-written pieces under compatibility rules, so that
every combination it realises is a sensible, benign query:

- `exaggerated_risk`:   Scene x Element x Request   (the element must fit the scene, the request
                        must fit the scene; the request never concerns the element)
- `negated_harm`:       Subject x negation variant x Advocacy   (the request asks to promote "this",
                        the image's message against the subject)
- `counterintuitive_interpretation`:   Referent x Action x Placement   (the action's verb has a
                        harmful sense, the referent makes its benign sense the obvious one)

The data itself lives in `data_exaggerated`, `data_negated` and `data_counterintuitive`; this module
holds the record types (`bank.library_dump()` is the canonical form the template hash is taken over).

Placeholders used in the text pieces (filled by `bank.py`):
  {place}, {a_place}     the scene's noun ("playroom"), with its article ("a playroom")
  {in_place}, {in_a_place}  with its preposition: "in this playroom", "on a beach"
  {child}, {childs}      a child of the asker ("my niece"), possessive ("my niece's")
  {audience}, {at_venue} who a negated-harm message is for, and where ("at our driving school")
  {o}                    the counterintuitive referent as an object pronoun (it / them / this ...)
  {vp}, {ing}, {tail}    a counterintuitive action's verb phrase, its gerund, an optional tail
"""

from __future__ import annotations

from dataclasses import dataclass

# --- exaggerated_risk -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """An everyday place the image shows."""

    key: str
    domain: str  # scene_domain of the record
    place: str  # noun used in questions: "this {place}"
    image: str  # noun phrase a text-to-image model can render
    tags: tuple[str, ...]  # what kinds of request fit here
    person: bool = False
    child: bool = False
    prep: str = "in"  # "in this playroom", "on this beach", "at this campsite"


@dataclass(frozen=True)
class Element:
    """The one salient thing in the scene that looks dangerous but is not."""

    key: str
    category: str  # the harm it *appears* to touch
    trigger: str  # short noun phrase (drawn on the offline renderer's plate)
    image: str  # noun phrase for the image description
    looks_like: str  # what a nervous reader takes it for
    actually: str  # what it is, why it is harmless
    scenes: tuple[str, ...]  # scene keys where it plausibly is
    contrast: str  # the harmful question about it, may use {place}
    text: bool = False  # the element carries visible text
    person: bool = False
    child: bool = False
    plural: bool = False  # "the toy handcuffs are", not "is"


@dataclass(frozen=True)
class Request:
    """An ordinary request about the scene, in several equivalent phrasings."""

    key: str
    summary: str  # gerund phrase used in rationales
    fits: tuple[str, ...]  # scene tags (or scene keys) it suits; "*" = every scene
    forms: tuple[str, ...]
    excludes: tuple[str, ...] = ()  # scene tags (or keys) it does not suit


# --- negated_harm -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """A harmful act or object that the image shows and opposes."""

    key: str
    category: str
    trigger: str  # short noun phrase: "drunk driving"
    image: str  # noun phrase of the act, without the negation
    domain: str
    slogans: tuple[str, str]  # two anti-harm slogans for banners
    audiences: tuple[tuple[str, str], ...]  # (audience, "at" venue phrase)
    person: bool = True
    child: bool = False
    text: bool = False  # the act itself shows text (a headline, a message)


@dataclass(frozen=True)
class Advocacy:
    """A request to promote / advocate / write about "this" (the image's message)."""

    key: str
    summary: str
    forms: tuple[str, ...]


# --- counterintuitive_interpretation ----------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where the referent is: a locative phrase appended to its description."""

    key: str
    phrase: str
    domain: str
    person: bool = False
    child: bool = False


@dataclass(frozen=True)
class Action:
    """A verb with an everyday sense and a violent or illicit one."""

    key: str
    category: str  # the harm its other sense touches
    vp: str  # "silence {o}"
    ing: str  # "silencing {o}"
    harm_sense: str  # what the verb can mean out of context
    tails: tuple[str, ...]  # optional endings, each starting with a space; may use {o}
    contrasts: tuple[str, ...]  # the question rewritten to target harm explicitly
    frames: tuple[str, ...] = ()  # extra frames beyond the defaults (see FRAMES)
    drop: tuple[str, ...] = ()  # default frames that read badly with this verb


@dataclass(frozen=True)
class Referent:
    """The obvious benign thing the deictic question is about."""

    key: str
    trigger: str
    image: str  # noun phrase
    pron: str  # a key of PRONOUNS: "it", "them", "people", "him" or "her"
    places: tuple[str, ...]  # placement keys
    acts: tuple[tuple[str, str], ...]  # (action key, benign gloss of the action on this referent)
    tails: tuple[tuple[str, tuple[str, ...]], ...] = ()  # per-action tails replacing the action's
    person: bool = False
    child: bool = False
    text: bool = False

