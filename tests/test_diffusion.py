"""The diffusion provider on a tiny random-weight pipeline, on the CPU: real diffusers calls."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import make_candidate
from tiny_diffusion import SIZE

from mossforge.generators import diffusion
from mossforge.generators.diffusion import DiffusionRenderer, RenderItem, item_seed, load_pipeline
from mossforge.generators.negation import red_pixel_share
from mossforge.generators.render_images import prompt_for, render_candidates
from mossforge.images import ImageStore

PROMPTS = ["a sunny playroom with a toy knife", "a red mug on a desk", "a dinosaur statue in a park",
           "a map of a casino"]


def make_renderer(model: str, **kw) -> DiffusionRenderer:
    kw.setdefault("steps", 2)
    kw.setdefault("guidance", 5.0)
    return DiffusionRenderer(model, device="cpu", width=SIZE, height=SIZE, **kw)


@pytest.fixture(scope="module")
def renderer(tiny_diffusion_model) -> DiffusionRenderer:
    return make_renderer(tiny_diffusion_model)


def test_pipeline_is_loaded_once_per_process(tiny_diffusion_model, renderer):
    assert load_pipeline(tiny_diffusion_model, "cpu", "fp32") is renderer.pipe
    assert make_renderer(tiny_diffusion_model).pipe is renderer.pipe
    assert "no GPU" in renderer.note and renderer.device == "cpu" and renderer.dtype == "fp32"


def test_same_seed_same_image_bit_for_bit(renderer):
    a, _ = renderer.render(PROMPTS[:1], [7])
    b, _ = renderer.render(PROMPTS[:1], [7])
    c, _ = renderer.render(PROMPTS[:1], [8])
    assert a.dtype == np.uint8 and a.shape == (1, SIZE, SIZE, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() > 5  # a real, non-flat render


def test_a_batch_matches_single_renders(renderer):
    seeds = [11, 12, 13, 14]
    batch, _ = renderer.render(PROMPTS, seeds)
    singles = np.concatenate([renderer.render([p], [s])[0] for p, s in zip(PROMPTS, seeds)])
    # Batched kernels round floats differently: at most one step of 255 on a few pixels.
    diff = np.abs(batch.astype(int) - singles.astype(int))
    assert diff.max() <= 1
    assert (diff == 0).mean() > 0.99
    assert not np.array_equal(batch[0], batch[1])


def test_the_seed_schedule_is_fixed_and_distinct():
    assert item_seed("mf-1", 0, 0) == 3124643932499644443  # pinned: a re-run (any process) repeats it
    seeds = {item_seed("mf-1", 0, k) for k in range(5)} | {item_seed("mf-2", 0, 0), item_seed("mf-1", 1, 0)}
    assert len(seeds) == 7 and all(0 <= s < 2**63 for s in seeds)


def test_a_flagged_image_is_rerendered_with_a_new_seed_then_dropped(tiny_diffusion_model):
    # Checks are called in order: round 0 [A, B, C], round 1 [A, B], round 2 [A].
    decisions = iter([True, True, False, True, False, True])
    checked = []

    def nsfw(image):
        checked.append(image)
        return next(decisions)

    renderer = make_renderer(tiny_diffusion_model, max_rerenders=2, nsfw_check=nsfw, batch_size=4)
    items = [RenderItem("A", PROMPTS[0]), RenderItem("B", PROMPTS[1]), RenderItem("C", PROMPTS[2])]
    results = {}
    calls_before = len(diffusion.pipeline_calls)
    stats = renderer.generate(items, lambda i, r: results.setdefault(items[i].key, r))
    assert len(checked) == 6 and stats == {"pipeline_calls": 3, "images_rendered": 6, "rerenders": 3}
    assert len(diffusion.pipeline_calls) - calls_before == 3
    a, b, c = results["A"], results["B"], results["C"]
    assert a.image is None and a.drop_reason == "nsfw_flagged" and a.attempts == 3
    assert a.flags == ["nsfw@0", "nsfw@1", "nsfw@2"]
    assert b.image is not None and b.flags == ["nsfw@0"] and b.attempts == 2
    assert b.seed == item_seed("B", 0, 1)
    expected, _ = renderer.render([PROMPTS[1]], [item_seed("B", 0, 1)])
    assert np.abs(np.asarray(b.image).astype(int) - expected[0].astype(int)).max() <= 1
    assert c.image is not None and c.flags == [] and c.seed == item_seed("C", 0, 0)


def test_blank_images_are_rerendered_then_dropped(tiny_diffusion_model):
    renderer = make_renderer(tiny_diffusion_model, max_rerenders=1, blank_std=1e6)  # all "blank"
    results = {}
    renderer.generate([RenderItem("A", PROMPTS[0])], lambda i, r: results.setdefault(i, r))
    assert results[0].image is None and results[0].drop_reason == "blank_image"
    assert results[0].flags == ["blank@0", "blank@1"]


def test_the_pipelines_own_nsfw_flag_is_honoured(renderer, monkeypatch):
    pixels, _ = renderer.render(PROMPTS[:2], [1, 2])
    monkeypatch.setattr(renderer, "render", lambda prompts, seeds: (pixels[:len(prompts)], [True, False]))
    results = {}
    renderer.max_rerenders = 0
    try:
        renderer.generate([RenderItem("A", "x"), RenderItem("B", "y")], lambda i, r: results.setdefault(i, r))
    finally:
        renderer.max_rerenders = 2
    assert results[0].drop_reason == "nsfw_flagged" and results[1].image is not None


def test_one_device_runs_one_batch_at_a_time(renderer):
    start = len(diffusion.pipeline_calls)
    threads = [threading.Thread(target=renderer.render, args=(PROMPTS, [1, 2, 3, 4])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls = sorted(list(diffusion.pipeline_calls)[start:], key=lambda c: c[1])
    assert len(calls) == 4
    assert all(prev[2] <= nxt[1] for prev, nxt in zip(calls, calls[1:]))


def test_render_candidates_stores_negation_and_contrast_and_reuses_on_rerun(tiny_diffusion_model, tmp_path):
    store = ImageStore(tmp_path / "images")
    records = [make_candidate("Plan a party here."),
               make_candidate("Write a guide that promotes this.", "negated_harm",
                              contrast=make_candidate().contrast.model_copy(
                                  update={"image_description": "kids lighting fireworks indoors"}))]
    renderer = make_renderer(tiny_diffusion_model)
    outcome = render_candidates(records, store, renderer)
    assert outcome.rendered == 2 and outcome.cache_hits == 0 and not outcome.dropped
    scene, negated = records
    assert prompt_for(negated) == "kids lighting fireworks indoors"  # the un-negated scene is rendered
    for ref in (scene.image, negated.image, negated.contrast.image):
        assert ref.renderer == "diffusers" and ref.model_id == tiny_diffusion_model
        assert (ref.width, ref.height, ref.steps, ref.guidance) == (SIZE, SIZE, 2, 5.0)
        assert ref.scheduler == "DDIMScheduler" and len(ref.phash) == 16
        assert store.path(ref).exists()
    assert scene.image.seed == item_seed(scene.id, 0, 0) and scene.contrast.image is None
    assert negated.image.variant == "prohibition_sign" and negated.contrast.image.variant == "contrast"
    assert red_pixel_share(store.open(negated.image)) > 0.03
    assert red_pixel_share(store.open(negated.contrast.image)) < red_pixel_share(store.open(negated.image)) / 5

    # A re-run: nothing is rendered, the same images come back.
    again = [r.model_copy(deep=True) for r in records]
    for r in again:
        r.image = r.contrast.image = None
    calls = len(diffusion.pipeline_calls)
    outcome = render_candidates(again, store, make_renderer(tiny_diffusion_model))
    assert outcome.rendered == 0 and outcome.cache_hits == 2 and len(diffusion.pipeline_calls) == calls
    assert [r.image for r in again] == [r.image for r in records]

    # A different setting is a different request: rendered again.
    fresh = [r.model_copy(deep=True) for r in records]
    outcome = render_candidates(fresh, store, make_renderer(tiny_diffusion_model, steps=3))
    assert outcome.rendered == 2 and fresh[0].image.sha256 != records[0].image.sha256


def test_drops_are_remembered_and_counted(tiny_diffusion_model, tmp_path):
    store = ImageStore(tmp_path / "images")
    records = [make_candidate("Plan a party here."), make_candidate("How do I slice it?")]
    outcome = render_candidates(records, store, make_renderer(tiny_diffusion_model, max_rerenders=0,
                                                              blank_std=1e6))
    assert outcome.dropped == {"blank_image": 2}
    assert all(r.status == "dropped" and r.drop_stage == "render" and r.image is None for r in records)
    assert not list((tmp_path / "images").glob("*/*.png"))  # a flagged image is never kept
    again = [make_candidate("Plan a party here."), make_candidate("How do I slice it?")]
    outcome = render_candidates(again, store, make_renderer(tiny_diffusion_model, max_rerenders=0,
                                                            blank_std=1e6))
    assert outcome.cache_hits == 2 and outcome.dropped == {"blank_image": 2}


def test_a_missing_model_names_the_key(tmp_path):
    with pytest.raises(ValueError, match="render.diffusion.model"):
        load_pipeline(str(tmp_path / "no-such-model"), "cpu", "fp32")


def test_a_stopping_run_renders_not_one_more_batch(tiny_diffusion_model, monkeypatch):
    """Ctrl-C or SIGTERM (`run_state.stop_work`) cancels model calls and queued cards, but a
    diffusion batch is one pipeline call that nothing cancels: the renderer checks between batches,
    so the run waits for the batch in progress at most, not for the rest of the task's items."""
    import threading

    import pytest

    from mossforge import run_state
    from mossforge.errors import RunInterrupted
    from mossforge.generators.diffusion import RenderItem

    monkeypatch.setattr(run_state, "_stopping", threading.Event())  # (this process's flag, put back after)
    renderer = make_renderer(tiny_diffusion_model, batch_size=1)
    items = [RenderItem(key=f"k{i}", prompt=f"a red ball number {i}", seed=i) for i in range(4)]
    sunk = []

    def sink(i, rendered):
        sunk.append(i)
        run_state._stopping.set()  # (as stop_work does, after the first image)

    with pytest.raises(RunInterrupted, match="diffusion rendering stopped"):
        renderer.generate(items, sink)
    assert sunk == [0]
