"""Dirty photo folders: every usable photo is done, every unusable one is recorded with its reason."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from aigen.audit.cli import main as audit_main
from aigen.dataset import read_rows
from aigen.errors import SkipImage, UserError
from aigen.factory import make_dataset
from aigen.files import claim_output
from aigen.preprocess import ImageLoader
from aigen.report.cli import main as report_main
from aigen.sources import MAX_ID_BYTES, FolderSource
from conftest import manifest_rows, run_cli

RED, BLUE = (255, 0, 0), (0, 0, 255)


def photo(width: int = 96, height: int = 128) -> Image.Image:
    return Image.fromarray(skimage.data.astronaut()).resize((width, height))


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def red_left_blue_right() -> Image.Image:
    image = Image.new("RGB", (128, 96), BLUE)
    image.paste(Image.new("RGB", (64, 96), RED), (0, 0))
    return image


def build_dirty_folder(root: Path) -> tuple[set[str], dict[str, str]]:
    """Returns (sources expected to be done, {source expected to fail: reason fragment})."""
    root.mkdir()
    good: set[str] = set()
    bad: dict[str, str] = {}

    def add_good(name: str, data: bytes) -> None:
        (root / name).write_bytes(data)
        good.add(name)

    def add_bad(name: str, data: bytes, reason: str) -> None:
        (root / name).write_bytes(data)
        bad[name] = reason

    add_good("plain.jpg", jpeg_bytes(photo()))
    buffer = io.BytesIO()
    photo().save(buffer, format="PNG")
    add_good("png_named.jpg", buffer.getvalue())
    add_good("cmyk.jpg", jpeg_bytes(photo().convert("CMYK")))
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(photo().convert("L"), dtype=np.uint16) * 257).save(buffer, format="PNG")
    add_good("sixteen_bit.png", buffer.getvalue())
    buffer = io.BytesIO()
    palette = photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(buffer, format="PNG", transparency=0)
    add_good("palette_transparent.png", buffer.getvalue())
    buffer = io.BytesIO()
    photo().convert("LA").save(buffer, format="PNG")
    add_good("gray_alpha.png", buffer.getvalue())
    buffer = io.BytesIO()
    frames = [photo(), photo().rotate(90)]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    (root / "animated.gif.png").write_bytes(buffer.getvalue())  # a GIF under a PNG name: read by content
    good.add("animated.gif.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    add_good("exif_rotated.jpg", jpeg_bytes(red_left_blue_right(), exif=exif.tobytes()))
    (root / os.fsdecode(b"caf\xe9.jpg")).write_bytes(jpeg_bytes(photo()))
    good.add("caf\\xe9.jpg")  # as the manifest names it: valid UTF-8

    add_bad("zero_bytes.jpg", b"", "not a readable image")
    add_bad("truncated.jpg", jpeg_bytes(photo(400, 400))[:3000], "not a readable image")
    add_bad("text.jpg", b"this is not an image\n" * 10, "not a readable image")
    buffer = io.BytesIO()
    Image.new("1", (3000, 3000)).save(buffer, format="PNG")
    add_bad("bomb.png", buffer.getvalue(), "max_pixels")
    add_bad("tiny.jpg", jpeg_bytes(photo(32, 32)), "min_side")
    add_bad("panorama.jpg", jpeg_bytes(photo(400, 80)), "max_aspect")
    os.symlink(root / "does-not-exist.jpg", root / "broken_link.jpg")
    bad["broken_link.jpg"] = "broken symlink"
    (root / "sub").mkdir()
    os.symlink(root, root / "sub" / "loop")  # a directory symlink loop: must not hang
    (root / "._plain.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # ignored, not a photo
    return good, bad


@pytest.fixture
def dirty_folder(tmp_path):
    return tmp_path / "dirty", *build_dirty_folder(tmp_path / "dirty")


def test_every_bad_case_is_recorded_and_every_good_photo_done(dirty_folder, tmp_path):
    root, good, bad = dirty_folder
    out = tmp_path / "out"
    result = run_cli(
        "source=folder", f"source.root={root}", "generator=sd_tiny", "size=64", "logger=none",
        "loader.max_pixels=4000000", f"dataset_dir={out}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ignored 1 macOS resource fork (._*) (e.g. ._plain.jpg)" in result.stdout
    done = {row["source"] for row in manifest_rows(out)}
    assert done == good
    failures = read_rows(out, "failures")
    by_source = {row["source"]: row for row in failures.values()}
    assert set(by_source) == set(bad)
    for source, fragment in bad.items():
        assert fragment in by_source[source]["reason"], (source, by_source[source])
        assert str(root) not in by_source[source]["reason"]  # reasons group in dataset.json's top reasons
        assert by_source[source]["stage"] in ("read", "decode", "check")
    counts = json.loads((out / "dataset.json").read_text())["counts"]
    assert (counts["pairs"], counts["failed"]) == (len(good), len(bad))
    assert f"{len(bad)} failed" in result.stdout


def test_hidden_files_and_folders_are_ignored_and_counted(tmp_path):
    (tmp_path / ".thumbs").mkdir()
    for name in ("plain.jpg", ".hidden.jpg", ".thumbs/plain.jpg"):
        (tmp_path / name).write_bytes(jpeg_bytes(photo()))
    source = FolderSource(str(tmp_path))
    assert [item.id for item in source.items()] == ["plain"]
    assert source.ignored_line() == "ignored 2 hidden files and folders (.*) (e.g. .thumbs/, .hidden.jpg)"


def test_a_dataset_dir_inside_the_photo_folder_is_not_read_back(tiny_cfg, tmp_path):
    """data_dir=/x source.root=/x: the second run must not take the first run's pairs for photos."""
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(jpeg_bytes(photo()))
    cheap = ("source=folder", f"source.root={tmp_path}", "generator=identity", "size=64")
    first = make_dataset(tiny_cfg(*cheap, dataset_dir=tmp_path / "processed" / "pairs"))
    again = make_dataset(tiny_cfg(*cheap, dataset_dir=tmp_path / "processed" / "pairs"))
    assert (first.selected, again.selected, again.generated) == (2, 2, 0)
    source = FolderSource(str(tmp_path))
    source.items()
    assert source.ignored_line() == "ignored 1 aigen dataset dir (dataset.json) (e.g. processed/pairs/)"


