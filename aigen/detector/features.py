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

from aigen.detector.data import UNREADABLE, LabelledImages, Preprocess, file_stamp
from aigen.detector.perturb import Perturbation
from aigen.detector.probe import FeatureProbe, backbone_location, load_backbone
from aigen.detector.runtime import autocast, loader
from aigen.errors import UserError
from aigen.files import write_atomic
from aigen.words import counted


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
            "stored": "features and labels",  # what a cache file holds (a file of features alone is not read)
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]

    def dataset(
        self, images, labels: list[int], perturbation: Perturbation, desc: str, skip_unreadable: bool = False
    ) -> torch.utils.data.TensorDataset:
        """(feature, label) for every image, in order; `images` is a sequence of RGB images with `stamps()`.
        `skip_unreadable`: an image that cannot be decoded is labelled UNREADABLE (otherwise its error stops)."""
        path = self.root / f"{self.key(images, perturbation)}.pt"
        if path.is_file():
            stored = torch.load(path, map_location="cpu", weights_only=True)
        else:
            stored = self.compute(images, labels, perturbation, desc)
            self.root.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            torch.save(stored, buffer)
            write_atomic(path, buffer.getvalue())
        unreadable = (stored["labels"] == UNREADABLE).nonzero().flatten().tolist()
        if unreadable and not skip_unreadable:
            paths = getattr(images, "paths", None)  # files (not a benchmark's rows): name the first
            example = f", e.g. {paths[unreadable[0]]}" if paths else ""
            raise UserError(f"{desc}: {counted(len(unreadable), 'image')} cannot be decoded{example}")
        return torch.utils.data.TensorDataset(stored["features"], stored["labels"])

    @torch.no_grad()
    def compute(self, images, labels: list[int], perturbation: Perturbation, desc: str) -> dict[str, torch.Tensor]:
        """The features and the labels, UNREADABLE for an image that cannot be decoded."""
        if self.backbone is None:
            self.backbone = load_backbone(self.config, self.cache_dir, self.device)
        dataset = LabelledImages(images, labels, self.preprocess, perturb=perturbation, skip_unreadable=True)
        chunks, seen = [], []
        for batch, batch_labels in tqdm(
            loader(dataset, self.batch_size, self.workers, self.device),
            desc=desc,
            unit="batch",
            leave=False,
            disable=None,
        ):
            with autocast(self.device, self.dtype):
                chunks.append(self.backbone(batch.to(self.device)).float().cpu())
            seen.append(batch_labels)
        if not chunks:
            return {"features": torch.zeros(0, self.config.dim), "labels": torch.zeros(0, dtype=torch.long)}
        return {"features": torch.cat(chunks), "labels": torch.cat(seen).long()}
