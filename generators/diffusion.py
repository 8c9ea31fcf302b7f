"""Diffusion provider: text-to-image with a `diffusers` pipeline (SDXL, SD 3.5, FLUX, ...).

Thin over `diffusers` on purpose, so mossforge renders at the pipeline's own speed: one pipeline
call per batch, the latents' noise from one seeded CPU generator per item (the same item and seed
give the same image whatever batch it is in, up to float rounding of batched kernels), the output
taken as a tensor and quantised to uint8 on the device (exactly as diffusers' own PIL conversion
does), and PNG encoding left to the caller (who does it in a thread while the next batch runs).

- Loaded once per worker process: `load_pipeline` caches by (model, device, dtype, scheduler).
- One batch at a time per device: a process-wide lock per device around every pipeline call
  (threads of one worker). Across workers, the flow adds a Prefect global concurrency limit.
- Checks on every image: the pipeline's own `nsfw_content_detected` when it has a safety checker,
  an injectable `nsfw_check(image) -> bool`, and blank-image detection (near-constant pixels). A
  flagged image is re-rendered with the next seed of a fixed schedule (`item_seed(key, seed, k)`),
  up to `max_rerenders` times, and otherwise dropped with the reason. It is never kept.
- Without a GPU it runs on the CPU (slowly) and says so (`DiffusionRenderer.note`).
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from mossforge import run_state

log = logging.getLogger(__name__)

RENDERER_NAME = "diffusers"
DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}

# (device, start, end, batch size) of recent pipeline calls in this process: the record that
# shows one device never ran two batches at once (tests and benchmarks read it).
pipeline_calls: collections.deque = collections.deque(maxlen=100_000)

_pipelines: dict[tuple, Any] = {}
_load_lock = threading.Lock()
_device_locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)


def item_seed(key: str, seed: int = 0, attempt: int = 0) -> int:
    """The seed of attempt `attempt` at rendering item `key`: fixed, so re-runs repeat it."""
    digest = hashlib.sha256(f"diffusion:{key}:{seed}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # < 2**63: any torch generator takes it


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("render.diffusion.device = 'cuda', but torch sees no CUDA device "
                           "(a CPU build of torch, or no GPU); use 'auto' or 'cpu'")
    return device


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        dtype = "fp16" if device == "cuda" else "fp32"  # half precision on a CPU is slow or broken
    return getattr(torch, DTYPES[dtype])


def load_pipeline(model: str, device: str = "auto", dtype: str = "auto",
                  scheduler: str | None = None):
    """The pipeline for `model` (a Hub id or a local folder), loaded once per process."""
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    key = (model, device, str(torch_dtype), scheduler)
    with _load_lock:
        if key in _pipelines:
            return _pipelines[key]
        import diffusers

        try:
            pipe = diffusers.DiffusionPipeline.from_pretrained(model, dtype=torch_dtype)
        except (OSError, ValueError) as error:
            raise ValueError(f"render.diffusion.model: cannot load {model!r}: {error}") from None
        if scheduler:
            cls = getattr(diffusers, scheduler, None)
            if cls is None or not hasattr(cls, "from_config"):
                raise ValueError(f"render.diffusion.scheduler: diffusers has no scheduler {scheduler!r}")
            pipe.scheduler = cls.from_config(pipe.scheduler.config)
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        _pipelines[key] = pipe
        return pipe


@dataclass
class RenderItem:
    key: str  # the candidate id: with `seed`, it fixes every attempt's seed
    prompt: str
    seed: int = 0


@dataclass
class Rendered:
    """A kept image, or a drop (`image` None, `drop_reason` set)."""

    image: Image.Image | None
    seed: int | None
    attempts: int
    flags: list[str] = field(default_factory=list)  # "nsfw@0": attempt 0 was flagged NSFW
    drop_reason: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # ImageRef fields: steps, guidance, ...


Sink = Callable[[int, Rendered], None]


def is_blank(pixels: np.ndarray, min_std: float) -> bool:
    """Near-constant pixels (an all-black safety-checker output, a flat colour): the spatial
    standard deviation of every channel is below `min_std`."""
    channels = pixels.reshape(-1, pixels.shape[-1]).astype(np.float32)
    return float(channels.std(axis=0).max()) < min_std


class DiffusionRenderer:
    """Render items with one pipeline, batched, with flag checks and a fixed re-render schedule."""

    name = RENDERER_NAME

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto", steps: int = 30,
                 guidance: float = 7.0, width: int = 512, height: int = 512,
                 scheduler: str | None = None, negative_prompt: str | None = None,
                 batch_size: int = 4, max_rerenders: int = 2, blank_std: float = 2.0,
                 nsfw_check: Callable[[Image.Image], bool] | None = None, pipeline: Any = None):
        self.model = model
        self.device = resolve_device(device)
        self.dtype = dtype if dtype != "auto" else ("fp16" if self.device == "cuda" else "fp32")
        self.steps, self.guidance, self.width, self.height = steps, guidance, width, height
        self.negative_prompt = negative_prompt
        self.batch_size, self.max_rerenders, self.blank_std = batch_size, max_rerenders, blank_std
        self.nsfw_check = nsfw_check
        self.pipe = pipeline if pipeline is not None else load_pipeline(model, self.device, self.dtype,
                                                                        scheduler)
        self.scheduler = type(self.pipe.scheduler).__name__
        self.note = f"diffusers {model} on {self.device} ({self.dtype})"
        if self.device == "cpu":
            log.warning("no GPU: diffusion runs on the CPU, slowly (%s)", model)
            self.note += " - no GPU, CPU rendering is slow"

    def fingerprint(self) -> dict[str, Any]:
        """Everything that decides the pixels (and the flag policy): part of the render cache key."""
        return {"renderer": self.name, "model": self.model, "dtype": self.dtype,
                "steps": self.steps, "guidance": self.guidance, "size": [self.width, self.height],
                "scheduler": self.scheduler, "negative_prompt": self.negative_prompt,
                "max_rerenders": self.max_rerenders, "blank_std": self.blank_std,
                "nsfw_check": getattr(self.nsfw_check, "__name__", None) if self.nsfw_check else None}

    def meta(self) -> dict[str, Any]:
        return {"steps": self.steps, "guidance": self.guidance, "scheduler": self.scheduler}

    # -- one pipeline call ----------------------------------------------------------------------
    def render(self, prompts: Sequence[str], seeds: Sequence[int]) -> tuple[np.ndarray, list]:
        """One batch: uint8 pixels (B, H, W, 3) and the pipeline's NSFW flags (None if it has none)."""
        import torch

        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        kwargs: dict[str, Any] = dict(prompt=list(prompts), num_inference_steps=self.steps,
                                      guidance_scale=self.guidance, height=self.height,
                                      width=self.width, generator=generators, output_type="pt")
        if self.negative_prompt:
            kwargs["negative_prompt"] = [self.negative_prompt] * len(prompts)
        with _device_locks[self.device]:  # one batch at a time on a device, whatever the threads
            started = time.time()
            with torch.inference_mode():
                out = self.pipe(**kwargs)
                images = out.images
                # diffusers' own PIL conversion is (x * 255).round() in float32; same here, on device
                pixels = (images.float() * 255).round().clamp(0, 255).to(torch.uint8)
                pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()
            pipeline_calls.append((self.device, started, time.time(), len(prompts)))
        nsfw = getattr(out, "nsfw_content_detected", None) or [None] * len(prompts)
        return pixels, list(nsfw)

    def _flags(self, pixels: np.ndarray, pipeline_nsfw: bool | None) -> tuple[list[str], Image.Image]:
        image = Image.fromarray(pixels, "RGB")
        flags = []
        if pipeline_nsfw or (self.nsfw_check is not None and self.nsfw_check(image)):
            flags.append("nsfw")
        if is_blank(pixels, self.blank_std):
            flags.append("blank")
        return flags, image

    # -- items, with re-renders -----------------------------------------------------------------
    def generate(self, items: Sequence[RenderItem], sink: Sink) -> dict[str, int]:
        """Render every item; `sink(i, Rendered)` is called once per item as soon as it is final.

        Attempt k of item i uses `item_seed(key, seed, k)`. Flagged items of one round are batched
        together into the next round. Returns counts: pipeline calls, images rendered, re-renders.
        """
        pending = list(range(len(items)))
        history: dict[int, list[str]] = {i: [] for i in pending}
        stats = {"pipeline_calls": 0, "images_rendered": 0, "rerenders": 0}
        for attempt in range(self.max_rerenders + 1):
            flagged: list[int] = []
            for start in range(0, len(pending), self.batch_size):
                batch = pending[start:start + self.batch_size]
                run_state.check_not_stopping("diffusion rendering")  # (Ctrl-C, SIGTERM: not one more batch)
                seeds = [item_seed(items[i].key, items[i].seed, attempt) for i in batch]
                pixels, nsfw = self.render([items[i].prompt for i in batch], seeds)
                stats["pipeline_calls"] += 1
                stats["images_rendered"] += len(batch)
                stats["rerenders"] += len(batch) if attempt else 0
                for j, i in enumerate(batch):
                    flags, image = self._flags(pixels[j], nsfw[j])
                    if not flags:
                        sink(i, Rendered(image, seeds[j], attempt + 1, history[i], meta=self.meta()))
                        continue
                    history[i].extend(f"{f}@{attempt}" for f in flags)
                    if attempt == self.max_rerenders:
                        reason = "nsfw_flagged" if "nsfw" in flags else "blank_image"
                        sink(i, Rendered(None, seeds[j], attempt + 1, history[i], drop_reason=reason))
                    else:
                        flagged.append(i)
            pending = flagged
            if not pending:
                break
        return stats
