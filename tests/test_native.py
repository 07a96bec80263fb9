"""generator.gen_size=native (aigen.native): the generator on the photo's own grid, the source's JPEG history on
that grid without resampling, DDA's pixel mixup, every pixel fact in the row and in the fingerprint."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import skimage.data
import torch
from omegaconf import open_dict
from PIL import Image, ImageOps

from aigen import identity
from aigen.dataset.record import fingerprint
from aigen.errors import SkipImage, UserError
from aigen.factory import build, make_dataset, make_plan
from aigen.generators.controls import LosslessTwin
from aigen.generators.diffusers_base import DiffusersGenerator
from aigen.native import BlockGrid, ai_half, mix, mixup_ratio, native_grid, native_square, same_side_groups
from aigen.pairing import ORIENTATION_METHOD, JpegSettings, match_jpeg_history, read_jpeg_history
from aigen.preprocess import ImageLoader, to_square
from conftest import assert_one_line_error, compose_config, manifest_rows, run_cli

MAX_SIDE = 320
# (name, upright width, height, EXIF orientation, quality, Pillow subsampling): landscape and portrait, rotated by
# EXIF 6 and 8, no side a multiple of 8, one square above MAX_SIDE.
PHOTOS = (
    ("landscape", 301, 259, 1, 80, 2),
    ("portrait_rot6", 259, 333, 6, 85, 2),
    ("landscape_rot8", 347, 279, 8, 75, 2),
    ("large_rot6", 420, 381, 6, 90, 2),
    ("portrait_444", 263, 300, 1, 70, 0),
)
STORED = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}  # what undoes ImageOps.exif_transpose


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    """JPEG photos (jpeg/) of mixed sizes and orientations, and their upright lossless twins (lossless/)."""
    root = tmp_path_factory.mktemp("native-photos")
    (root / "jpeg").mkdir()
    (root / "lossless").mkdir()
    scene = Image.fromarray(skimage.data.astronaut())
    for index, (name, width, height, orientation, quality, subsampling) in enumerate(PHOTOS):
        upright = scene.crop((index * 13, index * 7, index * 13 + width, index * 7 + height))
        stored = upright.transpose(STORED[orientation]) if orientation in STORED else upright
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored.save(root / "jpeg" / f"{name}.jpg", quality=quality, subsampling=subsampling, exif=exif)
        upright.save(root / "lossless" / f"{name}.png")
    return root


def native_cfg(photos: Path, out: Path, generator: str, *overrides: str):
    cfg = compose_config(
        "source=folder",
        f"source.root={photos / 'jpeg'}",
        f"generator={generator}",
        "generator.gen_size=native",
        f"generator.max_side={MAX_SIDE}",
        "logger=none",
        *overrides,
    )
    with open_dict(cfg):
        cfg.dataset_dir = str(out)
    return cfg


def twin_cfg(photos: Path, out: Path, *overrides: str):
    return native_cfg(photos, out, "lossless_twin", f"generator.twins={photos / 'lossless'}", *overrides)


def decoded(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.float64)


def halves(out: Path, row: dict) -> tuple[np.ndarray, np.ndarray]:
    return decoded(out / row["original"]), decoded(out / row["ai"])


# ------------------------------------------------------------------------------------- the geometry, pure


@pytest.mark.parametrize(
    ("size", "multiple", "max_side", "box", "work_side"),
    [
        ((301, 259), 8, 1024, (22, 1, 278, 257), 256),  # centred, cropped to the multiple, never resized
        ((259, 333), 8, 1024, (1, 38, 257, 294), 256),
        ((256, 256), 8, 1024, (0, 0, 256, 256), 256),
        ((300, 270), 16, 1024, (22, 7, 278, 263), 256),  # FLUX-family: 16
        ((420, 381), 8, 320, (22, 2, 398, 378), 320),  # above max_side: resized once
        ((1100, 1030), 8, 1024, (38, 3, 1062, 1027), 1024),  # the crop alone fits: no resize
        ((1200, 1200), 16, 1000, (0, 0, 1200, 1200), 992),  # max_side down to the multiple
    ],
)
def test_native_grid_crops_to_the_multiple_and_resizes_only_above_max_side(size, multiple, max_side, box, work_side):
    grid = native_grid(size, multiple, max_side, blocks=None)
    assert (grid.box, grid.work_side, grid.on_blocks) == (box, work_side, False)
    assert grid.resized == (work_side != box[2] - box[0])
    assert grid.cut(Image.new("RGB", size)).size == (work_side, work_side)


def stored_grid_marks(upright_size: tuple[int, int], orientation: int) -> Image.Image:
    """An upright photo (turned by Pillow from its EXIF orientation) whose pixels are white where its stored frame
    has a 16 x 16 block's first pixel."""
    stored_width, stored_height = upright_size[::-1] if orientation >= 5 else upright_size  # 5-8 swap the axes
    marks = np.zeros((stored_height, stored_width), np.uint8)
    marks[::16, ::16] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(marks).save(buffer, format="PNG", exif=exif)
    upright = ImageOps.exif_transpose(Image.open(buffer))
    assert upright.size == upright_size
    return upright


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("upright_size", [(301, 259), (259, 333), (347, 270), (263, 300)])
def test_on_a_jpeg_the_cut_starts_and_ends_on_the_sources_block_grid(orientation, upright_size):
    """Independent of the code's own corner arithmetic: the cut's first stored pixel is a block's first pixel (one
    corner of the upright cut is marked), and its side is whole blocks (no other corner is)."""
    method = ORIENTATION_METHOD.get(orientation)
    grid = native_grid(upright_size, 8, 1024, BlockGrid(method))
    side = min(upright_size)
    assert grid.on_blocks and grid.crop == side - side % 16 and not grid.resized
    centred = ((upright_size[0] - grid.crop) // 2, (upright_size[1] - grid.crop) // 2)
    assert abs(grid.left - centred[0]) < 16 and abs(grid.top - centred[1]) < 16
    cut = np.asarray(grid.cut(stored_grid_marks(upright_size, orientation)))
    assert sorted(int(cut[y, x]) for y in (0, -1) for x in (0, -1)) == [0, 0, 0, 255]


def test_the_cut_is_a_crop_of_the_same_pixels(photos):
    path = photos / "jpeg" / "portrait_rot6.jpg"
    photo = ImageLoader(min_side=1, draft=False)(path)
    native = native_square(photo, path, 8, MAX_SIDE, 64, reads_history=True)
    left, top, side = native.facts["crop_left"], native.facts["crop_top"], native.facts["crop_side"]
    assert native.image.tobytes() == photo.image.crop((left, top, left + side, top + side)).tobytes()
    assert native.history.phase == (0, 0) and native.facts["jpeg_history"] == "matched"


def test_a_photo_that_is_not_a_jpeg_is_cut_centred(photos, tmp_path):
    Image.open(photos / "lossless" / "landscape.png").save(tmp_path / "photo.png")
    photo = ImageLoader(min_side=1, draft=False)(tmp_path / "photo.png")
    native = native_square(photo, tmp_path / "photo.png", 8, MAX_SIDE, 64, reads_history=True)
    assert native.facts["on_source_blocks"] is False and native.facts["jpeg_history"] == "unavailable"
    assert (native.facts["crop_left"], native.facts["crop_top"], native.facts["crop_side"]) == (22, 1, 256)


def test_a_native_square_below_size_is_a_recorded_skip(photos):
    photo = ImageLoader(min_side=1, draft=False)(photos / "jpeg" / "landscape.jpg")  # side 259
    with pytest.raises(SkipImage, match="native square .256 px. is below size=264"):
        native_square(photo, photos / "jpeg" / "landscape.jpg", 8, MAX_SIDE, 264, reads_history=False)


def test_same_side_groups_keep_the_input_order():
    images = [Image.new("RGB", (side, side)) for side in (64, 72, 64, 80, 72)]
    assert same_side_groups(images) == [[0, 2], [1, 4], [3]]


def test_the_ai_side_is_the_generated_images_own():
    generated = Image.new("RGB", (40, 40))
    assert ai_half(generated, None, 0, 0, {"original_side": 48}) == (generated, {"original_side": 48, "ai_side": 40})
    assert ai_half(generated, None, 0, 0, {}) == (generated, {})  # a fixed gen_size: rows as before


def test_the_side_multiple_comes_from_the_model():
    autoencoder = SimpleNamespace(config=SimpleNamespace(block_out_channels=(128, 256, 512, 512)))
    assert DiffusersGenerator.side_multiple(SimpleNamespace(vae=autoencoder), autoencoder) == 8  # SD-family
    flux = SimpleNamespace(vae=autoencoder, transformer=object())  # packed 2x2 latents
    assert DiffusersGenerator.side_multiple(flux, autoencoder) == 16


# ----------------------------------------------------------------- the must-show run: vae_tiny at native


@pytest.fixture(scope="session")
def vae_native(photos, tmp_path_factory) -> Path:
    """The issue's command on the photos, as a user types it (a smaller max_side so one square is resized)."""
    out = tmp_path_factory.mktemp("vae-native") / "out"
    result = run_cli(
        "generator=vae_tiny",
        "generator.gen_size=native",
        "pairing.jpeg_history=matched",
        "source=folder",
        f"source.root={photos / 'jpeg'}",
        "logger=none",
        f"dataset_dir={out}",
        f"generator.max_side={MAX_SIDE}",
    )
    assert result.returncode == 0, result.stderr
    return out


def test_each_pair_records_equal_sides_before_the_shared_resize(vae_native, photos):
    rows = {row["id"]: row for row in manifest_rows(vae_native)}
    assert set(rows) == {name for name, *_ in PHOTOS}
    for name, width, height, _orientation, *_ in PHOTOS:
        row = rows[name]
        side = min(width, height)
        assert row["gen_size"] == "native" and row["max_side"] == MAX_SIDE and row["size"] == 256
        resized = side > MAX_SIDE
        assert row["native_side"] == side and row["resized"] == resized
        assert row["crop_side"] == side - side % (8 if resized else 16)  # on the source's 16-px blocks unless resized
        centred = ((width - row["crop_side"]) // 2, (height - row["crop_side"]) // 2)  # upright, full resolution
        assert abs(row["crop_left"] - centred[0]) < 16 and abs(row["crop_top"] - centred[1]) < 16
        box = (
            row["crop_left"],
            row["crop_top"],
            row["crop_left"] + row["crop_side"],
            row["crop_top"] + row["crop_side"],
        )
        assert row["on_source_blocks"] == (not resized)
        assert (read_jpeg_history(photos / "jpeg" / f"{name}.jpg", box).phase == (0, 0)) == (not resized)
        assert row["original_side"] == row["ai_side"] == (MAX_SIDE if side > MAX_SIDE else row["crop_side"])
        assert row["jpeg_history"] == ("matched_resampled" if side > MAX_SIDE else "matched")
        for half in halves(vae_native, row):
            assert half.shape == (256, 256, 3)


def test_the_original_half_is_the_recorded_crop_through_the_shared_resize(vae_native, photos):
    for row in manifest_rows(vae_native):
        photo = ImageLoader(min_side=1, draft=False)(photos / "jpeg" / row["source"]).image
        left, top, side = row["crop_left"], row["crop_top"], row["crop_side"]
        square = photo.crop((left, top, left + side, top + side))
        if row["resized"]:
            square = to_square(square, row["original_side"])
        expected = JpegSettings(95, "4:2:0").encode(to_square(square, 256))
        assert (vae_native / row["original"]).read_bytes() == expected


def test_the_audit_runs_on_a_native_vae_dataset(vae_native, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aigen.audit", str(vae_native), "--out", str(tmp_path / "audit")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert report["pairs"] == len(PHOTOS)


# --------------------------------------------------- matched history on the grid: the lossless control


def test_the_matched_history_at_native_gives_the_lossless_twin_the_sources_pixels(photos):
    """The twin (the JPEG's pixels before compression) compressed on the source's own grid IS the decoded source,
    but for chroma upsampling at the cut's edge (the decoder saw the neighbouring pixels); the clean twin is not."""
    twin = LosslessTwin(str(photos / "lossless"), str(photos / "jpeg"), gen_size="native", max_side=MAX_SIDE)
    twin.load()
    for name, width, height, *_ in PHOTOS:
        path = photos / "jpeg" / f"{name}.jpg"
        native = native_square(ImageLoader(min_side=1)(path), path, 8, MAX_SIDE, 64, reads_history=True)
        clean = twin.prepare(native.image)
        matched = np.asarray(match_jpeg_history(clean, native.history), np.float64)
        original = np.asarray(native.image, np.float64)
        inner = (slice(16, -16), slice(16, -16))
        if min(width, height) > MAX_SIDE:  # resized: the source's grid is gone, and the row says so
            assert native.facts["jpeg_history"] == "matched_resampled"
            continue
        difference = np.abs(matched - original)
        assert difference[inner].max() == 0
        assert difference.mean() < 0.05 < 1.5 < np.abs(np.asarray(clean, np.float64) - original).mean()


@pytest.mark.parametrize("history", ["matched", "none"])
def test_lossless_twin_at_native_matched_makes_the_ai_half_nearly_the_original(photos, tmp_path, history):
    out = make_dataset(twin_cfg(photos, tmp_path / history, f"pairing.jpeg_history={history}")).dataset_dir
    for row in manifest_rows(out):
        if row["resized"]:
            continue
        original, ai = halves(out, row)
        difference = np.abs(original - ai).mean()
        assert difference < 0.7 if history == "matched" else difference > 1.2, (row["id"], difference)


def test_identity_at_native_makes_both_halves_the_same_bytes(photos, tmp_path):
    out = make_dataset(native_cfg(photos, tmp_path / "o", "identity", "size=64")).dataset_dir
    rows = manifest_rows(out)
    assert len(rows) == len(PHOTOS) and all(row["gen_size"] == "native" for row in rows)
    for row in rows:
        assert (out / row["original"]).read_bytes() == (out / row["ai"]).read_bytes()


# ---------------------------------------------------------------------------------------------- mixup


def test_mix_is_the_weighted_sum():
    real, generated = Image.new("RGB", (8, 8), (200, 100, 0)), Image.new("RGB", (8, 8), (0, 100, 255))
    assert mix(real, generated, 0.25).getpixel((3, 3)) == (50, 100, 191)
    with pytest.raises(SkipImage, match="16x16 and the original on its grid 8x8; pairing.mixup needs both"):
        mix(real, Image.new("RGB", (16, 16)), 0.5)


def test_mixup_r_is_recorded_reproducible_and_mixes_the_halves(photos, tmp_path):
    overrides = ("pairing.mixup=0.6", "size=64")
    out = make_dataset(twin_cfg(photos, tmp_path / "a", *overrides)).dataset_dir
    again = make_dataset(twin_cfg(photos, tmp_path / "b", *overrides)).dataset_dir
    rows, rerun = manifest_rows(out), {row["id"]: row for row in manifest_rows(again)}
    twin = LosslessTwin(str(photos / "lossless"), str(photos / "jpeg"), gen_size="native", max_side=MAX_SIDE)
    twin.load()
    ratios = []
    for row in rows:
        ratio = row["mixup_r"]
        ratios.append(ratio)
        assert 0 <= ratio <= 0.6 and ratio == mixup_ratio(row["seed"], 0.6) == rerun[row["id"]]["mixup_r"]
        assert (out / row["ai"]).read_bytes() == (again / rerun[row["id"]]["ai"]).read_bytes()
        path = photos / "jpeg" / row["source"]
        native = native_square(ImageLoader(min_side=1)(path), path, 8, MAX_SIDE, 64, reads_history=False)
        mixed = mix(native.image, twin.prepare(native.image), ratio)
        assert (out / row["ai"]).read_bytes() == JpegSettings(95, "4:2:0").encode(to_square(mixed, 64))
    assert len(set(ratios)) == len(rows)


def test_mixup_at_a_fixed_gen_size_mixes_on_the_symmetric_grid(photos, tmp_path):
    """Without native, the original at gen_size (the symmetric path) is the grid the generated image is on."""
    cfg = twin_cfg(photos, tmp_path / "o", "generator.gen_size=128", "size=64", "pairing.mixup=1")
    rows = manifest_rows(make_dataset(cfg).dataset_dir)
    assert len(rows) == len(PHOTOS) and all(0 <= row["mixup_r"] <= 1 and "seed" in row for row in rows)
    assert "native_side" not in rows[0]


# ------------------------------------------------------------------------- fingerprint and dir name


def content(*overrides: str, generator: str = "vae_tiny") -> tuple[str, str]:
    cfg = compose_config("source=samples", "logger=none", f"generator={generator}", *overrides)
    source, built = build(cfg.source), build(cfg.generator)
    return fingerprint(identity.content_config(cfg, source, built)), identity.dataset_dir(cfg, source, built).name


def test_existing_fingerprints_and_dir_names_are_unchanged():
    """Computed on main before native resolution and mixup existed."""
    assert content() == ("3dc227f362515c5d", "samples-vae_tiny-256-vae-tiny-random-sample-s0")
    assert content(generator="identity") == ("240b682d8b7d3f71", "samples-identity-256-gen512")
    assert content("generator.max_side=512", "pairing.mixup=0", "workers=1", "batch_size=2")[0] == "3dc227f362515c5d"


@pytest.mark.parametrize("generator", ["vae_tiny", "identity"])
def test_every_pixel_setting_changes_the_fingerprint_and_the_dir(generator):
    native = ("generator.gen_size=native",)
    settings = [
        (),
        native,
        (*native, "generator.max_side=512"),
        (*native, "pairing.jpeg_history=matched"),
        (*native, "pairing.mixup=0.5"),
        (*native, "pairing.mixup=0.25"),
        ("pairing.mixup=0.5",),
    ]
    fingerprints = [content(*overrides, generator=generator)[0] for overrides in settings]
    assert len(set(fingerprints)) == len(settings)
    assert content(*native, generator=generator)[1].endswith("native1024" + ("-s0" if generator == "vae_tiny" else ""))
    assert "-mix0.5" in content(*native, "pairing.mixup=0.5", generator=generator)[1]
    assert content(*native, "pairing.mixup=0.5", "seed=1", generator=generator)[0] != fingerprints[4]  # r's seed


def test_batch_size_auto_sizes_native_batches_for_max_side():
    native = build(compose_config("generator=vae", "generator.gen_size=native", "generator.max_side=1024").generator)
    fixed = build(compose_config("generator=vae", "generator.gen_size=1024").generator)
    assert native.memory_estimate(torch.float32) == fixed.memory_estimate(torch.float32)
    assert (
        native.memory_estimate(torch.float32)[1]
        > build(compose_config("generator=vae").generator).memory_estimate(torch.float32)[1]
    )


# -------------------------------------------------------------- img2img and inpaint: sides grouped per call


@pytest.mark.parametrize(("generator", "multiple"), [("img2img_tiny", 8), ("inpaint_tiny", 8), ("flux_fill_tiny", 16)])
def test_pixel_pipelines_at_native_run_once_per_side_of_a_batch(photos, tmp_path, generator, multiple):
    """img2img and inpaint (and the pipelines built on them: FLUX's packed latents need sides of 16)."""
    cfg = native_cfg(photos, tmp_path / "o", generator, "batch_size=5", "size=64")
    model = build(cfg.generator)
    calls: list[list[int]] = []
    run = model.run

    def recorded(inputs, generators):
        calls.append([image.width for image in inputs])
        return run(inputs, generators)

    model.run = recorded
    rows = manifest_rows(make_dataset(cfg, generator=model).dataset_dir)
    sides = sorted(row["ai_side"] for row in rows)
    assert len(rows) == len(PHOTOS) and sorted(side for call in calls for side in call) == sides
    assert len(calls) == len(set(sides)) > 2 and all(len(set(call)) == 1 for call in calls)  # one call per side
    for row in rows:
        assert row["ai_side"] == row["original_side"] and row["crop_side"] % multiple == 0


def test_a_batch_of_mixed_sides_gives_each_image_what_it_gets_alone():
    cfg = compose_config("generator=vae_tiny", "generator.gen_size=native", "generator.latent=mode")
    vae = build(cfg.generator)
    vae.load()
    scene = Image.fromarray(skimage.data.astronaut())
    inputs = [scene.crop((0, 0, side, side)) for side in (64, 80, 64, 96)]
    together = vae.generate(inputs, [0, 1, 2, 3])
    for given, result in zip(inputs, together, strict=True):
        alone = vae.generate([given], [0])[0]
        assert result.image.size == given.size
        assert np.abs(np.asarray(result.image, int) - np.asarray(alone.image, int)).max() <= 1


def test_vae_tiling_at_native_is_recorded_per_image():
    """diffusers tiles only above the autoencoder's sample size: the row says which images were tiled."""
    vae = build(
        compose_config("generator=vae_tiny", "generator.gen_size=native", "generator.vae_tiling=true").generator
    )
    vae.load()
    limit = vae.autoencoder(vae._pipe).tile_sample_min_size
    inputs = [Image.new("RGB", (side, side), (90, 120, 30)) for side in (limit, limit + 16)]
    assert [result.info["vae_tiled"] for result in vae.generate(inputs, [0, 1])] == [False, True]


# ------------------------------------------------------------------------------------------ bad values


def test_a_bad_native_setting_is_one_line_on_the_command_line(tmp_path):
    out = tmp_path / "o"
    result = run_cli(
        "generator=vae_tiny", "generator.gen_size=nativ", "source=samples", "logger=none", f"dataset_dir={out}"
    )
    assert_one_line_error(result, "generator.gen_size='nativ' must be a positive multiple of 8 or native")
    assert not out.exists()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (("generator=vae_tiny", "generator.max_side=0"), "generator.max_side=0 must be a whole number, at least 8"),
        (("generator=identity", "pairing.mixup=2"), "pairing.mixup=2 must be between 0 and 1"),
        (("generator=identity", "pairing.mixup=-0.1"), "pairing.mixup=-0.1 must be between 0 and 1"),
        (("generator=sd_tiny", "generator.gen_size=native"), "sd_tiny does not regenerate the photo in place"),
        (("generator=vae_tiny", "generator.gen_size=native", "pairing.geometry=direct"), "pairing.geometry=direct"),
        (("generator=vae_tiny", "generator.gen_size=native", "generator.max_side=128"), "below size=256"),
        (("generator=identity", "pairing.geometry=direct", "pairing.mixup=0.5"), "needs both halves on one grid"),
        (("generator=vae_tiny", "generator.gen_size=native", "generator.input_side=64"), "input_side must be null"),
        (("generator=native_twin", "generator.twins=x", "generator.gen_size=native"), "native_twin renders"),
    ],
)
def test_a_native_setting_that_cannot_work_is_refused_before_any_work(overrides, fragment, tmp_path):
    cfg = compose_config("source=samples", "logger=none", f"dataset_dir={tmp_path / 'o'}", *overrides)
    with pytest.raises(UserError, match=re.escape(fragment)) as error:
        make_plan(cfg)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "o").exists()


def test_jpeg_bytes_of_a_source_can_be_read_back(photos):
    """The fixture's rotated JPEGs are stored rotated with their EXIF orientation (what the loader undoes)."""
    with Image.open(photos / "jpeg" / "portrait_rot6.jpg") as image:
        assert image.getexif()[0x0112] == 6 and image.size == (333, 259)
    assert Image.open(io.BytesIO((photos / "lossless" / "portrait_rot6.png").read_bytes())).size == (259, 333)
