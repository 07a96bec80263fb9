"""The native-render control, the size-regime sweep (aigen.bias_check) and pairs from photos smaller than `size`."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigen import audit
from aigen.audit.cues import CUES, AuditResult, CueResult
from aigen.bias_check import (
    REGIMES,
    CameraMeasured,
    ControlRun,
    Measured,
    Regime,
    camera_sweep,
    camera_table,
    cell,
    control_audit,
    holds,
    regime_table,
    sweep,
    write_csv,
)
from aigen.bias_check import main as bias_check_main
from aigen.corpus import build_scene_corpus
from aigen.errors import SkipImage, UserError
from aigen.factory import make_dataset
from aigen.generators.controls import NativeTwin, decoded_square
from aigen.preprocess import ImageLoader
from conftest import compose_config, manifest_rows


@pytest.fixture(scope="session")
def scenes(tmp_path_factory):
    """60 photos of 256-512 px, each a smaller copy of a larger scene (its twin)."""
    folder = tmp_path_factory.mktemp("scenes")
    return folder, build_scene_corpus(folder, 60, (256, 512), scene_side=256)


def test_a_scene_photo_is_a_smaller_copy_of_its_twin(scenes):
    _, items = scenes
    for item in items[:5]:
        with Image.open(item.photo) as photo, Image.open(item.twin) as twin:
            assert photo.size == (item.side, item.side) and 256 <= item.side <= 512
            assert twin.width >= 2 * item.side
            smaller = twin.convert("RGB").resize(photo.size, Image.Resampling.LANCZOS)
            assert smaller.tobytes() == photo.convert("RGB").tobytes()


def test_the_native_twin_is_the_scene_rendered_once_at_gen_size(scenes):
    folder, items = scenes
    control = NativeTwin(str(folder / "twins"), str(folder / "photos"), gen_size=256)
    control.load()
    square = ImageLoader(min_side=1, draft=False)(items[3].photo).condition_square()
    rendered = decoded_square(items[3].twin).resize((256, 256), Image.Resampling.LANCZOS)
    assert control.prepare(square).tobytes() == rendered.tobytes()
    with pytest.raises(SkipImage, match="no higher-resolution twin"):
        control.prepare(Image.new("RGB", (300, 300), "gray"))


def test_a_twin_smaller_than_the_photo_is_a_recorded_skip(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "twins").mkdir()
    Image.effect_noise((300, 300), 40).convert("RGB").save(tmp_path / "photos" / "a.png")
    Image.effect_noise((200, 200), 40).convert("RGB").save(tmp_path / "twins" / "a.png")
    control = NativeTwin(str(tmp_path / "twins"), str(tmp_path / "photos"), gen_size=256)
    control.load()
    square = ImageLoader(min_side=1, draft=False)(tmp_path / "photos" / "a.png").condition_square()
    with pytest.raises(SkipImage, match="smaller|is \\(200, 200\\)"):
        control.prepare(square)
    with pytest.raises(UserError, match="generator=native_twin needs generator.twins"):
        NativeTwin(None, str(tmp_path))


def test_a_twin_is_never_the_photo_itself(scenes, tmp_path):
    """generator.twins set to the photos' own folder paired each PNG with itself: the control became identity."""
    folder, _ = scenes
    cfg = compose_config(
        "source=folder", f"source.root={folder / 'photos'}", "generator=native_twin",
        f"generator.twins={folder / 'photos'}", "generator.gen_size=256", "size=256", "logger=none",
        f"dataset_dir={tmp_path / 'out'}",
    )  # fmt: skip
    with pytest.raises(UserError, match="not the twin itself"):
        make_dataset(cfg)
    assert not (tmp_path / "out").exists()
    (tmp_path / "photos").mkdir()
    (tmp_path / "twins").mkdir()
    Image.effect_noise((300, 300), 40).convert("RGB").save(tmp_path / "photos" / "a.png")
    shutil.copy(tmp_path / "photos" / "a.png", tmp_path / "twins" / "a.png")  # a copy: no larger scene
    control = NativeTwin(str(tmp_path / "twins"), str(tmp_path / "photos"), gen_size=256)
    control.load()
    with pytest.raises(SkipImage, match="is \\(300, 300\\)"):
        control.prepare(ImageLoader(min_side=1, draft=False)(tmp_path / "photos" / "a.png").condition_square())


