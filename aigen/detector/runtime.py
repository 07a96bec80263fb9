"""Where and how the detector runs: device, mixed precision, data loaders and one scoring pass over a loader."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from aigen.errors import UserError

PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None: full fp32). `auto`: bf16 on GPUs that have it, else fp16; fp32 on CPU."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision not in PRECISIONS:
        raise UserError(f"precision={precision!r} is not one of auto, {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


def precision_name(dtype: torch.dtype | None) -> str:
    return next(name for name, value in PRECISIONS.items() if value == dtype)


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def loader(
    dataset: torch.utils.data.Dataset,
    batch_size: int,
    workers: int,
    device: torch.device,
    shuffle_seed: int | None = None,
) -> torch.utils.data.DataLoader:
    """Shuffled by `shuffle_seed` (None: in order), so an epoch's order depends on the seed and epoch alone."""
    generator = torch.Generator().manual_seed(shuffle_seed) if shuffle_seed is not None else None
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle_seed is not None,
        generator=generator,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )


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
    for images, targets in tqdm(batches, desc=desc, unit="batch", leave=False, dynamic_ncols=True):
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with autocast(device, dtype):
            logits = model(pixel_values=images).logits.float()
        loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
        labels.append(targets.cpu().numpy())
        scores.append(logits.softmax(dim=1)[:, 1].cpu().numpy())
    all_labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    return Scores(all_labels, np.concatenate(scores) if scores else np.zeros(0), loss_sum / max(len(all_labels), 1))
