"""render: images for every candidate (the offline Pillow renderer, diffusion on a GPU, or an image
API), then a check for near-duplicate images among everything rendered."""

from __future__ import annotations

from collections.abc import Iterable

from mossforge.config import Config, ConfigError
from mossforge.run_state import model_client
from mossforge.stage import Drop, Keep, Stage, StageContext


def _import_callable(spec: str):
    import importlib

    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"render.diffusion.nsfw_checker: cannot import {spec!r}: {error}") from None


def image_provider(config: Config):
    """The configured model renderer: a diffusion pipeline (loaded once per process) or an API."""
    r = config.render
    if r.renderer == "diffusion":
        from mossforge.generators.diffusion import DiffusionRenderer

        d = r.diffusion
        return DiffusionRenderer(
            d.model, device=d.device, dtype=d.dtype, steps=d.steps, guidance=d.guidance,
            width=d.width or r.size, height=d.height or r.size, scheduler=d.scheduler,
            negative_prompt=d.negative_prompt, batch_size=d.batch_size,
            max_rerenders=d.max_rerenders, blank_std=d.blank_std,
            nsfw_check=_import_callable(d.nsfw_checker) if d.nsfw_checker else None)
    from mossforge.generators.image_api import ImageApiRenderer

    return ImageApiRenderer(model_client(config), r.endpoint, size=r.image_api.size or f"{r.size}x{r.size}",
                            params=r.image_api.params, blank_std=r.image_api.blank_std)


class RenderStage(Stage):
    """Give every candidate an image (and its contrast an image); a model renderer drops what it
    flags, renders blank or is refused."""

    name = "render"
    own_progress = True

    def batch_size(self, config: Config) -> int:
        return config.render.batch_size

    def uses_models(self, config: Config) -> bool:
        return config.render.renderer == "image_api"

    def needs_gpu(self, config: Config) -> bool:
        return config.render.renderer == "diffusion"

    def process(self, records: list, ctx: StageContext) -> Iterable[Keep | Drop]:
        if ctx.config.render.renderer == "offline":
            yield from self._offline(records, ctx)
        else:
            yield from self._model(records, ctx)

    def _offline(self, records: list, ctx: StageContext) -> Iterable[Keep]:
        from mossforge.generators.render_offline import OfflineRenderer
        from mossforge.generators.render_pool import render_offline

        config = ctx.config
        OfflineRenderer(size=config.render.size)  # a bad size fails here, with its message
        refs = render_offline(records, config.render.size, ctx.image_root, config.run.cpu_workers,
                              done=ctx.advance)  # over every core
        for record, (image, contrast) in zip(records, refs):
            record.image, record.contrast.image = image, contrast
            record.flags.synthetic = True
            record.flags.has_text = True  # every offline scene card carries typeset text
        ctx.note(f"offline Pillow renderer, {config.render.size}px")
        return (Keep(r) for r in records)

    def _model(self, records: list, ctx: StageContext) -> Iterable[Keep | Drop]:
        from mossforge.generators.render_images import render_candidates

        config = ctx.config
        provider = image_provider(config)
        template = (config.render.diffusion if config.render.renderer == "diffusion"
                    else config.render.image_api).prompt_template
        outcome = render_candidates(records, ctx.image_store(), provider, prompt_template=template)
        ctx.advance(len(records))
        ctx.count("rendered", outcome.rendered)
        ctx.count("render_cache_hits", outcome.cache_hits)
        for name, n in outcome.provider_stats.items():
            ctx.count(name, n)
        ctx.note(provider.note)
        return (Drop(r, r.drop_reason) if r.status == "dropped" else Keep(r) for r in records)


class ImageDuplicatesStage(Stage):
    """Perceptual-hash near-duplicates among all rendered images (across batches), in the render
    row of the funnel. Always counted; dropped (all but the first by id) when
    `render.near_duplicate_images = "drop"`. Offline scene cards share layouts by design: not checked."""

    name = "image_dedup"
    row = "render"
    scope = "all"
    own_progress = True  # the render bar is already full

    def not_run_reason(self, config: Config) -> str | None:
        return "offline scene cards are not checked for near-duplicate images" \
            if config.render.renderer == "offline" else None

    def process(self, records: list, ctx: StageContext) -> Iterable[Keep | Drop]:
        from mossforge.filters.image_dedup import near_duplicates

        settings = ctx.config.render
        records = sorted(records, key=lambda r: r.id)
        matches = near_duplicates([r.image.phash if r.image else None for r in records], settings.phash_distance)
        found = sum(m is not None for m in matches)
        ctx.count("near_duplicate_images", found)
        drop = settings.near_duplicate_images == "drop"
        ctx.note(f"{found} near-duplicate images (pHash distance <= {settings.phash_distance}), "
                 + ("dropped" if drop else "kept (report only)"))
        for record, match in zip(records, matches):
            yield Drop(record, "near_duplicate_image") if drop and match is not None else Keep(record)
