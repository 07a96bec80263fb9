"""`model=dinov2_probe`: the feature probe on DINOv2, its tiny random twin built offline and loaded back through
`from_pretrained`, cached features for pairs and for benchmark sets, checkpoints, and one-line load errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from detect_data import make_dataset_dir, noise, photo_crops
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig
from transformers import BitImageProcessorPil, Dinov2Model

from aigen.detector.data import IMAGENET_MEAN, IMAGENET_STD, ImageFiles
from aigen.detector.evaluate import evaluate
from aigen.detector.features import FeatureCache
from aigen.detector.model import load_detector
from aigen.detector.perturb import CLEAN
from aigen.detector.probe import BACKBONES, ensure_tiny, load_backbone
from aigen.detector.train import train
from aigen.errors import UserError
from conftest import CONF

FAST = ["model=dinov2_probe_tiny", "batch_size=16", "workers=0", "logger=none", "val_fraction=0.2", "test_fraction=0.2"]


def compose_detect(*overrides: str) -> DictConfig:
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("detect", overrides=[*FAST, *overrides])


def test_the_real_model_is_pinned():
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        model = compose("detect", overrides=["model=dinov2_probe"]).model
    assert (model.family, model.backbone) == ("dinov2", "facebook/dinov2-base")
    assert re.fullmatch(r"[0-9a-f]{40}", model.revision)


def test_tiny_twin_is_saved_in_the_real_layout_and_loads_through_from_pretrained(tmp_path):
    folder = ensure_tiny(BACKBONES["dinov2"], tmp_path)
    assert folder.name == "dinov2-tiny-random-v1"
    assert json.loads((folder / "config.json").read_text())["model_type"] == "dinov2"
    assert json.loads((folder / "preprocessor_config.json").read_text())["crop_size"] == {"height": 64, "width": 64}
    loaded = Dinov2Model.from_pretrained(folder)
    built, _ = BACKBONES["dinov2"].build_tiny()
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in built.state_dict().items())
    assert tuple(BitImageProcessorPil.from_pretrained(folder).image_mean) == IMAGENET_MEAN
    probe = instantiate(compose_detect(f"cache_dir={tmp_path}").model, _partial_=True)()
    config = probe.config
    assert (config.family, config.dim, config.image_size) == ("dinov2", 32, 64)
    assert (config.mean, config.std) == (IMAGENET_MEAN, IMAGENET_STD)
    features = load_backbone(config, str(tmp_path), torch.device("cpu"))(torch.zeros(3, 3, 64, 64))
    assert features.shape == (3, 32)
    assert ensure_tiny(BACKBONES["dinov2"], tmp_path) == folder  # built once


def test_building_a_tiny_twin_leaves_the_callers_random_state_alone(tmp_path):
    """A run's draws (a probe head's initial weights) are the same whether the twin's cache was cold or warm."""
    torch.manual_seed(7)
    ensure_tiny(BACKBONES["dinov2"], tmp_path)  # cold: builds, seeding torch for the twin's weights
    after_a_build = torch.rand(4)
    torch.manual_seed(7)
    ensure_tiny(BACKBONES["dinov2"], tmp_path)  # warm: reads nothing, draws nothing
    assert torch.equal(after_a_build, torch.rand(4))


def test_a_local_copy_is_loaded_by_path(tmp_path):
    folder = ensure_tiny(BACKBONES["dinov2"], tmp_path / "cache")
    cfg = compose_detect(f"model.backbone={folder}", f"cache_dir={tmp_path / 'other'}")
    probe = instantiate(cfg.model, _partial_=True)()
    assert probe.config.backbone == str(folder) and probe.config.dim == 32
    assert not (tmp_path / "other").exists()  # nothing built: the folder is the model


@pytest.fixture(scope="module")
def noise_set(tmp_path_factory) -> Path:
    return make_dataset_dir(tmp_path_factory.mktemp("dinov2-data") / "noise", photo_crops(30, seed=9), noise, "noise")


