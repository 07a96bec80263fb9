"""A detector's view of factory datasets: pairs keyed by photo content, the split, images as normalised tensors."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra.utils import to_absolute_path
from PIL import Image, ImageFilter

from aigen.dataset import open_dataset
from aigen.errors import UserError
from aigen.splits import SPLITS, check_fractions, content_key, split_of

LABELS = {"original": 0, "ai": 1}  # AI is the positive class of every metric
# The label of an image that cannot be decoded, when a scoring pass skips it: F.cross_entropy's ignore_index.
UNREADABLE = -100
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Pair:
    """One source photo and its AI variation: two samples that must never be on different sides of a split.

    `key` is the source photo's content (aigen.splits.content_key): the split and the "seen in training" test
    use it, never the id or path, so the same photo in two folders or datasets is one photo.
    """

    id: str
    key: str
    original: Path
    ai: Path


def load_pairs(dataset_dir: Path) -> list[Pair]:
    """The finished pairs of a factory dataset dir (all shards' manifests), sorted by id; a row whose files are
    gone is refused by open_dataset."""
    rows = open_dataset(dataset_dir).rows
    paths = {image_id: (dataset_dir / row["original"], dataset_dir / row["ai"]) for image_id, row in rows.items()}
    pairs = [Pair(image_id, content_key(dataset_dir, rows[image_id]), *paths[image_id]) for image_id in rows]
    return sorted(pairs, key=lambda pair: pair.id)


def dataset_dirs(paths: list[str] | str, key: str) -> list[Path]:
    """Absolute dataset dirs from a config list (a single path is accepted too)."""
    paths = [paths] if isinstance(paths, str) else list(paths or [])
    if not paths:
        raise UserError(f"{key} is empty: give dataset dirs made by run.py, e.g. '{key}=[data/processed/DIR]'")
    return [Path(to_absolute_path(str(Path(path).expanduser()))).resolve() for path in paths]


def make_split(
    pairs: dict[Path, list[Pair]], seed: int, val_fraction: float, test_fraction: float, allow_no_test: bool = False
) -> dict:
    """The training run's split, as saved in split.json and the checkpoint: {seed, fractions, datasets: {dir:
    {train, val, test: ids}}, keys: {train, val: content keys}}. Each photo's side is aigen.splits.split_of of its
    content, so the export tool and every dataset of the same photos agree; `keys` are the photos the model saw."""
    check_fractions(val_fraction, test_fraction)
    datasets, keys = {}, {name: set() for name in SPLITS}
    for dataset_dir, dataset in pairs.items():
        sides = {name: [] for name in SPLITS}
        for pair in dataset:
            side = split_of(pair.key, seed, val_fraction, test_fraction)
            sides[side].append(pair.id)
            keys[side].add(pair.key)
        datasets[str(dataset_dir)] = sides
    sides = [("train", 1 - val_fraction - test_fraction), ("val", val_fraction)]
    if test_fraction and not allow_no_test:  # test_fraction=0 says so itself
        sides.append(("test", test_fraction))
    for side, fraction in sides:
        if not keys[side]:
            raise UserError(
                f"no {side} pair: {sum(map(len, keys.values()))} photos with a {side} share of {fraction:g} "
                "(val_fraction, test_fraction) leave it empty; use more photos or a larger share"
                + (", or allow_no_test=true to train with nothing left to test on" if side == "test" else "")
            )
    return {
        "seed": seed,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "datasets": datasets,
        "keys": {side: sorted(keys[side]) for side in ("train", "val")},
    }


def select(pairs: list[Pair], ids: list[str]) -> list[Pair]:
    wanted = set(ids)
    return [pair for pair in pairs if pair.id in wanted]


def unseen_pairs(pairs: list[Pair], split: dict, eval_split: str) -> tuple[list[Pair], int]:
    """(pairs to score, pairs left out because the model trained or validated on their photo, by content).

    `test`: the unseen pairs whose photo falls in the test split (the same photos in every dataset, so rows
    compare); `unseen`: every unseen pair (for a dataset of new photos).
    """
    seen = set(split["keys"]["train"]) | set(split["keys"]["val"])
    unseen = [pair for pair in pairs if pair.key not in seen]
    if eval_split == "test":
        settings = split["seed"], split["val_fraction"], split["test_fraction"]
        unseen = [pair for pair in unseen if split_of(pair.key, *settings) == "test"]
    return unseen, sum(pair.key in seen for pair in pairs)


@dataclass(frozen=True)
class Augment:
    """Training-time perturbations that help a detector generalise beyond one generator's exact traces.

    A random square crop (resized back), Gaussian blur and JPEG re-compression, each applied with `probability`
    (the recipe of Wang et al., "CNN-generated images are surprisingly easy to spot... for now", 2020).
    `paired`: both halves of a pair get the same draw and the same batch ("Aligned Datasets", Rajan et al. 2025),
    so an augmentation cannot differ between the classes and become a cue.
    """

    jpeg: bool = False
    blur: bool = False
    crop: bool = False
    probability: float = 0.5
    jpeg_quality: tuple[int, int] = (30, 100)
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    crop_scale: tuple[float, float] = (0.5, 1.0)  # fraction of the image's area kept by a crop
    paired: bool = True

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


RESIZES = ("crop", "resize")


def center_crop(image: Image.Image, side: int) -> Image.Image:
    """The central `side` square at the image's own scale, keeping the high frequencies detectors rely on; an image
    smaller than that (e.g. after a downscale perturbation) is first enlarged to a short side of `side`."""
    if min(image.size) < side:
        scale = side / min(image.size)
        size = (max(side, round(image.width * scale)), max(side, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


@dataclass(frozen=True)
class Preprocess:
    """A square of `image_size`, normalised: stored in the checkpoint, so eval does the same.

    `resize`: `crop` (default) takes the centre square at full resolution; `resize` scales the whole image down
    (antialiased bilinear), which erases the high-frequency traces of generation.
    """

    image_size: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    resize: str = "crop"

    def __post_init__(self) -> None:
        if self.resize not in RESIZES:
            raise UserError(f"resize={self.resize!r} is not one of {', '.join(RESIZES)}")

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if self.resize == "crop":
            image = center_crop(image, self.image_size)
        elif image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        array = (np.asarray(image, dtype=np.float32) / 255 - self.mean) / self.std
        return torch.from_numpy(array.astype(np.float32).transpose(2, 0, 1))


class ImageFiles:
    """Images read from files on access (a sequence of RGB images), e.g. both halves of pairs or a benchmark folder."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Image.Image:
        with Image.open(self.paths[index]) as opened:
            return opened.convert("RGB")

    def stamps(self) -> list:
        """The files' identity for a feature cache without reading them: path, size, modification time."""
        return [file_stamp(path) for path in self.paths]


