"""What a detector reads for some pairs: image tensors for a ResNet, cached CLIP features for a probe. Both list
the two halves of each pair one after the other (original, AI), so paired shuffling and per-id scores line up."""

from __future__ import annotations

import torch

from aigen.detector.clip_probe import ClipProbe
from aigen.detector.data import Augment, Pair, PairImages, Preprocess
from aigen.detector.features import FeatureCache
from aigen.detector.model import Model
from aigen.detector.perturb import CLEAN, Perturbation


class Inputs:
    def __init__(
        self,
        model: Model,
        preprocess: Preprocess,
        cache_dir: str,
        batch_size: int,
        workers: int,
        device: torch.device,
        dtype: torch.dtype | None,
    ) -> None:
        self.preprocess = preprocess
        self.features = (
            FeatureCache(model, preprocess, cache_dir, batch_size, workers, device, dtype)
            if isinstance(model, ClipProbe)
            else None
        )
        self.workers = workers if self.features is None else 0  # features are in memory: no loader processes

    def __call__(
        self,
        groups: list[list[Pair]],
        perturbation: Perturbation = CLEAN,
        augment: Augment | None = None,
        seed: int = 0,
        desc: str = "features",
    ) -> torch.utils.data.Dataset:
        """The pairs of each group (one per dataset, so a probe's features are cached per dataset), in order."""
        if self.features is None:
            pairs = [pair for group in groups for pair in group]
            return PairImages(pairs, self.preprocess, augment, seed, perturb=perturbation)
        return torch.utils.data.ConcatDataset([self.features.dataset(group, perturbation, desc) for group in groups])
