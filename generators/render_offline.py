"""The offline renderer: typographic "scene cards" drawn with Pillow alone (no model).

This is a real renderer, honestly named `offline-pillow`: it does not pretend to be a diffusion
model. Every image is an *illustration* of the candidate: a simple scene in the colours of its
scene domain, a large central "element plate" that names the trigger element, and a caption strip
with the (wrapped, possibly truncated) image description. Images are flagged synthetic by the
record, and always contain text.

For `negated_harm` the query image is the same card with the negation drawn over the element
plate (a red prohibition sign, a red X, or a red banner with an anti-harm slogan); the element's
name is set on a patch of its own over the sign's and X's strokes, so it stays legible. The
harmful contrast image is the card with no trace of the negation: no overlay, and a caption
describing the scene alone (`negation.contrast_description`).

Determinism: every layout choice comes from one `random.Random` seeded by the candidate id and
its provenance seed; the only font is Pillow's bundled one (`ImageFont.load_default(size=N)`,
basic layout), and the PNG encoding of `mossforge.images` carries no timestamps. The same
candidate and seed therefore give a bit-identical PNG on any machine with the same Pillow build
(Pillow wheels bundle their own FreeType). The base card never uses strong red, so the overlay
can be told apart from it (`red_pixel_share`). The overlay itself is drawn by the negation
compositor (`generators/negation.py`), which draws the same symbols over any base image; here it
is placed over the element plate.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mossforge.generators.negation import (  # noqa: F401 (re-exported: callers and tests import them here)
    CONTRAST_VARIANT,
    DEFAULT_SLOGAN,
    Overlay,
    contrast_description,
    draw_overlay,
    red_pixel_share,
)
from mossforge.generators.text import (  # noqa: F401 (re-exported)
    ELLIPSIS,
    SUPPORTED_CHARS,
    _font,
    _line_height,
    clean_text,
    wrap_text,
)
from mossforge.images import ImageStore
from mossforge.schema import Candidate, ImageRef

RENDERER_NAME = "offline-pillow"
MIN_SIZE, MAX_SIZE = 64, 2048
BANNER_TEXT_SHARE = 0.6  # with a banner, the element's name is set in this upper share of the plate
SCENE_CARD_VARIANT = "scene_card"

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) as fractions of the image size

# --- palettes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Palette:
    name: str
    indoor: bool
    sky_top: Color  # the wall, indoors
    sky_bottom: Color
    ground: Color
    ground_line: Color
    objects: tuple[Color, Color, Color]
    light: Color  # the sun / a lamp / window glass
    accent: Color  # the tag and plate border
    buildings: float = 0.0  # outdoors: the chance that a skyline object is a building, not a tree


# Muted colours only: no colour here (nor a blend of two of them) is strongly red, so any strongly
# red pixel in a rendered image belongs to the negation overlay.
_PALETTES: tuple[Palette, ...] = (
    Palette("park", False, (122, 178, 224), (196, 226, 244), (118, 168, 98), (78, 120, 66),
            ((84, 128, 78), (168, 148, 112), (96, 112, 140)), (246, 222, 140), (52, 92, 60), 0.3),
    Palette("kitchen", True, (236, 226, 202), (224, 212, 184), (176, 148, 116), (120, 98, 76),
            ((116, 148, 168), (198, 178, 138), (92, 108, 128)), (214, 234, 246), (86, 104, 128)),
    Palette("night", False, (34, 44, 82), (74, 84, 124), (58, 60, 72), (36, 38, 48),
            ((88, 98, 138), (120, 130, 160), (66, 76, 110)), (238, 226, 170), (150, 160, 210), 0.9),
    Palette("clinic", True, (226, 236, 240), (206, 222, 230), (168, 184, 190), (110, 128, 136),
            ((90, 140, 160), (150, 170, 182), (62, 92, 112)), (232, 244, 250), (52, 104, 124)),
    Palette("playroom", True, (246, 230, 240), (238, 220, 232), (196, 214, 236), (132, 150, 186),
            ((150, 200, 170), (246, 214, 128), (140, 160, 220)), (226, 240, 252), (120, 96, 160)),
    Palette("desert", False, (246, 204, 146), (238, 178, 120), (212, 174, 124), (156, 120, 84),
            ((150, 112, 82), (104, 94, 124), (200, 160, 110)), (252, 236, 176), (120, 84, 60),
            0.35),
    Palette("forest", False, (150, 196, 196), (204, 226, 214), (84, 128, 82), (52, 86, 54),
            ((46, 94, 62), (124, 102, 74), (98, 148, 90)), (240, 236, 196), (40, 80, 56), 0.0),
    Palette("office", True, (210, 216, 224), (194, 202, 214), (128, 136, 150), (84, 90, 104),
            ((70, 86, 110), (160, 166, 176), (112, 132, 150)), (222, 236, 246), (60, 72, 96)),
    Palette("beach", False, (140, 206, 236), (210, 236, 246), (232, 214, 168), (184, 164, 120),
            ((72, 150, 176), (236, 236, 226), (156, 124, 92)), (252, 240, 170), (40, 110, 140),
            0.25),
    Palette("garage", True, (184, 180, 170), (164, 160, 152), (112, 110, 106), (70, 70, 68),
            ((90, 100, 96), (150, 130, 96), (68, 84, 104)), (226, 232, 200), (70, 76, 80)),
)

PLATE_FILL: Color = (250, 249, 244)
PLATE_TEXT: Color = (28, 30, 40)
CAPTION_FILL: Color = (26, 29, 40)
CAPTION_TEXT: Color = (242, 242, 238)


# Words that pick a fitting palette; a domain with none of them gets one by hash.
_PALETTE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("night", ("night", "city", "street", "urban", "subway", "nightclub", "bar")),
    ("playroom", ("playroom", "nursery", "daycare", "kindergarten", "classroom", "school",
                  "toy", "child", "kid", "bedroom", "party")),
    ("kitchen", ("kitchen", "home", "house", "living", "dining", "bakery", "restaurant", "cafe",
                 "apartment")),
    ("clinic", ("hospital", "clinic", "lab", "laboratory", "pharmacy", "doctor", "dentist",
                "science", "medical")),
    ("office", ("office", "work", "desk", "library", "computer", "bank", "museum", "store",
                "shop", "mall", "airport")),
    ("garage", ("garage", "workshop", "factory", "warehouse", "construction", "farm", "barn",
                "shed")),
    ("forest", ("forest", "camp", "woods", "hiking", "mountain", "jungle", "wild")),
    ("beach", ("beach", "pool", "sea", "lake", "river", "ocean", "harbor", "boat")),
    ("desert", ("desert", "canyon", "ranch", "road", "highway", "sunset")),
    ("park", ("park", "garden", "playground", "zoo", "yard", "stadium", "field", "outdoor")),
)
_PALETTES_BY_NAME = {p.name: p for p in _PALETTES}


def palette_for(scene_domain: str) -> Palette:
    """A palette for the domain: by keyword where one matches, else by hashing the domain, so
    any domain (known or not) gets a stable one."""
    words = "".join(ch if ch.isalnum() else " " for ch in scene_domain.lower()).split()
    for name, keys in _PALETTE_WORDS:
        if any(w.startswith(k) for w in words for k in keys):
            return _PALETTES_BY_NAME[name]
    key = " ".join(scene_domain.lower().split()).encode("utf-8")
    return _PALETTES[int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % len(_PALETTES)]


def _shade(color: Color, factor: float) -> Color:
    """Darker (factor < 1) or lighter (factor > 1, towards white) version of `color`."""
    if factor <= 1:
        return tuple(int(round(c * factor)) for c in color)  # type: ignore[return-value]
    t = min(1.0, factor - 1)
    return tuple(int(round(c + (255 - c) * t)) for c in color)  # type: ignore[return-value]


# --- the plan: every random choice, made before anything is drawn ------------------------------


@dataclass(frozen=True)
class SceneObject:
    kind: str  # "sun", "cloud", "building", "tree", "window", "frame", "table", "shelf", "lamp"
    box: Box
    color: Color


@dataclass(frozen=True)
class Layout:
    """Everything random about one image, in fractions of its size (resolution independent)."""

    seed: int
    palette: Palette
    horizon: float
    objects: tuple[SceneObject, ...]
    plate: Box
    caption: Box
    overlay: Overlay | None


def layout_seed(candidate: Candidate) -> int:
    """The `random.Random` seed of a candidate: its id and provenance seed, hashed."""
    seed = candidate.provenance.seed or 0
    digest = hashlib.sha256(f"{candidate.id}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _plan(candidate: Candidate) -> Layout:
    rng = random.Random(layout_seed(candidate))
    palette = palette_for(candidate.scene_domain)
    caption_top = 0.80
    horizon = rng.uniform(0.56, 0.66)
    objects: list[SceneObject] = []
    obj = palette.objects
    if palette.indoor:
        wx = rng.uniform(0.05, 0.62)
        ww = rng.uniform(0.2, 0.3)
        objects.append(SceneObject("window", (wx, 0.1, wx + ww, 0.1 + rng.uniform(0.22, 0.3)),
                                   palette.light))
        # the picture frame hangs on the side of the wall the window leaves free
        fx = rng.uniform(0.76, 0.84) if wx + ww / 2 < 0.5 else rng.uniform(0.04, 0.12)
        objects.append(SceneObject("frame", (fx, 0.16, fx + 0.12, 0.26), obj[2]))
        tx = rng.uniform(0.02, 0.22)
        tw = rng.uniform(0.22, 0.32)
        objects.append(SceneObject("table", (tx, horizon + 0.02, tx + tw, horizon + 0.12), obj[1]))
        sx = rng.uniform(0.66, 0.8)
        objects.append(SceneObject("shelf", (sx, horizon - rng.uniform(0.28, 0.38), sx + 0.16,
                                             horizon + 0.04), obj[0]))
        lx = rng.uniform(0.4, 0.56)
        objects.append(SceneObject("lamp", (lx, 0.0, lx + 0.08, rng.uniform(0.1, 0.16)),
                                   palette.light))
    else:
        sx = rng.uniform(0.08, 0.86)
        r = rng.uniform(0.045, 0.07)
        objects.append(SceneObject("sun", (sx - r, 0.12 - r, sx + r, 0.12 + r), palette.light))
        for _ in range(rng.randint(1, 3)):
            cx, cy = rng.uniform(0.05, 0.85), rng.uniform(0.1, 0.3)
            objects.append(SceneObject("cloud", (cx, cy, cx + rng.uniform(0.12, 0.2), cy + 0.05),
                                       _shade(palette.sky_bottom, 1.6)))
        x = rng.uniform(-0.05, 0.05)
        while x < 1.0:
            w = rng.uniform(0.1, 0.2)
            h = rng.uniform(0.12, 0.34)
            kind = "building" if rng.random() < palette.buildings else "tree"
            objects.append(SceneObject(kind, (x, horizon - h, x + w, horizon + 0.005),
                                       obj[rng.randrange(3)]))
            x += w + rng.uniform(0.0, 0.08)
    pw = rng.uniform(0.6, 0.7)
    ph = rng.uniform(0.26, 0.3)
    pcx = 0.5 + rng.uniform(-0.04, 0.04)
    pcy = 0.43 + rng.uniform(-0.03, 0.03)
    plate = (pcx - pw / 2, pcy - ph / 2, pcx + pw / 2, pcy + ph / 2)
    caption = (0.0, caption_top, 1.0, 1.0)

    overlay = None
    if candidate.negation is not None:
        symbol = candidate.negation.symbol
        ox = pcx + rng.uniform(-0.035, 0.035)
        oy = pcy + rng.uniform(-0.025, 0.025)
        if symbol == "prohibition_sign":
            thickness = rng.uniform(0.045, 0.058)
            radius = rng.uniform(0.3, 0.36)
            # keep the whole sign (and its white halo) above the caption strip
            radius = min(radius, caption_top - oy - thickness / 2 - 0.02, oy - 0.01)
            overlay = Overlay(symbol, (ox, oy), radius, thickness, 45.0)
        elif symbol == "red_x":
            thickness = rng.uniform(0.045, 0.058)
            radius = rng.uniform(0.34, 0.4)
            angle = rng.uniform(30.0, 42.0)
            max_r = (caption_top - oy - thickness / 2 - 0.02) / math.sin(math.radians(angle))
            overlay = Overlay(symbol, (ox, oy), min(radius, max_r), thickness, angle)
        else:  # slogan_banner: across the lower part of the plate, slightly tilted
            slogan = candidate.negation.slogan or DEFAULT_SLOGAN
            thickness = rng.uniform(0.12, 0.14)
            # the band's upper edge lies at about the plate's text area's lower edge
            oy = plate[1] + ph * BANNER_TEXT_SHARE + thickness / 2 + rng.uniform(0.0, 0.02)
            oy = min(oy, caption_top - thickness / 2 - 0.07)
            overlay = Overlay(symbol, (ox, oy), rng.uniform(0.4, 0.46), thickness,
                              rng.uniform(-7.0, 7.0), slogan)
    return Layout(layout_seed(candidate), palette, horizon, tuple(objects), plate, caption, overlay)


# --- drawing -----------------------------------------------------------------------------------


class _Canvas:
    """A square RGB canvas drawn at `scale` times the output size, then box-downsampled."""

    def __init__(self, size: int, scale: int, top: Color, bottom: Color, horizon: float,
                 ground: Color):
        self.size, self.scale = size, scale
        self.S = size * scale
        rows = np.linspace(0.0, 1.0, max(1, int(self.S * horizon)), dtype=np.float64)[:, None]
        sky = np.asarray(top, np.float64) * (1 - rows) + np.asarray(bottom, np.float64) * rows
        # A one-pixel-wide column of the sky's rows, widened by nearest-neighbour (an exact copy
        # of each pixel), over a ground-filled canvas: the same pixels as filling an S x S x 3
        # array row by row, at a tenth of the cost.
        self.image = Image.new("RGB", (self.S, self.S), tuple(ground))
        column = np.ascontiguousarray(np.round(sky).astype(np.uint8)[:, None, :])
        self.image.paste(Image.fromarray(column, "RGB").resize((self.S, column.shape[0]), Image.Resampling.NEAREST),
                         (0, 0))
        self.draw = ImageDraw.Draw(self.image)

    def px(self, v: float) -> int:
        return int(round(v * self.S))

    def box(self, b: Box) -> tuple[int, int, int, int]:
        return (self.px(b[0]), self.px(b[1]), self.px(b[2]), self.px(b[3]))

    def font(self, frac: float) -> ImageFont.FreeTypeFont:
        return _font(max(6 * self.scale, int(round(frac * self.S))))

    def finish(self) -> Image.Image:
        return self.image.reduce(self.scale) if self.scale > 1 else self.image.copy()


def _draw_scene(c: _Canvas, lay: Layout) -> None:
    d, p = c.draw, lay.palette
    hz = c.px(lay.horizon)
    # ground: perspective stripes (floor boards / a path) towards a vanishing point
    vx = c.px(0.5)
    stripe = _shade(p.ground, 0.9)
    for i in range(-6, 7):
        d.line([(vx + i * c.px(0.02), hz), (vx + i * c.px(0.22), c.S)], fill=stripe,
               width=max(1, c.px(0.004)))
    for obj in lay.objects:
        x0, y0, x1, y1 = c.box(obj.box)
        col = obj.color
        edge = max(1, c.px(0.004))
        if obj.kind == "sun":
            d.ellipse((x0, y0, x1, y1), fill=col)
        elif obj.kind == "cloud":
            w, h = x1 - x0, y1 - y0
            for fx, fy, fr in ((0.25, 0.6, 0.5), (0.5, 0.4, 0.65), (0.75, 0.6, 0.5)):
                cx, cy, r = x0 + fx * w, y0 + fy * h, fr * h
                d.ellipse((cx - r * 1.3, cy - r, cx + r * 1.3, cy + r), fill=col)
        elif obj.kind == "building":
            d.rectangle((x0, y0, x1, y1), fill=col, outline=_shade(col, 0.75), width=edge)
            win = _shade(p.light, 0.95) if p.name == "night" else _shade(col, 1.35)
            cols = max(1, (x1 - x0) // c.px(0.045))
            rows = max(1, (y1 - y0) // c.px(0.06))
            cw, rh = (x1 - x0) / cols, (y1 - y0) / rows
            for i in range(cols):
                for j in range(rows - 1):
                    wx, wy = x0 + i * cw + cw * 0.3, y0 + j * rh + rh * 0.3
                    d.rectangle((wx, wy, wx + cw * 0.4, wy + rh * 0.4), fill=win)
        elif obj.kind == "tree":
            tw = (x1 - x0) * 0.14
            mx = (x0 + x1) / 2
            d.rectangle((mx - tw / 2, (y0 + y1) / 2, mx + tw / 2, y1), fill=_shade(col, 0.6))
            d.ellipse((x0, y0, x1, y0 + (y1 - y0) * 0.7), fill=_shade(col, 0.9))
        elif obj.kind == "window":
            frame = _shade(p.sky_top, 0.7)
            d.rectangle((x0, y0, x1, y1), fill=col, outline=frame, width=c.px(0.012))
            d.line([((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)], fill=frame, width=c.px(0.01))
            d.line([(x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)], fill=frame, width=c.px(0.01))
        elif obj.kind == "frame":
            d.rectangle((x0, y0, x1, y1), fill=_shade(col, 1.4), outline=col, width=c.px(0.01))
            d.polygon([(x0 + (x1 - x0) * 0.15, y1 - (y1 - y0) * 0.2),
                       ((x0 + x1) / 2, y0 + (y1 - y0) * 0.3),
                       (x1 - (x1 - x0) * 0.15, y1 - (y1 - y0) * 0.2)], fill=col)
        elif obj.kind == "table":
            top = y0 + (y1 - y0) * 0.18
            d.rectangle((x0, y0, x1, top), fill=col, outline=_shade(col, 0.7), width=edge)
            leg = max(1, c.px(0.012))
            d.rectangle((x0 + leg, top, x0 + 2 * leg, y1), fill=_shade(col, 0.7))
            d.rectangle((x1 - 2 * leg, top, x1 - leg, y1), fill=_shade(col, 0.7))
        elif obj.kind == "shelf":
            d.rectangle((x0, y0, x1, y1), fill=col, outline=_shade(col, 0.7), width=edge)
            n = 4
            for j in range(1, n):
                y = y0 + (y1 - y0) * j / n
                d.line([(x0, y), (x1, y)], fill=_shade(col, 0.7), width=edge)
                for k in range(3):  # books
                    bx = x0 + (x1 - x0) * (0.12 + 0.25 * k)
                    d.rectangle((bx, y - (y1 - y0) / n * 0.7, bx + (x1 - x0) * 0.12, y),
                                fill=p.objects[(j + k) % 3] if (j + k) % 3 else _shade(col, 1.3))
        elif obj.kind == "lamp":
            mx = (x0 + x1) / 2
            d.line([(mx, 0), (mx, y1 - (y1 - y0) * 0.3)], fill=_shade(p.sky_top, 0.5), width=edge)
            d.pieslice((x0, y1 - (y1 - y0) * 0.6, x1, y1 + (y1 - y0) * 0.4), 180, 360,
                       fill=_shade(p.objects[2], 0.9))
    # the horizon: a skirting board indoors, a ground line outdoors
    d.rectangle((0, hz - c.px(0.004), c.S, hz + c.px(0.006)), fill=p.ground_line)


def _draw_tag(c: _Canvas, xy: tuple[float, float], text: str, fill: Color, color: Color,
              align_right: bool = False) -> None:
    font = c.font(0.028)
    pad = c.px(0.012)
    w = font.getlength(text)
    asc, desc = font.getmetrics()
    x, y = c.px(xy[0]), c.px(xy[1])
    if align_right:
        x -= int(w) + 2 * pad
    c.draw.rounded_rectangle((x, y, x + w + 2 * pad, y + asc + desc + pad), radius=pad,
                             fill=fill)
    c.draw.text((x + pad, y + pad // 2), text, font=font, fill=color)


@dataclass(frozen=True)
class _Label:
    """The element's name on the plate: its lines, font and where each line's centre is (canvas px)."""

    lines: tuple[str, ...]
    font: ImageFont.FreeTypeFont
    centres: tuple[tuple[float, float], ...]
    stroke: int

    def box(self, pad: float = 0.0) -> tuple[float, float, float, float]:
        """The bounding box of the drawn text (canvas px), grown by `pad`."""
        boxes = [self.font.getbbox(line, anchor="mm", stroke_width=self.stroke) for line in self.lines]
        xs = [cx + v for (cx, _), b in zip(self.centres, boxes) for v in (b[0], b[2])]
        ys = [cy + v for (_, cy), b in zip(self.centres, boxes) for v in (b[1], b[3])]
        return (min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad)


def _plate_label(c: _Canvas, lay: Layout, element: str) -> _Label:
    x0, y0, x1, y1 = c.box(lay.plate)
    pad = c.px(0.035)
    inner_w, inner_h = (x1 - x0) - 2 * pad, (y1 - y0) - 2 * pad
    text_cy = (y0 + y1) / 2
    if lay.overlay is not None and lay.overlay.symbol == "slogan_banner":
        # the banner covers the lower part of the plate; the element's name keeps the upper part
        inner_h = (y1 - y0) * BANNER_TEXT_SHARE - pad
        text_cy = y0 + pad + inner_h / 2
    text = clean_text(element) or "?"
    font, lines = None, [text]
    frac = (lay.plate[3] - lay.plate[1]) * 0.4
    while True:
        font = c.font(frac)
        lines, truncated = wrap_text(text, font, inner_w, 3)
        fits = not truncated and _line_height(font) * len(lines) <= inner_h
        if fits or frac <= 0.035:
            break
        frac *= 0.9
    if not fits:  # at the smallest size: as many lines as the height takes, the rest cut off
        max_lines = max(1, int(inner_h // _line_height(font)))
        lines, _ = wrap_text(text, font, inner_w, max_lines)
    lh = _line_height(font)
    cx = (x0 + x1) / 2
    centres = tuple((cx, text_cy + (i - (len(lines) - 1) / 2) * lh) for i in range(len(lines)))
    return _Label(tuple(lines), font, centres, max(0, int(font.size) // 30))


def _draw_label(c: _Canvas, label: _Label, sticker: bool = False) -> None:
    """The element's name; as a `sticker` (on its own plate-coloured patch) over an overlay, so
    that the overlay's strokes never cross it and the name stays legible."""
    if sticker:
        margin = c.px(0.012)
        c.draw.rounded_rectangle(label.box(margin), radius=margin, fill=PLATE_FILL,
                                 outline=PLATE_TEXT, width=max(1, c.px(0.003)))
    for line, xy in zip(label.lines, label.centres):
        c.draw.text(xy, line, font=label.font, fill=PLATE_TEXT, anchor="mm", stroke_width=label.stroke,
                    stroke_fill=PLATE_TEXT)


