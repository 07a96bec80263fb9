"""The torch device a job runs on, shared by the generators and the detector (no heavy imports)."""

from __future__ import annotations

import torch

from aigen.errors import UserError


def resolve_device(device: str) -> torch.device:
    """`auto` is CUDA when available, else the CPU; anything else is a torch device name."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise UserError(f"device={device!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from None
