"""The bias audit's cues and CLI, the control generators, and pair processing measured on a real-photo corpus."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageFilter

from aigen import audit
from aigen.audit.report import markdown_report, summary_json
from aigen.bias_check import ControlRun, control_audit
from aigen.corpus import build_corpus
from aigen.errors import SkipImage, UserError
from aigen.factory import make_dataset as make_factory_dataset
from aigen.generators.controls import Identity, LosslessTwin, decoded_square
from aigen.pairing import Pairing, ai_square, compress_like_source, original_square, read_jpeg_history
from aigen.preprocess import ImageLoader, Photo
from conftest import compose_config, manifest_rows


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """At least 300 real-photo crops as web JPEGs (and their lossless twins), built once per session."""
    folder = tmp_path_factory.mktemp("corpus")
    return folder, build_corpus(folder, count=320, min_side=256)


def photo(side: int = 256) -> Image.Image:
    return Image.fromarray(skimage.data.astronaut()).resize((side, side), Image.Resampling.LANCZOS)


def jpeg_decoded(image: Image.Image, quality: int) -> tuple[Image.Image, int]:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), len(buffer.getvalue())


# The cues on synthetic images.


def test_blurring_lowers_high_frequency_energy():
    sharp = photo()
    assert audit.high_frequency_energy(sharp.filter(ImageFilter.GaussianBlur(1.5))) < audit.high_frequency_energy(sharp)


def test_a_low_quality_jpeg_is_blockier_than_the_lossless_image():
    lossless = photo()
    compressed, _ = jpeg_decoded(lossless, 30)
    assert audit.blockiness(compressed) > audit.blockiness(lossless) + 0.1
    assert audit.blockiness(lossless) == pytest.approx(1.0, abs=0.1)


def test_brightness_and_saturation():
    image = photo()
    brighter = Image.fromarray(np.clip(np.asarray(image, np.int16) + 40, 0, 255).astype(np.uint8))
    assert audit.brightness(brighter) > audit.brightness(image)
    assert audit.saturation(image.convert("L").convert("RGB")) == 0 < audit.saturation(image)


def test_ties_count_half_and_identical_halves_are_not_separable():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    assert audit.share_ai_greater(values, values) == 0.5
    assert audit.share_ai_greater(values, values + 1) == 1.0
    rng = np.random.default_rng(0)
    cues = rng.uniform(1, 2, size=(40, len(audit.CUES)))
    ids = [f"p{index}" for index in range(40)]
    assert audit.classifier_accuracy(ids, cues, cues) == 0.5


def test_the_classifier_finds_a_global_cue_one_image_at_a_time():
    rng = np.random.default_rng(0)
    original = rng.uniform(1, 2, size=(60, len(audit.CUES)))
    ai = rng.uniform(1, 2, size=(60, len(audit.CUES)))
    ai[:, audit.CUE_NAMES.index("brightness")] += 2  # every AI image brighter than every original
    assert audit.classifier_accuracy([f"p{index}" for index in range(60)], original, ai) > 0.9


def test_a_flagged_cue_says_what_a_detector_would_learn():
    n = 20
    original = np.ones((n, len(audit.CUES)))
    ai = original.copy()
    ai[:, 0] = 0.5  # the AI half has less high-frequency energy in 95% of pairs
    ai[-1, 0] = 2.0
    result = audit.audit_values("d", [f"p{index}" for index in range(n)], original, ai)
    hf = result.cues[0]
    assert hf.flagged and hf.direction == "blurrier"
    assert hf.sentence() == (
        f"the AI half is blurrier in 95% of pairs (p={hf.p_value:.2g}): a detector can learn this dataset's "
        "processing instead of generation"
    )
    # the other cues are tied in every pair: their 50% is no share of pairs, and the sentence says so
    assert result.cues[1].sentence() == "the AI half is blockier in 50% of pairs (20 of 20 identical, counted half)"
    assert hf.p_value == pytest.approx(2 * 21 / 2**20)  # one of 20 pairs the other way: a two-sided sign test
    assert [r.flagged for r in result.cues[1:]] == [False] * 4


def test_a_cue_is_flagged_only_when_chance_cannot_explain_it():
    """5 pairs all one way are p = 0.0625 under a sign test: a large share, yet no evidence; 6 are p = 0.031."""
    for pairs, expected in ((5, False), (6, True)):
        original = np.ones((pairs, len(audit.CUES)))
        ai = original.copy()
        ai[:, 0] = 0.5
        result = audit.audit_values("d", [f"p{index}" for index in range(pairs)], original, ai)
        assert result.cues[0].share == 0 and result.cues[0].flagged is expected


def test_on_a_generator_dataset_a_flag_says_the_halves_differ_and_points_to_the_control():
    n = 20
    original = np.ones((n, len(audit.CUES)))
    ai = original.copy()
    ai[:, 1] = 0.5  # less blocky in every pair
    result = audit.audit_values("d", [f"p{index}" for index in range(n)], original, ai, control=False)
    flag = result.flags()[0]
    assert flag.startswith("the halves differ in 8x8 blockiness: the AI half is less blocky in 100% of pairs")
    assert "may be generation itself" in flag and "generator=identity, native_twin or lossless_twin" in flag
    assert "a detector can learn" not in flag


# The CLI on a hand-made dataset dir.


def make_dataset(folder, pairs: int = 8, blur: float = 1.5):
    """original/<id>.jpg and a blurred ai/<id>.jpg, a manifest and a dataset.json: all the audit reads."""
    (folder / "original").mkdir(parents=True)
    (folder / "ai").mkdir()
    source = Image.fromarray(skimage.data.astronaut())
    rows = []
    for index in range(pairs):
        image_id = f"crop{index}"
        square = source.crop((index * 30, index * 20, index * 30 + 256, index * 20 + 256))
        square.save(folder / "original" / f"{image_id}.jpg", quality=95)
        square.filter(ImageFilter.GaussianBlur(blur)).save(folder / "ai" / f"{image_id}.jpg", quality=95)
        rows.append({"id": image_id, "original": f"original/{image_id}.jpg", "ai": f"ai/{image_id}.jpg"})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "dataset.json").write_text("{}")
    return folder


def test_an_out_folder_holding_other_files_is_refused_and_an_earlier_audit_is_rewritten(tmp_path, capsys):
    """A folder of photos given as --out would be marked as the audit's own (and left out of every folder source)."""
    dataset = make_dataset(tmp_path / "blurred")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"a photo")
    assert audit.main([str(dataset), "--out", str(photos)]) == 2
    assert "holds files an audit does not write (cat.jpg)" in capsys.readouterr().err
    assert sorted(path.name for path in photos.iterdir()) == ["cat.jpg"]
    for _ in range(2):
        assert audit.main([str(dataset), "--out", str(tmp_path / "audit")]) == 0


