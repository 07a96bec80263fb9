"""The detector benchmark: the split by photo content, validation vs test, the cross-generator matrix, the CLIP
probe, robustness perturbations, paired augmentation and a real small run with its swapped-label guard."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from detect_data import blur, colour_shift, make_dataset_dir, noise, photo_crops, same
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

from aigen.detector import matrix as matrix_module
from aigen.detector import train as train_module
from aigen.detector.data import Augment, PairImages, Preprocess, load_pairs, make_split, unseen_pairs
from aigen.detector.evaluate import check_labels, evaluate
from aigen.detector.features import FeatureCache
from aigen.detector.matrix import check_same_settings, matrix
from aigen.detector.metrics import binary_metrics, intervals
from aigen.detector.perturb import parse_perturbation
from aigen.detector.runtime import loader, resolve_precision, resolve_workers
from aigen.detector.train import check_settings, train
from aigen.errors import UserError
from aigen.splits import split_of
from conftest import CONF

# The documented settings for a small dataset (README, "Train a detector"), on 64 px images.
SMALL = [
    "model=resnet_tiny",
    "image_size=64",
    "batch_size=16",
    "epochs=5",
    "val_fraction=0.2",
    "test_fraction=0.2",
    "workers=0",
    "logger=none",
]


def compose_detect(*overrides: str) -> DictConfig:
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("detect", overrides=[*SMALL, *overrides])


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """80 real photo crops with noise / blurred / colour-shifted / identical fake halves; the same photos under
    other ids and folders (`moved`); other photos under the same paths as `noise` (`other`)."""
    root = tmp_path_factory.mktemp("benchmark-data")
    photos = photo_crops(80)
    made = {
        name: make_dataset_dir(root / f"indoor-{name}-64", photos, fake, name)
        for name, fake in (("noise", noise), ("blur", blur), ("shift", colour_shift), ("identity", same))
    }
    moved_ids = [f"renamed-{index}" for index in range(len(photos))]
    made["moved"] = make_dataset_dir(root / "moved", photos, noise, "noise", ids=moved_ids, folder="sub")
    made["other"] = make_dataset_dir(root / "other", photo_crops(80, seed=1), noise, "noise")
    return made


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory) -> dict[str, Path]:
    """Three generators' fakes of the same 40 photos: for the matrices (12 cells, kept fast)."""
    root = tmp_path_factory.mktemp("matrix-data")
    photos = photo_crops(40, seed=2)
    return {
        name: make_dataset_dir(root / f"indoor-{name}-64", photos, fake, name)
        for name, fake in (("noise", noise), ("blur", blur), ("shift", colour_shift))
    }


@pytest.fixture(scope="module")
def noise_run(sets, tmp_path_factory) -> tuple[Path, list[tuple[str, set[str]]]]:
    """A real training run on `noise` with the small-dataset settings; records which pair ids each input set read."""
    run = tmp_path_factory.mktemp("noise-run") / "run"
    reads = []
    real_inputs = train_module.Inputs

    class RecordingInputs(real_inputs):
        def __call__(self, groups, *args, desc="", **kwargs):
            reads.append((desc, {pair.id for group in groups for pair in group}))
            return super().__call__(groups, *args, desc=desc, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "Inputs", RecordingInputs)
        train(compose_detect(f"train_sets=[{sets['noise']}]", f"output_dir={run}"))
    return run, reads


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# 1. The split


