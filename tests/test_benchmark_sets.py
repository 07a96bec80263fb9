"""Scoring on unpaired labelled benchmarks (aigen.detector.benchmarks): a GenImage-style folder (one row per
generator), a CSV of path,label, a `datasets` folder; the new metrics against scikit-learn, their intervals, the
small-sample warning, and one-line errors for bad set specs."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from detect_data import blur, make_dataset_dir, noise, photo_crops
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image
from scipy import stats
from sklearn import metrics as sk
from sklearn.calibration import calibration_curve

from aigen.detector.evaluate import evaluate
from aigen.detector.metrics import (
    auc_interval,
    binary_metrics,
    expected_calibration_error,
    tpr_at_fpr,
    wilson_interval,
)
from aigen.detector.train import train
from aigen.errors import UserError
from conftest import CONF

FAST = ["model=resnet_tiny", "image_size=64", "batch_size=16", "workers=0", "logger=none"]
NEW_METRICS = ("accuracy_real", "accuracy_ai", "balanced_accuracy", "roc_auc", "average_precision", "tpr_at_5_fpr")


def compose_detect(*overrides: str) -> DictConfig:
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("detect", overrides=[*FAST, *overrides])


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def save_images(folder: Path, images: list[Image.Image], prefix: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{prefix}_{index:03d}.jpg" for index in range(len(images))]
    for image, path in zip(images, paths, strict=True):
        image.save(path, quality=95)
    return paths


def fakes(photos: list[Image.Image], fake) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [fake(photo, rng) for photo in photos]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A resnet_tiny trained for two epochs on noise fakes (its quality does not matter here)."""
    root = tmp_path_factory.mktemp("benchmark-train")
    dataset = make_dataset_dir(root / "noise", photo_crops(40, seed=3), noise, "noise")
    train(compose_detect(f"train_sets=[{dataset}]", f"output_dir={root / 'run'}", "epochs=2"))
    return root / "run" / "best.pt"


@pytest.fixture(scope="module")
def genimage(tmp_path_factory) -> Path:
    """GenImage's layout: ROOT/<generator>/<subset>/{train,val}/{ai,nature}; `ADM` has noise fakes (60 images in
    val), `BigGAN` blurred fakes (120 images in val); the train halves must not be scored."""
    root = tmp_path_factory.mktemp("genimage") / "GenImage"
    photos = photo_crops(60, seed=4)
    for generator, subset, fake, count in (
        ("ADM", "imagenet_ai_0508_adm", noise, 30),
        ("BigGAN", "imagenet_ai_0419_biggan", blur, 60),
    ):
        for split, chosen in (("val", photos[:count]), ("train", photos[count - 10 : count])):
            save_images(root / generator / subset / split / "nature", chosen, "real")
            save_images(root / generator / subset / split / "ai", fakes(chosen, fake), generator.lower())
    return root


# The must-show: a results table on a GenImage-style folder, with the new metrics and one row per generator.