def test_dinov2_probe_trains_evaluates_a_benchmark_and_computes_features_once(noise_set, tmp_path, monkeypatch):
    computed = []
    real_compute = FeatureCache.compute

    def counting(self, images, labels, perturbation, desc):
        computed.append(len(labels))
        return real_compute(self, images, labels, perturbation, desc)

    monkeypatch.setattr(FeatureCache, "compute", counting)
    cache = f"cache_dir={tmp_path / 'cache'}"
    result = train(compose_detect(f"train_sets=[{noise_set}]", f"output_dir={tmp_path / 'run'}", "epochs=3", cache))
    assert sum(computed) == 2 * (30 - len(json.loads((tmp_path / "run" / "split.json").read_text())["datasets"][
        str(noise_set)]["test"]))  # fmt: skip
    payload = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert payload["architecture"] == "dinov2_probe" and set(payload["model_state"]) == {"head.weight", "head.bias"}
    assert payload["model_config"]["backbone"] == "aigen/dinov2-tiny-random"
    assert load_detector(tmp_path / "run" / "best.pt").model.config.family == "dinov2"
    assert 0 <= result.best["val/accuracy"] <= 1

    # A labelled folder beside the factory dataset: features once per set, a rerun reads them from the cache.
    benchmark = tmp_path / "bench"
    for label, folder in (("original", "real"), ("ai", "fake")):
        (benchmark / folder).mkdir(parents=True)
        for path in sorted((noise_set / label).glob("*.jpg"))[:5]:
            (benchmark / folder / path.name).write_bytes(path.read_bytes())
    checkpoint = f"checkpoint={tmp_path / 'run' / 'best.pt'}"
    eval_sets = f"eval_sets=[{noise_set},{benchmark}]"
    before = len(computed)
    rows = evaluate(compose_detect("task=eval", checkpoint, eval_sets, f"output_dir={tmp_path / 'e1'}", cache))
    assert [(row["dataset"], row["split"]) for row in rows] == [("noise", "test"), ("bench", "all")]
    assert computed[before:] == [rows[0]["n"], 10]
    again = evaluate(compose_detect("task=eval", checkpoint, eval_sets, f"output_dir={tmp_path / 'e2'}", cache))
    assert len(computed) == before + 2  # nothing recomputed
    assert [row["scores"].tolist() for row in again] == [row["scores"].tolist() for row in rows]
    assert np.isfinite(rows[1]["ece"])


def test_feature_cache_follows_the_files(tmp_path):
    photo = photo_crops(1, seed=10)[0]
    path = tmp_path / "a.jpg"
    photo.save(path, quality=95)
    probe = instantiate(compose_detect(f"cache_dir={tmp_path / 'cache'}").model, _partial_=True)()
    cache = FeatureCache(probe, probe.preprocess("crop"), str(tmp_path / "cache"), 4, 0, torch.device("cpu"), None)
    first = cache.key(ImageFiles([path]), CLEAN)
    assert cache.key(ImageFiles([path]), CLEAN) == first
    photo.rotate(90).save(path, quality=95)
    os.utime(path, ns=(1, 1))  # even with an old modification time, the size or time differs
    assert cache.key(ImageFiles([path]), CLEAN) != first


def test_dinov2_backbone_not_available_offline_is_a_one_line_error(noise_set, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aigen.detect", "task=train", f"train_sets=[{noise_set}]", "output_dir=run", *FAST,
         "model=dinov2_probe", "model.backbone=aigen-tests/no-such-dinov2"],
        cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "cannot load DINOv2 model 'aigen-tests/no-such-dinov2'" in line
    assert "model.backbone=/path/to/a/local/copy" in line


def test_undecodable_images_are_skipped_in_scoring_and_stop_training(noise_set, tmp_path):
    from test_benchmark_sets import broken_images

    cache = f"cache_dir={tmp_path / 'cache'}"
    benchmark = tmp_path / "bench"
    for label, folder in (("original", "real"), ("ai", "fake")):
        (benchmark / folder).mkdir(parents=True)
        for index, path in enumerate(sorted((noise_set / label).glob("*.jpg"))[:4]):
            (benchmark / folder / f"r_{index:03d}.jpg").write_bytes(path.read_bytes())
    broken_images(benchmark / "fake")
    train(compose_detect(f"train_sets=[{noise_set}]", f"output_dir={tmp_path / 'run'}", "epochs=1", cache))
    checkpoint = f"checkpoint={tmp_path / 'run' / 'best.pt'}"
    for output in ("e1", "e2"):  # computed, then read from the cache: the same skip
        [row] = evaluate(
            compose_detect(
                "task=eval", checkpoint, f"eval_sets=[{benchmark}]", f"output_dir={tmp_path / output}", cache
            )
        )
        assert (row["n_real"], row["n_ai"]) == (4, 4) and "2 unreadable skipped, e.g. fake/text.jpg" in row["note"]

    broken = tmp_path / "broken"
    shutil.copytree(noise_set, broken)
    (broken / "ai" / "p003.jpg").write_text("not an image")
    with pytest.raises(UserError, match=rf"features \(train\): 1 image cannot be decoded, e.g. {broken}/ai/p003.jpg$"):
        train(compose_detect(f"train_sets=[{broken}]", f"output_dir={tmp_path / 'run2'}", "epochs=1", cache))