def test_the_audit_writes_its_report_outside_the_dataset_dir(tmp_path, monkeypatch, capsys):
    dataset = make_dataset(tmp_path / "blurred")
    monkeypatch.chdir(tmp_path)
    assert audit.main([str(dataset)]) == 0
    out = tmp_path / "outputs" / "audit-blurred"
    assert sorted(path.name for path in out.iterdir()) == [
        ".aigen-output",
        "audit.csv",
        "audit.json",
        "audit.md",
        "audit.png",
    ]
    assert sorted(path.name for path in dataset.iterdir()) == ["ai", "dataset.json", "manifest.jsonl", "original"]
    summary = json.loads((out / "audit.json").read_text())
    assert summary["pairs"] == 8
    assert summary["cues"]["hf_energy"]["share_ai_greater"] == 0
    # A hand-made dir names no control generator: its flag says the halves differ, not why.
    assert summary["flags"][0].startswith("the halves differ in high-frequency energy: the AI half is blurrier in 100%")
    assert "blurrier in 100% of pairs" in (out / "audit.md").read_text()
    assert (out / "audit.csv").read_text().splitlines()[0] == ",".join(audit.CSV_COLUMNS)
    with Image.open(out / "audit.png") as png:
        assert png.size == (3 * audit.PANEL[0], 2 * audit.PANEL[1])
    assert "FLAG the halves differ in high-frequency energy" in capsys.readouterr().out


