"""The factory end to end on real photos and the tiny random-weight pipeline."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image, JpegImagePlugin

from aigen.errors import UserError
from aigen.factory import make_dataset
from aigen.seeding import per_image_seed
from conftest import file_bytes, manifest_rows, run_cli

N_SAMPLES = 8


def test_cli_end_to_end(tmp_path):
    out = tmp_path / "out"
    result = run_cli("source=samples", "generator=sd_tiny", "size=64", "logger=none", f"dataset_dir={out}")
    assert result.returncode == 0, result.stderr
    assert f"done: {N_SAMPLES} new pairs" in result.stdout
    originals = sorted(p.name for p in (out / "original").glob("*.jpg"))
    ais = sorted(p.name for p in (out / "ai").glob("*.jpg"))
    assert len(originals) == N_SAMPLES and originals == ais
    for folder in ("original", "ai"):
        for name in originals:
            with Image.open(out / folder / name) as image:
                assert image.size == (64, 64) and image.mode == "RGB"
    rows = manifest_rows(out)
    assert len(rows) == N_SAMPLES
    for row in rows:
        assert (out / row["original"]).is_file() and (out / row["ai"]).is_file()
        assert row["seed"] == per_image_seed(0, row["id"])
        for key in ("source", "generator", "model", "revision", "guidance_scale", "steps", "size"):
            assert key in row
        assert row["weights"] == "random"


def test_resume_skips_finished_pairs_and_redoes_a_deleted_one(tiny_cfg, tmp_path):
    cfg = tiny_cfg()
    first = make_dataset(cfg)
    assert first.generated == N_SAMPLES
    out = first.dataset_dir
    before = {path: path.stat().st_mtime_ns for path in out.glob("*/*.jpg")}

    second = make_dataset(cfg)
    assert (second.generated, second.already_done) == (0, N_SAMPLES)
    assert {path: path.stat().st_mtime_ns for path in out.glob("*/*.jpg")} == before

    (out / "ai" / "coffee.jpg").unlink()
    third = make_dataset(cfg)
    assert third.generated == 1
    changed = [p.name for p in out.glob("*/*.jpg") if p not in before or p.stat().st_mtime_ns != before[p]]
    assert sorted(changed) == ["coffee.jpg", "coffee.jpg"]
    assert len({row["id"] for row in manifest_rows(out)}) == N_SAMPLES


def test_same_config_gives_identical_bytes_and_seed_changes_only_ai(tiny_cfg, tmp_path):
    a = make_dataset(tiny_cfg(dataset_dir=tmp_path / "a")).dataset_dir
    b = make_dataset(tiny_cfg(dataset_dir=tmp_path / "b")).dataset_dir
    assert file_bytes(a) == file_bytes(b)

    c = make_dataset(tiny_cfg("seed=1", dataset_dir=tmp_path / "c")).dataset_dir
    bytes_a, bytes_c = file_bytes(a), file_bytes(c)
    for name in bytes_a:
        if name.startswith("original/"):
            assert bytes_a[name] == bytes_c[name]
        else:
            assert bytes_a[name] != bytes_c[name], name


def test_batch_size_does_not_change_ids_or_seeds(tiny_cfg, tmp_path):
    one = make_dataset(tiny_cfg("batch_size=1", dataset_dir=tmp_path / "one")).dataset_dir
    three = make_dataset(tiny_cfg("batch_size=3", dataset_dir=tmp_path / "three")).dataset_dir
    seeds = [{row["id"]: row["seed"] for row in manifest_rows(d)} for d in (one, three)]
    assert seeds[0] == seeds[1] and len(seeds[0]) == N_SAMPLES


def test_limit_takes_a_sample_that_grows_and_resumes(tiny_cfg):
    small = make_dataset(tiny_cfg("limit=3"))
    assert small.generated == 3
    larger = make_dataset(tiny_cfg("limit=5"))
    assert (larger.already_done, larger.generated) == (3, 2)


def test_folder_source_keeps_every_image(tiny_cfg, tmp_path):
    photos = tmp_path / "photos"
    astronaut = Image.open(shutil.os.path.join(str(_skimage_data()), "astronaut.png")).convert("RGB")
    layout = ["kitchen/a.JPG", "kitchen/deep/b.jpeg", "Top.PNG", "x/y.jpg", "x_y.jpg", "notes.txt"]
    for relative in layout:
        path = photos / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if relative.endswith(".txt"):
            path.write_text("not an image")
        else:
            astronaut.save(path, format="PNG" if relative.lower().endswith("png") else "JPEG")
    summary = make_dataset(tiny_cfg("source=folder", f"source.root={photos}"))
    assert summary.generated == 5
    rows = {row["source"]: row for row in manifest_rows(summary.dataset_dir)}
    assert set(rows) == {"kitchen/a.JPG", "kitchen/deep/b.jpeg", "Top.PNG", "x/y.jpg", "x_y.jpg"}
    assert rows["kitchen/deep/b.jpeg"]["id"] == "kitchen_deep_b"
    assert rows["kitchen/a.JPG"]["category"] == "kitchen"
    assert rows["x/y.jpg"]["id"] != rows["x_y.jpg"]["id"]
    assert rows["x/y.jpg"]["id"].startswith("x_y-")


def test_a_dir_made_by_another_config_is_never_written(tiny_cfg):
    make_dataset(tiny_cfg())
    with pytest.raises(UserError, match="different config.*steps: 5 -> 7"):
        make_dataset(tiny_cfg("generator.steps=7"))


def test_original_and_ai_share_quantization_and_subsampling(tiny_cfg):
    out = make_dataset(tiny_cfg("limit=2")).dataset_dir
    for row in manifest_rows(out):
        with Image.open(out / row["original"]) as original, Image.open(out / row["ai"]) as ai:
            assert original.quantization == ai.quantization
            assert JpegImagePlugin.get_sampling(original) == JpegImagePlugin.get_sampling(ai) == 2
            assert "exif" not in original.info and "icc_profile" not in original.info


def test_loads_as_imagefolder(tiny_cfg):
    datasets = pytest.importorskip("datasets")
    out = make_dataset(tiny_cfg()).dataset_dir
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out), split="train")
    assert len(loaded) == 2 * N_SAMPLES
    names = loaded.features["label"].names
    assert sorted(names) == ["ai", "original"]
    assert sorted(loaded["label"]).count(names.index("ai")) == N_SAMPLES


def _skimage_data():
    import skimage.data

    return shutil.os.path.dirname(skimage.data.__file__)
