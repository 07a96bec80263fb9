"""A detector's view of factory datasets: pairs by id, a split by pair, images as normalised tensors."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra.utils import to_absolute_path
from PIL import Image, ImageFilter

from aigen.errors import UserError
from aigen.records import MANIFEST, read_rows
from aigen.seeding import split_key

LABELS = {"original": 0, "ai": 1}  # AI is the positive class of every metric
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Pair:
    """One source photo and its AI variation: two samples that must never be on different sides of a split."""

    id: str
    original: Path
    ai: Path


def load_pairs(dataset_dir: Path) -> list[Pair]:
    """The finished pairs of a factory dataset dir (all shards' manifests), sorted by id; refuses missing files."""
    if not dataset_dir.is_dir():
        raise UserError(f"dataset dir {dataset_dir} does not exist")
    rows = read_rows(dataset_dir, MANIFEST)
    if not rows:
        raise UserError(f"{dataset_dir} holds no pairs (no manifest*.jsonl rows): is it a dataset dir made by run.py?")
    pairs = [Pair(image_id, dataset_dir / row["original"], dataset_dir / row["ai"]) for image_id, row in rows.items()]
    missing = [path for pair in pairs for path in (pair.original, pair.ai) if not path.is_file()]
    if missing:
        raise UserError(
            f"{len(missing)} images listed in {dataset_dir}'s manifest are missing, e.g. {missing[0]}; "
            f"check it with `python -m aigen.verify {dataset_dir}`"
        )
    return sorted(pairs, key=lambda pair: pair.id)


def dataset_dirs(paths: list[str] | str, key: str) -> list[Path]:
    """Absolute dataset dirs from a config list (a single path is accepted too)."""
    paths = [paths] if isinstance(paths, str) else list(paths or [])
    if not paths:
        raise UserError(f"{key} is empty: give dataset dirs made by run.py, e.g. '{key}=[data/processed/DIR]'")
    return [Path(to_absolute_path(str(Path(path).expanduser()))).resolve() for path in paths]


def split_ids(ids: set[str], val_fraction: float, seed: int) -> set[str]:
    """The validation ids: the first round(fraction * n) ids by a seeded hash (at least one, never all).

    The split is made over the ids of all training datasets at once, so both halves of a pair, and the same
    source photo in two datasets (indoor+sd and indoor+dalle2 share their originals), are on the same side.
    """
    if not 0 < val_fraction < 1:
        raise UserError(f"val_fraction={val_fraction} must be between 0 and 1 (exclusive)")
    if len(ids) < 2:
        raise UserError(f"{len(ids)} pair(s) cannot be split into training and validation: at least 2 are needed")
    count = min(max(1, round(val_fraction * len(ids))), len(ids) - 1)
    return set(sorted(ids, key=lambda image_id: split_key(seed, image_id))[:count])


def make_split(pairs: dict[Path, list[Pair]], val_fraction: float, seed: int) -> dict:
    """{'seed', 'val_fraction', 'datasets': {dir: {'train': ids, 'val': ids}}}, as saved in split.json."""
    val = split_ids({pair.id for dataset in pairs.values() for pair in dataset}, val_fraction, seed)
    datasets = {}
    for dataset_dir, dataset in pairs.items():
        ids = [pair.id for pair in dataset]
        datasets[str(dataset_dir)] = {
            "train": [image_id for image_id in ids if image_id not in val],
            "val": [image_id for image_id in ids if image_id in val],
        }
    return {"seed": seed, "val_fraction": val_fraction, "datasets": datasets}


def select(pairs: list[Pair], ids: list[str]) -> list[Pair]:
    wanted = set(ids)
    return [pair for pair in pairs if pair.id in wanted]


@dataclass(frozen=True)
class Augment:
    """Training-time perturbations that help a detector generalise beyond one generator's exact traces.

    A random square crop (resized back), Gaussian blur and JPEG re-compression, each applied with `probability`
    (the recipe of Wang et al., "CNN-generated images are surprisingly easy to spot... for now", 2020).
    """

    jpeg: bool = False
    blur: bool = False
    crop: bool = False
    probability: float = 0.5
    jpeg_quality: tuple[int, int] = (30, 100)
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    crop_scale: tuple[float, float] = (0.5, 1.0)  # fraction of the image's area kept by a crop

    def __post_init__(self) -> None:
        if not 0 <= self.probability <= 1:
            raise UserError(f"augment.probability={self.probability} must be in [0, 1]")
        low, high = self.jpeg_quality
        if not 1 <= low <= high <= 100:
            raise UserError(f"augment.jpeg_quality={list(self.jpeg_quality)} must be [low, high] within 1..100")
        low, high = self.blur_sigma
        if not 0 <= low <= high:
            raise UserError(f"augment.blur_sigma={list(self.blur_sigma)} must be [low, high] with 0 <= low <= high")
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise UserError(f"augment.crop_scale={list(self.crop_scale)} must be [low, high] within (0, 1]")

    @property
    def active(self) -> bool:
        return self.jpeg or self.blur or self.crop

    def __call__(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        if self.crop and rng.random() < self.probability:
            side = round(min(image.size) * np.sqrt(rng.uniform(*self.crop_scale)))
            left = int(rng.integers(0, image.width - side + 1))
            top = int(rng.integers(0, image.height - side + 1))
            image = image.crop((left, top, left + side, top + side))
        if self.blur and rng.random() < self.probability:
            image = image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(*self.blur_sigma))))
        if self.jpeg and rng.random() < self.probability:
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
            image = Image.open(buffer).convert("RGB")
        return image


@dataclass(frozen=True)
class Preprocess:
    """Resize to a square of `image_size` and normalise: stored in the checkpoint, so eval does the same."""

    image_size: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        array = (np.asarray(image, dtype=np.float32) / 255 - self.mean) / self.std
        return torch.from_numpy(array.astype(np.float32).transpose(2, 0, 1))


class PairImages(torch.utils.data.Dataset):
    """Both halves of every pair as (tensor, label); augmentations are seeded by (seed, epoch, index).

    Per-sample seeds make an epoch's images the same whatever the worker count, and a resumed run the same as
    an uninterrupted one.
    """

    def __init__(self, pairs: list[Pair], preprocess: Preprocess, augment: Augment | None = None, seed: int = 0):
        self.samples = [
            (path, LABELS[half]) for pair in pairs for half, path in (("original", pair.original), ("ai", pair.ai))
        ]
        self.preprocess = preprocess
        self.augment = augment if augment and augment.active else None
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        if self.augment:
            image = self.augment(image, np.random.default_rng([self.seed, self.epoch, index]))
        return self.preprocess(image), label
