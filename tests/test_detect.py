"""The detector baseline: metrics, train -> eval through the CLI, resume, models, one-line errors (the split by
content, the matrix, the CLIP probe and robustness: test_detect_benchmark.py)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from PIL import Image
from transformers import ResNetConfig, ResNetForImageClassification

from aigen.detector.data import LABELS, Augment, Pair, PairImages, Preprocess
from aigen.detector.evaluate import evaluate
from aigen.detector.metrics import binary_metrics
from aigen.detector.model import CHECKPOINT_FORMAT, load_detector
from aigen.detector.train import train
from aigen.errors import UserError
from aigen.factory import make_dataset
from conftest import CONF, TINY, compose_config

FAST = ["model=resnet_tiny", "image_size=64", "batch_size=8", "workers=0", "val_fraction=0.25", "test_fraction=0.25"]
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")


def compose_detect(*overrides: str) -> DictConfig:
    """conf/detect.yaml as `python -m aigen.detect` composes it, with the fast CPU settings and no logger."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("detect", overrides=[*FAST, "logger=none", *overrides])


def run_detect(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aigen.detect", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    for fragment in fragments:
        assert fragment in line


def write_photos(root: Path, count: int) -> None:
    """`count` distinct photos (crops and flips of scikit-image's samples), 80 px squares."""
    root.mkdir(parents=True)
    for index in range(count):
        photo = Image.fromarray(getattr(skimage.data, PHOTOS[index % len(PHOTOS)])()).convert("RGB")
        side = min(photo.size) * (2 + index % 3) // 4
        step = index // len(PHOTOS)
        left, top = step * (photo.width - side) // 5, step * (photo.height - side) // 5
        crop = photo.crop((left, top, left + side, top + side)).resize((80, 80))
        if index % 2:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crop.save(root / f"photo_{index:02d}.jpg", quality=95)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """Made once: 30 photos + their sd_tiny variations (`main`), and the 8 bundled samples (`second`)."""
    tmp = tmp_path_factory.mktemp("detect-data")
    write_photos(tmp / "photos", 30)
    made = {}
    for name, overrides in (("main", ["source=folder", f"source.root={tmp / 'photos'}"]), ("second", [])):
        cfg = compose_config(*TINY, "generator.steps=2", *overrides)
        with open_dict(cfg):
            cfg.dataset_dir = str(tmp / f"{name}-sd_tiny")
        make_dataset(cfg, run_dir=tmp / f"run-{name}")
        made[name] = Path(cfg.dataset_dir)
    return made


@pytest.fixture(scope="module")
def wandb_env(tmp_path_factory) -> dict[str, str]:
    """W&B offline with all of its folders in a tmp dir."""
    tmp = tmp_path_factory.mktemp("wandb")
    names = ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")
    for name in names:
        (tmp / name.lower()).mkdir()
    return {name: str(tmp / name.lower()) for name in names} | {"WANDB_MODE": "offline", "HOME": str(tmp)}


@pytest.fixture(scope="module")
def trained(datasets, wandb_env, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`python -m aigen.detect task=train` on the main dataset, logging offline to W&B."""
    cwd = tmp_path_factory.mktemp("train-cwd")
    args = ("task=train", f"train_sets=[{datasets['main']}]", "output_dir=run", "epochs=4", *FAST, "logger=wandb")
    result = run_detect(*args, cwd=cwd, env=wandb_env)
    assert result.returncode == 0, result.stderr
    return cwd / "run", result


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# 2. Metrics


def test_metrics_on_a_known_confusion_matrix():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.5, 0.9, 0.4, 0.3, 0.6, 0.7, 0.8, 0.95])  # 0.5 is not > 0.5: called original
    metrics, counts = binary_metrics(labels, scores)
    assert counts.matrix() == [[3, 1], [2, 4]]
    assert metrics["accuracy"] == pytest.approx(0.7)
    assert metrics["precision"] == pytest.approx(0.8)
    assert metrics["recall"] == pytest.approx(4 / 6)
    assert metrics["f1"] == pytest.approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))
    # originals scored below each AI image: 0.4 -> 2, 0.3 -> 2, 0.6 -> 3, 0.7 -> 3, 0.8 -> 3, 0.95 -> 4
    assert metrics["roc_auc"] == pytest.approx(17 / 24)
    assert metrics["n"] == 10


def test_nothing_called_ai_gives_zero_precision_and_f1():
    metrics, counts = binary_metrics(np.array([0, 1, 1]), np.array([0.1, 0.2, 0.3]))
    assert counts.matrix() == [[1, 0], [2, 0]]
    assert (metrics["precision"], metrics["recall"], metrics["f1"]) == (0.0, 0.0, 0.0)
    assert metrics["roc_auc"] == 1.0


def roc_auc(labels: list[int], scores: list[float]) -> float:
    return binary_metrics(np.array(labels), np.array(scores))[0]["roc_auc"]


def test_roc_auc_counts_ties_as_half_and_average_precision_is_reported():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == pytest.approx(3.5 / 4)
    assert roc_auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == 0.5
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert np.isnan(roc_auc([1, 1], [0.2, 0.4]))
    metrics, _ = binary_metrics(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.8, 0.7]))
    assert metrics["average_precision"] == pytest.approx((1 + 2 / 3) / 2)


# 3. and 4. Train and evaluate through the CLI


def test_training_writes_checkpoints_split_and_metrics(trained, datasets):
    run, result = trained
    assert {"best.pt", "last.pt", "split.json", "metrics.json"} <= {path.name for path in run.iterdir()}
    metrics = json.loads((run / "metrics.json").read_text())
    assert [record["epoch"] for record in metrics["history"]] == [1, 2, 3, 4]
    assert metrics["best"]["val/accuracy"] >= 0.9
    assert f"-> {run / 'best.pt'}" in result.stdout.splitlines()[-2]  # the one-line summary, then the files
    split = json.loads((run / "split.json").read_text())
    sides = split["datasets"][str(datasets["main"])]
    assert sorted(sides["train"] + sides["val"] + sides["test"]) == sorted(
        path.stem for path in (datasets["main"] / "original").glob("*.jpg")
    )
    assert sides["val"] and sides["test"] and not set(sides["val"]) & set(sides["train"])
    assert list(run.glob("wandb/offline-run-*/run-*.wandb"))


def test_eval_writes_a_row_and_a_confusion_matrix_per_dataset(trained, datasets, wandb_env):
    run, _ = trained
    eval_sets = f"eval_sets=[{datasets['main']},{datasets['second']}]"
    cwd = run.parent
    args = ("task=eval", f"checkpoint={run / 'best.pt'}", eval_sets, "output_dir=eval", "workers=0", "logger=wandb")
    result = run_detect(*args, cwd=cwd, env=wandb_env)
    assert result.returncode == 0, result.stderr
    out = cwd / "eval"
    rows = read_csv(out / "results.csv")
    assert list(rows[0]) == [
        "dataset", "perturbation", "split", "n", "n_real", "n_ai", "accuracy", "accuracy_low", "accuracy_high",
        "accuracy_real", "accuracy_real_low", "accuracy_real_high",
        "accuracy_ai", "accuracy_ai_low", "accuracy_ai_high", "balanced_accuracy",
        "roc_auc", "roc_auc_low", "roc_auc_high", "average_precision", "tpr_at_5_fpr", "ece",
        "precision", "recall", "f1", "pairs", "seen", "note",
    ]  # fmt: skip
    test_ids = json.loads((run / "split.json").read_text())["datasets"][str(datasets["main"])]["test"]
    assert [(row["dataset"], row["split"], row["n"], row["pairs"]) for row in rows] == [
        ("main-sd_tiny", "test", str(2 * len(test_ids)), "30"),  # only the test pairs of the training dataset
        ("second-sd_tiny", "test", rows[1]["n"], "8"),
    ]
    assert float(rows[0]["accuracy"]) >= 0.9
    markdown = (out / "results.md").read_text()
    assert "| dataset | perturbation | split | n (real/AI) | accuracy [95% CI] |" in markdown
    assert "| second-sd_tiny | none |" in markdown and "fewer than 100 images scored" in markdown
    for name in ("main-sd_tiny", "second-sd_tiny"):
        with Image.open(out / f"confusion_{name}.png") as png:
            assert png.format == "PNG" and png.width > 200
    assert "done: evaluated" in result.stdout
    [table] = out.glob("wandb/offline-run-*/files/media/table/results_*.table.json")
    assert len(json.loads(table.read_text())["data"]) == 2


def test_a_second_dataset_adds_a_row(trained, datasets, tmp_path):
    run, _ = trained
    checkpoint = f"checkpoint={run / 'best.pt'}"
    one = evaluate(
        compose_detect("task=eval", checkpoint, f"eval_sets=[{datasets['main']}]", f"output_dir={tmp_path}/1")
    )
    both = evaluate(
        compose_detect(
            "task=eval", checkpoint, f"eval_sets=[{datasets['main']},{datasets['second']}]", f"output_dir={tmp_path}/2"
        )
    )
    assert len(one) == 1 and len(both) == 2
    assert {key: one[0][key] for key in ("dataset", "accuracy", "roc_auc", "n")} == {
        key: both[0][key] for key in ("dataset", "accuracy", "roc_auc", "n")
    }
    assert len(read_csv(tmp_path / "2" / "results.csv")) == 2


def test_photos_trained_on_are_left_out_of_every_dataset(trained, datasets, tmp_path):
    """A dataset of the same photos from another generator (here: a copy) is scored on the unseen photos only."""
    run, _ = trained
    same_photos = tmp_path / "main-other_generator"
    shutil.copytree(datasets["main"], same_photos)
    cfg = compose_detect(
        "task=eval", f"checkpoint={run / 'best.pt'}", f"eval_sets=[{same_photos}]", f"output_dir={tmp_path}"
    )
    [row] = evaluate(cfg)
    sides = json.loads((run / "split.json").read_text())["datasets"][str(datasets["main"])]
    assert (row["split"], row["n"], row["seen"]) == (
        "test",
        2 * len(sides["test"]),
        len(sides["train"]) + len(sides["val"]),
    )


# 5. Resume


def test_resume_continues_where_the_run_stopped(datasets, tmp_path, capsys):
    train_set = f"train_sets=[{datasets['second']}]"
    straight = train(compose_detect(train_set, f"output_dir={tmp_path / 'straight'}", "epochs=2"))
    train(compose_detect(train_set, f"output_dir={tmp_path / 'resumed'}", "epochs=1"))
    capsys.readouterr()
    resumed = train(compose_detect(train_set, f"output_dir={tmp_path / 'resumed'}", "epochs=2", "resume=true"))
    assert "at epoch 2" in capsys.readouterr().out
    history = json.loads((tmp_path / "resumed" / "metrics.json").read_text())["history"]
    assert [record["epoch"] for record in history] == [1, 2]
    assert resumed.last_epoch == 2 and resumed.best == straight.best  # deterministic: same as a straight run
    weights = [
        torch.load(tmp_path / run / "last.pt", weights_only=True)["model_state"] for run in ("straight", "resumed")
    ]
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_a_finished_run_is_not_overwritten(datasets, tmp_path):
    cfg = compose_detect(f"train_sets=[{datasets['second']}]", f"output_dir={tmp_path}", "epochs=1")
    train(cfg)
    with pytest.raises(UserError, match="resume=true"):
        train(cfg)


# Models and inputs


@pytest.mark.parametrize(("model", "torchvision_parameters"), [("resnet34", 21_797_672), ("resnet50", 25_557_032)])
def test_model_matches_torchvision_parameter_count(model, torchvision_parameters):
    cfg = compose_detect(f"model={model}")
    network = instantiate(cfg.model, _partial_=True)()
    assert network.config.num_labels == 2 and network.config.id2label == {0: "original", 1: "ai"}
    backbone = sum(p.numel() for name, p in network.named_parameters() if not name.startswith("classifier"))
    assert backbone + 1000 * (cfg.model.hidden_sizes[-1] + 1) == torchvision_parameters


def test_pretrained_folder_loads_with_a_new_two_class_head(tmp_path):
    torch.manual_seed(0)
    saved = ResNetForImageClassification(
        ResNetConfig(layer_type="basic", depths=[1, 1], hidden_sizes=[8, 16], embedding_size=8, num_labels=1000)
    )
    saved.save_pretrained(tmp_path / "tiny-resnet")
    cfg = compose_detect(f"model.pretrained={tmp_path / 'tiny-resnet'}")
    network = instantiate(cfg.model, _partial_=True)()
    assert network.config.num_labels == 2 and network.classifier[-1].out_features == 2
    assert network.config.hidden_sizes == [8, 16]  # the pretrained architecture, not the group's
    assert torch.equal(
        network.resnet.embedder.embedder.convolution.weight, saved.resnet.embedder.embedder.convolution.weight
    )


def test_augmentations_are_seeded_per_epoch_and_image(datasets):
    photo = sorted((datasets["second"] / "original").glob("*.jpg"))[0]
    pairs = [Pair("x", "sha256:x", photo, photo)]
    augment = Augment(jpeg=True, blur=True, crop=True, probability=1.0)
    images = PairImages(pairs, Preprocess(64), augment, seed=0)
    first = images[0][0]
    assert first.shape == (3, 64, 64) and torch.equal(images[0][0], first)
    images.epoch = 1
    assert not torch.equal(images[0][0], first)
    assert not torch.equal(PairImages(pairs, Preprocess(64))[0][0], first)


# 6. One-line errors


def test_missing_dataset_dir_is_a_one_line_error(tmp_path):
    result = run_detect(
        "task=train", f"train_sets=[{tmp_path / 'nope'}]", "output_dir=run", *FAST, "logger=none", cwd=tmp_path
    )
    assert_one_line_error(result, "nope", "is not a directory")


def test_a_gpu_the_machine_does_not_have_is_one_line_before_any_work(tmp_path):
    args = ("task=train", f"train_sets=[{tmp_path / 'nope'}]", "output_dir=run", *FAST, "logger=none", "device=cuda")
    result = run_detect(*args, cwd=tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})  # no GPU, also on a GPU machine
    assert_one_line_error(result, "device=cuda: torch sees no CUDA GPU")
    assert not (tmp_path / "run").exists()


def test_missing_checkpoint_is_a_one_line_error(tmp_path, datasets):
    args = (
        "task=eval",
        "checkpoint=run/best.pt",
        f"eval_sets=[{datasets['second']}]",
        "output_dir=eval",
        "logger=none",
    )
    result = run_detect(*args, cwd=tmp_path)
    assert_one_line_error(result, "best.pt", "does not exist")


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path):
    """Not torch's paragraphs of advice on loading it unsafely: what the file is not, and why."""
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint\n")
    with pytest.raises(UserError) as raised:
        load_detector(path)
    message = str(raised.value)
    assert message.startswith(f"{path} is not an aigen detector checkpoint (UnpicklingError: ")
    assert "\n" not in message and "weights_only" not in message


def test_a_checkpoint_of_an_unknown_architecture_is_one_line(tmp_path):
    path = tmp_path / "other.pt"
    payload = {"format": CHECKPOINT_FORMAT, "labels": LABELS, "architecture": "vit", "model_config": {}}
    torch.save(payload | {"preprocess": asdict(Preprocess(64))}, path)
    with pytest.raises(UserError, match="the checkpoint's architecture 'vit' is not one of resnet, clip_probe"):
        load_detector(path)


def test_pretrained_model_not_available_offline_is_a_one_line_error(tmp_path, datasets):
    args = ("task=train", f"train_sets=[{datasets['second']}]", "output_dir=run", *FAST, "logger=none")
    result = run_detect(*args, "model.pretrained=aigen-tests/no-such-resnet", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert_one_line_error(result, "cannot load model.pretrained='aigen-tests/no-such-resnet'", "HF_HUB_OFFLINE")


def test_dataset_dir_without_pairs_is_a_user_error(tmp_path):
    cfg = compose_detect(f"train_sets=[{tmp_path}]", f"output_dir={tmp_path / 'run'}")
    (tmp_path / "dataset.json").write_text("{}")
    with pytest.raises(UserError, match="has no pairs in its manifest yet"):
        train(cfg)


def test_training_refuses_when_no_photo_is_left_for_test(datasets, tmp_path):
    """8 photos at a 10% test share leave the test split empty: the numbers eval would report could not exist."""
    overrides = (f"train_sets=[{datasets['second']}]", f"output_dir={tmp_path / 'run'}", "test_fraction=0.05")
    with pytest.raises(UserError, match="no test pair: .* allow_no_test=true"):
        train(compose_detect(*overrides))
    assert not (tmp_path / "run").exists()
    allowed = compose_detect(*overrides, "allow_no_test=true", "epochs=1")
    train(allowed)
    assert (tmp_path / "run" / "best.pt").is_file()


def test_heatmap_column_labels_keep_the_end_of_names_that_share_their_start():
    """Dataset dir names differ at the end (`...-g3.0-s0` and its versioned `...-g3.0-s0-22f07e4c`): every
    column label is the whole name, in lines that fit the cell."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    from aigen.detector.plots import draw_heatmap, label_lines  # noqa: PLC0415

    measure, font = ImageDraw.Draw(Image.new("RGB", (1, 1))), ImageFont.load_default(size=14)
    names = ["samples-sd_tiny-64-g3.0-s0", "samples-sd_tiny-64-g3.0-s0-22f07e4c", "x" * 40]
    for name in names:
        lines = label_lines(measure, name, font, 102)
        assert "".join(lines) == name and all(measure.textlength(line, font=font) <= 102 for line in lines)
    assert label_lines(measure, names[0], font, 102) != label_lines(measure, names[1], font, 102)
    one_line = draw_heatmap([[0.5]], ["a"], ["a"], "accuracy")
    assert draw_heatmap([[0.5, 0.5]], ["a"], names[:2], "accuracy").height > one_line.height