def test_what_aigen_and_hydra_wrote_inside_the_photo_folder_is_not_read_back(tiny_cfg, tmp_path):
    """A report with --copy (both halves of every pair), an audit's plot and a run's preview.png, written inside the
    photo folder (the tools run from there): the next run reads the two photos only."""
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(jpeg_bytes(photo()))
    cheap = ("source=folder", f"source.root={tmp_path}", "generator=identity", "size=64")
    pairs = make_dataset(tiny_cfg(*cheap, dataset_dir=tmp_path / "processed" / "pairs")).dataset_dir
    assert report_main([str(pairs), "--out", str(tmp_path / "site"), "--copy"]) == 0
    assert audit_main([str(pairs), "--out", str(tmp_path / "audit")]) == 0
    run_dir = tmp_path / "outputs" / "2026-12-01" / "10-00-00"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "preview.png").write_bytes(jpeg_bytes(photo()))
    claim_output(tmp_path / "processed", "a detector given a folder that holds something already")
    assert not (tmp_path / "processed" / ".aigen-output").exists()  # never hidden by a tool's mark
    source = FolderSource(str(tmp_path))
    assert [item.id for item in source.items()] == ["a", "b"]
    assert "ignored 3 aigen and Hydra output folders (e.g. audit/, outputs/2026-12-01/10-00-00/, site/)" in (
        source.ignored_line()
    )
    for made_by_aigen in (pairs, tmp_path / "audit", run_dir):  # given as the root itself: one line, not photos
        with pytest.raises(UserError, match=r"is an aigen .*, not photos; point source.root at the photos"):
            FolderSource(str(made_by_aigen)).items()
    with pytest.raises(UserError, match="holds the AI images of an aigen dataset dir, not photos"):
        FolderSource(str(pairs / "ai")).items()


def test_a_photo_collection_that_ships_its_own_dataset_json_keeps_its_photos(tmp_path):
    """Only an aigen dataset dir (dataset.json beside original/ and ai/) is left out; never the root itself."""
    (tmp_path / "part").mkdir()
    for folder in (tmp_path, tmp_path / "part"):
        (folder / "dataset.json").write_text("{}")
        (folder / "a.jpg").write_bytes(jpeg_bytes(photo()))
    assert sorted(item.source for item in FolderSource(str(tmp_path)).items()) == ["a.jpg", "part/a.jpg"]