def test_split_follows_photo_content_whatever_the_path(sets):
    noise_pairs, moved_pairs = load_pairs(sets["noise"]), load_pairs(sets["moved"])
    split = make_split({sets["noise"]: noise_pairs, sets["moved"]: moved_pairs}, 0, 0.2, 0.2)
    side_of_key: dict[str, set[str]] = {}
    for dataset_dir, pairs in ((sets["noise"], noise_pairs), (sets["moved"], moved_pairs)):
        by_id = {pair.id: pair for pair in pairs}
        for side, ids in split["datasets"][str(dataset_dir)].items():
            for image_id in ids:
                side_of_key.setdefault(by_id[image_id].key, set()).add(side)
    assert len(side_of_key) == 80 and all(len(sides) == 1 for sides in side_of_key.values())
    assert {side for sides in side_of_key.values() for side in sides} == {"train", "val", "test"}
    assert not set(split["keys"]["train"]) & set(split["keys"]["val"])

    # The same photos under other paths: only the test photos are unseen; the rest are counted as seen.
    noise_split = make_split({sets["noise"]: noise_pairs}, 0, 0.2, 0.2)
    chosen, seen = unseen_pairs(moved_pairs, noise_split, "unseen")
    test_keys = {pair.key for pair in noise_pairs if split_of(pair.key, 0, 0.2, 0.2) == "test"}
    assert {pair.key for pair in chosen} == test_keys and seen == 80 - len(test_keys)

    # Other photos with the same relative paths are not dropped: nothing is seen, the split follows their content.
    other = load_pairs(sets["other"])
    assert [pair.original.relative_to(sets["other"]) for pair in other] == [
        pair.original.relative_to(sets["noise"]) for pair in noise_pairs
    ]
    chosen, seen = unseen_pairs(other, noise_split, "unseen")
    assert (len(chosen), seen) == (80, 0)
    chosen, seen = unseen_pairs(other, noise_split, "test")
    assert {pair.id for pair in chosen} == {pair.id for pair in other if split_of(pair.key, 0, 0.2, 0.2) == "test"}
    assert {pair.id for pair in chosen} & set(noise_split["datasets"][str(sets["noise"])]["train"])


# 2. Validation chooses best.pt; results come from the test pairs


def test_best_is_chosen_on_validation_and_results_use_test_pairs_only(noise_run, sets, tmp_path):
    run, reads = noise_run
    sides = json.loads((run / "split.json").read_text())["datasets"][str(sets["noise"])]
    assert dict(reads) == {"features (train)": set(sides["train"]), "features (val)": set(sides["val"])}
    history = json.loads((run / "metrics.json").read_text())["history"]
    best = max(history, key=lambda record: (record["val/accuracy"], -record["val/loss"]))
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == best["epoch"]

    eval_sets = f"eval_sets=[{sets['noise']},{sets['other']}]"
    cfg = compose_detect("task=eval", f"checkpoint={run / 'best.pt'}", eval_sets, f"output_dir={tmp_path}")
    rows = evaluate(cfg)
    scored = read_csv(tmp_path / "scores.csv")
    other_test = [pair.id for pair in load_pairs(sets["other"]) if split_of(pair.key, 0, 0.2, 0.2) == "test"]
    for row, test_ids in zip(rows, (sides["test"], other_test), strict=True):
        assert sorted((line["id"], line["label"]) for line in scored if line["dataset"] == row["dataset"]) == sorted(
            (image_id, label) for image_id in test_ids for label in ("0", "1")
        )
    assert (rows[0]["n"], rows[0]["seen"]) == (2 * len(sides["test"]), len(sides["train"]) + len(sides["val"]))
    assert (rows[1]["pairs"], rows[1]["seen"]) == (80, 0)  # other photos under the same paths: nothing seen


def test_best_pt_is_the_epoch_with_the_best_validation_accuracy(small_sets, tmp_path, monkeypatch):
    accuracies = iter([0.6, 0.9, 0.7])  # validation accuracy of epochs 1, 2, 3

    def scripted(labels, scores):
        metrics, counts = binary_metrics(labels, scores)
        return metrics | {"accuracy": next(accuracies)}, counts

    monkeypatch.setattr(train_module, "binary_metrics", scripted)
    result = train(
        compose_detect(f"train_sets=[{small_sets['noise']}]", "epochs=3", "patience=0", f"output_dir={tmp_path}")
    )
    assert result.best["epoch"] == 2 and result.last_epoch == 3
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == 2


# 3. The cross-generator matrix


