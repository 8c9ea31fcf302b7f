"""Rendering throughput: mossforge's render stage vs a plain diffusers loop on the same pipeline.

    # the tiny random-weight pipeline on the CPU (built locally, nothing downloaded)
    .venv/bin/python benchmarks/bench_diffusion.py
    # a real pipeline on a GPU, weights from a local folder
    .venv/bin/python benchmarks/bench_diffusion.py --model /models/sdxl --device cuda --dtype fp16 \
        --steps 30 --size 1024 --images 32
    # where no weights can be fetched: SD 1.5's full-size architecture with random weights
    .venv/bin/python benchmarks/bench_diffusion.py --model sd15-architecture --device cuda --dtype fp16 \
        --steps 30 --size 512

For each batch size (1, 4, 8): the same prompts (seed-bank image descriptions) and the same seeds
(`item_seed` of each item) go through
- **baseline**: `pipe(prompts, generator=[...], ...)` in a loop, PIL images out, nothing saved;
- **mossforge**: `render_candidates` with a `DiffusionRenderer` over the same pipeline object:
  seeds, flag checks, perceptual hash, PNG encoding and content-addressed storing included
  (encoding runs in a thread while the next batch renders).
Images per second (best of --repeats), peak GPU memory (torch.cuda.max_memory_allocated; on the
CPU the process's peak RSS instead) and the ratio mossforge / baseline. It also checks that both
paths produced the same pixels (largest per-pixel difference).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from mossforge.generators.diffusion import DiffusionRenderer, item_seed, load_pipeline  # noqa: E402
from mossforge.generators.plan import draw_slots  # noqa: E402
from mossforge.generators.render_images import prompt_for, render_candidates  # noqa: E402
from mossforge.generators.seedbank import SeedBank  # noqa: E402
from mossforge.images import ImageStore  # noqa: E402


def candidates(n: int):
    bank = SeedBank()
    space = bank.slot_space()
    slots = draw_slots({"exaggerated_risk": space["exaggerated_risk"]}, n, 0)
    return [bank.generate(s, seed=0, config_hash="bench", code_version="bench") for s in slots]


def peak_memory(device: str) -> str:
    import torch

    if device == "cuda":
        return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB GPU"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB RSS"


def reset_peak(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="pipeline folder or id (default: the tiny random pipeline); "
                        "'sd15-architecture': SD 1.5 at full size with random weights, built locally")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp16", "bf16", "fp32"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=7.0)
    parser.add_argument("--size", type=int, default=None, help="default: 64 tiny, 1024 otherwise")
    parser.add_argument("--images", type=int, default=32, help="images per batch size and path")
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()  # the tiny tokenizer truncates long prompts
    transformers.utils.logging.set_verbosity_error()
    tmp = Path(tempfile.mkdtemp(prefix="mossforge-bench-diffusion-"))
    try:
        model = args.model
        if model is None:
            from tiny_diffusion import save_tiny_pipeline

            model = str(save_tiny_pipeline(tmp / "tiny"))
        size = args.size or (64 if args.model is None else 512 if model == "sd15-architecture" else 1024)
        t0 = time.perf_counter()
        if model == "sd15-architecture":  # same compute as the real model; noise for pixels
            from tiny_diffusion import build_sd15_architecture

            from mossforge.generators.diffusion import resolve_device, resolve_dtype

            device_name = resolve_device(args.device)
            pipe = build_sd15_architecture().to(device_name, resolve_dtype(args.dtype, device_name))
        else:
            pipe = load_pipeline(model, args.device, args.dtype)
        load_s = time.perf_counter() - t0
        device = pipe.device.type
        records = candidates(args.images)
        prompts = [prompt_for(r) for r in records]
        seeds = [item_seed(r.id, 0, 0) for r in records]
        console = Console(width=160)
        console.print(f"model {args.model or 'tiny random pipeline'} on {device} ({pipe.dtype}), "
                      f"{size}px, {args.steps} steps, {args.images} images per run, load {load_s:.1f} s")

        def baseline(batch: int) -> list:
            import torch

            out = []
            for i in range(0, len(prompts), batch):
                gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[i:i + batch]]
                out += pipe(prompts[i:i + batch], generator=gens, num_inference_steps=args.steps,
                            guidance_scale=args.guidance, height=size, width=size).images
            sync(device)
            return out

        def mossforge(batch: int, run: int) -> list:
            renderer = DiffusionRenderer(model, device=device, dtype=args.dtype, steps=args.steps,
                                         guidance=args.guidance, width=size, height=size,
                                         batch_size=batch, pipeline=pipe, max_rerenders=0,
                                         blank_std=0.0)
            store = ImageStore(tmp / f"store-{batch}-{run}")  # fresh: nothing cached
            copies = [r.model_copy(deep=True) for r in records]
            render_candidates(copies, store, renderer)
            sync(device)
            return [store.open(r.image) if r.image else None for r in copies]

        table = Table(title="images per second (best of repeats)")
        for col in ("batch", "baseline img/s", "mossforge img/s", "ratio", "baseline peak",
                    "mossforge peak", "max pixel diff", "dropped"):
            table.add_column(col, justify="right")
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            baseline(batch)  # warm-up: kernels, allocator
            best = {"baseline": 0.0, "mossforge": 0.0}
            peaks = {}
            for run in range(args.repeats):
                for name in ("baseline", "mossforge"):
                    reset_peak(device)
                    started = time.perf_counter()
                    images = baseline(batch) if name == "baseline" else mossforge(batch, run)
                    rate = len(prompts) / (time.perf_counter() - started)
                    best[name] = max(best[name], rate)
                    peaks[name] = peak_memory(device)
                    if name == "baseline":
                        base_images = images
                    else:
                        ours = images
            diffs = [int(np.abs(np.asarray(a, int) - np.asarray(b, int)).max())
                     for a, b in zip(base_images, ours) if b is not None]
            table.add_row(str(batch), f"{best['baseline']:.2f}", f"{best['mossforge']:.2f}",
                          f"{best['mossforge'] / best['baseline']:.1%}", peaks["baseline"],
                          peaks["mossforge"], str(max(diffs) if diffs else "-"),
                          str(sum(o is None for o in ours)))
        console.print(table)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
