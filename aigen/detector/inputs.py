"""What a detector reads for some images: image tensors for a ResNet, cached backbone features for a probe. Pairs
list their two halves one after the other (original, AI), so paired shuffling and per-id scores line up."""

from __future__ import annotations

import torch

from aigen.detector.data import Augment, LabelledImages, Pair, PairImages, Preprocess, pair_images
from aigen.detector.features import FeatureCache
from aigen.detector.model import Model
from aigen.detector.perturb import CLEAN, Perturbation
from aigen.detector.probe import FeatureProbe


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
            if isinstance(model, FeatureProbe)
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
        return torch.utils.data.ConcatDataset(
            [self.features.dataset(*pair_images(group), perturbation, desc) for group in groups]
        )

    def labelled(
        self, images, labels: list[int], perturbation: Perturbation = CLEAN, desc: str = "features"
    ) -> torch.utils.data.Dataset:
        """Labelled images to score: a sequence of RGB images with `stamps()`, and their 0/1 labels; an image that
        cannot be decoded is labelled UNREADABLE, for the caller to leave out and count."""
        if self.features is None:
            return LabelledImages(images, labels, self.preprocess, perturb=perturbation, skip_unreadable=True)
        return self.features.dataset(images, labels, perturbation, desc, skip_unreadable=True)
