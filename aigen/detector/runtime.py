"""Where and how the detector runs: device, mixed precision, data loaders and one scoring pass over a loader."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from aigen.errors import UserError

PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None: full fp32). `auto`: bf16 on GPUs that run it natively (Ampere and later), else
    fp16 (an emulated bf16 is slower than fp32); fp32 on CPU."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        native = torch.version.hip is not None or torch.cuda.get_device_capability(device)[0] >= 8
        return torch.bfloat16 if native else torch.float16
    if precision not in PRECISIONS:
        raise UserError(f"precision={precision!r} is not one of auto, {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


def precision_name(dtype: torch.dtype | None) -> str:
    return next(name for name, value in PRECISIONS.items() if value == dtype)


def resolve_workers(workers: int | str) -> int:
    """`auto`: one loader process per CPU this process may use, at most 8 (DataLoader warns above that count)."""
    if workers == "auto":
        return min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise UserError(f"workers={workers!r} must be auto or a whole number >= 0 (0: load in the main process)")
    return workers


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


class PairShuffle(torch.utils.data.Sampler):
    """Pairs in a seeded random order, each pair's two samples (2k, 2k+1) one after the other: with an even batch
    size both halves of a pair are in the same batch."""

    def __init__(self, count: int, seed: int) -> None:
        self.count, self.seed = count, seed

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        order = torch.randperm(self.count // 2, generator=torch.Generator().manual_seed(self.seed)).tolist()
        return iter(index for pair in order for index in (2 * pair, 2 * pair + 1))


def loader(
    dataset: torch.utils.data.Dataset,
    batch_size: int,
    workers: int,
    device: torch.device,
    shuffle_seed: int | None = None,
    paired: bool = False,
) -> torch.utils.data.DataLoader:
    """Shuffled by `shuffle_seed` (None: in order), so an epoch's order depends on the seed and epoch alone;
    `paired` shuffles whole pairs (samples stored original, AI, pair after pair)."""
    generator = torch.Generator().manual_seed(shuffle_seed) if shuffle_seed is not None else None
    sampler = PairShuffle(len(dataset), shuffle_seed) if paired and shuffle_seed is not None else None
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle_seed is not None and sampler is None,
        sampler=sampler,
        generator=generator,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )


@contextmanager
def loader_errors() -> Iterator[None]:
    """A UserError raised in a loader process (an image that does not decode) reaches this one as a UserError whose
    message is that process's traceback (torch's ExceptionWrapper): the user sees its last line, the error itself."""
    try:
        yield
    except UserError as error:
        lines = str(error).splitlines()
        if len(lines) < 2:
            raise
        raise UserError(lines[-1].removeprefix(f"{UserError.__module__}.{UserError.__name__}: ")) from None


@dataclass
class Scores:
    """One pass of a model over labelled images: true labels, P(ai) per image and the mean loss."""

    labels: np.ndarray
    scores: np.ndarray
    loss: float


@torch.no_grad()
def score(
    model: torch.nn.Module,
    batches: torch.utils.data.DataLoader,
    device: torch.device,
    dtype: torch.dtype | None,
    desc: str,
) -> Scores:
    model.eval()
    labels, scores, loss_sum = [], [], 0.0
    for images, targets in tqdm(batches, desc=desc, unit="batch", leave=False, dynamic_ncols=True, disable=None):
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with autocast(device, dtype):
            logits = model(images).logits.float()
        loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
        labels.append(targets.cpu().numpy())
        scores.append(logits.softmax(dim=1)[:, 1].cpu().numpy())
    all_labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    return Scores(all_labels, np.concatenate(scores) if scores else np.zeros(0), loss_sum / max(len(all_labels), 1))