def test_genimage_folder_gives_one_row_per_generator_with_the_new_metrics(checkpoint, genimage, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aigen.detect", "task=eval", f"checkpoint={checkpoint}", f"eval_sets=[{genimage}]",
         "output_dir=eval", "workers=0", "logger=none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = tmp_path / "eval"
    rows = {row["dataset"]: row for row in read_csv(out / "results.csv")}
    assert list(rows) == ["GenImage/ADM", "GenImage/BigGAN"]
    assert [(rows[name]["n"], rows[name]["n_real"], rows[name]["n_ai"]) for name in rows] == [
        ("60", "30", "30"),  # val only: the train halves beside val/ are training data
        ("120", "60", "60"),
    ]
    assert {row["split"] for row in rows.values()} == {"all"}
    # Every number of the table is scikit-learn's on the per-image scores.
    scores = read_csv(out / "scores.csv")
    for name, row in rows.items():
        labels = np.array([int(line["label"]) for line in scores if line["dataset"] == name])
        values = np.array([float(line["score"]) for line in scores if line["dataset"] == name])
        called_ai = (values > 0.5).astype(int)
        expected = {
            "accuracy_real": sk.recall_score(labels, called_ai, pos_label=0),
            "accuracy_ai": sk.recall_score(labels, called_ai, pos_label=1),
            "balanced_accuracy": sk.balanced_accuracy_score(labels, called_ai),
            "roc_auc": sk.roc_auc_score(labels, values),
            "average_precision": sk.average_precision_score(labels, values),
        }
        for metric, value in expected.items():
            assert float(row[metric]) == pytest.approx(value, abs=2e-4), (name, metric)
        assert float(row["roc_auc_low"]) <= float(row["roc_auc"]) <= float(row["roc_auc_high"])
        assert float(row["accuracy_real_low"]) <= float(row["accuracy_real"]) <= float(row["accuracy_real_high"])
        assert 0 <= float(row["ece"]) <= 1 and 0 <= float(row["tpr_at_5_fpr"]) <= 1
    assert rows["GenImage/ADM"]["note"] and not rows["GenImage/BigGAN"]["note"]  # 60 images: warned; 120: not
    markdown = (out / "results.md").read_text()
    assert markdown.startswith("**Warning:** fewer than 100 images scored in GenImage/ADM:")
    header = next(line for line in markdown.splitlines() if line.startswith("| dataset"))
    for column in ("n (real/AI)", "real acc. [95% CI]", "AI acc. [95% CI]", "balanced acc.", "ROC AUC [95% CI]",
                   "AP", "TPR@5%FPR", "ECE"):  # fmt: skip
        assert f"| {column} |" in header
    assert "| GenImage/ADM | none | all | 60 (30/30) |" in markdown and "| GenImage/BigGAN |" in markdown
    assert (out / "confusion_GenImage-ADM.png").is_file() and (out / "confusion_GenImage-BigGAN.png").is_file()
    assert "GenImage/ADM (none, all): accuracy" in result.stdout


def test_a_folder_of_real_and_fake_and_a_nested_cnndetection_layout(checkpoint, tmp_path):
    photos = photo_crops(6, seed=5)
    flat = tmp_path / "flat"
    save_images(flat / "real", photos, "r")
    save_images(flat / "fake" / "deeper", fakes(photos, noise), "f")  # images anywhere below a class folder
    nested = tmp_path / "cnndetection"
    for generator, classes in (("progan", ("car", "cat")), ("deepfake", ("",))):
        for name in classes:
            save_images(nested / generator / name / "0_real", photos[:3], "r")
            save_images(nested / generator / name / "1_fake", fakes(photos[:3], noise), "f")
    split = tmp_path / "imagenet_ai_0508_adm" / "val"  # a GenImage split folder given directly
    save_images(split / "nature", photos[:2], "r")
    save_images(split / "ai", fakes(photos[:2], noise), "f")
    cfg = compose_detect("task=eval", f"checkpoint={checkpoint}", f"eval_sets=[{flat},{nested},{split}]",
                         f"output_dir={tmp_path / 'eval'}")  # fmt: skip
    rows = evaluate(cfg)
    assert [(row["dataset"], row["n"]) for row in rows] == [
        ("flat", 12),
        ("cnndetection/deepfake", 6),
        ("cnndetection/progan", 12),  # both classes (car, cat) pooled into the generator's row
        ("imagenet_ai_0508_adm/val", 4),
    ]
    assert rows[0]["ids"][:2] == ["real/r_000.jpg", "real/r_001.jpg"] and rows[0]["ids"][-1] == "fake/deeper/f_005.jpg"


def test_a_csv_of_path_and_label(checkpoint, tmp_path):
    photos = photo_crops(4, seed=6)
    real = save_images(tmp_path / "images" / "real", photos, "r")
    fake = save_images(tmp_path / "images" / "fake", fakes(photos, noise), "f")
    listing = tmp_path / "lists" / "bench.csv"
    listing.parent.mkdir()
    lines = ["path,label"] + [
        f"../images/real/{path.name},{label}" for path, label in zip(real, ["0", "real"] * 2, strict=True)
    ]
    lines += [f"../images/fake/{path.name},{label}" for path, label in zip(fake, ["1", "FAKE"] * 2, strict=True)]
    listing.write_text("\n".join(lines) + "\n")
    [row] = evaluate(
        compose_detect("task=eval", f"checkpoint={checkpoint}", f"eval_sets=[{listing}]", f"output_dir={tmp_path}/e")
    )
    assert (row["dataset"], row["n"], row["n_real"], row["n_ai"]) == ("bench", 8, 4, 4)
    assert list(row["labels"]) == [0, 0, 0, 0, 1, 1, 1, 1] and row["ids"][0] == "../images/real/r_000.jpg"
    assert row["note"] == "only 8 images: loose numbers"


def save_datasets_folder(path: Path, images: list[Image.Image], labels: list, names: list[str] | None, split: bool):
    import datasets

    label_feature = datasets.ClassLabel(names=names) if names else datasets.Value("int64")
    features = datasets.Features({"picture": datasets.Image(), "kind": label_feature, "note": datasets.Value("string")})
    table = datasets.Dataset.from_dict(
        {"picture": images, "kind": labels, "note": ["x"] * len(labels)}, features=features
    )
    (datasets.DatasetDict({"train": table, "test": table}) if split else table).save_to_disk(str(path))


@pytest.fixture(scope="module")
def datasets_folders(tmp_path_factory) -> dict[str, Path]:
    """The same 10 images as a Dataset with a ClassLabel column and as a DatasetDict with an integer column."""
    root = tmp_path_factory.mktemp("hf-sets")
    photos = photo_crops(5, seed=7)
    images, labels = photos + fakes(photos, noise), [0] * 5 + [1] * 5
    save_datasets_folder(root / "classes", images, labels, ["nature", "ai"], split=False)
    save_datasets_folder(root / "ints", images, [label * 7 for label in labels], None, split=True)
    return {"classes": root / "classes", "ints": root / "ints"}


def test_a_datasets_folder_with_an_explicit_label_mapping(checkpoint, datasets_folders, tmp_path):
    common = ["task=eval", f"checkpoint={checkpoint}", "benchmark.image_column=picture", "benchmark.label_column=kind"]
    by_class_name = "benchmark.labels={nature: real, ai: fake}"
    [by_name] = evaluate(
        compose_detect(*common, f"eval_sets=[{datasets_folders['classes']}]", by_class_name, f"output_dir={tmp_path}/a")
    )
    [by_value] = evaluate(
        compose_detect(*common, f"eval_sets=[{datasets_folders['ints']}]", "benchmark.labels={0: real, 7: fake}",
                       "benchmark.split=test", f"output_dir={tmp_path}/b")
    )  # fmt: skip
    assert (by_name["dataset"], by_name["n"], by_name["n_real"]) == ("classes", 10, 5)
    assert list(by_name["labels"]) == list(by_value["labels"]) == [0] * 5 + [1] * 5
    assert by_name["roc_auc"] == by_value["roc_auc"] and list(by_name["scores"]) == list(by_value["scores"])


# Metrics against scikit-learn on a hand-made case


LABELS = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
SCORES = np.array([0.05, 0.2, 0.2, 0.55, 0.7, 0.3, 0.6, 0.65, 0.8, 0.9, 0.95, 0.55])


def test_new_metrics_on_a_hand_made_case():
    metrics, counts = binary_metrics(LABELS, SCORES)
    assert counts.matrix() == [[3, 2], [1, 6]]
    assert metrics["accuracy_real"] == pytest.approx(3 / 5) == sk.recall_score(LABELS, SCORES > 0.5, pos_label=0)
    assert metrics["accuracy_ai"] == pytest.approx(6 / 7)
    assert metrics["balanced_accuracy"] == pytest.approx((3 / 5 + 6 / 7) / 2)
    assert metrics["roc_auc"] == pytest.approx(sk.roc_auc_score(LABELS, SCORES))
    # 5 real images: a threshold flags at most 5% of them only when it flags none, i.e. above 0.7 (3 fakes of 7)
    assert metrics["tpr_at_5_fpr"] == pytest.approx(3 / 7)
    assert tpr_at_fpr(LABELS, SCORES, 0.2) == pytest.approx(5 / 7)  # one real image (0.7) may be flagged
    assert tpr_at_fpr(LABELS, SCORES, 0.3) == pytest.approx(5 / 7)  # a reached point of the curve, not interpolated
    assert (metrics["n"], metrics["n_real"], metrics["n_ai"]) == (12, 5, 7)
    one_class, _ = binary_metrics(np.array([1, 1]), np.array([0.2, 0.9]))
    assert math.isnan(one_class["accuracy_real"]) and math.isnan(one_class["balanced_accuracy"])
    assert math.isnan(one_class["tpr_at_5_fpr"]) and one_class["accuracy_ai"] == 0.5


def test_expected_calibration_error_by_hand_and_from_calibration_curve():
    # two bins: [0, 0.5] holds 0.2 (real) and 0.5 (AI, on the edge): |0.35 - 0.5|; (0.5, 1] holds 0.9, 0.9 (AI)
    # and 0.6 (real): |0.8 - 2/3|; weighted by 2/5 and 3/5
    labels, scores = np.array([0, 1, 1, 1, 0]), np.array([0.2, 0.5, 0.9, 0.9, 0.6])
    expected = 2 / 5 * abs(0.35 - 0.5) + 3 / 5 * abs(0.8 - 2 / 3)
    assert expected_calibration_error(labels, scores, bins=2) == pytest.approx(expected)
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0
    # the same bins as sklearn's calibration_curve: its two curves, weighted by the bins' sizes
    rng = np.random.default_rng(0)
    labels, scores = rng.integers(0, 2, 500), rng.random(500)
    prob_true, prob_pred = calibration_curve(labels, scores, n_bins=15)
    sizes = np.histogram(scores, bins=np.linspace(0, 1, 16))[0]
    assert expected_calibration_error(labels, scores) == pytest.approx(
        np.sum(sizes[sizes > 0] / 500 * np.abs(prob_true - prob_pred))
    )


def test_wilson_interval_matches_its_formula():
    successes, trials, z = 6, 7, stats.norm.ppf(0.975)
    share = successes / trials
    centre = (share + z**2 / (2 * trials)) / (1 + z**2 / trials)
    half = z / (1 + z**2 / trials) * math.sqrt(share * (1 - share) / trials + z**2 / (4 * trials**2))
    assert wilson_interval(successes, trials) == pytest.approx((centre - half, centre + half))
    assert wilson_interval(0, 10)[0] == 0.0 and all(map(math.isnan, wilson_interval(0, 0)))


def test_auc_interval_is_a_stratified_bootstrap_of_sklearns_auc():
    rng = np.random.default_rng(1)
    labels = np.array([0] * 60 + [1] * 40)
    scores = np.round(np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1), 1)  # rounded: many ties
    low, high = auc_interval(labels, scores)
    resampled = []
    for _ in range(1000):  # the same bootstrap by hand: each class resampled on its own, sklearn's AUC
        real = rng.choice(scores[labels == 0], 60)
        ai = rng.choice(scores[labels == 1], 40)
        resampled.append(sk.roc_auc_score(labels, np.concatenate([real, ai])))
    assert (low, high) == pytest.approx(tuple(np.percentile(resampled, [2.5, 97.5])), abs=0.02)
    assert low < sk.roc_auc_score(labels, scores) < high
    assert all(map(math.isnan, auc_interval(np.array([0, 1, 1]), np.array([0.1, 0.5, 0.9]))))  # one real image