def file_stamp(path: Path) -> list:
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


class LabelledImages(torch.utils.data.Dataset):
    """(tensor, label) for each image of a sequence of RGB images (ImageFiles, or a benchmark's rows).

    `perturb` (evaluation) is applied to every image alike, before the preprocessing. Augmentations are seeded by
    (seed, epoch, index), the index of the pair when `augment.paired` (images stored original, AI, pair after pair):
    per-sample seeds make an epoch's images the same whatever the worker count, and a resumed run the same as an
    uninterrupted one. `skip_unreadable` (scoring a benchmark): an image that cannot be decoded comes out as a blank
    tensor labelled UNREADABLE, for the caller to leave out and count, instead of stopping the run; otherwise (training:
    `images` are ImageFiles) it stops the run with one line naming the file.
    """

    def __init__(
        self,
        images,
        labels: list[int],
        preprocess: Preprocess,
        augment: Augment | None = None,
        seed: int = 0,
        perturb: Callable[[Image.Image], Image.Image] | None = None,
        skip_unreadable: bool = False,
    ):
        self.images, self.labels, self.skip_unreadable = images, labels, skip_unreadable
        self.preprocess = preprocess
        self.augment = augment if augment and augment.active else None
        self.seed = seed
        self.perturb = perturb
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        try:
            image = self.images[index]
        except DECODE_ERRORS as error:
            if not self.skip_unreadable:
                path = self.images.paths[index]
                raise UserError(f"{path} cannot be read ({error}); check it with python -m aigen.verify") from None
            return torch.zeros(3, self.preprocess.image_size, self.preprocess.image_size), UNREADABLE
        if self.perturb:
            image = self.perturb(image)
        if self.augment:
            draw = index // 2 if self.augment.paired else index
            image = self.augment(image, np.random.default_rng([self.seed, self.epoch, draw]))
        return self.preprocess(image), self.labels[index]


def pair_images(pairs: list[Pair]) -> tuple[ImageFiles, list[int]]:
    """Both halves of every pair, original then AI, pair after pair, with their labels."""
    halves = [(path, LABELS[half]) for pair in pairs for half, path in (("original", pair.original), ("ai", pair.ai))]
    return ImageFiles([path for path, _ in halves]), [label for _, label in halves]


class PairImages(LabelledImages):
    """Both halves of every pair as (tensor, label), original then AI, pair after pair."""

    def __init__(
        self,
        pairs: list[Pair],
        preprocess: Preprocess,
        augment: Augment | None = None,
        seed: int = 0,
        perturb: Callable[[Image.Image], Image.Image] | None = None,
    ):
        super().__init__(*pair_images(pairs), preprocess, augment, seed, perturb)
