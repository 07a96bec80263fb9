"""The torch device a job runs on, shared by the generators and the detector (no heavy imports)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from aigen.dataset import Shard
from aigen.errors import UserError


def resolve_device(device: str) -> torch.device:
    """`auto` is CUDA when available, else the CPU; anything else is a torch device name."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise UserError(f"device={device!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from None


def check_available(device: str, key: str = "device") -> None:
    """A CUDA device asked for by name must be one this machine has: one line before any work, not torch's assertion
    from deep inside a pipeline."""
    resolved = resolve_device(device)
    if resolved.type != "cuda":
        return
    if not torch.cuda.is_available():
        raise UserError(f"{key}={device}: torch sees no CUDA GPU on this machine; use {key}=auto or cpu")
    if resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise UserError(f"{key}={device}: this machine has {torch.cuda.device_count()} CUDA GPU(s), counted from 0")


def cuda_index(environ: Mapping[str, str], shard: Shard, device_count: int) -> int:
    """Which of the visible GPUs this process uses: its LOCAL_RANK under torchrun / accelerate; under
    submitit_local, whose jobs all see the same GPUs, its shard's index modulo their number; else the first (SLURM
    and CUDA_VISIBLE_DEVICES already give each process its own)."""
    if "LOCAL_RANK" in environ:  # modulo: a launcher that binds one GPU per task shows each task only its own
        return int(environ["LOCAL_RANK"]) % max(device_count, 1)
    if environ.get("SUBMITIT_EXECUTOR") == "local" and device_count:
        return shard.index % device_count
    return 0


def select_gpu(shard: Shard) -> None:
    """Make this process's GPU the current CUDA device, so that `cuda` (device=auto) means it."""
    if torch.cuda.is_available():
        torch.cuda.set_device(cuda_index(os.environ, shard, torch.cuda.device_count()))
