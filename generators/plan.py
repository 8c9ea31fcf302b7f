"""The plan stage: draw diverse slots so that a run covers the space instead of repeating one idea."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """One thing to generate: a stimulus type, the harm it appears to touch, where, and the trigger.

    `key` names a concrete combination a generator knows how to realise (for the seed bank, the
    library entries combined); LLM generators read the other fields.
    """

    key: str
    stimulus_type: str
    harm_category: str
    scene_domain: str
    trigger_element: str


def draw_slots(space: dict[str, list[Slot]], per_type: int | dict[str, int], seed: int) -> list[Slot]:
    """Draw `per_type` slots of each type (a number, or one per type), spread evenly over harm
    categories, then scene domains.

    Within a type, slots are grouped by (harm category, scene domain); the draw takes one slot from
    each group in turn (groups shuffled by `seed`), so 300 slots touch every group before any group
    gives a second. A larger draw extends a smaller one (same seed): the first N slots are the same
    whatever the number drawn, so a plan can be topped up. Raises if a type has fewer slots than
    asked for.
    """
    rng = random.Random(seed)
    drawn: list[Slot] = []
    counts = per_type if isinstance(per_type, dict) else {t: per_type for t in space}
    for stimulus_type, slots in space.items():
        per_type = counts[stimulus_type]
        if per_type > len(slots):
            raise ValueError(
                f"{stimulus_type}: asked for {per_type} slots per type but the generator can "
                f"realise only {len(slots)} distinct ones"
            )
        by_category: dict[str, dict[str, list[Slot]]] = defaultdict(lambda: defaultdict(list))
        for slot in slots:
            by_category[slot.harm_category][slot.scene_domain].append(slot)
        queues = []  # one queue per category: its domains interleaved
        for category in sorted(by_category):
            domains = [sorted(v, key=lambda s: s.key) for _, v in sorted(by_category[category].items())]
            for group in domains:
                rng.shuffle(group)
            rng.shuffle(domains)
            interleaved = [g[i] for i in range(max(map(len, domains))) for g in domains if i < len(g)]
            queues.append(interleaved)
        rng.shuffle(queues)
        picked: list[Slot] = []
        depth = 0
        while len(picked) < per_type:
            for queue in queues:
                if depth < len(queue) and len(picked) < per_type:
                    picked.append(queue[depth])
            depth += 1
        drawn.extend(picked)
    return drawn


# --- topping up: N per type *after* dedup -------------------------------------------------------

OVERDRAW = 0.15  # first draw: this much more than asked, for what dedup will remove
MAX_ROUNDS = 4  # draws (the first and its top-ups) before a run settles for what it has


def first_draw(per_type: int, available: dict[str, int], overdraw: float = OVERDRAW) -> dict[str, int]:
    """How many slots of each type to draw first so that `per_type` are likely to survive dedup."""
    want = per_type + math.ceil(per_type * overdraw)
    return {t: min(n, want) for t, n in available.items()}


def next_draw(per_type: int, drawn: dict[str, int], survived: dict[str, int], available: dict[str, int],
              overdraw: float = OVERDRAW) -> dict[str, int] | None:
    """The next, larger draw for the types where fewer than `per_type` survived, sized by the share
    that survived so far (plus `overdraw`); None when no type needs (or can get) more."""
    grown = dict(drawn)
    for t, n in drawn.items():
        short = per_type - survived.get(t, 0)
        if short <= 0 or n >= available[t]:
            continue
        rate = max(survived.get(t, 0) / n, 0.05) if n else 1.0
        # at most twice as many as drawn so far: a generator that keeps repeating itself (an LLM)
        # is not asked for ever more
        grown[t] = min(available[t], n + min(n, math.ceil(short / rate * (1 + overdraw))))
    return grown if grown != drawn else None


def shortfall(per_type: int, survived: dict[str, int]) -> dict[str, int]:
    """{type: how many short of `per_type`} for the types the generator could not fill."""
    return {t: per_type - n for t, n in sorted(survived.items()) if n < per_type}