@contextmanager
def recording_tracker(logged: dict):
    class Tracker:
        def table(self, key, columns, rows):
            logged[f"table/{key}"] = (columns, rows)

        def images(self, paths):
            logged.update({f"image/{key}": path for key, path in paths.items()})

    yield Tracker()


def test_matrix_of_three_generators_with_pooled_and_a_rerun_that_recomputes_nothing(small_sets, tmp_path, monkeypatch):
    logged: dict = {}
    monkeypatch.setattr(matrix_module, "tracking", lambda *args: recording_tracker(logged))
    three = ",".join(str(small_sets[name]) for name in ("noise", "blur", "shift"))
    cfg = compose_detect(
        "task=matrix",
        f"train_sets=[{three}]",
        f"eval_sets=[{three}]",
        "pooled=true",
        "epochs=2",
        f"output_dir={tmp_path}",
    )
    cells = matrix(cfg)
    assert [(cell["train"], cell["eval"]) for cell in cells] == [
        (train, test) for train in ("noise", "blur", "shift", "pooled") for test in ("noise", "blur", "shift")
    ]
    rows = read_csv(tmp_path / "matrix.csv")
    assert len(rows) == 12 and list(rows[0]) == list(matrix_module.COLUMNS)
    assert all(0 <= float(row["accuracy_low"]) <= float(row["accuracy"]) <= float(row["accuracy_high"]) for row in rows)
    markdown = (tmp_path / "matrix.md").read_text()
    assert markdown.count("| trained on \\ evaluated on | noise | blur | shift |") == 4 and "| pooled |" in markdown
    # n and a 95% interval in every cell, and a warning: these test sets are far below 100 images
    assert "### images scored, n (real/AI)" in markdown and markdown.startswith("**Warning:** fewer than 100")
    assert re.search(r"\| noise \| \d\.\d{4} \[\d\.\d{3}, \d\.\d{3}\] \|", markdown)
    with Image.open(tmp_path / "matrix.png") as png:
        assert png.format == "PNG" and png.width > 900
    columns, rows = logged["table/matrix"]
    assert len(rows) == 12 and columns[:2] == ["train", "eval"] and logged["image/matrix"] == tmp_path / "matrix.png"

    def forbidden(*args, **kwargs):
        raise AssertionError("a finished training run or cell was computed again")

    monkeypatch.setattr(matrix_module, "train", forbidden)
    monkeypatch.setattr(matrix_module, "score_sets", forbidden)
    assert matrix(cfg) == cells


def test_a_matrix_rerun_with_other_settings_is_refused(small_sets, tmp_path, monkeypatch):
    """Its runs and cells were made with the first settings: a rerun with others would report them as its own."""
    sets = (f"train_sets=[{small_sets['noise']}]", f"eval_sets=[{small_sets['blur']}]", f"output_dir={tmp_path}")
    first = compose_detect("task=matrix", *sets, "epochs=1")
    matrix(first)

    def forbidden(*args, **kwargs):
        raise AssertionError("a training run or cell of other settings was reused or computed")

    monkeypatch.setattr(matrix_module, "train", forbidden)
    monkeypatch.setattr(matrix_module, "score_sets", forbidden)
    for changed, named in (("lr=0.01", "lr 0.001 -> 0.01"), ("model.depths=[2,1,1,1]", "model.depths [1, 1, 1, 1]")):
        with pytest.raises(UserError, match=re.escape(named) + ".*use another output_dir"):
            matrix(compose_detect("task=matrix", *sets, "epochs=1", changed))
    (tmp_path / "cells.json").unlink()  # the finished training run alone is not reused either
    with pytest.raises(UserError, match="epochs 1 -> 2"):
        matrix(compose_detect("task=matrix", *sets, "epochs=2"))
    (tmp_path / "settings.json").unlink()  # a matrix that did not record its settings: they cannot be compared
    with pytest.raises(UserError, match="older aigen"):
        matrix(first)


# 4. The CLIP probe