# Bad set specs: one line, before any work


def bad_specs(root: Path) -> dict[str, tuple[str, list[str], str]]:
    """name -> (eval_sets entry, extra overrides, expected fragment of the one-line error)."""
    photo = photo_crops(1, seed=8)
    save_images(root / "no_layout" / "pictures", photo, "p")
    (root / "empty_classes" / "real").mkdir(parents=True)
    (root / "empty_classes" / "fake").mkdir(parents=True)
    (root / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    (root / "columns.csv").write_text("file,label\na.jpg,0\n")
    (root / "bad_label.csv").write_text("path,label\na.jpg,maybe\n")
    (root / "missing.csv").write_text("path,label\nnowhere.jpg,1\n")
    (root / "notes.txt").write_text("hello")
    for generator, classes in (("adm", ("nature", "ai")), ("biggan", ("nature",))):  # biggan's ai/ not unpacked
        for name in classes:
            save_images(root / "half_pair" / generator / "val" / name, photo, name)
    save_images(root / "real_only" / "real", photo, "r")
    (root / "real_only" / "fake").mkdir()
    (root / "real_only.csv").write_text("path,label\nreal_only/real/r_000.jpg,0\n")
    return {
        "missing folder": (str(root / "nope"), [], "does not exist"),
        "no layout": (str(root / "no_layout"), [], "is not one of: an aigen dataset dir"),
        "no images": (str(root / "empty_classes"), [], "holds no images"),
        "unreadable csv": (str(root / "binary.csv"), [], "cannot be read as a CSV of path,label"),
        "csv columns": (str(root / "columns.csv"), [], "needs a header with the columns path,label"),
        "csv label": (str(root / "bad_label.csv"), [], "line 2: needs a path and a label 0, 1, real or fake"),
        "csv images": (str(root / "missing.csv"), [], "1 images listed in eval set"),
        "other file": (str(root / "notes.txt"), [], "is a file but not a .csv"),
        "one class folder": (str(root / "half_pair"), [], "without their partner beside them: biggan/val/nature"),
        "one class": (str(root / "real_only"), [], "real_only holds no AI images"),
        "csv of one class": (str(root / "real_only.csv"), [], "real_only holds no AI images"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing folder", "no layout", "no images", "unreadable csv", "csv columns", "csv label", "csv images",
     "other file", "one class folder", "one class", "csv of one class"],
)  # fmt: skip
def test_a_bad_set_spec_is_a_user_error_before_any_work(checkpoint, tmp_path, case):
    entry, overrides, fragment = bad_specs(tmp_path)[case]
    out = tmp_path / "eval"
    cfg = compose_detect(
        "task=eval", f"checkpoint={checkpoint}", f"eval_sets=[{entry}]", f"output_dir={out}", *overrides
    )
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        evaluate(cfg)
    assert not out.exists()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ([], "say which labels are real and fake, e.g. 'benchmark.labels={0: real, 1: fake}'"),
        (["benchmark.labels={nature: real, ai: maybe}"], "maps to 'maybe', not real or fake"),
        (["benchmark.labels={nature: real}"], "label 'ai' in column 'kind' is not in benchmark.labels (nature)"),
        (["benchmark.labels={nature: real, ai: fake}", "benchmark.label_column=kinds"], "has no column 'kinds'"),
        (["benchmark.labels={nature: real, ai: fake}", "benchmark.image_column=note"], "column 'note' holds no"),
        (["benchmark.labels={nature: real, ai: real}"], "classes holds no AI images"),
    ],
)
def test_a_bad_datasets_spec_is_a_user_error(checkpoint, datasets_folders, tmp_path, overrides, fragment):
    cfg = compose_detect("task=eval", f"checkpoint={checkpoint}", f"eval_sets=[{datasets_folders['classes']}]",
                         "benchmark.image_column=picture", "benchmark.label_column=kind", *overrides,
                         f"output_dir={tmp_path / 'eval'}")  # fmt: skip
    with pytest.raises(UserError) as raised:
        evaluate(cfg)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_a_dataset_dict_needs_its_split_named(checkpoint, datasets_folders, tmp_path):
    cfg = compose_detect("task=eval", f"checkpoint={checkpoint}", f"eval_sets=[{datasets_folders['ints']}]",
                         "benchmark.image_column=picture", "benchmark.label_column=kind",
                         "benchmark.labels={0: real, 7: fake}", f"output_dir={tmp_path / 'eval'}")  # fmt: skip
    with pytest.raises(UserError, match="benchmark.split=None is not one of train, test"):
        evaluate(cfg)