def _draw_plate(c: _Canvas, lay: Layout, element: str) -> _Label:
    x0, y0, x1, y1 = c.box(lay.plate)
    shadow = c.px(0.012)
    radius = c.px(0.03)
    c.draw.rounded_rectangle((x0 + shadow, y0 + shadow, x1 + shadow, y1 + shadow), radius=radius,
                             fill=_shade(lay.palette.ground_line, 0.55))
    c.draw.rounded_rectangle((x0, y0, x1, y1), radius=radius, fill=PLATE_FILL,
                             outline=lay.palette.accent, width=max(1, c.px(0.008)))
    label = _plate_label(c, lay, element)
    _draw_label(c, label)
    return label


def _draw_caption(c: _Canvas, lay: Layout, description: str) -> None:
    x0, y0, x1, y1 = c.box(lay.caption)
    c.draw.rectangle((x0, y0, x1, y1), fill=CAPTION_FILL)
    c.draw.rectangle((x0, y0, x1, y0 + max(1, c.px(0.006))), fill=lay.palette.accent)
    pad = c.px(0.022)
    font = c.font(0.034)
    lh = _line_height(font)
    max_lines = max(1, int(((y1 - y0) - 2 * pad) // lh))
    lines, _ = wrap_text(clean_text(description), font, (x1 - x0) - 2 * pad, max_lines)
    top = y0 + pad + ((y1 - y0) - 2 * pad - lh * len(lines)) / 2
    for i, line in enumerate(lines):
        c.draw.text((x0 + pad, top + i * lh), line, font=font, fill=CAPTION_TEXT)


def _draw_base(c: _Canvas, lay: Layout, candidate: Candidate) -> _Label:
    """Everything but the caption (which differs between a negated image and its contrast)."""
    _draw_scene(c, lay)
    if c.size >= 192:  # below that the tags would be illegible and collide
        tag_text = clean_text(candidate.scene_domain).upper()[:32] or "SCENE"
        _draw_tag(c, (0.025, 0.025), tag_text, CAPTION_FILL, CAPTION_TEXT)
        _draw_tag(c, (0.975, 0.025), "synthetic illustration", PLATE_FILL, PLATE_TEXT,
                  align_right=True)
    return _draw_plate(c, lay, candidate.trigger_element)


# --- the renderer ------------------------------------------------------------------------------


class OfflineRenderer:
    """Draw a candidate's query image (and, for `negated_harm`, its contrast image) with Pillow."""

    name = RENDERER_NAME

    def __init__(self, size: int = 512):
        if isinstance(size, bool) or not isinstance(size, int):
            raise ValueError(f"size must be an int between {MIN_SIZE} and {MAX_SIZE}, got {size!r}")
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE} px, got {size}")
        self.size = size
        # Drawn at twice the size and downsampled (smooth edges), unless that gets too large.
        self.scale = 2 if size <= 1024 else 1

    def layout(self, candidate: Candidate) -> Layout:
        """The random choices for `candidate` (for tests and for explaining an image)."""
        return _plan(candidate)

    def render_pil(self, candidate: Candidate) -> tuple[Image.Image, Image.Image | None]:
        """(query image, harmful-contrast image or None), without storing them."""
        if candidate.stimulus_type == "negated_harm" and candidate.negation is None:
            # The query image would be the harmful one, with nothing opposing it.
            raise ValueError(f"{candidate.id}: negated_harm candidate has no negation to draw")
        lay = _plan(candidate)
        p = lay.palette
        canvas = _Canvas(self.size, self.scale, p.sky_top, p.sky_bottom, lay.horizon, p.ground)
        label = _draw_base(canvas, lay, candidate)
        main_caption, contrast_caption = self.captions(candidate)
        if lay.overlay is None:
            _draw_caption(canvas, lay, main_caption)
            return canvas.finish(), None
        base = canvas.image.copy()
        # the harmful contrast: the same card with no trace of the negation, caption included
        _draw_caption(canvas, lay, contrast_caption)
        contrast = canvas.finish()
        canvas.image, canvas.draw = base, ImageDraw.Draw(base)
        _draw_caption(canvas, lay, main_caption)
        draw_overlay(canvas.image, lay.overlay)
        if lay.overlay.symbol != "slogan_banner":  # the sign's and X's strokes cross the plate
            _draw_label(canvas, label, sticker=True)
        return canvas.finish(), contrast

    def captions(self, candidate: Candidate) -> tuple[str, str | None]:
        """The caption text of the query image and of the contrast image (None without one)."""
        if candidate.stimulus_type == "negated_harm" and candidate.negation is not None:
            return candidate.image_description, contrast_description(candidate)
        return candidate.image_description, None

    def label_box(self, candidate: Candidate) -> tuple[float, float, float, float]:
        """Where the element's name is drawn, in output pixels (for tests: nothing crosses it)."""
        lay = _plan(candidate)
        canvas = _Canvas(MIN_SIZE, 1, (0, 0, 0), (0, 0, 0), lay.horizon, (0, 0, 0))
        canvas.size, canvas.S = self.size, self.size * self.scale
        box = _plate_label(canvas, lay, candidate.trigger_element).box()
        return tuple(v / self.scale for v in box)  # type: ignore[return-value]

    def render(self, candidate: Candidate,
               store: ImageStore) -> tuple[ImageRef, ImageRef | None]:
        """Render and store; returns (query ImageRef, contrast ImageRef or None).

        `ImageRef.seed` is the candidate's provenance seed (0 when unset); together with the
        candidate id it reproduces the image (see `layout_seed`).
        """
        main, contrast = self.render_pil(candidate)
        seed = candidate.provenance.seed or 0
        variant = (candidate.negation.symbol if candidate.negation is not None
                   else SCENE_CARD_VARIANT)
        main_ref = store.put(main, renderer=RENDERER_NAME, model_id=None, seed=seed,
                             variant=variant)
        contrast_ref = None
        if contrast is not None:
            contrast_ref = store.put(contrast, renderer=RENDERER_NAME, model_id=None, seed=seed,
                                     variant=CONTRAST_VARIANT)
        return main_ref, contrast_ref
