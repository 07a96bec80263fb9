"""Frozen CLIP features on disk, so each image goes through CLIP once: every epoch of a probe, every cell of a
matrix and every rerun read the cached tensors instead."""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from aigen.detector.clip_probe import ClipProbe, backbone_location, load_backbone
from aigen.detector.data import LABELS, Pair, PairImages, Preprocess
from aigen.detector.perturb import Perturbation
from aigen.detector.runtime import autocast, loader
from aigen.files import write_atomic


def file_stamp(path: Path) -> list:
    """A file's identity for the cache without reading it: path, size, modification time."""
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def backbone_stamp(location: str, name: str, revision: str | None) -> list:
    """A hub model is its id and revision; a folder (the tiny twin, a local copy) is its files."""
    if not os.path.isdir(location):
        return [name, revision]
    return [file_stamp(path) for path in sorted(Path(location).iterdir()) if path.is_file()]


class FeatureCache:
    """CLIP image embeddings of pairs (original, AI, pair after pair), keyed by the backbone, the preprocessing,
    the perturbation and the pairs' files; computed on the first request, then read from `root`."""

    def __init__(
        self,
        probe: ClipProbe,
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

    def key(self, pairs: list[Pair], perturbation: Perturbation) -> str:
        location = backbone_location(self.config.backbone, self.cache_dir)
        identity = {
            "backbone": backbone_stamp(location, self.config.backbone, self.config.revision),
            "preprocess": asdict(self.preprocess),
            "perturbation": perturbation.name,
            "pairs": [[pair.key, file_stamp(pair.original), file_stamp(pair.ai)] for pair in pairs],
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]

    def dataset(self, pairs: list[Pair], perturbation: Perturbation, desc: str) -> torch.utils.data.TensorDataset:
        """(feature, label) for both halves of every pair, in PairImages order."""
        path = self.root / f"{self.key(pairs, perturbation)}.pt"
        if path.is_file():
            features = torch.load(path, map_location="cpu", weights_only=True)
        else:
            features = self.compute(pairs, perturbation, desc)
            self.root.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            torch.save(features, buffer)
            write_atomic(path, buffer.getvalue())
        labels = torch.tensor([LABELS[half] for _ in pairs for half in ("original", "ai")])
        return torch.utils.data.TensorDataset(features, labels)

    @torch.no_grad()
    def compute(self, pairs: list[Pair], perturbation: Perturbation, desc: str) -> torch.Tensor:
        if self.backbone is None:
            self.backbone = load_backbone(self.config, self.cache_dir, self.device)
        images = PairImages(pairs, self.preprocess, perturb=perturbation)
        chunks = []
        for batch, _ in tqdm(
            loader(images, self.batch_size, self.workers, self.device), desc=desc, unit="batch", leave=False
        ):
            with autocast(self.device, self.dtype):
                chunks.append(self.backbone(pixel_values=batch.to(self.device)).image_embeds.float().cpu())
        return torch.cat(chunks) if chunks else torch.zeros(0, self.config.dim)
