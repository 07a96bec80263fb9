"""The CNN learnability probe (aigen.audit.probe): it finds known small cues, and scores identical halves at 50%."""

from __future__ import annotations

import json
import shutil

import pytest

from aigen import audit
from aigen.audit.probe import MIN_PAIRS, ProbeResult, ProbeSettings, probe_dataset
from aigen.errors import UserError
from benchmarks.probe_check import blur, degraded_copy, identity_dataset, jpeg_pass

PAIRS = 300
SIZE = 128
SETTINGS = ProbeSettings(steps=300)


@pytest.fixture(scope="session")
def identity(tmp_path_factory):
    """The identity control with the default pairing: the two halves of every pair are the same image."""
    return identity_dataset(tmp_path_factory.mktemp("probe"), PAIRS, SIZE)


def test_identical_halves_score_exactly_chance(identity):
    """Both halves get the same logit, so exactly one of each pair is right, unless something (the order of the
    files, a batch statistic, a crop drawn per image) tells the probe which half is which."""
    result = probe_dataset(identity, ProbeSettings(steps=20))
    assert result.accuracy == 0.5 and result.train_accuracy == 0.5 and not result.flagged
    assert 0.3 * 2 * PAIRS <= result.held_out_images <= 0.5 * 2 * PAIRS  # HELD_OUT = 40% of the photos


@pytest.mark.parametrize("name, degrade", [("blur", blur), ("jpeg90", jpeg_pass)])
def test_the_probe_finds_a_small_cue_of_the_ai_half(identity, tmp_path, name, degrade):
    """A 0.5 px Gaussian blur, or a JPEG pass at quality 90, of the AI half only (then the dataset's encoder)."""
    result = probe_dataset(degraded_copy(identity, tmp_path / name, degrade), SETTINGS)
    assert result.accuracy >= 0.6 and result.flagged, result.sentence()
    assert result.held_out_images >= 0.3 * 2 * PAIRS


def test_the_same_settings_give_the_same_result(identity, tmp_path):
    """Seeded split, weights and crops: a rerun at the same thread count gives the same numbers."""
    blurred = degraded_copy(identity, tmp_path / "blur", blur)
    settings = ProbeSettings(steps=10)
    assert probe_dataset(blurred, settings) == probe_dataset(blurred, settings)


def test_the_flag_needs_both_effect_and_significance():
    def result(accuracy: float, low: float) -> ProbeResult:
        return ProbeResult(400, accuracy, (low, accuracy + 0.05), 400, accuracy, SETTINGS)

    assert result(0.58, 0.53).flagged
    assert not result(0.58, 0.49).flagged  # too few images to tell from chance
    assert not result(0.54, 0.51).flagged  # significant, but within the band a control must keep to
    assert result(0.51, 0.46).sentence() == (
        "a CNN tells the halves apart in 51% of 400 held-out images (95% CI 46-56%); train 51%"
    )
    flagged = result(0.58, 0.53)
    assert flagged.sentence().endswith("a detector can learn this dataset's processing instead of generation")
    assert "may be generation itself" in flagged.sentence(control=False)


def test_the_audit_cli_reports_the_probe(identity, tmp_path, capsys):
    out = tmp_path / "report"
    argv = [str(identity), "--probe", "--probe-steps", "10", "--out", str(out), "--logger", "wandb"]  # W&B disabled
    assert audit.main(argv) == 0
    printed = capsys.readouterr().out
    assert "probe: a CNN tells the halves apart in 50% of" in printed
    summary = json.loads((out / "audit.json").read_text())
    assert summary["probe"]["accuracy"] == 0.5 and summary["probe"]["settings"]["steps"] == 10
    assert not summary["probe"]["flagged"]
    assert "CNN probe: a CNN tells the halves apart in 50%" in (out / "audit.md").read_text()
    assert (out / "audit.csv").read_text().splitlines()[-1].startswith("probe,,held-out accuracy,0.5,")


def test_too_few_pairs_is_one_line_before_any_work(identity, tmp_path, capsys):
    few = tmp_path / "few"
    shutil.copytree(identity, few)
    manifest = few / "manifest.jsonl"
    manifest.write_text("".join(manifest.read_text().splitlines(keepends=True)[: MIN_PAIRS - 1]))
    out = tmp_path / "report"
    assert audit.main([str(few), "--probe", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {few} has {MIN_PAIRS - 1} pairs; the probe needs at least {MIN_PAIRS}\n"
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, message",
    [(["--probe-steps", "5"], "--probe-steps needs --probe"), (["--probe", "--probe-steps", "0"], "steps=0")],
)
def test_bad_probe_options_are_one_line(identity, tmp_path, capsys, argv, message):
    assert audit.main([str(identity), *argv, "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_crop_off_the_block_grid_is_refused():
    with pytest.raises(UserError, match="multiple of 8"):
        ProbeSettings(crop=60)