def test_a_sweeps_dirs_are_audited_at_once_each_into_its_own_folder(tmp_path, monkeypatch, capsys):
    first, second = make_dataset(tmp_path / "a" / "blurred"), make_dataset(tmp_path / "sharp", pairs=3)
    monkeypatch.chdir(tmp_path)
    assert audit.main([str(first), str(second), "a/blurred"]) == 0  # the first again, relative to the cwd
    assert [json.loads((tmp_path / "outputs" / f"audit-{name}" / "audit.json").read_text())["pairs"]
            for name in ("blurred", "sharp")] == [8, 3]  # fmt: skip
    assert capsys.readouterr().out.count("wrote ") == 2  # the same dir named twice is audited once
    # Checked before any work: --out for several dirs, two dirs of one name, a dir that is not a dataset.
    same_name = make_dataset(tmp_path / "b" / "blurred", pairs=3)
    for argv, said in (
        ([str(first), str(second), "--out", str(tmp_path / "o")], "--out names one audit's folder"),
        ([str(first), str(same_name)], "two dataset dirs share a name"),
        ([str(second), str(tmp_path / "nowhere")], "is not a directory"),
        ([str(make_dataset(tmp_path / "many", pairs=20)), str(second), "--probe"], "3 pairs"),
    ):
        shutil.rmtree(tmp_path / "outputs", ignore_errors=True)
        assert audit.main(argv) == 2
        assert said in capsys.readouterr().err and not (tmp_path / "outputs").exists()


def test_the_audit_of_a_control_dataset_names_the_processing_a_detector_would_learn(tmp_path):
    dataset = make_dataset(tmp_path / "control")
    (dataset / "dataset.json").write_text(json.dumps({"content": {"generator": "identity"}}))
    result = audit.audit_dataset(dataset)
    assert result.control and "can learn this dataset's processing instead of generation" in result.flags()[0]


def test_the_audit_logs_to_wandb(tmp_path):
    dataset = make_dataset(tmp_path / "blurred", pairs=3)
    assert audit.main([str(dataset), "--out", str(tmp_path / "report"), "--logger", "wandb"]) == 0  # W&B disabled


