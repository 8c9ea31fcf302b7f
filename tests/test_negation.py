"""The negation compositor on any base image, and perceptual-hash near duplicates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mossforge.filters.image_dedup import near_duplicates, perceptual_hash
from mossforge.generators.diffusion import is_blank
from mossforge.generators.negation import SYMBOLS, compose, negate_folder, overlay_variants, red_pixel_share


def photo(seed: int = 0, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A photo-like base without strong red: smooth gradients plus noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    x, y = np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h))
    base = np.stack([60 + 80 * x, 90 + 100 * y, 120 + 60 * (1 - x)], axis=-1)
    base += rng.normal(0, 12, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_each_overlay_is_really_drawn_on_any_base(symbol):
    base = photo()
    before = np.asarray(base).copy()
    negated, overlay = compose(base, symbol, slogan="#FireSafety", seed=3, key="item")
    assert np.array_equal(np.asarray(base), before)  # the base (the contrast) is untouched
    assert negated.size == base.size and red_pixel_share(base) == 0.0
    assert red_pixel_share(negated) > 0.04
    changed = (np.asarray(negated) != before).any(axis=-1)
    assert 0.05 < changed.mean() < 0.6  # an overlay, not a new image
    again, _ = compose(base, symbol, slogan="#FireSafety", seed=3, key="item")
    assert np.array_equal(np.asarray(again), np.asarray(negated))


def test_placement_and_size_vary_with_the_seed_and_stay_in_frame():
    overlays = [compose(photo(), s, seed=seed, key="k")[1] for s in SYMBOLS for seed in range(20)]
    for symbol in SYMBOLS:
        mine = [o for o in overlays if o.symbol == symbol]
        assert len({o.center for o in mine}) == 20 and len({o.radius for o in mine}) == 20
    for o in overlays:
        if o.symbol == "prohibition_sign":
            assert o.radius + o.thickness / 2 <= min(o.center[0], o.center[1], 1 - o.center[0], 1 - o.center[1])


def test_variants_keep_the_unnegated_contrast_and_differ():
    base = photo(1, (200, 300))
    variants = overlay_variants(base, slogan="#StopPoaching", seed=0, key="x")
    assert set(variants) == {*SYMBOLS, "contrast"}
    assert np.array_equal(np.asarray(variants["contrast"]), np.asarray(base))
    arrays = [np.asarray(variants[s]) for s in SYMBOLS]
    assert not np.array_equal(arrays[0], arrays[1]) and not np.array_equal(arrays[1], arrays[2])


def test_a_folder_of_photos(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    photo(1).save(src / "a.jpg", quality=95)
    photo(2, (1600, 900)).save(src / "b.png")
    (src / "broken.png").write_bytes(b"not an image")
    (src / "notes.txt").write_text("ignored")
    rows = negate_folder(src, tmp_path / "out", slogan="#NoDrunkDriving", seed=1, max_side=800)
    written = [r for r in rows if "path" in r]
    assert len(written) == 8 and [r for r in rows if "error" in r][0]["source"].endswith("broken.png")
    for r in written:
        image = Image.open(r["path"])
        assert max(image.size) <= 800
        assert (red_pixel_share(image) > 0.02) == (r["variant"] != "contrast")
    manifest = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert manifest == json.loads(json.dumps(rows))


def blocks(seed: int) -> Image.Image:
    """A structured image (a coarse random mosaic, plus fine noise) for hashing."""
    rng = np.random.default_rng(seed)
    mosaic = Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8), "RGB")
    big = np.asarray(mosaic.resize((240, 240), Image.Resampling.NEAREST)).astype(float)
    return Image.fromarray(np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8))


def test_perceptual_hash_finds_near_duplicates_not_different_images():
    a = blocks(1)
    noisier = Image.fromarray(np.clip(np.asarray(a) + np.random.default_rng(9).normal(0, 6, (240, 240, 3)),
                                      0, 255).astype(np.uint8))
    hashes = [perceptual_hash(a), perceptual_hash(a.resize((120, 120))), perceptual_hash(blocks(2)),
              None, perceptual_hash(noisier), perceptual_hash(blocks(3))]
    matches = near_duplicates(hashes, 4)
    assert matches[0] is None and matches[1][0] == 0 and matches[4][0] == 0
    assert matches[2] is None and matches[3] is None and matches[5] is None
    exact = near_duplicates([hashes[0], hashes[0], hashes[2]], 0)
    assert exact == [None, (0, 0), None]


def test_blank_means_flat_in_every_channel():
    flat = np.zeros((8, 8, 3), np.uint8) + np.array([40, 160, 90], np.uint8)
    assert is_blank(flat, 2.0)
    assert not is_blank(np.asarray(photo()), 2.0)


def test_cli_negate(tmp_path):
    from typer.testing import CliRunner

    from mossforge.cli.main import app

    (tmp_path / "in").mkdir()
    photo(4).save(tmp_path / "in" / "scene.png")
    result = CliRunner().invoke(app, ["negate", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--slogan", "#FireSafety"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out" / "scene").iterdir()) == [
        "contrast.png", "prohibition_sign.png", "red_x.png", "slogan_banner.png"]
    missing = CliRunner().invoke(app, ["negate", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")])
    assert missing.exit_code == 2 and "not a folder" in missing.output