def test_clip_probe_tiny_twin_trains_evaluates_and_computes_features_once(small_sets, tmp_path, monkeypatch):
    computed = []
    real_compute = FeatureCache.compute

    def counting(self, images, labels, perturbation, desc):
        computed.append(len(labels) // 2)  # pairs
        return real_compute(self, images, labels, perturbation, desc)

    monkeypatch.setattr(FeatureCache, "compute", counting)
    two = f"{small_sets['noise']},{small_sets['blur']}"
    probe = ["model=clip_probe_tiny", "lr=1e-2", "epochs=5", "pooled=true", f"cache_dir={tmp_path / 'cache'}"]
    cells = matrix(
        compose_detect(
            "task=matrix", *probe, f"train_sets=[{two}]", f"eval_sets=[{two}]", f"output_dir={tmp_path / 'a'}"
        )
    )
    assert len(cells) == 6  # noise, blur, pooled x noise, blur
    assert len(computed) == 6 and sum(computed) == 2 * 40  # train, val, test of each dataset: every pair once
    assert (tmp_path / "cache" / "clip-tiny-random-v1" / "config.json").is_file()
    payload = torch.load(tmp_path / "a" / "runs" / "noise" / "best.pt", weights_only=True)
    assert payload["architecture"] == "clip_probe" and set(payload["model_state"]) == {"head.weight", "head.bias"}
    assert payload["model_config"]["backbone"] == "aigen/clip-tiny-random"
    matrix(
        compose_detect(
            "task=matrix", *probe, f"train_sets=[{two}]", f"eval_sets=[{two}]", f"output_dir={tmp_path / 'b'}"
        )
    )
    assert len(computed) == 6  # a new matrix over the same datasets reads the cache


def test_a_probe_with_augmentations_is_refused_new_or_resumed(small_sets, tmp_path):
    """A probe trains on cached features, which augmentations would never reach: refused before a new run writes
    anything, and when a run is resumed with them."""
    run = tmp_path / "run"
    probe = ["task=train", f"train_sets=[{small_sets['noise']}]", f"output_dir={run}", "model=clip_probe_tiny",
             f"cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    with pytest.raises(UserError, match="clip_probe trains on cached backbone features"):
        train(compose_detect(*probe, "augment.jpeg=true"))
    assert not run.exists()
    train(compose_detect(*probe, "epochs=1"))
    with pytest.raises(UserError, match="clip_probe trains on cached backbone features"):
        train(compose_detect(*probe, "epochs=2", "resume=true", "augment.jpeg=true"))
    assert json.loads((run / "metrics.json").read_text())["history"][-1]["epoch"] == 1


def test_clip_backbone_not_available_offline_is_a_one_line_error(sets, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aigen.detect", "task=train", f"train_sets=[{sets['noise']}]", "output_dir=run", *SMALL,
         "model=clip_probe", "model.backbone=aigen-tests/no-such-clip"],
        cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert (
        "cannot load CLIP model 'aigen-tests/no-such-clip'" in line and "model.backbone=/path/to/a/local/copy" in line
    )


# 5. Robustness


def test_perturbations_give_a_row_each_and_treat_both_classes_alike(noise_run, sets, tmp_path):
    run, _ = noise_run
    cfg = compose_detect(
        "task=eval", f"checkpoint={run / 'best.pt'}", f"eval_sets=[{sets['noise']},{sets['identity']}]",
        "perturb=[jpeg75,blur1]", f"output_dir={tmp_path}",
    )  # fmt: skip
    rows = evaluate(cfg)
    assert [(row["dataset"], row["perturbation"]) for row in rows] == [
        (name, perturbation)
        for name in ("indoor-noise-64", "indoor-identity-64")
        for perturbation in ("none", "jpeg75", "blur1")
    ]
    assert len(read_csv(tmp_path / "results.csv")) == 6
    with Image.open(tmp_path / "robustness.png") as png:
        assert png.format == "PNG"
    identity = {
        row["perturbation"]: row["scores"].reshape(-1, 2) for row in rows if row["dataset"] == "indoor-identity-64"
    }
    for scores in identity.values():  # identical halves stay identical: the same perturbation on both classes
        np.testing.assert_array_equal(scores[:, 0], scores[:, 1])
    assert not np.allclose(identity["blur1"], identity["none"])


def test_perturbation_names_are_checked():
    assert parse_perturbation("downscale0.5").name == "downscale0.5"
    for bad in ("jpeg101", "jpeg7.5", "blur0", "downscale1", "sharpen1"):
        with pytest.raises(UserError, match="perturb"):
            parse_perturbation(bad)


# 6. Paired augmentation


def test_paired_augmentation_gives_both_halves_the_same_transform_and_batch(sets):
    pairs = load_pairs(sets["identity"])[:8]  # the AI half is a copy of the original: only augmentation differs
    augment = {"jpeg": True, "blur": True, "crop": True, "probability": 1.0}
    paired = PairImages(pairs, Preprocess(64), Augment(**augment, paired=True), seed=0)
    unpaired = PairImages(pairs, Preprocess(64), Augment(**augment, paired=False), seed=0)
    for pair in range(len(pairs)):
        assert torch.equal(paired[2 * pair][0], paired[2 * pair + 1][0])
        assert not torch.equal(unpaired[2 * pair][0], unpaired[2 * pair + 1][0])
    for images, labels in loader(paired, 4, 0, torch.device("cpu"), shuffle_seed=3, paired=True):
        assert (
            labels.tolist() == [0, 1, 0, 1] and torch.equal(images[0], images[1]) and torch.equal(images[2], images[3])
        )
    with pytest.raises(UserError, match="even"):
        check_settings(compose_detect("batch_size=7"))


# 7. A real small run, and the swapped-label guard


def test_small_noise_dataset_reaches_090_test_accuracy_and_swapped_labels_fail_loudly(noise_run, sets, tmp_path):
    run, _ = noise_run
    [row] = evaluate(
        compose_detect(
            "task=eval",
            f"checkpoint={run / 'best.pt'}",
            f"eval_sets=[{sets['noise']}]",
            f"output_dir={tmp_path / 'ok'}",
        )
    )
    assert row["split"] == "test" and row["accuracy"] >= 0.9 and row["n"] >= 20

    payload = torch.load(run / "best.pt", weights_only=True)
    for key in ("classifier.1.weight", "classifier.1.bias"):  # the two class outputs exchanged: original <-> AI
        payload["model_state"][key] = payload["model_state"][key].flip(0)
    torch.save(payload, tmp_path / "swapped.pt")
    with pytest.raises(UserError, match="labels look swapped"):
        evaluate(
            compose_detect(
                "task=eval",
                f"checkpoint={tmp_path / 'swapped.pt'}",
                f"eval_sets=[{sets['noise']}]",
                f"output_dir={tmp_path / 'bad'}",
            )
        )


@pytest.mark.parametrize("pairs", [1, 2])
def test_a_few_test_pairs_ranked_backwards_are_no_evidence_of_swapped_labels(pairs):
    """With one or two test pairs the AUC is 0 by chance often enough (1 in 2, 1 in 6): the row stands; the same
    ranking of 20 pairs is evidence."""
    for count, stops in ((pairs, False), (20, True)):
        labels = np.tile([0, 1], count)
        scores = np.tile([0.9, 0.1], count) + np.linspace(0, 0.01, 2 * count)  # every AI image below every real one
        metrics, counts = binary_metrics(labels, scores)
        row = {"dataset": "own", "perturbation": "none"} | metrics | intervals(labels, scores, counts)
        assert row["roc_auc"] == 0.0
        if stops:
            with pytest.raises(UserError, match="labels look swapped"):
                check_labels(row, trained_on=True)
        else:
            check_labels(row, trained_on=True)


# New-user fixes


def test_a_training_set_listed_twice_is_refused(small_sets, tmp_path):
    twice = f"train_sets=[{small_sets['noise']},{small_sets['noise']}]"
    with pytest.raises(UserError, match="train_sets lists a dataset twice"):
        train(compose_detect(twice, "epochs=1", f"output_dir={tmp_path}"))


@pytest.mark.parametrize("workers", [0, 2])
def test_an_undecodable_training_image_is_one_line_naming_it(small_sets, tmp_path, workers):
    """Also from a loader process, whose errors torch hands on with the process's traceback as their message."""
    dataset = tmp_path / "noise"
    shutil.copytree(small_sets["noise"], dataset)
    broken = next(pair.ai for pair in load_pairs(dataset) if split_of(pair.key, 0, 0.2, 0.2) == "train")
    broken.write_text("garbage")
    cfg = compose_detect(f"train_sets=[{dataset}]", "epochs=1", f"workers={workers}", f"output_dir={tmp_path / 'run'}")
    with pytest.raises(UserError) as raised:
        train(cfg)
    message = str(raised.value)
    assert message.startswith(f"{broken} cannot be read (") and message.endswith("check it with python -m aigen.verify")
    assert "\n" not in message


def test_workers_default_to_the_cpus_without_a_loader_warning(sets):
    workers = resolve_workers("auto")
    assert workers == min(8, len(os.sched_getaffinity(0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        next(iter(loader(PairImages(load_pairs(sets["noise"])[:2], Preprocess(64)), 4, workers, torch.device("cpu"))))
    with pytest.raises(UserError, match="workers"):
        resolve_workers(-1)


@pytest.mark.parametrize(("capability", "dtype"), [((7, 5), torch.float16), ((8, 0), torch.bfloat16)])
def test_auto_precision_picks_bf16_only_where_the_gpu_runs_it_natively(monkeypatch, capability, dtype):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert resolve_precision("auto", torch.device("cuda")) == dtype
    assert resolve_precision("auto", torch.device("cpu")) is None


def test_eval_preprocessing_is_a_centre_crop_by_default():
    pixels = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    crop = Preprocess(64, mean=(0, 0, 0), std=(1, 1, 1))(image)
    np.testing.assert_allclose(crop.numpy().transpose(1, 2, 0), pixels[16:80, 32:96] / 255, atol=1e-6)
    resized = Preprocess(64, mean=(0, 0, 0), std=(1, 1, 1), resize="resize")(image)
    assert resized.shape == crop.shape and not torch.allclose(resized, crop)


def test_a_matrix_whose_split_leaves_no_test_pair_fails_before_writing(small_sets, tmp_path):
    """40 photos at a 1% test share: the first training would fail on its split, so the matrix writes nothing."""
    out = tmp_path / "matrix"
    cfg = compose_detect(
        "task=matrix", f"train_sets=[{small_sets['noise']}]", f"eval_sets=[{small_sets['blur']}]",
        f"output_dir={out}", "test_fraction=0.01",
    )  # fmt: skip
    with pytest.raises(UserError, match="the detector trained on .*noise.*: no test pair: .* allow_no_test=true"):
        matrix(cfg)
    assert not out.exists()


def test_a_matrix_whose_model_cannot_be_built_fails_before_writing(small_sets, tmp_path):
    out = tmp_path / "matrix"
    cfg = compose_detect(
        "task=matrix", f"train_sets=[{small_sets['noise']}]", f"eval_sets=[{small_sets['blur']}]",
        f"output_dir={out}", f"model.pretrained={tmp_path / 'no-such-resnet'}",
    )  # fmt: skip
    with pytest.raises(UserError, match="model.pretrained=.*no-such-resnet.* does not exist"):
        matrix(cfg)
    assert not out.exists()


def test_a_matrix_takes_the_settings_of_its_first_run_that_trained_something(tmp_path):
    """A first attempt that failed before any checkpoint (a typo, out of memory) does not bind the corrected one."""
    check_same_settings(tmp_path, {"lr": 0.1})
    check_same_settings(tmp_path, {"lr": 0.2})  # nothing trained yet: these are the matrix's settings now
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "last.pt").write_bytes(b"")
    with pytest.raises(UserError, match=r"lr 0\.2 -> 0\.3"):
        check_same_settings(tmp_path, {"lr": 0.3})
