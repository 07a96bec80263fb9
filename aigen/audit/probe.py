"""The learnability probe: can a small CNN tell the halves of a dataset's pairs apart, one image at a time?

The audit's five global cues are not what a detector sees. The probe trains a small CNN on the pairs of the content
split's training photos (aigen.splits: both halves of a pair always on the same side) and reports its accuracy on
the held-out photos' images, with a 95% Wilson interval, and its accuracy on training images (a probe that cannot
even fit its training set proves nothing by scoring 50%).

It is built to find small processing cues, and must: full-resolution crops of the written JPEGs (never resized),
at offsets on the 8x8 block grid; a learned high-pass first layer (residuals: the content's low frequencies vary
most from photo to photo and say nothing about processing), divided by the residuals' local RMS; no downsampling;
each channel pooled over the crop as its mean and log-energy, so that the read-out sees ratios of band energies.
Both halves of a pair share a batch and a crop position, so that a step's gradient is the halves' difference, not
the photos'. A scored image's logit is the mean over its non-overlapping crops. Everything is seeded: the same
dataset, settings and thread count give the same numbers. Identical halves get identical logits, so a dataset of
identical pairs scores exactly 50%.

Measured on known cues (`python -m benchmarks.probe_check`, BENCHMARKS.md; docs/bias-and-controls.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image
from torch import nn

from aigen.detector.data import DECODE_ERRORS, Pair, load_pairs
from aigen.detector.metrics import wilson_interval
from aigen.errors import UserError
from aigen.splits import split_of

BLOCK = 8  # JPEG's DCT block: every crop starts on the block grid
HELD_OUT = 0.4  # share of source photos (by content) whose images are scored; the rest train the probe
MIN_PAIRS = 20
LOCAL = 7  # side of the window whose RMS normalises the residuals
PROBE_BAND = 0.55  # the effect size: held-out accuracy above it (and a 95% interval above 0.5) is flagged


@dataclass(frozen=True)
class ProbeSettings:
    crop: int = 64  # side of a training crop and of each scored tile, in pixels (a multiple of BLOCK)
    steps: int = 4000
    batch_pairs: int = 16  # a batch holds both halves of this many pairs
    lr: float = 6e-3  # the peak, decayed to zero along a cosine
    width: int = 16  # channels of the high-pass layer (the next layers have twice as many)
    seed: int = 0  # the split, the weights and the crops

    def __post_init__(self) -> None:
        if self.crop < BLOCK or self.crop % BLOCK:
            raise UserError(f"probe crop={self.crop} must be a positive multiple of {BLOCK}")
        for name in ("steps", "batch_pairs", "width"):
            if getattr(self, name) < 1:
                raise UserError(f"probe {name}={getattr(self, name)} must be at least 1")


class ResidualCNN(nn.Module):
    """A learned high-pass layer whose residuals are divided by their local RMS (so that a feature says how the
    image was processed, not how contrasted it is), two convolutions at full resolution, and each channel's mean
    and log-energy over the crop."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.high_pass = nn.Conv2d(3, width, 3, bias=False)
        self.features = nn.Sequential(nn.Conv2d(width, 2 * width, 3), nn.ReLU(), nn.Conv2d(2 * width, 2 * width, 3))
        self.head = nn.Linear(4 * width, 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        weight = self.high_pass.weight
        residual = nn.functional.conv2d(pixels, weight - weight.mean(dim=(2, 3), keepdim=True))  # kernels sum to 0
        local_energy = nn.functional.avg_pool2d(
            residual.square().mean(dim=1, keepdim=True), LOCAL, stride=1, padding=LOCAL // 2, count_include_pad=False
        )
        hidden = self.features(residual / torch.sqrt(local_energy + 1e-4))
        energy = torch.log(hidden.square().mean(dim=(2, 3)) + 1e-6)
        return self.head(torch.cat([energy, hidden.mean(dim=(2, 3))], dim=1)).squeeze(1)


@dataclass(frozen=True)
class ProbeResult:
    held_out_images: int
    accuracy: float
    interval: tuple[float, float]  # 95% Wilson interval of `accuracy`
    train_images: int
    train_accuracy: float
    settings: ProbeSettings

    rule: ClassVar[str] = (
        f"The probe is flagged when its held-out accuracy is above {PROBE_BAND:.0%} and its 95% interval lies above "
        "50% (chance)."
    )

    @property
    def flagged(self) -> bool:
        """Both large (above PROBE_BAND) and significant (the interval excludes chance), as the cue flags."""
        return self.accuracy > PROBE_BAND and self.interval[0] > 0.5

    def sentence(self, control: bool = True) -> str:
        low, high = self.interval
        text = (
            f"a CNN tells the halves apart in {self.accuracy:.0%} of {self.held_out_images} held-out images "
            f"(95% CI {100 * low:.0f}-{high:.0%}); train {self.train_accuracy:.0%}"
        )
        if not self.flagged:
            return text
        if control:
            return f"{text}: a detector can learn this dataset's processing instead of generation"
        return f"{text}: the halves differ in a way a CNN learns, which may be generation itself"

    def summary(self, control: bool = True) -> dict:
        return {
            "accuracy": self.accuracy,
            "interval": list(self.interval),
            "held_out_images": self.held_out_images,
            "train_accuracy": self.train_accuracy,
            "train_images": self.train_images,
            "flagged": self.flagged,
            "sentence": self.sentence(control),
            "settings": asdict(self.settings),
        }


def held_out_split(dataset_dir: Path, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """(training pairs, held-out pairs) by source photo content; UserError when there are too few for either."""
    pairs = load_pairs(dataset_dir)
    if len(pairs) < MIN_PAIRS:
        raise UserError(f"{dataset_dir} has {len(pairs)} pairs; the probe needs at least {MIN_PAIRS}")
    held_out = {pair.id for pair in pairs if split_of(pair.key, seed, 0.0, HELD_OUT) == "test"}
    train, test = [p for p in pairs if p.id not in held_out], [p for p in pairs if p.id in held_out]
    if not train or not test:
        raise UserError(f"{dataset_dir}: the probe's split of {len(pairs)} photos left a side empty; add photos")
    return train, test


def read_pixels(path: Path) -> torch.Tensor:
    try:
        with Image.open(path) as image:
            return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)
    except DECODE_ERRORS as error:
        raise UserError(f"{path} cannot be read ({error}); check it with python -m aigen.verify") from None


def load_halves(pairs: list[Pair], crop: int) -> torch.Tensor:
    """(pairs, 2, 3, side, side) uint8, the original then the AI half: every image at one size, at least `crop`."""
    images = [read_pixels(path) for pair in pairs for path in (pair.original, pair.ai)]
    sizes = {tuple(image.shape[1:]) for image in images}
    if len(sizes) > 1:
        raise UserError(f"the probe needs images of one size; found {', '.join(map(str, sorted(sizes)))}")
    if min(next(iter(sizes))) < crop:
        raise UserError(f"images of {next(iter(sizes))} px are smaller than the probe's {crop} px crop")
    return torch.stack(images).unflatten(0, (len(pairs), 2))


def tile_starts(side: int, crop: int) -> range:
    return range(0, side - crop + 1, crop)


@torch.no_grad()
def image_logits(model: nn.Module, images: torch.Tensor, crop: int, batch: int = 64) -> torch.Tensor:
    """Each image's logit, the mean over its non-overlapping crops on the block grid."""
    model.eval()
    height, width = images.shape[-2:]
    starts = [(y, x) for y in tile_starts(height, crop) for x in tile_starts(width, crop)]
    logits = []
    for first in range(0, len(images), batch):
        pixels = images[first : first + batch].float() / 255
        logits.append(torch.stack([model(pixels[..., y : y + crop, x : x + crop]) for y, x in starts]).mean(dim=0))
    return torch.cat(logits)


def correct_and_count(model: nn.Module, halves: torch.Tensor, crop: int) -> tuple[int, int]:
    """Images classified right (AI when the logit is above 0) and images scored."""
    logits = image_logits(model, halves.flatten(0, 1), crop).view(-1, 2)
    return int((logits[:, 0] <= 0).sum() + (logits[:, 1] > 0).sum()), logits.numel()


def train_probe(halves: torch.Tensor, settings: ProbeSettings) -> nn.Module:
    """Adam on binary cross-entropy, its learning rate decayed to zero along a cosine: at a constant rate the
    accuracy on a small cue went up and down by several points with the number of steps. Each batch holds both
    halves of `batch_pairs` pairs at one crop position."""
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    model = ResidualCNN(settings.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.steps)
    count, crop = settings.batch_pairs, settings.crop
    positions = [(side - crop) // BLOCK + 1 for side in halves.shape[-2:]]
    labels = torch.cat([torch.zeros(count), torch.ones(count)])
    model.train()
    for _ in range(settings.steps):
        chosen = rng.choice(len(halves), count, replace=len(halves) < count)
        tops, lefts = (rng.integers(0, n, count) * BLOCK for n in positions)
        crops = torch.stack(
            [halves[i, ..., y : y + crop, x : x + crop] for i, y, x in zip(chosen, tops, lefts, strict=True)]
        )
        loss = nn.functional.binary_cross_entropy_with_logits(model(crops.transpose(0, 1).flatten(0, 1) / 255), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model


def probe_pairs(train: list[Pair], test: list[Pair], settings: ProbeSettings) -> ProbeResult:
    """Train on `train`'s pairs; score every image of `test`, and as many training images (a fit check)."""
    train_halves, test_halves = load_halves(train, settings.crop), load_halves(test, settings.crop)
    model = train_probe(train_halves, settings)
    correct, images = correct_and_count(model, test_halves, settings.crop)
    train_correct, train_images = correct_and_count(model, train_halves[: len(test_halves)], settings.crop)
    return ProbeResult(
        images, correct / images, wilson_interval(correct, images), train_images, train_correct / train_images, settings
    )


def probe_dataset(dataset_dir: Path, settings: ProbeSettings | None = None) -> ProbeResult:
    """The probe of one dataset dir: held-out accuracy of a CNN trained on its training photos' pairs."""
    settings = settings or ProbeSettings()
    return probe_pairs(*held_out_split(dataset_dir, settings.seed), settings)