def test_the_native_render_control_sees_the_resampling_cue_identity_cannot(scenes, tmp_path):
    """Identity agrees with the default path by construction (every cue 50%); a native render does not: its AI
    half never passed through the photo's own side, and the audit says so."""
    folder, _ = scenes
    identity = control_audit(ControlRun("identity", gen_size=256, size=128), folder, tmp_path / "i", "photos")
    assert all(cue.share == 0.5 for cue in identity.cues)
    native = control_audit(ControlRun("native_twin", gen_size=256, size=128), folder, tmp_path / "n", "photos")
    hf_energy = next(cue for cue in native.cues if cue.cue.name == "hf_energy")
    assert hf_energy.flagged, hf_energy.sentence()
    # Symmetric: the original half is identity's AI half, so native_twin's cues are the two controls' disagreement.
    identity_ai = {row["id"]: (tmp_path / "i" / row["ai"]).read_bytes() for row in manifest_rows(tmp_path / "i")}
    native_originals = {
        row["id"]: (tmp_path / "n" / row["original"]).read_bytes() for row in manifest_rows(tmp_path / "n")
    }
    assert native_originals == identity_ai


def test_pairs_from_photos_below_size_are_counted_in_the_summary_record_and_audit(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, side in (("small", 100), ("large1", 300), ("large2", 260)):
        Image.effect_noise((side, side), 40).convert("RGB").save(photos / f"{name}.png")
    out = tmp_path / "out"
    cfg = compose_config(
        "source=folder", f"source.root={photos}", "generator=identity", "generator.gen_size=128", "size=128",
        "loader.min_side=64", "logger=none", f"dataset_dir={out}",
    )  # fmt: skip
    summary = make_dataset(cfg)
    assert summary.upscaled == 1 and "(1 from photos smaller than size, upscaled)" in summary.line()
    record = json.loads((out / "dataset.json").read_text())
    assert record["counts"]["upscaled"] == 1 and record["runs"][-1]["upscaled"] == 1
    sides = {row["id"]: row["photo_side"] for row in manifest_rows(out)}
    assert sorted(sides.values()) == [100, 260, 300]
    assert audit.main([str(out), "--out", str(tmp_path / "audit")]) == 0
    assert "33% of pairs (1) come from photos smaller than size" in capsys.readouterr().out


def test_the_regimes_cover_the_issue_and_name_what_cannot_hold():
    assert {(r.gen_size, r.size) for r in REGIMES} == {(256, 128), (256, 256), (512, 256), (512, 512)}
    assert {r.sides for r in REGIMES} == {(0.5, 1.0), (1.0, 2.0)} and {r.jpeg for r in REGIMES} == {True, False}
    below = Regime(256, 256, (0.5, 1.0), False)
    assert not below.possible and Regime(256, 128, (0.5, 1.0), False).possible
    assert ("symmetric", "matched") not in Regime(256, 128, (1.0, 2.0), False).processing("identity")
    assert ("symmetric", "matched") in Regime(256, 128, (1.0, 2.0), True).processing("identity")
    assert ("native", "matched") in Regime(256, 128, (1.0, 2.0), True).processing("lossless_twin")
    assert ("native", "matched") not in Regime(256, 128, (1.0, 2.0), True).processing("native_twin")
    native = ControlRun("lossless_twin", "native", "matched", 256, 128).overrides(Path("p"), Path("c"), Path("o"))
    assert "generator.gen_size=native" in native and "pairing.geometry=symmetric" in native
    assert "lossless_twin" in Regime(256, 128, (1.0, 2.0), True).controls()


def result_with(shares: list[float], accuracy: float = 0.5, hf_median: float = 0.0) -> AuditResult:
    medians = [hf_median] + [0.0] * (len(CUES) - 1)
    rows = zip(CUES, shares, medians, strict=True)
    cues = [CueResult(cue, share, 0.0, median, np.zeros(1)) for cue, share, median in rows]
    return AuditResult("x", 100, cues, accuracy)


def test_a_run_holds_only_with_every_cue_in_the_band_and_the_classifier_at_most_55():
    assert holds(result_with([0.5, 0.41, 0.59, 0.5, 0.5]))
    assert not holds(result_with([0.5, 0.39, 0.5, 0.5, 0.5]))
    assert not holds(result_with([0.5] * 5, accuracy=0.56))
    assert cell(result_with([0.05, 0.5, 0.3, 0.5, 0.5], hf_median=np.log(0.993))) == "NO: blurrier 95% (-0.7%)"
    assert cell(result_with([0.5] * 5, accuracy=0.6)) == "NO: sharper 50% (+0.0%), classifier 60%"


def test_the_table_has_the_regimes_in_its_columns_and_says_below_size():
    regime = Regime(256, 128, (1.0, 2.0), False)
    measured = [Measured(regime, ControlRun("identity", gen_size=256, size=128), result_with([0.5] * 5))]
    table = regime_table(measured, [Regime(256, 256, (0.5, 1.0), False)], 256).splitlines()
    assert "size 128, sides 1-2x, PNG" in table[0] and "size 256, sides 0.5-1x, PNG" in table[0]
    assert table[2].startswith("| identity | symmetric | none |") and "OK: sharper 50%" in table[2]
    assert "below size" in table[2] and "n/a" in table[2]


def test_every_row_at_a_fixed_gen_size_records_its_geometry_and_compression_history(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.effect_noise((200, 180), 40).convert("RGB").save(photos / "a.jpg", quality=80)
    Image.effect_noise((180, 200), 40).convert("RGB").save(photos / "b.png")
    out = tmp_path / "out"
    cfg = compose_config(
        "source=folder", f"source.root={photos}", "generator=identity", "generator.gen_size=128", "size=128",
        "pairing.geometry=direct", "pairing.jpeg_history=matched", "logger=none", f"dataset_dir={out}",
    )  # fmt: skip
    make_dataset(cfg)
    rows = {row["id"]: row for row in manifest_rows(out)}
    assert {row["geometry"] for row in rows.values()} == {"direct"}
    assert [rows[key]["jpeg_history"] for key in sorted(rows)] == ["matched_resampled", "unavailable"]


def test_the_native_render_verdict_turns_with_the_filter_that_made_the_photos(tmp_path):
    """The same scenes and processing: photos made with Lanczos leave the AI half blurrier, photos made by area
    averaging leave it sharper. The control's verdict on sharpness is the photo's unknown history."""
    regime = Regime(256, 128, (1.0, 2.0), False)
    measured = camera_sweep([regime], ["lanczos", "box"], 16, tmp_path)
    hf_share = {m.camera: m.result.cues[0].share for m in measured}
    assert hf_share["lanczos"] < 0.4 and hf_share["box"] > 0.6, hf_share
    table = camera_table(measured).splitlines()
    assert "256 -> size 128, sides 1-2x, PNG" in table[0]
    assert table[2].startswith("| lanczos | NO: blurrier") and table[3].startswith("| box | NO: sharper")
    # The Lanczos photos are the main sweep's corpus: its native_twin run is taken, not made again.
    main_run = Measured(regime, ControlRun("native_twin", gen_size=256, size=128), measured[0].result)
    [reused] = camera_sweep([regime], ["lanczos"], 16, tmp_path / "again", [main_run])
    assert reused.result is measured[0].result and not (tmp_path / "again").exists()
    assert not any(tmp_path.iterdir())  # each camera's corpus and dataset removed once audited
    regime.corpus(tmp_path / "box", 2, "box")
    with Image.open(tmp_path / "box" / "photos" / "0000-astronaut.png") as photo:
        twin = Image.open(tmp_path / "box" / "twins" / "0000-astronaut.png").convert("RGB")
        assert photo.convert("RGB").tobytes() == twin.resize(photo.size, Image.Resampling.BOX).tobytes()


def test_the_sweep_measures_each_control_and_processing_and_frees_each_regime(tmp_path):
    regime = Regime(256, 128, (1.0, 2.0), False)
    measured, impossible = sweep([regime, Regime(256, 256, (0.5, 1.0), False)], 4, tmp_path)
    runs = [(m.run.generator, m.run.geometry) for m in measured]
    assert runs == [
        ("identity", "symmetric"),
        ("identity", "direct"),
        ("native_twin", "symmetric"),
        ("native_twin", "direct"),
    ]
    assert all(m.result.pairs == 4 for m in measured) and impossible == [Regime(256, 256, (0.5, 1.0), False)]
    assert not any(tmp_path.iterdir())  # the corpus and the datasets of a regime go once it is audited


def test_the_csv_holds_every_run_the_cameras_too_and_no_made_up_classifier(tmp_path):
    regime = Regime(256, 128, (1.0, 2.0), False)
    run = ControlRun("native_twin", gen_size=256, size=128)
    measured = [Measured(regime, run, result_with([0.5] * 5, accuracy=None))]  # too few pairs to train it
    box = result_with([0.9, 0.5, 0.5, 0.5, 0.5])
    cameras = [CameraMeasured(regime, "lanczos", run, measured[0].result), CameraMeasured(regime, "box", run, box)]
    write_csv(measured, cameras, tmp_path / "bias_check.csv")
    with open(tmp_path / "bias_check.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["camera"], row["control"], row["geometry"]) for row in rows] == [
        ("lanczos", "native_twin", "symmetric"),  # the sweep's own run, once
        ("box", "native_twin", "symmetric"),
    ]
    assert rows[0]["classifier"] == "" and rows[1]["classifier"] == "0.5" and rows[1]["hf_energy"] == "0.9"


def test_an_out_under_a_file_is_one_line_before_the_sweep(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    out = tmp_path / "file" / "sub"
    assert bias_check_main(["--count", "1", "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: --out {out} is under {tmp_path / 'file'}, which is a file\n"


def test_a_bad_count_is_one_line(capsys):
    assert bias_check_main(["--count", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --count 0: each regime needs at least 1 photo"