@pytest.mark.parametrize("case", ["missing", "not a dataset", "no pairs", "out inside"])
def test_user_errors_are_one_line(tmp_path, capsys, case):
    target, extra = tmp_path / "plain", []
    target.mkdir()
    if case == "missing":
        target = tmp_path / "nowhere"
    elif case == "no pairs":
        (target / "dataset.json").write_text("{}")
    elif case == "out inside":
        target = make_dataset(tmp_path / "d")
        extra = ["--out", str(target / "audit")]
    assert audit.main([str(target), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_python_m_aigen_audit_on_a_dir_that_is_not_a_dataset(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aigen.audit", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr == f"error: {tmp_path} is not an aigen dataset dir (no dataset.json)\n"


# Pair processing and the control generators.


def test_a_bad_pairing_option_is_named():
    Pairing("symmetric", "none")
    with pytest.raises(UserError, match="pairing.geometry='sideways'"):
        Pairing("sideways", "none")
    with pytest.raises(UserError, match="pairing.jpeg_history='some'"):
        Pairing("direct", "some")


@pytest.mark.parametrize("gen_size", [512, 256])
def test_symmetric_pairs_of_the_identity_control_are_the_same_pixels(gen_size):
    """The original takes the generated image's path, from the generator's own input square."""
    source = Photo(Image.fromarray(skimage.data.astronaut()).crop((0, 0, 500, 371)), (500, 371))
    identity = Identity(gen_size)
    generated = identity.generate([identity.prepare(source.condition_square())], [0])[0].image
    original = original_square(source, 256, gen_size, "symmetric")
    assert original.size == (256, 256)
    assert original.tobytes() == ai_square(generated, 256).tobytes()
    assert original_square(source, 256, gen_size, "direct").tobytes() != original.tobytes()


def test_identity_describes_a_control_without_weights():
    identity = Identity(512)
    assert identity.describe() == {"generator": "identity", "model": "none", "weights": "none", "gen_size": 512}
    assert not identity.seeded
    assert "nothing generated" in identity.plan(3)
    with pytest.raises(UserError, match="gen_size"):
        Identity(100)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_source_history_is_read_on_its_own_block_grid(tmp_path, orientation):
    """Compressing the decoded square again like its source changes it little; off the grid, much more."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    Image.fromarray(skimage.data.astronaut()).crop((3, 0, 503, 371)).save(path, quality=75, exif=exif)
    decoded = ImageLoader(min_side=1, draft=False)(path)
    history = read_jpeg_history(path, decoded.square_box())
    square = decoded.condition_square()
    assert history.side == 371 and history.qtables == {k: list(v) for k, v in Image.open(path).quantization.items()}

    def change(history) -> float:
        return float(np.abs(np.asarray(compress_like_source(square, history), float) - np.asarray(square)).mean())

    off_grid = dataclasses.replace(history, phase=((history.phase[0] + 4) % 16, (history.phase[1] + 4) % 16))
    assert change(history) < 0.3 < 2 < change(off_grid)


def test_a_lossless_source_has_no_history(tmp_path):
    photo().save(tmp_path / "photo.png")
    assert read_jpeg_history(tmp_path / "photo.png", (0, 0, 256, 256)) is None


def test_the_lossless_twin_control_gives_the_twin_for_the_jpeg(tmp_path):
    folder, items = tmp_path, build_corpus(tmp_path, count=3)
    twin = LosslessTwin(str(folder / "lossless"), str(folder / "jpeg"), gen_size=256)
    twin.load()
    square = ImageLoader(min_side=1, draft=False)(items[1].jpeg).condition_square()
    assert twin.prepare(square).tobytes() == decoded_square(items[1].lossless).resize((256, 256), 1).tobytes()
    with pytest.raises(SkipImage, match="no lossless twin"):
        twin.prepare(photo())
    with pytest.raises(UserError, match="no lossless twin"):
        LosslessTwin(str(folder / "lossless"), str(tmp_path / "elsewhere")).load()


# Measured on the corpus through the real factory (aigen.bias_check), for each pairing choice.


def test_the_corpus_is_web_jpegs_of_real_photo_crops(corpus):
    _, items = corpus
    assert len(items) >= 300
    for item in items[:: len(items) // 20]:
        with Image.open(item.jpeg) as image:
            assert image.format == "JPEG" and min(image.size) >= 256 and max(image.size) <= 640
        assert 70 <= item.quality <= 92


def test_the_default_pairing_leaves_no_resampling_cue(corpus, tmp_path):
    folder, _ = corpus
    result = control_audit(ControlRun("identity"), folder, tmp_path / "identity")
    shares = {r.cue.name: r for r in result.cues}
    assert result.pairs >= 300
    assert 0.4 <= shares["hf_energy"].share <= 0.6 and result.accuracy <= 0.6


def test_the_seeds_geometry_is_flagged_for_resampling(corpus, tmp_path):
    """The audit sees the bias the default removes."""
    folder, _ = corpus
    result = control_audit(ControlRun("identity", geometry="direct"), folder, tmp_path / "direct")
    hf_energy = next(r for r in result.cues if r.cue.name == "hf_energy")
    assert hf_energy.flagged and hf_energy.direction == "blurrier", hf_energy.sentence()


def test_a_clean_ai_half_is_not_told_apart_by_blockiness(corpus, tmp_path):
    """The JPEG-history control: the source's 8x8 grid does not survive to `size` as blockiness."""
    folder, _ = corpus
    result = control_audit(ControlRun("lossless_twin"), folder, tmp_path / "twin")
    shares = {r.cue.name: r for r in result.cues}
    assert 0.4 <= shares["blockiness"].share <= 0.6 and result.accuracy <= 0.6


def test_when_gen_size_is_size_both_halves_take_the_same_path(tmp_path):
    """gen_size == size: neither half is resampled after the generator's size (the identity pair is one image)."""
    out = make_factory_dataset(
        compose_config(
            "source=samples",
            "generator=identity",
            "generator.gen_size=64",
            "size=64",
            "logger=none",
            f"dataset_dir={tmp_path / 'o'}",
        )  # fmt: skip
    ).dataset_dir
    for row in manifest_rows(out):
        assert (out / row["original"]).read_bytes() == (out / row["ai"]).read_bytes()


def test_the_audit_cli_on_a_generated_dataset(tiny_cfg, tmp_path):
    out = make_factory_dataset(tiny_cfg("limit=4")).dataset_dir
    result = subprocess.run(
        [sys.executable, "-m", "aigen.audit", str(out), "--out", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {"audit.md", "audit.csv", "audit.json", "audit.png"} <= {p.name for p in (tmp_path / "report").iterdir()}


def test_few_pairs_report_the_folds_used_and_upscaled_pairs_get_a_csv_row():
    original, ai = np.ones((3, len(audit.CUES))), np.full((3, len(audit.CUES)), 2.0)
    result = dataclasses.replace(audit.audit_values("d", ["a", "b", "c"], original, ai), upscaled=1)
    assert summary_json(result)["classifier"]["folds"] == 3  # one per pair: GroupKFold cannot make 5 of 3
    assert "3 folds split by pair" in markdown_report(result)
    [row] = [row for row in result.rows() if row[0] == "upscaled"]
    assert row[3] == round(1 / 3, 4) and row[5] is True and "smaller than size" in row[6]
