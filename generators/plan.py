"""The plan stage: draw diverse slots so that a run covers the space instead of repeating one idea."""

from __future__ import annotations

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


def draw_slots(space: dict[str, list[Slot]], per_type: int, seed: int) -> list[Slot]:
    """Draw `per_type` slots of each type, spread evenly over harm categories, then scene domains.

    Within a type, slots are grouped by (harm category, scene domain); the draw takes one slot from
    each group in turn (groups shuffled by `seed`), so 300 slots touch every group before any group
    gives a second. Raises if a type has fewer slots than asked for.
    """
    rng = random.Random(seed)
    drawn: list[Slot] = []
    for stimulus_type, slots in space.items():
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
