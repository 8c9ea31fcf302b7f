"""The negation compositor on any base image, and perceptual-hash near duplicates."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_a_second_run_into_the_same_folder_leaves_no_stale_images(tmp_path):
    """A photo removed since the last run kept its folder of variants in OUT, beside the new
    manifest that no longer listed it; only what the old manifest listed is removed."""
    src, out = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    photo(1).save(src / "a.png")
    photo(2).save(src / "b.png")
    negate_folder(src, out, seed=1)
    mine = out / "b" / "my-notes.txt"  # the user's own file in OUT stays
    mine.write_text("keep")
    (src / "b.png").unlink()
    rows = negate_folder(src, out, seed=1)
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert pngs == sorted(Path(r["path"]).relative_to(out).as_posix() for r in rows)
    assert not list((out / "b").glob("*.png")) and mine.read_text() == "keep"
    (src / "a.png").unlink()
    photo(3).save(src / "c.png")
    negate_folder(src, out, seed=1)
    assert not (out / "a").exists() and (out / "c").is_dir() and not list(out.glob(".*.tmp"))


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


def test_photos_sharing_a_stem_keep_their_own_variants_and_an_empty_folder_is_an_error(tmp_path):
    """x.png and x.jpg both went to out/x/: "8 images written", 4 files on disk, and x.jpg's
    manifest rows pointed at x.png's variants. An empty folder said "0 images written", exit 0."""
    from typer.testing import CliRunner

    from mossforge.cli.main import app

    src = tmp_path / "coll"
    src.mkdir()
    photo(1).save(src / "x.png")
    photo(2).save(src / "x.jpg", quality=95)
    photo(3).save(src / "y.png")
    result = CliRunner().invoke(app, ["negate", str(src), "--out", str(tmp_path / "negc")])
    assert result.exit_code == 0, result.output
    assert "12 images written" in result.output
    rows = [json.loads(line) for line in (tmp_path / "negc" / "manifest.jsonl").read_text().splitlines()]
    assert len({r["path"] for r in rows}) == 12 and all(Path(r["path"]).is_file() for r in rows)
    assert sorted(p.name for p in (tmp_path / "negc").iterdir()) == ["manifest.jsonl", "x.jpg", "x.png", "y"]
    for row in rows:  # every contrast row holds its own source photo
        if row["variant"] == "contrast":
            with Image.open(row["source"]) as source, Image.open(row["path"]) as written:
                assert np.abs(np.asarray(source.convert("RGB"), float) - np.asarray(written, float)).mean() < 3

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a photo")
    result = CliRunner().invoke(app, ["negate", str(empty), "--out", str(tmp_path / "o3")])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and f"{empty} has no images" in output and ".png, .jpg, .jpeg" in output
    assert not (tmp_path / "o3").exists()

    broken = tmp_path / "broken"  # images by name, none readable: it said "0 images written", exit 0
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    result = CliRunner().invoke(app, ["negate", str(broken), "--out", str(tmp_path / "o4")])
    assert result.exit_code == 2 and "none of the 1 images" in " ".join(result.output.split()), result.output
