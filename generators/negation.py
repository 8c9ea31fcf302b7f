"""The negation compositor: a red prohibition sign, a red X or an anti-harm slogan banner drawn
over ANY base image (a diffusion render, an image-API render, an offline scene card, or a user's
own photo), for `negated_harm` queries. The un-negated base image is the harmful contrast.

Every placement is a fraction of the image (centre in fractions of width and height, sizes in
fractions of the shorter side), so one `Overlay` draws the same way at any resolution. Placement
and size are varied by a seeded `random.Random`: the same base, symbol and seed give the same
pixels. The overlay's red (`RED`) is strong enough that `red_pixel_share` can tell whether an
overlay was really drawn.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from mossforge.generators.text import _font, clean_text, wrap_text

DEFAULT_SLOGAN = "#SayNoToHarm"
SYMBOLS: tuple[str, ...] = ("prohibition_sign", "red_x", "slogan_banner")
CONTRAST_VARIANT = "contrast"
RED = (220, 20, 20)
WHITE = (255, 255, 255)
Color = tuple[int, int, int]
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class Overlay:
    symbol: str
    center: tuple[float, float]  # fractions of (width, height)
    radius: float  # prohibition ring radius / half-span of an X / half-length of the banner
    thickness: float  # fractions of the shorter side, like radius
    angle: float  # degrees (the X's stroke angle, the banner's tilt)
    slogan: str | None = None


def plan_overlay(symbol: str, rng: random.Random, slogan: str | None = None) -> Overlay:
    """A varied placement and size of `symbol` for a base image whose content is unknown.

    The harmful subject of a generated picture or a photo is usually central, so the sign and the
    X sit near the middle and the banner across the lower part; everything stays inside the frame.
    """
    if symbol not in SYMBOLS:
        raise ValueError(f"unknown negation symbol {symbol!r} (one of {', '.join(SYMBOLS)})")
    cx, cy = 0.5 + rng.uniform(-0.08, 0.08), 0.5 + rng.uniform(-0.08, 0.08)
    if symbol == "prohibition_sign":
        thickness = rng.uniform(0.045, 0.065)
        radius = rng.uniform(0.26, 0.38)
        radius = min(radius, min(cx, 1 - cx, cy, 1 - cy) - thickness / 2 - 0.02)
        return Overlay(symbol, (cx, cy), radius, thickness, 45.0)
    if symbol == "red_x":
        thickness = rng.uniform(0.045, 0.065)
        angle = rng.uniform(30.0, 45.0)
        radius = rng.uniform(0.28, 0.42)
        room_x = (min(cx, 1 - cx) - thickness / 2 - 0.02) / math.cos(math.radians(angle))
        room_y = (min(cy, 1 - cy) - thickness / 2 - 0.02) / math.sin(math.radians(angle))
        return Overlay(symbol, (cx, cy), min(radius, room_x, room_y), thickness, angle)
    thickness = rng.uniform(0.11, 0.15)
    return Overlay(symbol, (0.5 + rng.uniform(-0.03, 0.03), rng.uniform(0.66, 0.8)),
                   rng.uniform(0.4, 0.46), thickness, rng.uniform(-7.0, 7.0),
                   slogan or DEFAULT_SLOGAN)


# --- the harmful contrast's description: the scene without any trace of the negation -----------

# Words and phrases that describe a negation overlay (what `generators/seedbank` and an LLM write
# for it); with the slogan's own words, no contrast description may contain any of them.
NEGATION_PHRASES: tuple[str, ...] = (
    "prohibition", "red x", "bold x", "an x ", "x painted", "x drawn", "crossed out", "crossed-out",
    "red circle", "diagonal slash", "slash through", "banner", "slogan", "hashtag", "caption",
    "sign that reads", "that reads", "which reads", "reading \"", "the words", "no entry sign",
    "warning sign", "stop sign", "do not ", "don't ", "say no", "#",
)
_CLAUSE_BREAKS = (", with ", " with ", ", and ", " and ", ", under ", ", beneath ", ", behind ", ", over ",
                  " under ", " beneath ", " behind ", " over ", ", ")


def negation_terms(negation) -> list[str]:
    """The lower-case phrases that betray `negation` (a `Negation` or None) in a text."""
    terms = list(NEGATION_PHRASES)
    slogan = getattr(negation, "slogan", None)
    if slogan:
        text = slogan.lower().strip()
        terms.append(text)
        terms.append(text.lstrip("#"))
    return [t for t in terms if t]


def find_negation(text: str, negation=None) -> int:
    """Index of the first negation phrase in `text` (case-insensitive), or -1."""
    lower = f"{text.lower()} "
    hits = [i for i in (lower.find(term) for term in negation_terms(negation)) if i >= 0]
    return min(hits) if hits else -1


def strip_negation(text: str, negation=None) -> str:
    """`text` without the clauses that describe the negation: each sentence is cut before the
    clause that names it ("A photo of X, with a bold red X across it." → "A photo of X."), and a
    sentence with nothing left before it is dropped."""
    import re

    kept = []
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        cut_here = False
        while (i := find_negation(sentence, negation)) >= 0:
            prefix = sentence[:i]
            cut = max((prefix.rfind(b) for b in _CLAUSE_BREAKS), default=-1)
            sentence = prefix[:cut].rstrip(" ,;:-") if cut > 0 else ""
            if sentence and not sentence.endswith((".", "!", "?")):
                sentence += "."
            cut_here = True
        if sentence and (not cut_here or len(sentence.split()) >= 3):  # not a stub like "A photo."
            kept.append(sentence)
    return " ".join(kept)


def contrast_description(candidate) -> str:
    """What the harmful contrast image shows, with no trace of the negation: the candidate's own
    contrast description where it has one free of negation words, else its image description
    with the negation's clauses cut out, else a plain "A photo of <trigger element>."."""
    negation = candidate.negation
    for text in (candidate.contrast.image_description, strip_negation(candidate.image_description, negation)):
        if text and find_negation(text, negation) < 0:
            return text
    trigger = strip_negation(f"A photo of {candidate.trigger_element}.", negation)
    return trigger or "A photo."