def test_an_overlong_path_gets_a_short_unique_id(tiny_cfg, tmp_path):
    """Deep folders flattened into an id longer than a file name may be: cut, with a hash of the path."""
    root = tmp_path / "photos"
    deep = root.joinpath(*["très_long_dossier" * 4] * 4)
    deep.mkdir(parents=True)
    for name in ("one.jpg", "two.jpg"):
        (deep / name).write_bytes(jpeg_bytes(photo()))
    (root / "short.jpg").write_bytes(jpeg_bytes(photo()))
    summary = make_dataset(tiny_cfg("source=folder", f"source.root={root}", "generator=identity", "size=64"))
    ids = sorted(row["id"] for row in manifest_rows(summary.dataset_dir))
    assert summary.generated == 3 and len(set(ids)) == 3 and "short" in ids
    assert all(len(image_id.encode()) <= MAX_ID_BYTES for image_id in ids)


def test_a_root_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(photo()))
    with pytest.raises(UserError, match="is not a folder"):
        FolderSource(str(tmp_path / "photo.jpg")).items()


def test_an_unidentified_image_is_recorded_without_its_path_or_address(tmp_path):
    """Pillow names the file or a BytesIO's address: the reason must be the same for every such photo."""
    (tmp_path / "text.jpg").write_bytes(b"not an image")
    for photo_file in (tmp_path / "text.jpg", io.BytesIO(b"not an image")):
        with pytest.raises(SkipImage) as skip:
            ImageLoader()(photo_file)
        assert skip.value.reason == "not a readable image: cannot identify image file"


def test_exif_orientation_is_applied(tiny_cfg, tmp_path):
    root = tmp_path / "exif"
    root.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    (root / "rotated.jpg").write_bytes(jpeg_bytes(red_left_blue_right(), exif=exif.tobytes()))
    out = make_dataset(tiny_cfg("source=folder", f"source.root={root}")).dataset_dir
    with Image.open(out / "original" / "rotated.jpg") as image:
        top, bottom = image.getpixel((32, 4)), image.getpixel((32, 60))
    assert top[0] > 200 and top[2] < 60, top  # the red left half is on top once rotated
    assert bottom[2] > 200 and bottom[0] < 60, bottom


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_recorded(tiny_cfg, tmp_path):
    root = tmp_path / "perm"
    root.mkdir()
    (root / "ok.jpg").write_bytes(jpeg_bytes(photo()))
    (root / "secret.jpg").write_bytes(jpeg_bytes(photo()))
    (root / "secret.jpg").chmod(0)
    out = make_dataset(tiny_cfg("source=folder", f"source.root={root}")).dataset_dir
    assert read_rows(out, "failures")["secret"]["reason"] == "permission denied"


def test_too_many_failures_exit_non_zero(tmp_path):
    root = tmp_path / "mostly_bad"
    root.mkdir()
    (root / "good.jpg").write_bytes(jpeg_bytes(photo()))
    for index in range(3):
        (root / f"bad{index}.jpg").write_bytes(b"garbage")
    args = ["source=folder", f"source.root={root}", "generator=identity", "generator.gen_size=64", "size=64",
            "logger=none"]  # fmt: skip
    result = run_cli(*args, f"dataset_dir={tmp_path / 'out'}")
    assert result.returncode != 0 and "max_failure_ratio=0.5" in result.stderr
    assert "Traceback" not in result.stderr
    tolerant = run_cli(*args, "max_failure_ratio=0.9", f"dataset_dir={tmp_path / 'out2'}")
    assert tolerant.returncode == 0, tolerant.stderr
    resumed = run_cli(*args, "max_failure_ratio=0.9", f"dataset_dir={tmp_path / 'out2'}")
    assert resumed.returncode == 0, resumed.stderr  # only the bad photos are left: judged with the done ones


def test_nothing_usable_exits_non_zero(tmp_path):
    root = tmp_path / "all_bad"
    root.mkdir()
    (root / "bad.jpg").write_bytes(b"garbage")
    result = run_cli(
        "source=folder", f"source.root={root}", "generator=identity", "generator.gen_size=64", "size=64", "logger=none",
        "max_failure_ratio=1.0", f"dataset_dir={tmp_path / 'out'}",
    )  # fmt: skip
    assert result.returncode != 0 and "none of the 1 photos could be used" in result.stderr
