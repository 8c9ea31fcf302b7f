"""Rendering candidates with a model (a diffusion pipeline or an image API).

For each candidate: the prompt (its image description; for `negated_harm`, the description of the
un-negated scene, since the negation is drawn afterwards), a look-up in the store's render cache
(a re-run renders nothing it rendered before), then the provider renders what is left in batches
while one background thread finishes each image as it arrives: negation overlay, perceptual hash,
PNG encoding, storing, remembering. The GPU never waits for PNG encoding.

For `negated_harm` the rendered image is kept as the harmful contrast and the query image is the
same image with the candidate's negation composited over it (`generators/negation.py`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from mossforge.filters.image_dedup import perceptual_hash
from mossforge.generators.diffusion import Rendered, RenderItem, Sink
from mossforge.generators.negation import CONTRAST_VARIANT, compose, contrast_description
from mossforge.images import ImageStore
from mossforge.schema import Candidate, ImageRef

SCENE_VARIANT = "scene"
COMPOSITOR_VERSION = "1"  # bump when overlay drawing changes: part of the render cache key


class Provider(Protocol):
    name: str
    model: str
    note: str

    def fingerprint(self) -> dict[str, Any]: ...

    def generate(self, items: Sequence[RenderItem], sink: Sink) -> dict[str, int]: ...


@dataclass
class RenderOutcome:
    rendered: int = 0  # candidates the provider rendered (not from the cache)
    cache_hits: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    provider_stats: dict[str, int] = field(default_factory=dict)


def prompt_for(candidate: Candidate, template: str = "{description}") -> str:
    description = candidate.image_description
    if candidate.stimulus_type == "negated_harm" and candidate.negation is not None:
        description = contrast_description(candidate)  # the scene with no trace of the negation
    return template.format(description=description)


def _request_key(fingerprint: dict, candidate: Candidate, prompt: str) -> str:
    negation = candidate.negation.model_dump() if candidate.stimulus_type == "negated_harm" and \
        candidate.negation else None
    payload = json.dumps({"provider": fingerprint, "prompt": prompt, "item": candidate.id,
                          "seed": candidate.provenance.seed or 0, "negation": negation,
                          "compositor": COMPOSITOR_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _apply(candidate: Candidate, entry: dict) -> None:
    if entry.get("drop"):
        candidate.image = candidate.contrast.image = None
        candidate.drop("render", entry["drop"])
        return
    candidate.image = ImageRef.model_validate(entry["image"])
    candidate.contrast.image = ImageRef.model_validate(entry["contrast"]) if entry.get("contrast") else None
    candidate.flags.synthetic = True
    if candidate.negation is not None and candidate.negation.symbol == "slogan_banner":
        candidate.flags.has_text = True


def _finish(store: ImageStore, provider: Provider, candidate: Candidate, key: str,
            result: Rendered) -> None:
    if result.image is None:
        entry: dict = {"drop": result.drop_reason, "flags": result.flags}
    else:
        meta = dict(renderer=provider.name, model_id=provider.model, seed=result.seed,
                    flags=list(result.flags), **result.meta)
        contrast = None
        if candidate.stimulus_type == "negated_harm":
            negation = candidate.negation
            main, _ = compose(result.image, negation.symbol, slogan=negation.slogan,
                              seed=candidate.provenance.seed or 0, key=candidate.id)
            contrast = store.put(result.image, variant=CONTRAST_VARIANT,
                                 phash=perceptual_hash(result.image), **meta)
            variant = negation.symbol
        else:
            main, variant = result.image, SCENE_VARIANT
        ref = store.put(main, variant=variant, phash=perceptual_hash(main), **meta)
        entry = {"image": ref.model_dump(), "contrast": contrast.model_dump() if contrast else None}
    store.remember(key, entry)
    _apply(candidate, entry)


def render_candidates(records: Sequence[Candidate], store: ImageStore, provider: Provider, *,
                      prompt_template: str = "{description}") -> RenderOutcome:
    """Give every record an image (and a contrast image), or drop it with the reason."""
    outcome = RenderOutcome()
    fingerprint = provider.fingerprint()
    items: list[RenderItem] = []
    pending: list[tuple[Candidate, str]] = []
    for record in records:
        if record.stimulus_type == "negated_harm" and record.negation is None:
            record.drop("render", "missing_negation")  # the query image would be the harmful one
            continue
        prompt = prompt_for(record, prompt_template)
        key = _request_key(fingerprint, record, prompt)
        entry = store.recall(key)
        if entry is not None:
            _apply(record, entry)
            outcome.cache_hits += 1
            continue
        items.append(RenderItem(record.id, prompt, record.provenance.seed or 0))
        pending.append((record, key))
    if items:
        futures: list[Future] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mossforge-encode") as pool:
            def sink(i: int, result: Rendered) -> None:
                futures.append(pool.submit(_finish, store, provider, *pending[i], result))

            outcome.provider_stats = provider.generate(items, sink)
            for future in futures:
                future.result()  # an encoding or storing error fails the batch, loudly
        outcome.rendered = len(items)
    outcome.dropped = Counter(r.drop_reason for r in records if r.status == "dropped")
    return outcome