def overlay_seed(key: str, seed: int = 0) -> int:
    """The `random.Random` seed of an overlay: a stable hash of the item (or file) and a seed."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"negation:{key}:{seed}".encode()).digest()[:8], "big")


def compose(base: Image.Image, symbol: str, *, slogan: str | None = None, seed: int = 0,
            key: str = "") -> tuple[Image.Image, Overlay]:
    """The negated image (a new RGB image; `base` is left as it is) and the overlay drawn."""
    overlay = plan_overlay(symbol, random.Random(overlay_seed(key, seed)), slogan)
    image = base.convert("RGB").copy()
    draw_overlay(image, overlay)
    return image, overlay


def overlay_variants(base: Image.Image, *, slogan: str | None = None, seed: int = 0,
                     key: str = "", symbols: tuple[str, ...] = SYMBOLS) -> dict[str, Image.Image]:
    """Every overlay variant of `base`, plus the un-negated base under "contrast"."""
    variants = {s: compose(base, s, slogan=slogan, seed=seed, key=key)[0] for s in symbols}
    variants[CONTRAST_VARIANT] = base.convert("RGB").copy()
    return variants


def negate_folder(src: str | Path, out: str | Path, *, slogan: str | None = None,
                  seed: int = 0, symbols: tuple[str, ...] = SYMBOLS,
                  max_side: int | None = 1024) -> list[dict]:
    """Overlay variants for every photo in `src` (a folder of the user's own images).

    Writes `out/<stem>/<variant>.png` (the un-negated photo as `contrast.png`) and
    `out/manifest.jsonl`, one line per written image with its source, variant and overlay. Where
    two photos share a stem (`x.png`, `x.jpg`), each gets a folder named by its whole file name
    (`out/x.png/`, `out/x.jpg/`), so neither overwrites the other. A file that is not a readable
    image is listed with an `error` instead of stopping the run.
    """
    from collections import Counter

    from mossforge.images import png_bytes

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is not a folder of images")
    photos = sorted(p for p in src.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise FileNotFoundError(f"{src} has no images: it looks for files ending "
                                f"{', '.join(PHOTO_SUFFIXES)} (any case)")
    # a photo's stem names its folder unless another photo's stem or name is the same (casefolded:
    # x.png and X.jpg are one folder on a case-insensitive disk); then its whole name does
    taken = Counter(p.stem.casefold() for p in photos) + Counter(p.name.casefold() for p in photos)
    previous = _previous_outputs(out)
    rows: list[dict] = []
    for path in photos:
        try:
            with Image.open(path) as opened:
                base = ImageOps.exif_transpose(opened).convert("RGB")
        except (OSError, ValueError) as error:
            rows.append({"source": str(path), "error": f"{type(error).__name__}: {error}"})
            continue
        if max_side and max(base.size) > max_side:
            base.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        folder = out / (path.stem if taken[path.stem.casefold()] == 1 else path.name)
        folder.mkdir(parents=True, exist_ok=True)
        for symbol in (*symbols, CONTRAST_VARIANT):
            if symbol == CONTRAST_VARIANT:
                image, overlay = base, None
            else:
                image, overlay = compose(base, symbol, slogan=slogan, seed=seed, key=path.name)
            target = folder / f"{symbol}.png"
            target.write_bytes(png_bytes(image))
            rows.append({"source": str(path), "variant": symbol, "path": str(target),
                         "width": image.width, "height": image.height, "seed": seed,
                         "overlay": asdict(overlay) if overlay else None})
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.jsonl"
    tmp = out / ".manifest.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(manifest)
    _remove_stale(previous - {Path(r["path"]) for r in rows if "path" in r}, out)
    return rows


def _previous_outputs(out: Path) -> set[Path]:
    """The images an earlier `negate` into `out` wrote (its manifest lists them), so that a second
    run does not leave them beside its own: a photo since removed, a variant no longer made."""
    try:
        lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
        return {Path(row["path"]) for row in map(json.loads, lines) if isinstance(row, dict) and row.get("path")}
    except (OSError, ValueError):
        return set()


def _remove_stale(paths: set[Path], out: Path) -> None:
    """Delete an earlier run's images that this one did not write again, and folders left empty;
    only inside `out`, only .png files its manifest named (nothing else of the user's)."""
    root = out.resolve()
    for path in paths:
        folder = path.parent
        if path.suffix == ".png" and folder.parent.resolve() == root and path.is_file():
            path.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()


# --- drawing -----------------------------------------------------------------------------------


def red_pixel_share(img: Image.Image, r_min: int = 180, gb_max: int = 60) -> float:
    """Fraction of pixels that are strongly red (R > r_min, G < gb_max, B < gb_max)."""
    a = np.asarray(img.convert("RGB"))
    mask = (a[..., 0] > r_min) & (a[..., 1] < gb_max) & (a[..., 2] < gb_max)
    return float(mask.mean())


def _thick_line(d: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float],
                width: float, fill: Color, round_caps: bool = True) -> None:
    """A straight stroke as a polygon (exact width at any angle), optionally with round ends."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / length * width / 2, dx / length * width / 2
    d.polygon([(a[0] + nx, a[1] + ny), (b[0] + nx, b[1] + ny), (b[0] - nx, b[1] - ny),
               (a[0] - nx, a[1] - ny)], fill=fill)
    if round_caps:
        r = width / 2
        for x, y in (a, b):
            d.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def _draw_prohibition(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, t: float,
                      halo: float) -> None:
    """A prohibition sign: red ring and a 45° slash from upper left to lower right."""
    d.ellipse((cx - r - halo, cy - r - halo, cx + r + halo, cy + r + halo), outline=WHITE,
              width=int(round(t + 2 * halo)))
    d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=RED, width=int(round(t)))
    k = (r - t / 2) / math.sqrt(2)
    a, b = (cx - k, cy - k), (cx + k, cy + k)
    _thick_line(d, a, b, t + 2 * halo, WHITE, round_caps=False)
    _thick_line(d, a, b, t, RED, round_caps=False)
    # repaint the ring where the slash's halo crossed it
    d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=RED, width=int(round(t)))


def draw_overlay(image: Image.Image, ov: Overlay) -> None:
    """Draw `ov` onto `image` (RGB, in place), with a thin white halo so it reads on any base."""
    S = min(image.width, image.height)
    d = ImageDraw.Draw(image)
    cx, cy = int(round(ov.center[0] * image.width)), int(round(ov.center[1] * image.height))
    t = ov.thickness * S
    halo = max(1.0, 0.008 * S)
    if ov.symbol == "prohibition_sign":
        _draw_prohibition(d, cx, cy, ov.radius * S, t, halo)
    elif ov.symbol == "red_x":
        r = ov.radius * S
        dx, dy = r * math.cos(math.radians(ov.angle)), r * math.sin(math.radians(ov.angle))
        strokes = [((cx - dx, cy - dy), (cx + dx, cy + dy)),
                   ((cx - dx, cy + dy), (cx + dx, cy - dy))]
        for a, b in strokes:
            _thick_line(d, a, b, t + 2 * halo, WHITE)
        for a, b in strokes:
            _thick_line(d, a, b, t, RED)
    elif ov.symbol == "slogan_banner":
        _draw_banner(image, ov, S, cx, cy)
    else:
        raise ValueError(f"unknown negation symbol {ov.symbol!r}")


def _draw_banner(image: Image.Image, ov: Overlay, S: int, cx: int, cy: int) -> None:
    """A red band with the slogan in white and a small prohibition icon, tilted by `angle`."""
    length, height = int(2 * ov.radius * S), int(ov.thickness * S)
    halo = max(1, int(0.008 * S))
    band = Image.new("RGBA", (length + 2 * halo, height + 2 * halo), (0, 0, 0, 0))
    d = ImageDraw.Draw(band)
    d.rectangle((0, 0, band.width - 1, band.height - 1), fill=WHITE + (255,))
    d.rectangle((halo, halo, halo + length - 1, halo + height - 1), fill=RED + (255,))
    icon_r = height * 0.34
    icon_cx, icon_cy = halo + height * 0.55, halo + height / 2
    d.ellipse((icon_cx - icon_r, icon_cy - icon_r, icon_cx + icon_r, icon_cy + icon_r),
              fill=WHITE + (255,))
    _draw_prohibition(d, icon_cx, icon_cy, icon_r * 0.82, icon_r * 0.28, 0)
    text_x0 = icon_cx + icon_r + height * 0.25
    avail = halo + length - height * 0.3 - text_x0
    slogan = clean_text(ov.slogan or DEFAULT_SLOGAN) or DEFAULT_SLOGAN
    frac = 0.55
    while True:
        font = _font(max(6, int(height * frac)))
        if font.getlength(slogan) <= avail or frac < 0.3:
            break
        frac *= 0.92
    lines, _ = wrap_text(slogan, font, avail, 1)
    d.text((text_x0 + avail / 2, halo + height / 2), lines[0] if lines else "", font=font,
           fill=WHITE + (255,), anchor="mm", stroke_width=max(0, font.size // 28),
           stroke_fill=WHITE + (255,))
    rotated = band.rotate(ov.angle, resample=Image.Resampling.BICUBIC, expand=True)
    image.paste(rotated, (cx - rotated.width // 2, cy - rotated.height // 2), rotated)
