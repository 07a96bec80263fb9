"""Frozen backbone features on disk, so each image goes through CLIP or DINOv2 once: every epoch of a probe, every
cell of a matrix and every rerun read the cached tensors instead."""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from aigen.detector.data import LabelledImages, Preprocess, file_stamp
from aigen.detector.perturb import Perturbation
from aigen.detector.probe import FeatureProbe, backbone_location, load_backbone
from aigen.detector.runtime import autocast, loader
from aigen.records import write_atomic


def backbone_stamp(location: str, name: str, revision: str | None) -> list:
    """A hub model is its id and revision; a folder (the tiny twin, a local copy) is its files."""
    if not os.path.isdir(location):
        return [name, revision]
    return [file_stamp(path) for path in sorted(Path(location).iterdir()) if path.is_file()]


class FeatureCache:
    """A probe backbone's image features, keyed by the backbone, the preprocessing, the perturbation and the images'
    identity (their files, or a benchmark's data files); computed on the first request, then read from `root`."""

    def __init__(
        self,
        probe: FeatureProbe,
        preprocess: Preprocess,
        cache_dir: str,
        batch_size: int,
        workers: int,
        device: torch.device,
        dtype: torch.dtype | None,
    ) -> None:
        self.config, self.preprocess, self.cache_dir = probe.config, preprocess, cache_dir
        self.root = Path(os.path.expanduser(cache_dir)) / "features"
        self.batch_size, self.workers, self.device, self.dtype = batch_size, workers, device, dtype
        self.backbone = None  # loaded on the first cache miss only

    def key(self, images, perturbation: Perturbation) -> str:
        location = backbone_location(self.config.family, self.config.backbone, self.cache_dir)
        identity = {
            "backbone": backbone_stamp(location, self.config.backbone, self.config.revision),
            "preprocess": asdict(self.preprocess),
            "perturbation": perturbation.name,
            "images": images.stamps(),
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]

    def dataset(
        self, images, labels: list[int], perturbation: Perturbation, desc: str
    ) -> torch.utils.data.TensorDataset:
        """(feature, label) for every image, in order; `images` is a sequence of RGB images with `stamps()`."""
        path = self.root / f"{self.key(images, perturbation)}.pt"
        if path.is_file():
            features = torch.load(path, map_location="cpu", weights_only=True)
        else:
            features = self.compute(images, labels, perturbation, desc)
            self.root.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            torch.save(features, buffer)
            write_atomic(path, buffer.getvalue())
        return torch.utils.data.TensorDataset(features, torch.tensor(labels, dtype=torch.long))

    @torch.no_grad()
    def compute(self, images, labels: list[int], perturbation: Perturbation, desc: str) -> torch.Tensor:
        if self.backbone is None:
            self.backbone = load_backbone(self.config, self.cache_dir, self.device)
        dataset = LabelledImages(images, labels, self.preprocess, perturb=perturbation)
        chunks = []
        for batch, _ in tqdm(
            loader(dataset, self.batch_size, self.workers, self.device), desc=desc, unit="batch", leave=False
        ):
            with autocast(self.device, self.dtype):
                chunks.append(self.backbone(batch.to(self.device)).float().cpu())
        return torch.cat(chunks) if chunks else torch.zeros(0, self.config.dim)