def test_a_bad_set_spec_is_one_line_on_the_command_line(checkpoint, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aigen.detect", "task=eval", f"checkpoint={checkpoint}",
         f"eval_sets=[{tmp_path / 'nope'}]", "output_dir=eval", "logger=none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert line == f"error: eval set {tmp_path / 'nope'} does not exist"
    assert not (tmp_path / "eval").exists()


def test_a_matrix_takes_a_benchmark_folder_as_columns_and_a_rerun_scores_nothing(genimage, tmp_path, monkeypatch):
    from aigen.detector import matrix as matrix_module

    dataset = make_dataset_dir(tmp_path / "noise", photo_crops(12, seed=11), noise, "noise")
    cfg = compose_detect("task=matrix", f"train_sets=[{dataset}]", f"eval_sets=[{genimage}]", "epochs=1",
                         "val_fraction=0.25", "test_fraction=0.25", f"output_dir={tmp_path / 'matrix'}")  # fmt: skip
    cells = matrix_module.matrix(cfg)
    assert [(cell["train"], cell["eval"], cell["n"]) for cell in cells] == [
        ("noise", "GenImage/ADM", 60),
        ("noise", "GenImage/BigGAN", 120),
    ]
    assert (
        "| trained on \\ evaluated on | GenImage/ADM | GenImage/BigGAN |"
        in (tmp_path / "matrix" / "matrix.md").read_text()
    )

    def forbidden(*args, **kwargs):
        raise AssertionError("a finished cell was scored again")

    monkeypatch.setattr(matrix_module, "score_sets", forbidden)
    assert matrix_module.matrix(cfg) == cells


def broken_images(folder: Path) -> None:
    """Two files named as images that cannot be decoded: text, and a JPEG cut in half."""
    (folder / "text.jpg").write_text("not an image")
    whole = (folder / "r_000.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])


def test_undecodable_images_are_a_counted_skip(checkpoint, tmp_path):
    photos = photo_crops(4, seed=12)
    save_images(tmp_path / "bench" / "real", photos, "r")
    save_images(tmp_path / "bench" / "fake", fakes(photos, noise), "f")
    broken_images(tmp_path / "bench" / "real")
    cfg = compose_detect("task=eval", f"checkpoint={checkpoint}", f"eval_sets=[{tmp_path / 'bench'}]",
                         f"output_dir={tmp_path / 'eval'}")  # fmt: skip
    [row] = evaluate(cfg)
    assert (row["n"], row["n_real"], row["n_ai"]) == (8, 4, 4)
    assert row["note"] == "only 8 images: loose numbers; 2 unreadable skipped, e.g. real/text.jpg"
    assert "real/truncated.jpg" not in row["ids"] and len(row["ids"]) == 8
    assert "2 unreadable skipped" in (tmp_path / "eval" / "results.md").read_text()


def test_a_class_whose_every_image_is_undecodable_is_one_line_not_a_row_of_the_other(checkpoint, tmp_path):
    save_images(tmp_path / "bench" / "fake", fakes(photo_crops(2, seed=13), noise), "f")
    (tmp_path / "bench" / "real").mkdir()
    for name in ("a.jpg", "b.png"):
        (tmp_path / "bench" / "real" / name).write_text("not an image")
    cfg = compose_detect("task=eval", f"checkpoint={checkpoint}", f"eval_sets=[{tmp_path / 'bench'}]",
                         f"output_dir={tmp_path / 'eval'}")  # fmt: skip
    with pytest.raises(UserError, match=r"^bench: none of its 2 real images can be decoded, e.g. real/\w+.jpg; a row"):
        evaluate(cfg)


def test_a_matrix_scores_a_datasets_column_again_when_its_labels_are_corrected(datasets_folders, tmp_path, monkeypatch):
    """A cell is what its images were scored against: swapped benchmark.labels are a new cell, not the old one."""
    from aigen.detector import matrix as matrix_module

    dataset = make_dataset_dir(tmp_path / "noise", photo_crops(12, seed=11), noise, "noise")
    common = ["task=matrix", f"train_sets=[{dataset}]", f"eval_sets=[{datasets_folders['ints']}]", "epochs=1",
              "val_fraction=0.25", "test_fraction=0.25", f"output_dir={tmp_path / 'matrix'}", "benchmark.split=test",
              "benchmark.image_column=picture", "benchmark.label_column=kind"]  # fmt: skip
    [swapped] = matrix_module.matrix(compose_detect(*common, "benchmark.labels={0: fake, 7: real}"))
    scored, score_sets = [], matrix_module.score_sets
    monkeypatch.setattr(matrix_module, "score_sets", lambda *args: scored.append(args[1]) or score_sets(*args))
    [corrected] = matrix_module.matrix(compose_detect(*common, "benchmark.labels={0: real, 7: fake}"))
    assert len(scored) == 1 and corrected["roc_auc"] == pytest.approx(1 - swapped["roc_auc"])
